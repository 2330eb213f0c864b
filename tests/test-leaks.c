/* test-leaks.c: nothing is left behind: descriptors, children, orphans
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>

#include "arip-test-util.h"

#define HELPER_ENV "ARIP_TEST_PARENT_HELPER"

static void
fn_hang (AripCall *call, GVariant *args, gpointer user_data)
{
}

static void
fn_print (AripCall *call, GVariant *args, gpointer user_data)
{
  printf ("some output\n");
  fflush (stdout);
  arip_call_return_value (call, NULL);
}

static void
fn_exit (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_test_exit_now (1);
}

/* ---------------------------------------------------------------------- */

static void
assert_fds_unchanged (guint before)
{
  guint after;

  /* Closing may be finished from idle callbacks: let them run. */
  arip_test_iterate_for (200);
  after = arip_test_count_fds ();
  if (after != before)
    {
      g_autofree char *list = arip_test_list_fds ();

      g_test_message ("open descriptors now:\n%s", list);
    }
  g_assert_cmpuint (after, ==, before);
}

static void
test_fds_runs (void)
{
  guint before;

  /* The first run may open what GLib keeps for good (the child watch's
   * wakeup, the worker thread's context): not a leak. */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run ("echo", NULL, NULL, &error);
      g_assert_no_error (error);
    }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = arip_run_in_process_sync ("echo", NULL, NULL, &error);
    g_assert_no_error (error);
  }
  arip_test_iterate_for (200);
  before = arip_test_count_fds ();

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      if (i % 10 == 9)
        result = arip_run_in_process_sync ("echo", g_variant_new ("(u)", i), NULL, &error);
      else
        result = arip_test_run ("echo", g_variant_new ("(u)", i), NULL, &error);
      g_assert_no_error (error);
      arip_test_assert_variant (result, g_variant_new ("(u)", i));
    }

  assert_fds_unchanged (before);
}

static void
test_fds_failures (void)
{
  guint before;

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = arip_test_run ("echo", NULL, NULL, &error);
    g_assert_no_error (error);
  }
  arip_test_iterate_for (200);
  before = arip_test_count_fds ();

  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run ("no such function", NULL, NULL, &error);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
    }
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_run ("exit", NULL, NULL, &error);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
    }
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(AripProcess) p = arip_process_new (NULL, "hang", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      g_assert_true (arip_test_start (p, &error));
      g_assert_no_error (error);
      arip_process_kill (p);
      result = arip_test_wait (p, &error);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
      arip_test_assert_pid_gone (arip_process_get_pid (p));
    }
  {
    g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
    const char *argv[] = { "/nonexistent/worker", NULL };

    arip_launcher_set_worker_argv (launcher, argv);
    for (guint i = 0; i < 10; i++)
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) result = arip_test_launcher_run (launcher, "echo", NULL, NULL, &error);
        g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
      }
  }

  assert_fds_unchanged (before);
}

static void
test_fds_pipes (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                        G_SUBPROCESS_FLAGS_STDIN_PIPE);
  guint before;

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = arip_test_launcher_run (launcher, "print", NULL, NULL, &error);
    g_assert_no_error (error);
  }
  arip_test_iterate_for (200);
  before = arip_test_count_fds ();

  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(AripProcess) p = arip_process_new (launcher, "print", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;
      char buf[64];
      gsize n = 0;

      g_assert_true (arip_test_start (p, &error));
      g_assert_no_error (error);
      result = arip_test_wait (p, &error);
      g_assert_no_error (error);
      g_assert_true (g_input_stream_read_all (arip_process_get_stdout_pipe (p), buf, sizeof buf,
                                              &n, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, "some output\n", strlen ("some output\n"));
    }
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_launcher_run (launcher, "print", NULL, NULL, &error);
      g_assert_no_error (error);
    }

  assert_fds_unchanged (before);
}

/* ---------------------------------------------------------------------- */
/* A parent that dies leaves no worker behind                              */

