/* arip-zygote-private.h: the fork server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The environment variable that makes the program a fork server:
 * "VERSION:CONTROL_FD:PARENT_PID". */
#define ARIP_ZYGOTE_ENV "ARIP_ZYGOTE"

/* What arip_zygote_fork() did. */
typedef enum {
  ARIP_ZYGOTE_FORKED,       /* the worker runs */
  ARIP_ZYGOTE_STARTING,     /* the server is starting: spawn this one */
  ARIP_ZYGOTE_UNAVAILABLE,  /* this program's server cannot fork: spawn (error says why) */
  ARIP_ZYGOTE_FAILED,       /* the server could not fork (error) */
} AripZygoteOutcome;

/* Parent side. Forks a worker in the fork server: @fds[i] becomes
 * @targets[i] in the worker (0, 1 and 2 among them), which gets exactly
 * @envp and starts in @cwd. On ARIP_ZYGOTE_FORKED *pid is the worker and
 * *pidfd a pidfd for it (or -1). Never waits for a server to start: the
 * first call starts one and says STARTING, and so do calls after it died,
 * until it says hello. */
AripZygoteOutcome arip_zygote_fork     (const char         *cwd,
                                        const char * const *envp,
                                        const gint         *fds,
                                        const gint         *targets,
                                        guint               n_fds,
                                        GPid               *pid,
                                        gint               *pidfd,
                                        GError            **error);
/* The fork server's pid (the parent of its workers), or 0 if none runs. */
GPid     arip_zygote_get_pid           (void);
/* A source that fires (see AripExitFunc) once the fork server reports
 * that @pid, one of its workers, is gone, or once the server itself is
 * gone (then the worker died with it: SIGKILL). */
GSource *arip_zygote_exit_source_new   (GPid                pid);
/* The worker's wait status if the server reported its end, waiting up to
 * @timeout_ms for the report; FALSE if it has not come. */
gboolean arip_zygote_peek_status       (GPid                pid,
                                        gint                timeout_ms,
                                        gint               *wait_status);
/* Stops following @pid (its end was heard). */
void     arip_zygote_forget            (GPid                pid);

/* Zygote side: what arip_init() does in a fork server. Never returns. */
G_GNUC_NORETURN
void     arip_zygote_main              (const char         *env_value);

G_END_DECLS
