/* arip-types.h: the types shared by the whole API
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/**
 * AripState:
 * @ARIP_STATE_INITIALIZING: created; waiting for a limiter slot, or being spawned
 * @ARIP_STATE_INITIALIZED: the child is alive and its pid is known
 * @ARIP_STATE_WAIT_EXEC_DATA: the child said hello and waits for the call
 * @ARIP_STATE_BOOTING: the child received the call and looks the function up
 * @ARIP_STATE_STARTED: the child's main loop for the call is ready
 * @ARIP_STATE_EXECUTING: the function is running
 * @ARIP_STATE_FINISHED: the result or the error is known and the child is gone
 *
 * The lifecycle of an [class@Arip.Process], in order. A process only ever
 * moves forward, one step at a time, except that it may jump to
 * %ARIP_STATE_FINISHED from any state (a crash, a kill, a failed spawn).
 */
typedef enum {
  ARIP_STATE_INITIALIZING,
  ARIP_STATE_INITIALIZED,
  ARIP_STATE_WAIT_EXEC_DATA,
  ARIP_STATE_BOOTING,
  ARIP_STATE_STARTED,
  ARIP_STATE_EXECUTING,
  ARIP_STATE_FINISHED,
} AripState;

/**
 * AripStartMethod:
 * @ARIP_START_METHOD_SPAWN: start each worker by executing a program
 *   (by default the running program itself), without copying the parent.
 *   Every worker pays a whole program start; works everywhere.
 * @ARIP_START_METHOD_FORKSERVER: fork each worker from a fork server: the
 *   program started once more, which runs main() up to arip_init() and the
 *   preload hook, then only forks (a fork of a small single-threaded
 *   process, not of the parent). The default. Workers that need what only
 *   a spawn gives (another worker argv, %G_SUBPROCESS_FLAGS_INHERIT_FDS),
 *   workers of a program whose server would run threads (GJS), and those
 *   started while the server itself starts are spawned.
 * @ARIP_START_METHOD_FORK: fork the calling process itself, without exec.
 *   Only possible while it runs a single thread (GLib starts one with the
 *   first #GTask): otherwise starting fails with %ARIP_ERROR_NOT_SUPPORTED.
 *   The worker is a copy of the parent: it runs its functions in a main
 *   context of its own, not the default one.
 *
 * How an [class@Arip.Launcher] starts a worker process. The default comes
 * from the environment variable `ARIP_START_METHOD` (`spawn`, `forkserver`
 * or `fork`), else %ARIP_START_METHOD_FORKSERVER. See the start methods
 * guide for the trade-offs.
 */
typedef enum {
  ARIP_START_METHOD_SPAWN,
  ARIP_START_METHOD_FORKSERVER,
  ARIP_START_METHOD_FORK,
} AripStartMethod;

G_END_DECLS