/* In the helper: start a worker that runs forever, print its pid, then
 * wait to be killed (mode "kill") or exit at once (mode "exit"). */
G_GNUC_NORETURN static void
parent_helper (const char *mode)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "hang", NULL);
  g_autoptr(GError) error = NULL;

  if (!arip_test_start (p, &error))
    {
      g_printerr ("helper: %s\n", error->message);
      exit (1);
    }
  printf ("%d\n", (int) arip_process_get_pid (p));
  fflush (stdout);

  if (g_str_equal (mode, "exit"))
    _exit (0);

  for (int i = 0; i < 600; i++)
    g_usleep (100 * 1000);
  exit (2);
}

static void
check_parent_death (gconstpointer data)
{
  const char *mode = data;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GSubprocess) helper = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GAsyncResult) line_result = NULL;
  g_autoptr(GAsyncResult) wait_result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", &error);
  g_autofree char *line = NULL;
  const char *helper_pid_str;
  GPid helper_pid;
  GPid worker;

  g_assert_no_error (error);
  g_subprocess_launcher_setenv (launcher, HELPER_ENV, mode, TRUE);
  helper = g_subprocess_launcher_spawn (launcher, &error, exe, NULL);
  g_assert_no_error (error);
  helper_pid_str = g_subprocess_get_identifier (helper);
  helper_pid = atoi (helper_pid_str);

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (helper));
  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, arip_test_store_result, &line_result);
  arip_test_wait_until (line_result != NULL);
  line = g_data_input_stream_read_line_finish (out, line_result, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  worker = atoi (line);
  g_assert_cmpint (worker, >, 0);
  g_test_message ("helper %d started worker %d", (int) helper_pid, (int) worker);

  if (g_str_equal (mode, "kill"))
    {
      /* The worker is alive and the helper's child. */
      g_assert_false (arip_test_pid_is_dead (worker));
      g_assert_cmpint (arip_test_read_ppid (worker), ==, helper_pid);
      g_subprocess_force_exit (helper);
    }

  g_subprocess_wait_async (helper, NULL, arip_test_store_result, &wait_result);
  arip_test_wait_until (wait_result != NULL);
  g_assert_true (g_subprocess_wait_finish (helper, wait_result, &error));
  g_assert_no_error (error);
  if (g_str_equal (mode, "kill"))
    {
      g_assert_true (g_subprocess_get_if_signaled (helper));
      g_assert_cmpint (g_subprocess_get_term_sig (helper), ==, SIGKILL);
    }
  else
    g_assert_true (g_subprocess_get_successful (helper));

  /* The worker follows its parent (it may stay a zombie under an init
   * that does not reap, which is not ours to fix). If it does not, kill it
   * before failing, so no orphan outlives the test holding its output. */
  {
    gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;
    gboolean dead;

    while (!(dead = arip_test_pid_is_dead (worker)) && g_get_monotonic_time () < deadline)
      arip_test_iterate_for (10);
    if (!dead)
      kill (worker, SIGKILL);
    g_assert_true (dead);
  }
}

int
main (int argc, char **argv)
{
  const char *helper_mode;

  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("hang", fn_hang, NULL, NULL);
  arip_register_function ("print", fn_print, NULL, NULL);
  arip_register_function ("exit", fn_exit, NULL, NULL);
  arip_init (&argc, &argv);

  helper_mode = g_getenv (HELPER_ENV);
  if (helper_mode != NULL)
    parent_helper (helper_mode);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  g_test_add_func ("/Arip/Leaks/fds/runs", test_fds_runs);
  g_test_add_func ("/Arip/Leaks/fds/failures", test_fds_failures);
  g_test_add_func ("/Arip/Leaks/fds/pipes", test_fds_pipes);
  g_test_add_data_func ("/Arip/Leaks/parent-killed", "kill", check_parent_death);
  g_test_add_data_func ("/Arip/Leaks/parent-exits", "exit", check_parent_death);

  return g_test_run ();
}
