/* test-start-methods.c: the fork server and the other start methods
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every other suite runs under each start method (meson test --setup
 * spawn|forkserver). This one checks what only the fork server has: its
 * workers are its children, it is restarted after it dies, a dying server
 * takes its workers along and fails their calls, it refuses to fork when
 * it runs threads, the preload hook runs once in it, and nothing leaks
 * over a thousand calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>
#include <glib/gstdio.h>

#include "arip-test-util.h"

#define HELPER_ENV "ARIP_TEST_START_METHODS_HELPER"
#define MARK_ENV   "ARIP_TEST_START_METHODS_MARK"

/* Set by the preload hook: in the fork server, or in a spawned worker. */
static GPid preloaded_in;
static guint preload_runs;

static void
preload (gpointer user_data)
{
  preloaded_in = getpid ();
  preload_runs++;
}

/* Another preload: starts a thread, which a fork server must not have. */
static gpointer
sleeper (gpointer data)
{
  for (;;)
    g_usleep (G_USEC_PER_SEC);
  return NULL;
}

static void
preload_starting_a_thread (gpointer user_data)
{
  g_thread_unref (g_thread_new ("preloaded", sleeper, NULL));
}

/* ---------------------------------------------------------------------- */
/* Functions                                                              */

static void
fn_whoami (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autofree char *cwd = g_get_current_dir ();
  const char *mark = g_getenv (MARK_ENV);

  arip_call_return_value (call, g_variant_new ("(iiiuss)", (gint32) getpid (), (gint32) getppid (),
                                               (gint32) preloaded_in, preload_runs, cwd,
                                               mark != NULL ? mark : ""));
}

/* The mark's bytes, which need not be UTF-8. */
static void
fn_mark_bytes (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *mark = g_getenv (MARK_ENV);

  arip_call_return_value (call, g_variant_new ("(^ayi)", mark != NULL ? mark : "",
                                               (gint32) getppid ()));
}

static void
fn_write_fd (AripCall *call, GVariant *args, gpointer user_data)
{
  gint32 fd;
  const char *text;
  gboolean ok;

  g_variant_get (args, "(i&s)", &fd, &text);
  ok = write (fd, text, strlen (text)) == (gssize) strlen (text);
  arip_call_return_value (call, g_variant_new ("(b)", ok));
}

static void
fn_crash (AripCall *call, GVariant *args, gpointer user_data)
{
  raise (SIGSEGV);
}

static void
fn_exit (AripCall *call, GVariant *args, gpointer user_data)
{
  gint32 status;

  g_variant_get (args, "(i)", &status);
  arip_test_exit_now (status);
}

static void
fn_hang (AripCall *call, GVariant *args, gpointer user_data)
{
  for (;;)
    g_usleep (G_USEC_PER_SEC);
}

