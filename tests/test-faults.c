/* test-faults.c: faults injected from outside the protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the rest of the system can do to a call: the kernel (or a person)
 * SIGKILLs the worker at any point of its life; the parent itself is
 * SIGKILLed; the worker program cannot be executed; the parent runs out of
 * file descriptors while it spawns. And the hostile workers of
 * test-hostile, run again with accounting: every one ends in exactly one
 * callback, no descriptor left open, no large allocation.
 *
 * Every test asserts that the call ends once, with the error a user would
 * check, that the child is gone, and that nothing is left open.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <arip.h>

#include "arip-test-util.h"

#define HELPER_ENV "ARIP_TEST_FAULTS_HELPER"
#define FAKE_ENV   "ARIP_TEST_FAKE_WORKER"
#define PID_FILE_ENV "ARIP_TEST_FAULTS_PID_FILE"

/* How many faults the tests injected, for the figures of the run. */
static guint n_faults;

/* ---------------------------------------------------------------------- */
/* Functions the workers run                                              */

static void
fn_getpid (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) getpid ()));
}

/* Never answers; ignores interrupts. */
static void
fn_hang (AripCall *call, GVariant *args, gpointer user_data)
{
}

/* (s): writes its pid to the file, then never answers. */
static void
fn_pid_file_hang (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *path;
  g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());

  g_variant_get (args, "(&s)", &path);
  g_file_set_contents (path, pid, -1, NULL);
}

/* Answers, then lingers: the answer is in the parent before it is killed. */
static void
fn_answer_then_hang (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(s)", "answered"));
  for (;;)
    g_usleep (G_USEC_PER_SEC);
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

/* A field of /proc/self/status, in kB. */
static guint64
status_kb (const char *field)
{
  g_autofree char *contents = NULL;
  g_autofree char *key = g_strconcat ("\n", field, ":", NULL);
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &contents, NULL, NULL));
  line = strstr (contents, key);
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen (key), NULL, 10);
}

static void
assert_fds_back_to (guint before)
{
  guint after;

  /* Closing may finish from idle callbacks: let them run. */
  arip_test_iterate_for (50);
  after = arip_test_count_fds ();
  if (after != before)
    {
      g_autofree char *list = arip_test_list_fds ();

      g_test_message ("open descriptors now:\n%s", list);
    }
  g_assert_cmpuint (after, ==, before);
}

/* Runs a call or two so that what GLib opens once for good (the child
 * watch machinery, worker threads) is open before we count. */
static void
warm_up (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = arip_test_run ("echo", NULL, NULL, &error);

  g_assert_no_error (error);
  arip_test_iterate_for (50);
}

typedef struct {
  guint         n_calls;
  GAsyncResult *result;
} Once;

static void
once_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Once *once = user_data;

  once->n_calls++;
  g_assert_cmpuint (once->n_calls, ==, 1);
  once->result = g_object_ref (result);
}

static void
wait_file_pid (const char *path,
               GPid       *pid)
{
  g_autofree char *contents = NULL;

  arip_test_wait_until (g_file_get_contents (path, &contents, NULL, NULL) && contents[0] != '\0');
  *pid = atoi (contents);
  g_assert_cmpint (*pid, >, 0);
}

/* ---------------------------------------------------------------------- */
/* The worker is SIGKILLed from outside, in every state                   */

typedef struct {
  AripState target;
  gboolean  killed;
  AripState last_before_finished;
} KillAt;

static void
on_state_kill (AripProcess *p, AripState old_state, AripState new_state, gpointer user_data)
{
  KillAt *at = user_data;

  if (new_state != ARIP_STATE_FINISHED)
    at->last_before_finished = new_state;
  if (new_state == at->target && !at->killed)
    {
      /* As the OOM killer would: not through arip. */
      g_assert_cmpint (kill (arip_process_get_pid (p), SIGKILL), ==, 0);
      at->killed = TRUE;
      n_faults++;
    }
}

