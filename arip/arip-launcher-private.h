/* arip-launcher-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "arip-launcher.h"

G_BEGIN_DECLS

typedef struct {
  GPid pid;
  gint pidfd;        /* -1 where the kernel has none */
  gint channel_fd;   /* the parent's end of the socketpair */
  gint crash_fd;     /* read end of the crash pipe, non-blocking */
  gint control_fd;   /* a pool worker's shared page, or -1 */
  AripStartMethod start_method;  /* how it came to be */
  gboolean via_zygote;  /* forked by the fork server, not our child */
  gint stdin_fd;     /* -1 unless G_SUBPROCESS_FLAGS_STDIN_PIPE */
  gint stdout_fd;    /* -1 unless G_SUBPROCESS_FLAGS_STDOUT_PIPE */
  gint stderr_fd;    /* -1 unless G_SUBPROCESS_FLAGS_STDERR_PIPE */
} AripSpawnResult;

/* Starts a worker process with the launcher's settings; a pool worker
 * serves calls until its channel closes. */
gboolean arip_launcher_spawn (AripLauncher     *self,
                              gboolean          pool_worker,
                              AripSpawnResult  *result,
                              GError          **error);

/* The worker's argv as a person would read it; free with g_free(). */
char    *arip_launcher_describe_argv (AripLauncher *self);

/* The environment a program started now gets (not a worker: without
 * ARIP_WORKER). */
char   **arip_launcher_dup_environ (AripLauncher *self);
/* The launcher's extra descriptors: sources[i] becomes targets[i]. */
guint    arip_launcher_get_fds    (AripLauncher  *self,
                                   const gint   **sources,
                                   const gint   **targets);
/* Hands copies of the launcher's extra descriptors to @launcher. */
gboolean arip_launcher_pass_fds   (AripLauncher         *self,
                                   GSubprocessLauncher  *launcher,
                                   GError              **error);

/* The launcher of processes and pools that were given none. */
AripLauncher *arip_launcher_get_default (void);

G_END_DECLS
