/* arip-spawn-private.h: starting a program without copying the parent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What to start. Every pointer is borrowed for the duration of the call. */
typedef struct {
  const char         *file;         /* the program: a path, or a name looked up in PATH */
  const char * const *argv;         /* argv[0] is what the program sees as its name */
  const char * const *envp;         /* the whole environment */
  const char         *cwd;          /* nullable: the parent's */
  gboolean            path_from_envp;  /* look @file up in @envp's PATH, not ours */
  /* The child's standard streams: a descriptor of ours, or -1 for
   * /dev/null, or ARIP_SPAWN_INHERIT for the parent's own. */
  gint                stdin_fd;
  gint                stdout_fd;
  gint                stderr_fd;
  /* More descriptors: sources[i] becomes targets[i] (> 2) in the child. */
  const gint         *sources;
  const gint         *targets;
  guint               n_fds;
  /* Leave every other descriptor that is not close-on-exec open. */
  gboolean            inherit_fds;
  /* Put the child in a process group of its own. */
  gboolean            new_process_group;
} AripSpawnRequest;

#define ARIP_SPAWN_INHERIT (-2)

/* Starts the program. The child shares the parent's memory until it execs
 * (posix_spawn with vfork semantics), so the cost does not grow with the
 * parent's size. It is always started from a thread that lives as long as
 * the process (the main thread, or a helper thread when called from
 * another), so that a PR_SET_PDEATHSIG the child sets fires only when the
 * whole parent dies, never when the calling thread ends.
 *
 * On success *pid is the child, and *pidfd a pidfd for it (close-on-exec),
 * or -1 where the kernel has none. The child is not reaped by anyone: the
 * caller must. FALSE with @error (G_SPAWN_ERROR) otherwise. */
gboolean arip_spawn      (const AripSpawnRequest *request,
                          GPid                   *pid,
                          gint                   *pidfd,
                          GError                **error);

/* pidfd_open(); -1 with errno where the kernel does not have it. */
gint     arip_pidfd_open (GPid                    pid);

/* Sends @signum to the process @pidfd refers to, or to @pid when @pidfd is
 * -1. A pidfd never reaches a process that reused the pid. */
gboolean arip_pidfd_send_signal (gint             pidfd,
                                 GPid             pid,
                                 gint             signum);

/* The status of @pid, a dead child of ours not reaped yet, without reaping
 * it; FALSE if it still runs. */
gboolean arip_spawn_peek_status (GPid             pid,
                                 gint            *wait_status);
/* Kills what is left of @pid's process group, then reaps @pid: in that
 * order, so that the group's id cannot have been reused. */
void     arip_spawn_reap        (GPid             pid);

/* Called once the child is dead (not reaped) with its wait status. */
typedef gboolean (*AripExitFunc) (gint     wait_status,
                                  gpointer user_data);
/* A source that fires when @pid is dead: through its pidfd, or, without
 * one (old kernels, valgrind), by looking now and then. Nobody else reaps
 * the child (GLib's child watch would, behind our back). */
GSource *arip_spawn_exit_source_new (GPid        pid,
                                     gint        pidfd);

G_END_DECLS