static void
test_sigkill_at_state (gconstpointer data)
{
  AripState target = GPOINTER_TO_UINT (data);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) start_error = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  Once started = { 0 }, waited = { 0 };
  KillAt at = { target, FALSE, ARIP_STATE_INITIALIZING };
  guint fds;

  warm_up ();
  fds = arip_test_count_fds ();

  p = arip_process_new (NULL, "hang", NULL);
  g_signal_connect (p, "state-changed", G_CALLBACK (on_state_kill), &at);
  arip_process_start_async (p, NULL, once_cb, &started);
  arip_process_wait_async (p, NULL, once_cb, &waited);
  arip_test_wait_until (started.result != NULL && waited.result != NULL);

  g_assert_true (at.killed);
  result = arip_process_wait_finish (p, waited.result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "SIGKILL"));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGKILL);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);

  /* The start fails with the same error unless the child had already
   * reported EXECUTING when it was killed (frames it wrote before it died
   * still count). */
  if (at.last_before_finished < ARIP_STATE_EXECUTING)
    {
      g_assert_false (arip_process_start_finish (p, started.result, &start_error));
      g_assert_error (start_error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
    }
  else
    {
      g_assert_true (arip_process_start_finish (p, started.result, &start_error));
      g_assert_no_error (start_error);
    }

  arip_test_assert_pid_gone (arip_process_get_pid (p));
  g_clear_object (&started.result);
  g_clear_object (&waited.result);
  assert_fds_back_to (fds);

  /* Nothing sticks: the next call works. */
  warm_up ();
}

static void
test_sigkill_after_answer (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  Once waited = { 0 };
  guint fds;

  warm_up ();
  fds = arip_test_count_fds ();

  p = arip_process_new (NULL, "answer-then-hang", NULL);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  arip_process_wait_async (p, NULL, once_cb, &waited);

  /* The answer is on its way or in; the child lingers (less than the
   * parent's grace period of at least a second). */
  arip_test_iterate_for (200);
  g_assert_null (waited.result);
  g_assert_cmpint (kill (arip_process_get_pid (p), SIGKILL), ==, 0);
  n_faults++;

  arip_test_wait_until (waited.result != NULL);
  result = arip_process_wait_finish (p, waited.result, &error);
  /* A result followed by a violent death is not a success. */
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGKILL);
  arip_test_assert_pid_gone (arip_process_get_pid (p));
  g_clear_object (&waited.result);
  assert_fds_back_to (fds);
}

