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

/**
 * AripSandboxFlags:
 * @ARIP_SANDBOX_NONE: no sandbox
 * @ARIP_SANDBOX_NO_NEW_PRIVS: the worker and everything it starts can never
 *   gain privileges (set-user-ID programs, file capabilities):
 *   `PR_SET_NO_NEW_PRIVS`
 * @ARIP_SANDBOX_NO_NETWORK: the worker runs in a network namespace of its
 *   own with nothing in it (not even a working loopback): connecting to any
 *   address, 127.0.0.1 included, fails. Made through an unprivileged user
 *   namespace where the process has no privilege of its own
 * @ARIP_SANDBOX_RESTRICT_FILESYSTEM: the worker reaches only the paths given
 *   to arip_launcher_allow_path(), plus, read-only, what it needs to run:
 *   the system's programs, libraries and data (`/usr`, `/etc`, `/lib`…), the
 *   program's own directory and the paths its loader and interpreter are
 *   told about (`LD_LIBRARY_PATH`, `GI_TYPELIB_PATH`, `PYTHONPATH`,
 *   `GJS_PATH`); `/dev/null` and its kind read-write (Landlock)
 * @ARIP_SANDBOX_SECCOMP: the system calls a worker has no business making
 *   (ptrace, mount, keyctl, new user namespaces, perf_event_open, module
 *   loading, faking terminal input with TIOCSTI, and the like) end it with
 *   %SIGSYS, and the error names the call. Needs arip built with libseccomp
 * @ARIP_SANDBOX_CLEAR_ENV: the worker gets only the environment variables
 *   set on the launcher, and those its loader and interpreter need to start
 *   (`LD_LIBRARY_PATH`, `LD_PRELOAD`, `GI_TYPELIB_PATH`, `PYTHONPATH`,
 *   `PYTHONHOME`, `GJS_PATH`)
 *
 * The pieces of a worker's sandbox, set with arip_launcher_set_sandbox().
 * See the isolation guide for what each one protects from, and what it does
 * not.
 */
typedef enum /*< flags >*/ {
  ARIP_SANDBOX_NONE                = 0,
  ARIP_SANDBOX_NO_NEW_PRIVS        = 1 << 0,
  ARIP_SANDBOX_NO_NETWORK          = 1 << 1,
  ARIP_SANDBOX_RESTRICT_FILESYSTEM = 1 << 2,
  ARIP_SANDBOX_SECCOMP             = 1 << 3,
  ARIP_SANDBOX_CLEAR_ENV           = 1 << 4,
} AripSandboxFlags;

/**
 * AripSandboxPolicy:
 * @ARIP_SANDBOX_POLICY_BEST_EFFORT: apply what this kernel and this
 *   environment allow, and go on without the rest;
 *   arip_process_get_sandbox() says what was applied
 * @ARIP_SANDBOX_POLICY_REQUIRED: a worker that cannot have every piece does
 *   not run anything: starting it fails with %ARIP_ERROR_SANDBOX, whose
 *   message names each missing piece and why
 *
 * What to do when a piece of the sandbox cannot be applied.
 */
typedef enum {
  ARIP_SANDBOX_POLICY_BEST_EFFORT,
  ARIP_SANDBOX_POLICY_REQUIRED,
} AripSandboxPolicy;

G_END_DECLS
