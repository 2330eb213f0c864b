/* test-mistakes.c: what a new user gets wrong, and what arip must do then
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The programs under test are arip-test-helper, run in a session of their
 * own under a process limit: whatever they start, however many, shares
 * the session (workers get process groups of their own, not sessions), so
 * the test can find every one of them and kill what is left. A storm
 * never outlives the test.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <arip.h>

#include "arip-test-util.h"

static char *
helper_path (void)
{
  return g_test_build_filename (G_TEST_BUILT, "arip-test-helper", NULL);
}

static void
own_session (gpointer user_data)
{
  struct rlimit nproc = { 256, 256 };

  setsid ();
  /* Not enforced for root, but for everyone else. */
  setrlimit (RLIMIT_NPROC, &nproc);
}

/* The pids of the processes in session @sid. */
static GArray *
session_members (GPid sid)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *stat = NULL;
      const char *after;
      char state;
      int ppid, pgrp, session;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_build_filename ("/proc", name, "stat", NULL);
      if (!g_file_get_contents (path, &stat, NULL, NULL))
        continue;
      /* "pid (comm) state ppid pgrp session ...": comm may hold spaces. */
      after = strrchr (stat, ')');
      if (after == NULL || sscanf (after + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4)
        continue;
      if (session == sid && state != 'Z')
        {
          GPid pid = atoi (name);
          g_array_append_val (pids, pid);
        }
    }
  return pids;
}

/* Kills what is left of the session; returns how many there were. */
static guint
kill_session (GPid sid)
{
  guint most = 0;

  for (guint round = 0; round < 100; round++)
    {
      g_autoptr(GArray) pids = session_members (sid);

      if (pids->len == 0)
        break;
      most = MAX (most, pids->len);
      for (guint i = 0; i < pids->len; i++)
        kill (g_array_index (pids, GPid, i), SIGKILL);
      g_usleep (20 * 1000);
    }
  return most;
}

/* What is left of the session a second after its leader ended: a fork
 * server and its workers die with their parent, at once but not within
 * the same instant; then kills it all. */
static guint
left_in_session (GPid sid)
{
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr(GArray) pids = session_members (sid);

      if (pids->len == 0)
        return 0;
      g_usleep (5 * 1000);
    }
  return kill_session (sid);
}

typedef struct {
  GSubprocess *process;
  GPid         sid;
} Helper;

static gboolean
cancel_now (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static Helper
start_helper_with (const char *mode,
                   const char *locale)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autofree char *path = helper_path ();
  g_autoptr(GError) error = NULL;
  Helper helper;

  g_subprocess_launcher_set_child_setup (launcher, own_session, NULL, NULL);
  g_subprocess_launcher_unsetenv (launcher, "ARIP_WORKER");
  if (locale != NULL)
    {
      g_subprocess_launcher_unsetenv (launcher, "LC_ALL");
      g_subprocess_launcher_unsetenv (launcher, "LC_MESSAGES");
      g_subprocess_launcher_unsetenv (launcher, "LANGUAGE");
      g_subprocess_launcher_setenv (launcher, "LANG", locale, TRUE);
    }
  helper.process = g_subprocess_launcher_spawn (launcher, &error, path, mode, NULL);
  g_assert_no_error (error);
  /* setsid() made the helper its session's leader. */
  helper.sid = atoi (g_subprocess_get_identifier (helper.process));
  return helper;
}

static Helper
start_helper (const char *mode,
              gboolean    want_stdout_pipe)
{
  return start_helper_with (mode, NULL);
}

/* Waits for the helper (at most the test timeout) and returns its output. */
static char *
finish_helper (Helper *helper)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  char *out = NULL;
  guint guard;

  guard = g_timeout_add_seconds (ARIP_TEST_TIMEOUT_SECONDS, cancel_now, cancellable);
  g_subprocess_communicate_utf8 (helper->process, NULL, cancellable, &out, NULL, &error);
  if (error != NULL)
    {
      kill_session (helper->sid);
      g_error ("the helper did not end: %s", error->message);
    }
  g_source_remove (guard);
  g_subprocess_wait (helper->process, NULL, NULL);
  return out;
}

static void
test_no_init_storm (void)
{
  Helper helper = start_helper ("no-init", TRUE);
  g_autofree char *out = finish_helper (&helper);
  guint left;

  g_test_message ("the helper said: %s", out);
  /* The worker refused to start workers of its own, and said why; the
   * parent's error carries it. */
  g_assert_nonnull (strstr (out, "arip_init() was not called at the top of main()"));
  g_assert_nonnull (strstr (out, "exited with status 125"));
  g_assert_true (g_subprocess_get_if_exited (helper.process));
  g_assert_cmpint (g_subprocess_get_exit_status (helper.process), ==, 0);

  /* Nothing is left running: not one worker, let alone a storm. */
  left = left_in_session (helper.sid);
  g_assert_cmpuint (left, ==, 0);
  g_object_unref (helper.process);
}

static void
test_no_init_startup_timeout (void)
{
  Helper helper = start_helper ("no-init-sleep", TRUE);
  g_autofree char *out = finish_helper (&helper);
  guint left;

  g_test_message ("the helper said: %s", out);
  /* The worker went on with main() and never said hello: the startup
   * timeout names the likely cause. */
  g_assert_nonnull (strstr (out, "within 1000 ms"));
  g_assert_nonnull (strstr (out, "arip_init()"));
  left = left_in_session (helper.sid);
  g_assert_cmpuint (left, ==, 0);
  g_object_unref (helper.process);
}

static void
test_ctrl_c_reaches_the_parent_only (void)
{
  Helper helper = start_helper ("ctrl-c", TRUE);
  GInputStream *out = g_subprocess_get_stdout_pipe (helper.process);
  g_autoptr(GDataInputStream) lines = g_data_input_stream_new (out);
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL;
  g_autofree char *last = NULL;

  first = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (first, ==, "started");

  /* What a terminal's Ctrl-C does: SIGINT to the foreground process
   * group, the helper's own. */
  g_assert_cmpint (kill (-helper.sid, SIGINT), ==, 0);

  last = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("the helper said: %s", last);
  g_assert_cmpstr (last, ==, "not interrupted, parent got SIGINT");
  g_subprocess_wait (helper.process, NULL, NULL);
  g_assert_cmpuint (left_in_session (helper.sid), ==, 0);
  g_object_unref (helper.process);
}

static void
test_quotes_without_setlocale (void)
{
  Helper helper = start_helper_with ("quotes", "C.UTF-8");
  g_autofree char *out = finish_helper (&helper);

  /* The program never called setlocale(): arip_init() did, so GLib prints
   * the message's quotes instead of question marks. */
  g_test_message ("the helper said: %s", out);
  g_assert_nonnull (strstr (out, "No function named “no-such-function”"));
  g_assert_cmpuint (left_in_session (helper.sid), ==, 0);
  g_object_unref (helper.process);
}

int
main (int argc, char **argv)
{
  arip_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Mistakes/no-init/storm", test_no_init_storm);
  g_test_add_func ("/Arip/Mistakes/no-init/startup-timeout", test_no_init_startup_timeout);
  g_test_add_func ("/Arip/Mistakes/ctrl-c", test_ctrl_c_reaches_the_parent_only);
  g_test_add_func ("/Arip/Mistakes/quotes-without-setlocale", test_quotes_without_setlocale);

  return g_test_run ();
}