static void
test_sigkill_run_in_process (void)
{
  g_autofree char *dir = g_dir_make_tmp ("arip-faults-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "pid", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  Once done = { 0 };
  GPid pid;

  warm_up ();
  arip_run_in_process_async ("pid-file-hang", g_variant_new ("(s)", path), NULL, once_cb, &done);
  wait_file_pid (path, &pid);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  n_faults++;

  arip_test_wait_until (done.result != NULL);
  result = arip_run_in_process_finish (done.result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  arip_test_assert_pid_gone (pid);
  g_clear_object (&done.result);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_sigkill_pool_busy (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autofree char *dir = g_dir_make_tmp ("arip-faults-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "pid", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  Once done = { 0 }, again = { 0 }, closed = { 0 };
  GPid pid;
  gint32 other;
  guint fds;

  warm_up ();
  fds = arip_test_count_fds ();

  arip_pool_run_async (pool, "pid-file-hang", g_variant_new ("(s)", path), NULL, once_cb, &done);
  wait_file_pid (path, &pid);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  n_faults++;

  arip_test_wait_until (done.result != NULL);
  result = arip_pool_run_finish (pool, done.result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "SIGKILL"));
  g_clear_error (&error);
  arip_test_assert_pid_gone (pid);

  /* The pool replaces the worker. */
  arip_pool_run_async (pool, "getpid", NULL, NULL, once_cb, &again);
  arip_test_wait_until (again.result != NULL);
  g_clear_pointer (&result, g_variant_unref);
  result = arip_pool_run_finish (pool, again.result, &error);
  g_assert_no_error (error);
  g_variant_get (result, "(i)", &other);
  g_assert_cmpint (other, !=, pid);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), <=, 2);

  arip_pool_close_async (pool, NULL, once_cb, &closed);
  arip_test_wait_until (closed.result != NULL);
  g_assert_true (arip_pool_close_finish (pool, closed.result, &error));
  g_assert_no_error (error);
  arip_test_wait_until (arip_test_pid_is_gone (other));

  g_clear_object (&done.result);
  g_clear_object (&again.result);
  g_clear_object (&closed.result);
  g_clear_object (&pool);
  assert_fds_back_to (fds);
  g_unlink (path);
  g_rmdir (dir);
}

/* ---------------------------------------------------------------------- */
/* The parent is SIGKILLed: no worker outlives it by more than a second   */

/* In the helper (a child of the test): start workers in every kind of
 * state, print their pids, and wait to be killed. */
static void
helper_print_pid (GPid pid)
{
  printf ("%d\n", (int) pid);
  fflush (stdout);
}

static guint helper_n_started;

static void
on_helper_state (AripProcess *p, AripState old_state, AripState new_state, gpointer user_data)
{
  if (new_state == ARIP_STATE_INITIALIZED)
    {
      helper_print_pid (arip_process_get_pid (p));
      helper_n_started++;
    }
}

G_GNUC_NORETURN static void
parent_helper (const char *mode)
{
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(AripPool) pool = NULL;
  g_autofree char *dir = g_dir_make_tmp ("arip-faults-XXXXXX", NULL);

  /* Die with the test, should it fail first. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  /* Under the fork server, its workers are its children: it must go too. */
  arip_test_wait_for_fork_server ();
  if (arip_test_fork_server_pid () > 0)
    {
      printf ("server %d\n", (int) arip_test_fork_server_pid ());
      fflush (stdout);
    }

  if (g_str_equal (mode, "running"))
    {
      /* Workers that run a function, one-shot and pooled, busy and idle. */
      g_autoptr(AripProcess) p = arip_process_new (NULL, "hang", NULL);
      g_autoptr(GError) error = NULL;
      g_autofree char *path = g_build_filename (dir, "pid", NULL);
      gint32 idle_pid;
      GPid busy_pid;

      if (!arip_test_start (p, &error))
        g_error ("helper: %s", error->message);
      helper_print_pid (arip_process_get_pid (p));
      g_ptr_array_add (processes, g_steal_pointer (&p));

      /* One pool worker busy with a call that never ends, one idle. */
      pool = arip_pool_new (NULL, 2);
      arip_pool_run_async (pool, "pid-file-hang", g_variant_new ("(s)", path), NULL, NULL, NULL);
      wait_file_pid (path, &busy_pid);
      helper_print_pid (busy_pid);
      {
        g_autoptr(GVariant) result = arip_pool_run_sync (pool, "getpid", NULL, NULL, &error);

        if (result == NULL)
          g_error ("helper: %s", error->message);
        g_variant_get (result, "(i)", &idle_pid);
      }
      if (idle_pid == busy_pid)
        g_error ("helper: the busy pool worker answered another call");
      helper_print_pid (idle_pid);
    }
  else if (g_str_equal (mode, "starting"))
    {
      /* Workers caught as early as can be: right after the spawn, before
       * they are even running arip_init(). */
      for (guint i = 0; i < 8; i++)
        {
          AripProcess *p = arip_process_new (NULL, "hang", NULL);

          g_signal_connect (p, "state-changed", G_CALLBACK (on_helper_state), NULL);
          arip_process_start_async (p, NULL, NULL, NULL);
          g_ptr_array_add (processes, p);
        }
      arip_test_wait_until (helper_n_started == 8);
    }
  else
    g_error ("unknown helper mode %s", mode);

  printf ("ready\n");
  fflush (stdout);

  /* Wait to be killed, serving the main context like a real program. */
  for (;;)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_parent_killed (gconstpointer data)
{
  const char *mode = data;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GSubprocess) helper = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GArray) workers = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GError) error = NULL;
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", &error);
  GPid helper_pid, server_pid = 0;
  guint n_forked = 0;
  gint64 killed_at, all_dead_at = 0;

  g_assert_no_error (error);
  g_subprocess_launcher_setenv (launcher, HELPER_ENV, mode, TRUE);
  helper = g_subprocess_launcher_spawn (launcher, &error, exe, NULL);
  g_assert_no_error (error);
  helper_pid = atoi (g_subprocess_get_identifier (helper));
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (helper));

  for (;;)
    {
      g_autoptr(GAsyncResult) line_result = NULL;
      g_autofree char *line = NULL;
      GPid pid;

      g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL,
                                           arip_test_store_result, &line_result);
      arip_test_wait_until (line_result != NULL);
      line = g_data_input_stream_read_line_finish (out, line_result, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (line);
      if (g_str_equal (line, "ready"))
        break;
      if (g_str_has_prefix (line, "server "))
        {
          server_pid = atoi (line + strlen ("server "));
          g_assert_cmpint (server_pid, >, 0);
          continue;
        }
      pid = atoi (line);
      g_assert_cmpint (pid, >, 0);
      g_array_append_val (workers, pid);
    }

  g_assert_cmpuint (workers->len, >=, 1);
  g_test_message ("helper %d has %u workers", (int) helper_pid, workers->len);
  for (guint i = 0; i < workers->len; i++)
    {
      GPid pid = g_array_index (workers, GPid, i);

      g_assert_false (arip_test_pid_is_dead (pid));
      if (server_pid > 0 && arip_test_read_ppid (pid) == server_pid)
        n_forked++;
      else
        g_assert_cmpint (arip_test_read_ppid (pid), ==, helper_pid);
    }
  if (server_pid > 0)
    {
      g_test_message ("%u of them forked by its fork server %d", n_forked, (int) server_pid);
      g_assert_cmpint (arip_test_read_ppid (server_pid), ==, helper_pid);
      g_array_append_val (workers, server_pid);
    }

  killed_at = g_get_monotonic_time ();
  g_subprocess_force_exit (helper);
  n_faults++;

  /* Every worker is dead within a second (under an init that does not
   * reap, a zombie: it runs nothing). Polled, not slept. */
  while (g_get_monotonic_time () - killed_at < G_USEC_PER_SEC)
    {
      guint alive = 0;

      for (guint i = 0; i < workers->len; i++)
        if (!arip_test_pid_is_dead (g_array_index (workers, GPid, i)))
          alive++;
      if (alive == 0)
        {
          all_dead_at = g_get_monotonic_time ();
          break;
        }
      g_usleep (2000);
    }

  if (all_dead_at == 0)
    {
      for (guint i = 0; i < workers->len; i++)
        {
          GPid pid = g_array_index (workers, GPid, i);

          if (!arip_test_pid_is_dead (pid))
            {
              g_test_message ("worker %d still alive 1 s after its parent was killed", (int) pid);
              kill (pid, SIGKILL);
            }
        }
      g_test_fail ();
    }
  else
    g_test_message ("all %u workers dead %.1f ms after the parent was killed",
                    workers->len, (all_dead_at - killed_at) / 1000.0);

  {
    g_autoptr(GAsyncResult) wait_result = NULL;

    g_subprocess_wait_async (helper, NULL, arip_test_store_result, &wait_result);
    arip_test_wait_until (wait_result != NULL);
    g_assert_true (g_subprocess_wait_finish (helper, wait_result, &error));
    g_assert_no_error (error);
    g_assert_true (g_subprocess_get_if_signaled (helper));
    g_assert_cmpint (g_subprocess_get_term_sig (helper), ==, SIGKILL);
  }
}

