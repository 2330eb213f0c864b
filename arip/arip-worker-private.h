/* arip-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The argv a worker is started with by default: the program's own, as the
 * kernel started it (argv[0] first). Transfer none. */
const char * const *arip_worker_get_default_argv (void);

/* The file to execute to start the program again: the path the program
 * was started from, or "/proc/self/exe". Transfer none. */
const char         *arip_worker_get_own_executable (void);

/* In a process that was started as a worker but whose arip_init() never
 * ran: says why on stderr and on the crash pipe, and exits. Otherwise
 * returns at once. */
void                arip_worker_refuse_to_spawn_if_uninitialized (void);

/* FALSE with @error when this process runs an interpreter whose arip
 * override was not loaded: no call may run. */
gboolean            arip_worker_check_binding (GError **error);

/* How a forked child becomes a worker: @fds[i] becomes @targets[i] (0, 1
 * and 2 among them), and nothing else stays open unless @inherit_fds; it
 * gets exactly @envp (ARIP_WORKER included) and starts in @cwd. */
typedef struct {
  const gint   *fds;
  const gint   *targets;
  guint         n_fds;
  gboolean      inherit_fds;
  char        **envp;
  const char   *cwd;          /* nullable */
  GPid          parent;       /* the process that forked it */
  gboolean      from_parent;  /* a fork of the parent itself */
} AripBecomeWorker;

/* In a forked child: becomes a worker and serves. Never returns. */
G_GNUC_NORETURN
void                arip_worker_become       (const AripBecomeWorker *how);
/* What arip_set_language_binding() named, or NULL. */
const char         *arip_worker_get_language_binding (void);
/* Loads what a crash's backtrace needs, now (in the fork server). */
void                arip_worker_prepare_unwinder (void);
/* Does once, in the fork server, what every worker would otherwise do
 * first: the types a call uses, the unwinder. (Not the main context: its
 * wake-up descriptor would be shared by every worker.) */
void                arip_worker_warm_up      (void);
/* Starts the thread that turns interrupts into the call's cancellable
 * being cancelled, if it is not running yet. */
void                arip_worker_start_watch  (void);
/* The preload hook, once (in the fork server). */
void                arip_worker_run_preload  (void);

G_END_DECLS