static void
fn_until_interrupted (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (!g_cancellable_is_cancelled (cancellable) && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  arip_call_return_value (call, g_variant_new ("(b)", g_cancellable_is_cancelled (cancellable)));
}

/* (s): waits for that file to exist, then says whether its call was
 * interrupted: it asks for its cancellable only then. */
static void
fn_looks_late (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *gate;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  g_variant_get (args, "(&s)", &gate);
  while (!g_file_test (gate, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  arip_call_return_value (call, g_variant_new ("(b)",
                                               g_cancellable_is_cancelled (arip_call_get_cancellable (call))));
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static AripLauncher *
forkserver_launcher (void)
{
  AripLauncher *launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);

  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_FORKSERVER);
  return launcher;
}

typedef struct {
  GPid     pid, ppid, preloaded_in;
  guint    preload_runs;
  char    *cwd;
  char    *mark;
  AripStartMethod method;
} Whoami;

static void
whoami_clear (Whoami *w)
{
  g_free (w->cwd);
  g_free (w->mark);
}

/* Runs "whoami" on @launcher until a worker forked by the fork server
 * answers (the first calls may be spawned while it starts). */
static void
run_forked_whoami (AripLauncher *launcher,
                   Whoami       *w)
{
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr(AripProcess) p = arip_process_new (launcher, "whoami", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run_process (p, &error);
      gint32 pid, ppid, preloaded;

      g_assert_no_error (error);
      g_variant_get (result, "(iiiuss)", &pid, &ppid, &preloaded, &w->preload_runs, &w->cwd, &w->mark);
      w->pid = pid;
      w->ppid = ppid;
      w->preloaded_in = preloaded;
      w->method = arip_process_get_start_method (p);
      g_assert_cmpint (w->pid, ==, arip_process_get_pid (p));
      if (w->method == ARIP_START_METHOD_FORKSERVER)
        return;
      /* Spawned meanwhile: our child. */
      g_assert_cmpint (w->method, ==, ARIP_START_METHOD_SPAWN);
      g_assert_cmpint (w->ppid, ==, getpid ());
      whoami_clear (w);
      if (g_get_monotonic_time () > deadline)
        g_error ("no worker was forked by the fork server within %d s", ARIP_TEST_TIMEOUT_SECONDS);
      g_usleep (10 * 1000);
    }
}

/* Starts @function on a worker forked by the fork server and returns the
 * process once it executes. */
static AripProcess *
start_forked (const char *function,
              GVariant   *args)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  g_autoptr(GVariant) owned = args != NULL ? g_variant_ref_sink (args) : NULL;
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  for (;;)
    {
      AripProcess *p = arip_process_new (launcher, function, owned);
      g_autoptr(GError) error = NULL;

      g_assert_true (arip_test_start (p, &error));
      g_assert_no_error (error);
      if (arip_process_get_start_method (p) == ARIP_START_METHOD_FORKSERVER)
        return p;
      arip_process_kill (p);
      g_clear_pointer (&error, g_error_free);
      g_assert_null (arip_test_wait (p, &error));
      g_object_unref (p);
      if (g_get_monotonic_time () > deadline)
        g_error ("no worker was forked by the fork server within %d s", ARIP_TEST_TIMEOUT_SECONDS);
      g_usleep (10 * 1000);
    }
}

/* Runs this program again as a helper in @mode, in a process group of
 * its own under a process limit; returns its stdout and stderr. */
static void
run_helper (const char  *mode,
            char       **out,
            char       **err)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) helper = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", &error);
  g_autofree char *timeout = g_strdup_printf ("%d", ARIP_TEST_TIMEOUT_SECONDS);

  g_assert_no_error (error);
  g_subprocess_launcher_setenv (launcher, HELPER_ENV, mode, TRUE);
  helper = g_subprocess_launcher_spawn (launcher, &error, "setsid", "--wait", "timeout", "-s", "KILL",
                                        timeout, "prlimit", "--nproc=2000", exe, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (helper, NULL, NULL, out, err, &error));
  g_assert_no_error (error);
  g_test_message ("helper %s: %s%s", mode, *out, *err);
  g_assert_true (g_subprocess_get_if_exited (helper));
  g_assert_cmpint (g_subprocess_get_exit_status (helper), ==, 0);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

/* A forked worker is the fork server's child, and gets what the launcher
 * says: environment, directory, descriptors, pipes. */
static void
test_forked_worker (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autofree char *dir = g_dir_make_tmp ("arip-start-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "written", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  Whoami w = { 0 };
  GPid server;
  gint fd;
  gboolean ok;

  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_FORKSERVER);
  arip_launcher_setenv (launcher, MARK_ENV, "from the launcher", TRUE);
  arip_launcher_set_cwd (launcher, dir);
  run_forked_whoami (launcher, &w);
  server = arip_test_fork_server_pid ();
  g_assert_cmpint (server, >, 0);
  g_assert_cmpint (w.ppid, ==, server);
  g_assert_cmpint (w.pid, !=, server);
  g_assert_cmpstr (w.mark, ==, "from the launcher");
  g_assert_cmpstr (w.cwd, ==, dir);
  /* The preload hook ran once, in the server, not in the worker. */
  g_assert_cmpint (w.preloaded_in, ==, server);
  g_assert_cmpuint (w.preload_runs, ==, 1);
  g_assert_cmpuint (preload_runs, ==, 0);
  g_assert_false (arip_test_pid_is_gone (server));
  whoami_clear (&w);

  /* A descriptor passed at a number of our choosing. */
  fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  g_assert_cmpint (fd, >=, 0);
  arip_launcher_take_fd (launcher, fd, 42);
  result = arip_test_launcher_run (launcher, "write_fd", g_variant_new ("(is)", 42, "through 42"),
                                   NULL, &error);
  g_assert_no_error (error);
  g_variant_get (result, "(b)", &ok);
  g_assert_true (ok);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "through 42");

  g_unlink (path);
  g_rmdir (dir);
}