/* ---------------------------------------------------------------------- */
/* The worker cannot be executed                                          */

static void
test_exec_failure (void)
{
  g_autofree char *dir = g_dir_make_tmp ("arip-faults-XXXXXX", NULL);
  g_autofree char *not_executable = g_build_filename (dir, "not-executable", NULL);
  const char *missing = "/nonexistent/arip-worker";
  const char *cases[] = { missing, not_executable, dir };
  guint fds;

  g_assert_true (g_file_set_contents (not_executable, "#!/bin/sh\nexit 0\n", -1, NULL));
  g_assert_cmpint (g_chmod (not_executable, 0644), ==, 0);

  warm_up ();
  fds = arip_test_count_fds ();

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      const char *argv[] = { cases[i], NULL };

      arip_launcher_set_worker_argv (launcher, argv);

      /* One-shot: a clean SPAWN_FAILED that names the program. */
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) result = NULL;
        Once done = { 0 };

        arip_launcher_run_async (launcher, "echo", NULL, NULL, once_cb, &done);
        arip_test_wait_until (done.result != NULL);
        result = arip_launcher_run_finish (launcher, done.result, &error);
        g_assert_null (result);
        g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
        g_assert_nonnull (strstr (error->message, cases[i]));
        g_test_message ("%s: %s", cases[i], error->message);
        g_clear_object (&done.result);
        n_faults++;
      }

      /* A pool fails the call instead of trying forever. */
      {
        g_autoptr(AripPool) pool = arip_pool_new (launcher, 2);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) result = NULL;
        Once done = { 0 }, closed = { 0 };

        arip_pool_run_async (pool, "echo", NULL, NULL, once_cb, &done);
        arip_test_wait_until (done.result != NULL);
        result = arip_pool_run_finish (pool, done.result, &error);
        g_assert_null (result);
        g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
        g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
        arip_pool_close_async (pool, NULL, once_cb, &closed);
        arip_test_wait_until (closed.result != NULL);
        g_clear_object (&done.result);
        g_clear_object (&closed.result);
        n_faults++;
      }
    }

  assert_fds_back_to (fds);
  g_unlink (not_executable);
  g_rmdir (dir);
}

/* ---------------------------------------------------------------------- */
/* EMFILE while spawning                                                  */

/* What fill_fds() and count_free_fds() duplicate. */
static gint filler_source = -1;

/* Opens descriptors until the limit, then closes @n_free of them. */
static GArray *
fill_fds (guint n_free)
{
  GArray *fillers = g_array_new (FALSE, FALSE, sizeof (gint));

  for (;;)
    {
      gint fd = fcntl (filler_source, F_DUPFD_CLOEXEC, 0);

      if (fd < 0)
        {
          g_assert_cmpint (errno, ==, EMFILE);
          break;
        }
      g_array_append_val (fillers, fd);
    }
  for (guint i = 0; i < n_free && fillers->len > 0; i++)
    {
      close (g_array_index (fillers, gint, fillers->len - 1));
      g_array_set_size (fillers, fillers->len - 1);
    }
  return fillers;
}

static void
free_fillers (GArray *fillers)
{
  for (guint i = 0; i < fillers->len; i++)
    close (g_array_index (fillers, gint, i));
  g_array_unref (fillers);
}

/* How many descriptors can still be opened (none is left open). */
static guint
count_free_fds (void)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (gint));
  guint n;

  for (;;)
    {
      gint fd = fcntl (filler_source, F_DUPFD_CLOEXEC, 0);

      if (fd < 0)
        break;
      g_array_append_val (fds, fd);
    }
  n = fds->len;
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, gint, i));
  return n;
}

static void
test_emfile (void)
{
  struct rlimit saved, low;
  g_autoptr(AripPool) pool = NULL;
  guint fds, n_failed = 0, n_ok = 0;

  warm_up ();
  /* Warm the pool path up too (its first call opens nothing for good, but
   * the types and GLib's worker thread are set up). */
  pool = arip_pool_new (NULL, 1);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = arip_pool_run_sync (pool, "echo", NULL, NULL, &error);
    g_assert_no_error (error);
  }
  g_clear_object (&pool);
  arip_test_iterate_for (100);
  filler_source = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (filler_source, >=, 0);
  fds = arip_test_count_fds ();

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  low = saved;
  low.rlim_cur = MIN (saved.rlim_cur, (rlim_t) fds + 64);
  if (setrlimit (RLIMIT_NOFILE, &low) != 0)
    {
      close (filler_source);
      g_test_skip ("cannot lower RLIMIT_NOFILE");
      return;
    }

  /* With 0, 1, 2, … free descriptors, a call fails cleanly or succeeds;
   * it never crashes or hangs, and leaves exactly as many free. */
  for (guint n_free = 0; n_free <= 12; n_free++)
    {
      GArray *fillers = fill_fds (n_free);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;
      Once done = { 0 };

      g_assert_cmpuint (count_free_fds (), ==, n_free);
      arip_run_in_process_async ("echo", g_variant_new ("(u)", n_free), NULL, once_cb, &done);
      arip_test_wait_until (done.result != NULL);
      result = arip_run_in_process_finish (done.result, &error);
      g_clear_object (&done.result);
      n_faults++;

      if (result != NULL)
        {
          arip_test_assert_variant (result, g_variant_new ("(u)", n_free));
          n_ok++;
        }
      else
        {
          g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
          g_assert_nonnull (strstr (error->message, g_strerror (EMFILE)));
          n_failed++;
        }
      g_test_message ("%u free descriptors: %s", n_free,
                      result != NULL ? "ran" : error->message);

      /* Whatever happened, nothing stayed open. */
      arip_test_iterate_for (20);
      g_assert_cmpuint (count_free_fds (), ==, n_free);
      free_fillers (fillers);
    }
  g_assert_cmpuint (n_failed, >, 0);
  g_assert_cmpuint (n_ok, >, 0);

  /* A pool out of descriptors fails the call, and recovers once they are
   * free again. */
  {
    GArray *fillers;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = NULL;
    Once done = { 0 }, again = { 0 }, closed = { 0 };

    pool = arip_pool_new (NULL, 2);
    fillers = fill_fds (0);
    arip_pool_run_async (pool, "echo", g_variant_new ("(s)", "starved"), NULL, once_cb, &done);
    arip_test_wait_until (done.result != NULL);
    result = arip_pool_run_finish (pool, done.result, &error);
    g_assert_null (result);
    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
    g_clear_error (&error);
    arip_test_iterate_for (20);
    g_assert_cmpuint (count_free_fds (), ==, 0);
    free_fillers (fillers);
    n_faults++;

    arip_pool_run_async (pool, "echo", g_variant_new ("(s)", "fed"), NULL, once_cb, &again);
    arip_test_wait_until (again.result != NULL);
    result = arip_pool_run_finish (pool, again.result, &error);
    g_assert_no_error (error);
    arip_test_assert_variant (result, g_variant_new ("(s)", "fed"));

    arip_pool_close_async (pool, NULL, once_cb, &closed);
    arip_test_wait_until (closed.result != NULL);
    g_clear_object (&done.result);
    g_clear_object (&again.result);
    g_clear_object (&closed.result);
    g_clear_object (&pool);
  }

  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  close (filler_source);
  filler_source = -1;
  fds--;

  /* Once descriptors are free again, one-shot calls work again. */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run ("echo", g_variant_new ("(u)", i), NULL, &error);

      g_assert_no_error (error);
      arip_test_assert_variant (result, g_variant_new ("(u)", i));
    }
  assert_fds_back_to (fds);
}