/* The environment and the directory are bytes: what is not UTF-8 arrives
 * as it is. */
static void
test_not_utf8 (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  const char *mark = "caf\xe9 \xff";
  Whoami w = { 0 };
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  run_forked_whoami (launcher, &w);
  whoami_clear (&w);
  arip_launcher_setenv (launcher, MARK_ENV, mark, TRUE);
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_launcher_run (launcher, "mark_bytes", NULL, NULL, &error);
      const char *got;
      gint32 ppid;

      g_assert_no_error (error);
      g_variant_get (result, "(^&ayi)", &got, &ppid);
      g_assert_cmpstr (got, ==, mark);
      if (ppid == arip_test_fork_server_pid ())
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

/* Without a directory, a worker starts where the parent is now, not where
 * it was when the server started. */
static void
test_current_directory (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  g_autofree char *dir = g_dir_make_tmp ("arip-start-XXXXXX", NULL);
  g_autofree char *before = g_get_current_dir ();
  Whoami w = { 0 };

  g_assert_cmpint (chdir (dir), ==, 0);
  run_forked_whoami (launcher, &w);
  g_assert_cmpint (chdir (before), ==, 0);
  g_assert_cmpstr (w.cwd, ==, dir);
  whoami_clear (&w);
  g_rmdir (dir);
}

/* The server killed between calls: the next call works, and a new server
 * forks again. */
static void
test_server_killed_between_calls (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  Whoami w = { 0 };
  GPid server;

  run_forked_whoami (launcher, &w);
  whoami_clear (&w);
  server = arip_test_fork_server_pid ();
  g_assert_cmpint (server, >, 0);
  g_assert_cmpint (kill (server, SIGKILL), ==, 0);
  arip_test_wait_until (arip_test_pid_is_dead (server));

  result = arip_test_launcher_run (launcher, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);

  run_forked_whoami (launcher, &w);
  g_assert_cmpint (w.ppid, !=, server);
  g_assert_cmpint (w.ppid, ==, arip_test_fork_server_pid ());
  whoami_clear (&w);
}

/* The server dies during a call: its worker dies with it, and the call
 * fails as a killed worker's does, at once. */
static void
test_server_killed_during_call (void)
{
  g_autoptr(AripProcess) p = start_forked ("hang", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GPid server = arip_test_fork_server_pid ();
  GPid worker = arip_process_get_pid (p);

  g_assert_cmpint (arip_test_read_ppid (worker), ==, server);
  g_assert_cmpint (kill (server, SIGKILL), ==, 0);
  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGKILL);
  arip_test_wait_until (arip_test_pid_is_dead (worker));
}

/* A forked worker's crash: the signal, its last words, a backtrace. */
static void
test_worker_crash (void)
{
  g_autoptr(AripProcess) p = start_forked ("hang", NULL);
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  /* The server is up (start_forked): crash until a forked worker did. */
  arip_process_kill (p);
  g_assert_null (arip_test_wait (p, &error));
  g_clear_error (&error);
  for (;;)
    {
      g_autoptr(AripProcess) c = arip_process_new (launcher, "crash", NULL);
      g_autoptr(GError) crash_error = NULL;

      g_assert_null (arip_test_run_process (c, &crash_error));
      g_assert_error (crash_error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
      g_assert_cmpint (arip_process_get_term_sig (c), ==, SIGSEGV);
      g_assert_nonnull (strstr (crash_error->message, "fatal signal SIGSEGV"));
      if (arip_process_get_start_method (c) == ARIP_START_METHOD_FORKSERVER)
        {
          g_test_message ("%s", crash_error->message);
          /* The server loaded the unwinder for its workers. */
          g_assert_nonnull (strstr (crash_error->message, "Backtrace:"));
          arip_test_wait_until (arip_test_pid_is_dead (arip_process_get_pid (c)));
          break;
        }
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  /* The server lives on. */
  g_assert_cmpint (arip_test_fork_server_pid (), >, 0);
}

/* Killed, interrupted, exiting with a status: as a spawned worker. */
static void
test_worker_killed (void)
{
  g_autoptr(AripProcess) p = start_forked ("hang", NULL);
  g_autoptr(GError) error = NULL;
  GPid worker = arip_process_get_pid (p);

  arip_process_kill (p);
  g_assert_null (arip_test_wait (p, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGKILL);
  arip_test_wait_until (arip_test_pid_is_dead (worker));
}

static void
test_worker_interrupted (void)
{
  g_autoptr(AripProcess) p = start_forked ("until_interrupted", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  arip_process_interrupt (p);
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(b)", TRUE));
  g_assert_true (arip_process_get_if_exited (p));
}

static void
test_interrupted_before_it_looks (void)
{
  g_autofree char *dir = g_dir_make_tmp ("arip-start-methods-XXXXXX", NULL);
  g_autofree char *gate = g_build_filename (dir, "gate", NULL);
  g_autoptr(AripProcess) p = start_forked ("looks_late", g_variant_new ("(s)", gate));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* A forked worker starts the thread that cancels on an interrupt only
   * when its function asks for the cancellable: what came before counts. */
  arip_test_wait_until (arip_process_get_state (p) == ARIP_STATE_EXECUTING);
  arip_process_interrupt (p);
  arip_test_iterate_for (100);
  g_assert_true (g_file_set_contents (gate, "", 0, NULL));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(b)", TRUE));
  g_unlink (gate);
  g_rmdir (dir);
}

/* The fork server makes no main context: its wake-up descriptor would be
 * shared by every worker, which would steal each other's wake-ups. */
static void
test_server_has_no_main_context (void)
{
  g_autoptr(AripProcess) p = start_forked ("hang", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GPid server = arip_test_fork_server_pid ();
  g_autofree char *fd_dir = g_strdup_printf ("/proc/%d/fd", (int) server);
  g_autoptr(GDir) dir = NULL;
  const char *name;
  guint n_fds = 0;

  g_assert_cmpint (server, >, 0);
  dir = g_dir_open (fd_dir, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fd_dir, name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      n_fds++;
      g_assert_cmpstr (target, !=, "anon_inode:[eventfd]");
    }
  g_assert_cmpuint (n_fds, >, 0);

  arip_process_kill (p);
  result = arip_test_wait (p, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
}

/* The fork server's spare (a worker forked ahead of its call), or 0. */
static GPid
spare_pid (GPid server)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *stat_path = g_build_filename ("/proc", name, "stat", NULL);
      g_autofree char *stat = NULL;
      const char *paren;
      char state;
      int ppid;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (stat_path, &stat, NULL, NULL) ||
          (paren = strrchr (stat, ')')) == NULL || sscanf (paren + 1, " %c %d", &state, &ppid) != 2 ||
          ppid != (int) server || state == 'Z')
        continue;
      if (strstr (stat, "(arip-spare)") != NULL)
        return (GPid) atoi (name);
    }
  return 0;
}

static void
test_spare_killed (void)
{
  g_autoptr(AripProcess) first = start_forked ("hang", NULL);
  g_autoptr(GError) first_error = NULL;
  GPid server, spare, next_spare = 0;

  arip_process_kill (first);
  g_assert_null (arip_test_wait (first, &first_error));
  server = arip_test_fork_server_pid ();
  g_assert_cmpint (server, >, 0);
  arip_test_wait_until ((spare = spare_pid (server)) > 0);

  /* Killed as it waits: the next call is forked all the same, and a new
   * spare takes its place. */
  g_assert_cmpint (kill (spare, SIGKILL), ==, 0);
  arip_test_wait_until (arip_test_pid_is_dead (spare));
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(AripLauncher) launcher = forkserver_launcher ();
      g_autoptr(AripProcess) p = arip_process_new (launcher, "whoami", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run_process (p, &error);

      g_assert_no_error (error);
      g_assert_nonnull (result);
      g_assert_cmpint (arip_process_get_start_method (p), ==, ARIP_START_METHOD_FORKSERVER);
      g_assert_true (arip_process_get_if_exited (p));
      g_assert_cmpint (arip_process_get_exit_status (p), ==, 0);
    }
  arip_test_wait_until ((next_spare = spare_pid (server)) > 0);
  g_assert_cmpint (next_spare, !=, spare);
  g_assert_cmpint (arip_test_fork_server_pid (), ==, server);
}

static void
test_worker_cancelled_by_escalation (void)
{
  g_autoptr(AripProcess) p = start_forked ("hang", NULL);
  g_autoptr(GError) error = NULL;
  GPid worker = arip_process_get_pid (p);

  /* It ignores the interrupt: the stop escalates to SIGTERM. */
  g_assert_true (arip_test_stop (p, &error));
  g_assert_no_error (error);
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGTERM);
  arip_test_wait_until (arip_test_pid_is_dead (worker));
}

static void
test_worker_exit_status (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr(AripProcess) p = arip_process_new (launcher, "exit", g_variant_new ("(i)", 7));
      g_autoptr(GError) error = NULL;

      g_assert_null (arip_test_run_process (p, &error));
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      g_assert_true (arip_process_get_if_exited (p));
      g_assert_cmpint (arip_process_get_exit_status (p), ==, 7);
      if (arip_process_get_start_method (p) == ARIP_START_METHOD_FORKSERVER)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

/* A pool's workers come from the server too. */
static void
test_pool_workers (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  g_autoptr(AripPool) pool = NULL;
  Whoami w = { 0 };
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  run_forked_whoami (launcher, &w);
  whoami_clear (&w);
  pool = arip_pool_new (launcher, 2);
  arip_pool_set_max_calls_per_worker (pool, 1);
  for (;;)
    {
      g_autoptr(GAsyncResult) done = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;
      gint32 pid, ppid, preloaded;
      guint32 runs;
      const char *cwd, *mark;

      arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &done);
      arip_test_wait_until (done != NULL);
      result = arip_pool_run_finish (pool, done, &error);
      g_assert_no_error (error);
      g_variant_get (result, "(iiiu&s&s)", &pid, &ppid, &preloaded, &runs, &cwd, &mark);
      if (ppid == arip_test_fork_server_pid ())
        {
          g_assert_cmpint (preloaded, ==, ppid);
          break;
        }
      g_assert_cmpint (ppid, ==, getpid ());
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
}

/* What only a spawn can do is spawned: another worker program, inherited
 * descriptors. */
static void
test_spawn_when_needed (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_INHERIT_FDS);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_FORKSERVER);
  p = arip_process_new (launcher, "whoami", NULL);
  result = arip_test_run_process (p, &error);
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_start_method (p), ==, ARIP_START_METHOD_SPAWN);
}

/* A spawned worker runs the preload hook itself. */
static void
test_spawned_preload (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  gint32 pid, ppid, preloaded;
  guint32 runs;
  const char *cwd, *mark;

  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_SPAWN);
  result = arip_test_launcher_run (launcher, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (result, "(iiiu&s&s)", &pid, &ppid, &preloaded, &runs, &cwd, &mark);
  g_assert_cmpint (ppid, ==, getpid ());
  g_assert_cmpint (preloaded, ==, pid);
  g_assert_cmpuint (runs, ==, 1);
}

/* A thousand one-shot calls: no descriptor, process or fork server more. */
static void
test_thousand_calls (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  g_autoptr(GString) left = g_string_new (NULL);
  Whoami w = { 0 };
  guint before, forked = 0;
  GPid server;

  run_forked_whoami (launcher, &w);
  whoami_clear (&w);
  server = arip_test_fork_server_pid ();
  arip_test_wait_until (arip_test_count_workers (NULL) == 0);
  before = arip_test_count_fds ();

  for (guint i = 0; i < 1000; i++)
    {
      g_autoptr(AripProcess) p = arip_process_new (launcher, "exit", g_variant_new ("(i)", 0));
      g_autoptr(GError) error = NULL;

      g_assert_null (arip_test_run_process (p, &error));
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      if (arip_process_get_start_method (p) == ARIP_START_METHOD_FORKSERVER)
        forked++;
    }

  arip_test_wait_until (arip_test_count_workers (NULL) == 0);
  arip_test_iterate_for (50);
  arip_test_count_workers (left);
  g_test_message ("%u of 1000 forked; descriptors %u -> %u", forked, before, arip_test_count_fds ());
  g_assert_cmpuint (forked, ==, 1000);
  g_assert_cmpint (arip_test_fork_server_pid (), ==, server);
  g_assert_cmpuint (arip_test_count_fds (), ==, before);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);
}

/* A fork server whose preload hook started a thread never forks: the
 * workers are spawned, the calls work, and a message says why. */
static void
test_threaded_server_refused (void)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  run_helper ("preload-thread", &out, &err);
  g_assert_nonnull (strstr (out, "calls: 20 ok, 0 forked\n"));
  g_assert_nonnull (strstr (out, "fork server left: 0\n"));
  g_assert_nonnull (strstr (err, "spawning workers instead: The fork server cannot fork"));
  g_assert_nonnull (strstr (err, "2 threads"));
}

/* The helper: a program whose fork server would run a thread. */
static int
helper_preload_thread (void)
{
  g_autoptr(AripLauncher) launcher = forkserver_launcher ();
  guint ok = 0, forked = 0;

  /* Enough calls, over long enough, that the server has said hello. */
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(AripProcess) p = arip_process_new (launcher, "whoami", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run_process (p, &error);

      if (result != NULL)
        ok++;
      if (arip_process_get_start_method (p) == ARIP_START_METHOD_FORKSERVER)
        forked++;
      g_usleep (50 * 1000);
    }
  printf ("calls: %u ok, %u forked\n", ok, forked);
  printf ("fork server left: %d\n", arip_test_fork_server_pid () > 0);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *helper = g_getenv (HELPER_ENV);

  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("whoami", fn_whoami, NULL, NULL);
  arip_register_function ("write_fd", fn_write_fd, NULL, NULL);
  arip_register_function ("mark_bytes", fn_mark_bytes, NULL, NULL);
  arip_register_function ("crash", fn_crash, NULL, NULL);
  arip_register_function ("exit", fn_exit, NULL, NULL);
  arip_register_function ("hang", fn_hang, NULL, NULL);
  arip_register_function ("until_interrupted", fn_until_interrupted, NULL, NULL);
  arip_register_function ("looks_late", fn_looks_late, NULL, NULL);
  if (g_strcmp0 (helper, "preload-thread") == 0)
    arip_set_preload_func (preload_starting_a_thread, NULL);
  else
    arip_set_preload_func (preload, NULL);
  arip_init (&argc, &argv);

  if (g_strcmp0 (helper, "preload-thread") == 0)
    return helper_preload_thread ();

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/StartMethods/forked-worker", test_forked_worker);
  g_test_add_func ("/Arip/StartMethods/current-directory", test_current_directory);
  g_test_add_func ("/Arip/StartMethods/not-utf8", test_not_utf8);
  g_test_add_func ("/Arip/StartMethods/server-killed-between-calls", test_server_killed_between_calls);
  g_test_add_func ("/Arip/StartMethods/server-killed-during-call", test_server_killed_during_call);
  g_test_add_func ("/Arip/StartMethods/worker-crash", test_worker_crash);
  g_test_add_func ("/Arip/StartMethods/worker-killed", test_worker_killed);
  g_test_add_func ("/Arip/StartMethods/worker-interrupted", test_worker_interrupted);
  g_test_add_func ("/Arip/StartMethods/interrupted-before-it-looks", test_interrupted_before_it_looks);
  g_test_add_func ("/Arip/StartMethods/server-has-no-main-context", test_server_has_no_main_context);
  g_test_add_func ("/Arip/StartMethods/spare-killed", test_spare_killed);
  g_test_add_func ("/Arip/StartMethods/worker-stop-escalates", test_worker_cancelled_by_escalation);
  g_test_add_func ("/Arip/StartMethods/worker-exit-status", test_worker_exit_status);
  g_test_add_func ("/Arip/StartMethods/pool-workers", test_pool_workers);
  g_test_add_func ("/Arip/StartMethods/spawn-when-needed", test_spawn_when_needed);
  g_test_add_func ("/Arip/StartMethods/spawned-preload", test_spawned_preload);
  g_test_add_func ("/Arip/StartMethods/thousand-calls", test_thousand_calls);
  g_test_add_func ("/Arip/StartMethods/threaded-server-refused", test_threaded_server_refused);

  return g_test_run ();
}