/* ---------------------------------------------------------------------- */
/* Hostile workers, with accounting                                       */

typedef struct {
  const char *mode;
  gint        code;        /* expected ARIP_ERROR code, -1: a result */
  const char *program;     /* "test-hostile" or NULL: this program */
} HostileCase;

static const HostileCase hostile_cases[] = {
  /* The fake workers of test-hostile, for the cases the issue names. */
  { "truncated", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "truncated-header", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "huge-header", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "huge-header-first", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "over-max-size", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "wrong-type", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "wrong-type-result", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "state-backwards", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "two-results", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "result-and-error", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "result-then-segv", ARIP_ERROR_SIGNALED, "test-hostile" },
  { "garbage", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "too-many-fds", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  { "missing-fds", ARIP_ERROR_INVALID_DATA, "test-hostile" },
  /* Ours, below. No frame may carry descriptors to the parent: the kernel
   * discards them (none is ever installed here) and the child is killed. */
  { "fd-flood", ARIP_ERROR_INVALID_DATA, NULL },
  { "unannounced-fds", ARIP_ERROR_INVALID_DATA, NULL },
  { "close-and-linger", ARIP_ERROR_INVALID_DATA, NULL },
  /* It answered; lingering only gets it put down: the answer stands. */
  { "result-close-and-linger", -1, NULL },
  { "trickle", -1, NULL },
};

static int fake_fd = -1;

static void
fake_write (const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = write (fake_fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        _exit (100);
      p += n;
      len -= (gsize) n;
    }
}

/* A frame, as arip-frame-private.h describes it, with @n_fds descriptors
 * (copies of stdin) attached to its first byte. */
static void
fake_frame_fds (guint16 kind, GVariant *payload, guint16 announced, guint n_fds)
{
  g_autoptr(GVariant) value = g_variant_ref_sink (payload);
  struct { guint32 size; guint16 kind; guint16 n_fds; } header = {
    (guint32) g_variant_get_size (value), kind, announced
  };
  g_autofree guint8 *data = g_malloc (sizeof header + header.size);

  memcpy (data, &header, sizeof header);
  g_variant_store (value, data + sizeof header);

  if (n_fds > 0)
    {
      g_autofree gint *fds = g_new (gint, n_fds);
      g_autofree char *control = g_malloc0 (CMSG_SPACE (n_fds * sizeof (gint)));
      struct iovec iov = { data, 1 };
      struct msghdr msg = { 0 };
      struct cmsghdr *cmsg;

      for (guint i = 0; i < n_fds; i++)
        fds[i] = 0;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE (n_fds * sizeof (gint));
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (n_fds * sizeof (gint));
      memcpy (CMSG_DATA (cmsg), fds, n_fds * sizeof (gint));
      if (sendmsg (fake_fd, &msg, 0) != 1)
        _exit (107);
      fake_write (data + 1, sizeof header + header.size - 1);
    }
  else
    fake_write (data, sizeof header + header.size);
}

static void
fake_frame (guint16 kind, GVariant *payload)
{
  fake_frame_fds (kind, payload, 0, 0);
}

/* The frame kinds and states, as the protocol numbers them. */
enum { K_HELLO = 1, K_STATE, K_CALL, K_RESULT, K_ERROR, K_MESSAGE, K_PROGRESS };

static void
fake_read_call (void)
{
  struct { guint32 size; guint16 kind; guint16 n_fds; } header;
  guint8 *p = (guint8 *) &header;
  gsize got = 0;
  g_autofree guint8 *payload = NULL;

  while (got < sizeof header)
    {
      ssize_t n = read (fake_fd, p + got, sizeof header - got);
      if (n <= 0)
        _exit (101);
      got += n;
    }
  if (header.kind != K_CALL || header.size > 1024 * 1024)
    _exit (102);
  payload = g_malloc (header.size + 1);
  for (got = 0; got < header.size; )
    {
      ssize_t n = read (fake_fd, payload + got, header.size - got);
      if (n <= 0)
        _exit (101);
      got += n;
    }
}

static void
fake_start (void)
{
  /* The version arip speaks: what ARIP_WORKER begins with. */
  fake_frame (K_HELLO, g_variant_new ("(ui)", (guint32) atoi (g_getenv ("ARIP_WORKER")), (gint32) getpid ()));
  fake_read_call ();
  fake_frame (K_STATE, g_variant_new ("(u)", (guint32) ARIP_STATE_BOOTING));
  fake_frame (K_STATE, g_variant_new ("(u)", (guint32) ARIP_STATE_STARTED));
  fake_frame (K_STATE, g_variant_new ("(u)", (guint32) ARIP_STATE_EXECUTING));
}

static void
fake_result (void)
{
  fake_frame (K_RESULT, g_variant_new ("(v)", g_variant_new ("(s)", "fake")));
}

G_GNUC_NORETURN static void
fake_linger (void)
{
  for (int i = 0; i < 600; i++)
    g_usleep (100 * 1000);
  _exit (103);
}

G_GNUC_NORETURN static void
fake_worker (const char *mode)
{
  const char *env = g_getenv ("ARIP_WORKER");
  unsigned int version;
  int crash_fd, parent;

  if (env == NULL || sscanf (env, "%u:%d:%d:%d", &version, &fake_fd, &crash_fd, &parent) != 4)
    _exit (104);
  fcntl (fake_fd, F_SETFL, fcntl (fake_fd, F_GETFL) & ~O_NONBLOCK);
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  if (g_str_equal (mode, "fd-flood"))
    {
      /* Messages carrying the most descriptors a frame may: the parent has
       * no use for them and must never hold one. */
      fake_start ();
      for (guint i = 0; i < 32; i++)
        {
          GVariantBuilder handles;

          g_variant_builder_init (&handles, G_VARIANT_TYPE ("ah"));
          for (gint32 h = 0; h < 64; h++)
            g_variant_builder_add (&handles, "h", h);
          fake_frame_fds (K_MESSAGE, g_variant_new ("(v)", g_variant_builder_end (&handles)), 64, 64);
        }
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "unannounced-fds"))
    {
      /* Descriptors no frame announces, more than any frame may carry. */
      fake_start ();
      for (guint i = 0; i < 8; i++)
        fake_frame_fds (K_PROGRESS, g_variant_new ("(d)", i / 10.0), 0, 64);
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "close-and-linger"))
    {
      fake_start ();
      close (fake_fd);
      fake_linger ();
    }
  else if (g_str_equal (mode, "result-close-and-linger"))
    {
      fake_start ();
      fake_result ();
      close (fake_fd);
      fake_linger ();
    }
  else if (g_str_equal (mode, "trickle"))
    {
      /* A valid result, one byte per write. */
      g_autoptr(GVariant) payload =
        g_variant_ref_sink (g_variant_new ("(v)", g_variant_new_string ("slowly, but it comes")));
      struct { guint32 size; guint16 kind; guint16 n_fds; } header = {
        (guint32) g_variant_get_size (payload), K_RESULT, 0
      };
      g_autofree guint8 *data = g_malloc (sizeof header + header.size);

      memcpy (data, &header, sizeof header);
      g_variant_store (payload, data + sizeof header);
      fake_start ();
      for (gsize i = 0; i < sizeof header + header.size; i++)
        {
          fake_write (data + i, 1);
          g_usleep (500);
        }
      _exit (0);
    }

  _exit (106);
}

static void
test_hostile (gconstpointer data)
{
  const HostileCase *c = data;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *program = NULL;
  Once started = { 0 }, waited = { 0 };
  guint64 vm_peak_before, vm_peak_after;
  guint fds;

  if (c->program != NULL)
    {
      program = g_test_build_filename (G_TEST_BUILT, c->program, NULL);
      if (!g_file_test (program, G_FILE_TEST_IS_EXECUTABLE))
        {
          g_test_skip ("the fake workers of test-hostile are not built");
          return;
        }
      arip_launcher_set_worker_argv (launcher, (const char *[]) { program, NULL });
    }
  arip_test_use_fake_worker (launcher, FAKE_ENV, c->mode);
  arip_launcher_set_startup_timeout (launcher, 10000);
  /* A child that lingers after closing its channel is killed after the
   * grace period: the shortest one (1 s). */
  arip_launcher_set_stop_timeouts (launcher, 100, 100);

  warm_up ();
  fds = arip_test_count_fds ();
  vm_peak_before = status_kb ("VmPeak");

  p = arip_process_new (launcher, "echo", NULL);
  arip_process_start_async (p, NULL, once_cb, &started);
  arip_process_wait_async (p, NULL, once_cb, &waited);
  arip_test_wait_until (started.result != NULL && waited.result != NULL);
  n_faults++;

  result = arip_process_wait_finish (p, waited.result, &error);
  if (error != NULL)
    g_test_message ("%s: %s", c->mode, error->message);
  if (c->code < 0)
    {
      g_assert_no_error (error);
      g_assert_nonnull (result);
    }
  else
    {
      g_assert_null (result);
      g_assert_error (error, ARIP_ERROR, c->code);
    }
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  if (arip_process_get_pid (p) > 0)
    arip_test_assert_pid_gone (arip_process_get_pid (p));

  /* Each callback came once (once_cb asserts it), after which nothing of
   * the child stays open... */
  g_clear_object (&started.result);
  g_clear_object (&waited.result);
  g_clear_object (&p);
  assert_fds_back_to (fds);

  /* ...and whatever a header claimed, nothing large was allocated: not
   * even address space (a lying 4 GiB header would show here). */
  vm_peak_after = status_kb ("VmPeak");
  g_test_message ("%s: VmPeak %" G_GUINT64_FORMAT " kB -> %" G_GUINT64_FORMAT " kB",
                  c->mode, vm_peak_before, vm_peak_after);
  g_assert_cmpuint (vm_peak_after - vm_peak_before, <, 64 * 1024);
}

/* ---------------------------------------------------------------------- */

static void
print_figures (void)
{
  g_test_message ("figures: %u faults injected", n_faults);
  g_printerr ("# test-faults: %u faults injected\n", n_faults);
}

int
main (int argc, char **argv)
{
  const char *fake = g_getenv (FAKE_ENV);
  const char *helper_mode;
  int rc;

  if (fake != NULL && g_getenv ("ARIP_WORKER") != NULL)
    fake_worker (fake);

  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("getpid", fn_getpid, NULL, NULL);
  arip_register_function ("hang", fn_hang, NULL, NULL);
  arip_register_function ("pid-file-hang", fn_pid_file_hang, NULL, NULL);
  arip_register_function ("answer-then-hang", fn_answer_then_hang, NULL, NULL);
  arip_init (&argc, &argv);

  helper_mode = g_getenv (HELPER_ENV);
  if (helper_mode != NULL)
    {
      g_unsetenv (HELPER_ENV);
      parent_helper (helper_mode);
    }

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  {
    static const struct { AripState state; const char *name; } states[] = {
      { ARIP_STATE_INITIALIZED, "initialized" },
      { ARIP_STATE_WAIT_EXEC_DATA, "wait-exec-data" },
      { ARIP_STATE_BOOTING, "booting" },
      { ARIP_STATE_STARTED, "started" },
      { ARIP_STATE_EXECUTING, "executing" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (states); i++)
      {
        g_autofree char *path = g_strdup_printf ("/Arip/Faults/sigkill/%s", states[i].name);
        g_test_add_data_func (path, GUINT_TO_POINTER (states[i].state), test_sigkill_at_state);
      }
  }
  g_test_add_func ("/Arip/Faults/sigkill/after-answer", test_sigkill_after_answer);
  g_test_add_func ("/Arip/Faults/sigkill/run-in-process", test_sigkill_run_in_process);
  g_test_add_func ("/Arip/Faults/sigkill/pool-busy", test_sigkill_pool_busy);
  g_test_add_data_func ("/Arip/Faults/parent-killed/running", "running", test_parent_killed);
  g_test_add_data_func ("/Arip/Faults/parent-killed/starting", "starting", test_parent_killed);
  g_test_add_func ("/Arip/Faults/exec-failure", test_exec_failure);
  g_test_add_func ("/Arip/Faults/emfile", test_emfile);
  for (guint i = 0; i < G_N_ELEMENTS (hostile_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/Arip/Faults/hostile/%s", hostile_cases[i].mode);
      g_test_add_data_func (path, &hostile_cases[i], test_hostile);
    }

  rc = g_test_run ();
  print_figures ();
  return rc;
}
