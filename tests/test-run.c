/* test-run.c: one-shot runs: results, errors, environment, cancellation,
 * crashes, startup failures
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <glib-unix.h>

#include <arip.h>

#include "arip-test-util.h"

G_STATIC_ASSERT (ARIP_CHECK_VERSION (0, 1, 0));

#define TEST_ERROR_DOMAIN "arip-test-error-quark"
#define BIG_SIZE (64u * 1024u * 1024u)

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

static void
fn_return_null (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, NULL);
}

static gboolean
return_later (gpointer data)
{
  AripCall *call = data;

  arip_call_return_value (call, g_variant_new ("(s)", "later"));
  g_object_unref (call);
  return G_SOURCE_REMOVE;
}

/* Answers from the worker's main loop, after returning. */
static void
fn_return_later (AripCall *call, GVariant *args, gpointer user_data)
{
  GSource *source = g_timeout_source_new (10);

  /* The function's main context is the thread default one, not the
   * global default. */
  g_source_set_callback (source, return_later, g_object_ref (call), NULL);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static void
fn_fail (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_error (call, g_quark_from_static_string (TEST_ERROR_DOMAIN), 42,
                          "The answer is %d", 42);
}

static void
fn_fail_gerror (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "Nothing here");

  arip_call_return_gerror (call, error);
}

static void
fn_cancelled (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Gave up");
}

static void
fn_function_name (AripCall *call, GVariant *args, gpointer user_data)
{
  g_assert_true (g_variant_equal (arip_call_get_args (call), args));
  g_assert_false (arip_call_has_returned (call));
  arip_call_return_value (call, g_variant_new ("(ssb)", arip_call_get_function_name (call),
                                               (const char *) user_data, arip_is_worker ()));
  g_assert_true (arip_call_has_returned (call));
}

/* Answers at once, then keeps busy (cleaning up, say) for a while. */
static void
fn_answer_then_busy (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(s)", "answered"));
  g_usleep (10 * G_USEC_PER_SEC);
}

static void
fn_getenv (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *name;

  g_variant_get (args, "(&s)", &name);
  arip_call_return_value (call, g_variant_new ("(ms)", g_getenv (name)));
}

static void
fn_getcwd (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autofree char *cwd = g_get_current_dir ();

  arip_call_return_value (call, g_variant_new ("(s)", cwd));
}

/* Is fd 0 /dev/null? */
static void
fn_stdin_is_null (AripCall *call, GVariant *args, gpointer user_data)
{
  struct stat st_stdin, st_null;
  gboolean same = fstat (0, &st_stdin) == 0 && stat ("/dev/null", &st_null) == 0 &&
                  S_ISCHR (st_stdin.st_mode) && st_stdin.st_rdev == st_null.st_rdev;

  arip_call_return_value (call, g_variant_new ("(b)", same));
}

/* Writes a line to the descriptor given in args. */
static void
fn_write_fd (AripCall *call, GVariant *args, gpointer user_data)
{
  static const char line[] = "through the fd\n";
  gint32 fd;

  g_variant_get (args, "(i)", &fd);
  arip_call_return_value (call, g_variant_new ("(b)", write (fd, line, strlen (line)) == (gssize) strlen (line)));
}

static guint8 *
make_big_data (void)
{
  guint8 *data = g_malloc (BIG_SIZE);
  guint32 x = 2463534242u;

  /* xorshift32: every byte position matters */
  for (gsize i = 0; i < BIG_SIZE; i += 4)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      memcpy (data + i, &x, 4);
    }
  return data;
}

static void
fn_big (AripCall *call, GVariant *args, gpointer user_data)
{
  GBytes *bytes = g_bytes_new_take (make_big_data (), BIG_SIZE);

  arip_call_return_value (call, g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE));
  g_bytes_unref (bytes);
}

/* Returns the size and a checksum of the bytes it was given. */
static void
fn_digest (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) bytes = g_variant_get_child_value (args, 0);
  gsize n = 0;
  const guint8 *data = g_variant_get_fixed_array (bytes, &n, 1);
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, n);

  arip_call_return_value (call, g_variant_new ("(ts)", (guint64) n, sum));
}

static void
fn_exit (AripCall *call, GVariant *args, gpointer user_data)
{
  gint32 status;

  g_variant_get (args, "(i)", &status);
  arip_test_exit_now (status);
}

static void
fn_segv (AripCall *call, GVariant *args, gpointer user_data)
{
  raise (SIGSEGV);
}

static void
fn_abort (AripCall *call, GVariant *args, gpointer user_data)
{
  abort ();
}

static void
touch (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_file_set_contents (path, "", 0, NULL);
}

/* Touches DIR/started, then runs until killed; touches DIR/interrupted
 * when its call is interrupted, and keeps running. */
static void
fn_notice_and_keep_running (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  gboolean noticed = FALSE;
  const char *dir;

  g_variant_get (args, "(&s)", &dir);
  touch (dir, "started");

  while (g_get_monotonic_time () < deadline)
    {
      if (!noticed && g_cancellable_is_cancelled (cancellable))
        {
          touch (dir, "interrupted");
          noticed = TRUE;
        }
      g_usleep (1000);
    }
  arip_call_return_value (call, g_variant_new ("(s)", "never stopped"));
}

/* Touches DIR/started, then returns G_IO_ERROR_CANCELLED once interrupted. */
static void
fn_cooperative (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  const char *dir;

  g_variant_get (args, "(&s)", &dir);
  touch (dir, "started");
  while (!g_cancellable_is_cancelled (cancellable) && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  touch (dir, "interrupted");
  arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Interrupted");
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void
test_value (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) args = NULL;
  GVariantBuilder dict;

  g_variant_builder_init (&dict, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&dict, "{sv}", "double", g_variant_new_double (3.25));
  g_variant_builder_add (&dict, "{sv}", "strv", g_variant_new_strv ((const char *[]) { "a", "b", NULL }, -1));
  g_variant_builder_add (&dict, "{sv}", "maybe", g_variant_new ("mi", NULL));
  g_variant_builder_add (&dict, "{sv}", "utf8", g_variant_new_string ("grüße ✓"));
  args = g_variant_ref_sink (g_variant_new ("(yxtsa{sv}@ay)", 255, G_MININT64, G_MAXUINT64, "hello",
                                            &dict, g_variant_new_bytestring ("\1\2\3")));

  result = arip_test_run ("echo", args, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_assert_true (g_variant_equal (result, args));
}

static void
test_null_args (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("echo", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("()"));
}

static void
test_null_result (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("return_null", g_variant_new ("(i)", 1), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("()"));
}

static void
test_return_later (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("return_later", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "later"));
}

static void
test_call_accessors (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("function_name", g_variant_new ("(i)", 5), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ssb)", "function_name", "user data", TRUE));
  g_assert_false (arip_is_worker ());
}

static void
test_concurrent (void)
{
  GAsyncResult *results[8] = { NULL, };
  const guint n = G_N_ELEMENTS (results);

  for (guint i = 0; i < n; i++)
    arip_run_in_process_async ("echo", g_variant_new ("(u)", i), NULL,
                               arip_test_store_result, &results[i]);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      arip_test_wait_until (results[i] != NULL);
      result = arip_run_in_process_finish (results[i], &error);
      g_assert_no_error (error);
      arip_test_assert_variant (result, g_variant_new ("(u)", i));
      g_object_unref (results[i]);
    }
}

static void
test_sync (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  gboolean idle_ran = FALSE;
  guint idle_id;

  /* The sync calls run on a private main context: the default one is
   * never iterated under them. */
  idle_id = g_idle_add (arip_test_set_flag, &idle_ran);

  result = arip_run_in_process_sync ("echo", g_variant_new ("(s)", "sync"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "sync"));
  g_clear_pointer (&result, g_variant_unref);

  result = arip_launcher_run_sync (launcher, "echo", g_variant_new ("(s)", "launcher"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "launcher"));
  g_clear_pointer (&result, g_variant_unref);

  result = arip_run_in_process_sync ("fail", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, g_quark_from_string (TEST_ERROR_DOMAIN), 42);
  g_clear_error (&error);

  g_assert_false (idle_ran);
  g_source_remove (idle_id);
}

static gpointer
sync_thread (gpointer data)
{
  guint i = GPOINTER_TO_UINT (data);
  g_autoptr(GError) error = NULL;
  GVariant *result;

  result = arip_run_in_process_sync ("echo", g_variant_new ("(u)", i), NULL, &error);
  g_assert_no_error (error);
  return result;
}

static void
test_sync_in_threads (void)
{
  GThread *threads[4];

  /* Each thread runs its own private main context. */
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("arip-test-sync", sync_thread, GUINT_TO_POINTER (i));
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_autoptr(GVariant) result = g_thread_join (threads[i]);

      arip_test_assert_variant (result, g_variant_new ("(u)", i));
    }
}

static void
test_launcher_async (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);

  result = arip_test_launcher_run (launcher, "echo", g_variant_new ("(s)", "launched"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "launched"));
}

static void
test_error (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("fail", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, g_quark_from_string (TEST_ERROR_DOMAIN), 42);
  g_assert_cmpstr (error->message, ==, "The answer is 42");
  g_clear_error (&error);

  result = arip_test_run ("fail_gerror", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "Nothing here");
}

static void
test_child_cancelled (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("cancelled", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED);
}

static void
test_unknown_function (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("there_is_no_such_function", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
  g_assert_nonnull (strstr (error->message, "there_is_no_such_function"));
}

static void
run_process (AripProcess *p,
             GVariant   **result,
             GError     **error)
{
  g_autoptr(GError) start_error = NULL;

  /* A function that dies at once may or may not reach EXECUTING first:
   * either way wait gives the end. */
  arip_test_start (p, &start_error);
  *result = arip_test_wait (p, error);
  if (start_error != NULL)
    g_assert_true (g_error_matches (start_error, (*error)->domain, (*error)->code));
}

static void
test_exit (void)
{
  const gint statuses[] = { 3, 0 };

  for (guint i = 0; i < G_N_ELEMENTS (statuses); i++)
    {
      g_autoptr(AripProcess) p = arip_process_new (NULL, "exit", g_variant_new ("(i)", statuses[i]));
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      run_process (p, &result, &error);
      g_assert_null (result);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      g_assert_true (arip_process_get_if_exited (p));
      g_assert_cmpint (arip_process_get_exit_status (p), ==, statuses[i]);
      g_assert_false (arip_process_get_if_signaled (p));
      g_clear_error (&error);

      /* The same through run_in_process. */
      result = arip_test_run ("exit", g_variant_new ("(i)", statuses[i]), NULL, &error);
      g_assert_null (result);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
    }
}

static void
check_crash (const char *function,
             int         signum,
             const char *signame)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, function, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *last_words = g_strdup_printf ("fatal signal %s", signame);
  GPid pid;

  run_process (p, &result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_test_message ("%s: %s", function, error->message);
  g_assert_nonnull (strstr (error->message, signame));
  g_assert_nonnull (strstr (error->message, last_words));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, signum);
  g_assert_false (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  pid = arip_process_get_pid (p);
  arip_test_assert_pid_gone (pid);
  g_clear_error (&error);

  result = arip_test_run (function, NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, signame));
}

static void
test_crash_segv (void)
{
  check_crash ("segv", SIGSEGV, "SIGSEGV");
}

static void
test_crash_abort (void)
{
  check_crash ("abort", SIGABRT, "SIGABRT");
}

static void
test_env (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* Inherited by default (meson sets it for the test). */
  g_assert_cmpstr (g_getenv ("ARIP_TEST_PARENT_VAR"), ==, "parent");
  result = arip_test_run ("getenv", g_variant_new ("(s)", "ARIP_TEST_PARENT_VAR"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ms)", "parent"));
  g_clear_pointer (&result, g_variant_unref);

  arip_launcher_setenv (launcher, "ARIP_TEST_VAR", "from launcher", TRUE);
  g_assert_cmpstr (arip_launcher_getenv (launcher, "ARIP_TEST_VAR"), ==, "from launcher");
  arip_launcher_setenv (launcher, "ARIP_TEST_VAR", "not overwritten", FALSE);
  result = arip_test_launcher_run (launcher, "getenv", g_variant_new ("(s)", "ARIP_TEST_VAR"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ms)", "from launcher"));
  g_clear_pointer (&result, g_variant_unref);

  arip_launcher_unsetenv (launcher, "ARIP_TEST_PARENT_VAR");
  g_assert_null (arip_launcher_getenv (launcher, "ARIP_TEST_PARENT_VAR"));
  result = arip_test_launcher_run (launcher, "getenv", g_variant_new ("(s)", "ARIP_TEST_PARENT_VAR"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ms)", NULL));
  g_clear_pointer (&result, g_variant_unref);

  /* The parent's own environment is untouched. */
  g_assert_cmpstr (g_getenv ("ARIP_TEST_PARENT_VAR"), ==, "parent");
  g_assert_null (g_getenv ("ARIP_TEST_VAR"));
}

static void
test_set_environ (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  const char *env[] = { "ARIP_TEST_ONLY=only", NULL };

  arip_launcher_set_environ (launcher, env);
  result = arip_test_launcher_run (launcher, "getenv", g_variant_new ("(s)", "ARIP_TEST_ONLY"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ms)", "only"));
  g_clear_pointer (&result, g_variant_unref);

  result = arip_test_launcher_run (launcher, "getenv", g_variant_new ("(s)", "ARIP_TEST_PARENT_VAR"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ms)", NULL));
}

static void
test_worker_env_removed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("getenv", g_variant_new ("(s)", "ARIP_WORKER"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ms)", NULL));
}

static void
test_cwd (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *dir = g_dir_make_tmp ("arip-test-cwd-XXXXXX", &error);
  g_autofree char *real = NULL;
  g_autofree char *cwd = g_get_current_dir ();

  g_assert_no_error (error);
  real = realpath (dir, NULL);
  g_assert_nonnull (real);

  arip_launcher_set_cwd (launcher, dir);
  g_assert_cmpstr (arip_launcher_get_cwd (launcher), ==, dir);
  result = arip_test_launcher_run (launcher, "getcwd", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", real));

  /* The parent stays where it was. */
  g_autofree char *cwd_after = g_get_current_dir ();
  g_assert_cmpstr (cwd_after, ==, cwd);
  g_rmdir (dir);
}

static void
test_take_fd (void)
{
  AripLauncher *launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  const int target = 7;
  char buf[64] = { 0 };
  int pipe_fds[2];

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, &error));
  g_assert_no_error (error);
  arip_launcher_take_fd (launcher, pipe_fds[1], target);

  result = arip_test_launcher_run (launcher, "write_fd", g_variant_new ("(i)", target), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(b)", TRUE));

  /* The launcher owns the write end; once it is gone, the pipe ends. */
  g_object_unref (launcher);
  g_assert_cmpint (read (pipe_fds[0], buf, sizeof buf - 1), ==, (gssize) strlen ("through the fd\n"));
  g_assert_cmpstr (buf, ==, "through the fd\n");
  g_assert_cmpint (read (pipe_fds[0], buf, sizeof buf - 1), ==, 0);
  close (pipe_fds[0]);
}

static void
test_stdin_is_null (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("stdin_is_null", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(b)", TRUE));
}

static void
test_big_result (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree guint8 *expected = make_big_data ();
  const guint8 *data;
  gsize n = 0;

  result = arip_test_run ("big", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_assert_true (g_variant_is_of_type (result, G_VARIANT_TYPE_BYTESTRING));
  data = g_variant_get_fixed_array (result, &n, 1);
  g_assert_cmpuint (n, ==, BIG_SIZE);
  g_assert_true (memcmp (data, expected, BIG_SIZE) == 0);
}

/* Arguments much larger than a socket buffer. (Not 64 MiB: GLib 2.74
 * checks an untrusted "ay" for normal form a byte at a time, on both
 * sides, and all of that counts against the startup timeout.) */
#define BIG_ARGS_SIZE (8u * 1024u * 1024u)

static void
test_big_args (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree guint8 *data = make_big_data ();
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, BIG_ARGS_SIZE);
  GVariant *bytes = g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, BIG_ARGS_SIZE, 1);

  result = arip_test_run ("digest", g_variant_new_tuple (&bytes, 1), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(ts)", (guint64) BIG_ARGS_SIZE, sum));
}

static gboolean
file_exists (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static void
test_cancel_escalation (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) run_result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *dir = g_dir_make_tmp ("arip-test-cancel-XXXXXX", &error);

  g_assert_no_error (error);
  arip_launcher_set_stop_timeouts (launcher, 300, 300);

  arip_launcher_run_async (launcher, "notice_and_keep_running", g_variant_new ("(s)", dir),
                           cancellable, arip_test_store_result, &run_result);
  arip_test_wait_until (file_exists (dir, "started"));
  /* Give the worker a moment past the first line of the function. */
  arip_test_iterate_for (50);
  g_assert_null (run_result);

  g_cancellable_cancel (cancellable);
  arip_test_wait_until (run_result != NULL);
  result = arip_launcher_run_finish (launcher, run_result, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* The child saw the interrupt before SIGTERM ended it. */
  g_assert_true (file_exists (dir, "interrupted"));

  {
    g_autofree char *a = g_build_filename (dir, "started", NULL);
    g_autofree char *b = g_build_filename (dir, "interrupted", NULL);
    g_unlink (a);
    g_unlink (b);
    g_rmdir (dir);
  }
}

static void
test_cancel_cooperative (void)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) run_result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *dir = g_dir_make_tmp ("arip-test-cancel-XXXXXX", &error);

  g_assert_no_error (error);
  /* Default timeouts: the function gives up at the interrupt. */
  arip_run_in_process_async ("cooperative", g_variant_new ("(s)", dir),
                             cancellable, arip_test_store_result, &run_result);
  arip_test_wait_until (file_exists (dir, "started"));
  arip_test_iterate_for (50);

  g_cancellable_cancel (cancellable);
  arip_test_wait_until (run_result != NULL);
  result = arip_run_in_process_finish (run_result, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_true (file_exists (dir, "interrupted"));

  {
    g_autofree char *a = g_build_filename (dir, "started", NULL);
    g_autofree char *b = g_build_filename (dir, "interrupted", NULL);
    g_unlink (a);
    g_unlink (b);
    g_rmdir (dir);
  }
}

static void
test_cancel_before (void)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  g_cancellable_cancel (cancellable);
  result = arip_test_run ("echo", NULL, cancellable, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  result = arip_run_in_process_sync ("echo", NULL, cancellable, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_cancel_immediately (void)
{
  /* Cancelled in the same main loop iteration as the run began, in the
   * middle of starting: ends cancelled, and leaves no child behind. */
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GAsyncResult) run_result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      arip_run_in_process_async ("echo", NULL, cancellable, arip_test_store_result, &run_result);
      if (i > 0)
        arip_test_iterate_for (i);
      g_cancellable_cancel (cancellable);
      arip_test_wait_until (run_result != NULL);
      result = arip_run_in_process_finish (run_result, &error);
      /* Late enough, "echo" may already have answered. */
      if (result == NULL)
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    }
  arip_test_wait_until (arip_get_running_processes () == 0);
}

static void
test_startup_timeout (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *sleep_path = g_find_program_in_path ("sleep");
  const char *argv[] = { sleep_path, "60", NULL };
  GPid pid;

  g_assert_nonnull (sleep_path);
  if (g_getenv ("ARIP_STARTUP_TIMEOUT") == NULL)
    g_assert_cmpuint (arip_launcher_get_startup_timeout (launcher), ==, 5000);
  arip_launcher_set_worker_argv (launcher, argv);
  arip_launcher_set_startup_timeout (launcher, 500);
  g_assert_cmpuint (arip_launcher_get_startup_timeout (launcher), ==, 500);

  p = arip_process_new (launcher, "echo", NULL);
  g_assert_false (arip_test_start (p, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  pid = arip_process_get_pid (p);
  arip_test_assert_pid_gone (pid);

  result = arip_test_launcher_run (launcher, "echo", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
}

static void
on_state_changed_record (AripProcess *p, AripState old_state, AripState new_state, gpointer user_data)
{
  GArray *states = user_data;
  guint s = new_state;

  g_array_append_val (states, s);
}

static void
test_spawn_failed (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (guint));
  const char *argv[] = { "/nonexistent/worker", NULL };

  arip_launcher_set_worker_argv (launcher, argv);
  g_assert_cmpstr (arip_launcher_get_worker_argv (launcher)[0], ==, "/nonexistent/worker");

  p = arip_process_new (launcher, "echo", NULL);
  g_signal_connect (p, "state-changed", G_CALLBACK (on_state_changed_record), states);
  g_assert_false (arip_test_start (p, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
  g_clear_error (&error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  g_assert_cmpuint (states->len, ==, 1);
  g_assert_cmpuint (g_array_index (states, guint, 0), ==, ARIP_STATE_FINISHED);
  g_assert_cmpint (arip_process_get_pid (p), ==, 0);

  result = arip_test_launcher_run (launcher, "echo", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
  g_clear_error (&error);

  result = arip_launcher_run_sync (launcher, "echo", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
}

static void
test_answer_then_busy (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* The function answered: that answer is the result, whatever happens
   * to the child after it (here: it lingers and is put down). */
  arip_launcher_set_stop_timeouts (launcher, 100, 100);
  p = arip_process_new (launcher, "answer_then_busy", NULL);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "answered"));
  arip_test_assert_pid_gone (arip_process_get_pid (p));
}

static void
test_worker_exits_early (void)
{
  /* A worker program that ends before it says hello (it is not an arip
   * program at all, or it exits in main() before arip_init()). */
  const char *argv[] = { "/bin/sh", "-c", "exit 3", NULL };

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      g_autoptr(AripProcess) p = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      arip_launcher_set_worker_argv (launcher, argv);
      p = arip_process_new (launcher, "echo", NULL);
      g_assert_false (arip_test_start (p, &error));
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      g_clear_error (&error);
      result = arip_test_wait (p, &error);
      g_assert_null (result);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      g_assert_true (arip_process_get_if_exited (p));
      g_assert_cmpint (arip_process_get_exit_status (p), ==, 3);
      arip_test_assert_pid_gone (arip_process_get_pid (p));
    }
}

/* A fork of a threaded program is refused, saying why and what to use. */
static void
test_fork_needs_one_thread (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* This program runs threads: GLib's thread pools start one with the
   * first GTask. */
  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_FORK);
  g_assert_cmpint (arip_launcher_get_start_method (launcher), ==, ARIP_START_METHOD_FORK);
  result = arip_test_launcher_run (launcher, "echo", NULL, NULL, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "threads"));
  g_assert_nonnull (strstr (error->message, "ARIP_START_METHOD_FORKSERVER"));
}

int
main (int argc, char **argv)
{
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("return_null", fn_return_null, NULL, NULL);
  arip_register_function ("return_later", fn_return_later, NULL, NULL);
  arip_register_function ("fail", fn_fail, NULL, NULL);
  arip_register_function ("fail_gerror", fn_fail_gerror, NULL, NULL);
  arip_register_function ("cancelled", fn_cancelled, NULL, NULL);
  arip_register_function ("function_name", fn_function_name, (gpointer) "user data", NULL);
  arip_register_function ("getenv", fn_getenv, NULL, NULL);
  arip_register_function ("answer_then_busy", fn_answer_then_busy, NULL, NULL);
  arip_register_function ("getcwd", fn_getcwd, NULL, NULL);
  arip_register_function ("stdin_is_null", fn_stdin_is_null, NULL, NULL);
  arip_register_function ("big", fn_big, NULL, NULL);
  arip_register_function ("digest", fn_digest, NULL, NULL);
  arip_register_function ("write_fd", fn_write_fd, NULL, NULL);
  arip_register_function ("exit", fn_exit, NULL, NULL);
  arip_register_function ("segv", fn_segv, NULL, NULL);
  arip_register_function ("abort", fn_abort, NULL, NULL);
  arip_register_function ("notice_and_keep_running", fn_notice_and_keep_running, NULL, NULL);
  arip_register_function ("cooperative", fn_cooperative, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Run/value", test_value);
  g_test_add_func ("/Arip/Run/null-args", test_null_args);
  g_test_add_func ("/Arip/Run/null-result", test_null_result);
  g_test_add_func ("/Arip/Run/return-later", test_return_later);
  g_test_add_func ("/Arip/Run/call-accessors", test_call_accessors);
  g_test_add_func ("/Arip/Run/concurrent", test_concurrent);
  g_test_add_func ("/Arip/Run/sync", test_sync);
  g_test_add_func ("/Arip/Run/sync-in-threads", test_sync_in_threads);
  g_test_add_func ("/Arip/Run/launcher-async", test_launcher_async);
  g_test_add_func ("/Arip/Run/error", test_error);
  g_test_add_func ("/Arip/Run/child-cancelled", test_child_cancelled);
  g_test_add_func ("/Arip/Run/unknown-function", test_unknown_function);
  g_test_add_func ("/Arip/Run/exit", test_exit);
  g_test_add_func ("/Arip/Run/crash/segv", test_crash_segv);
  g_test_add_func ("/Arip/Run/crash/abort", test_crash_abort);
  g_test_add_func ("/Arip/Run/env", test_env);
  g_test_add_func ("/Arip/Run/set-environ", test_set_environ);
  g_test_add_func ("/Arip/Run/worker-env-removed", test_worker_env_removed);
  g_test_add_func ("/Arip/Run/cwd", test_cwd);
  g_test_add_func ("/Arip/Run/stdin-is-null", test_stdin_is_null);
  g_test_add_func ("/Arip/Run/take-fd", test_take_fd);
  g_test_add_func ("/Arip/Run/big-result", test_big_result);
  g_test_add_func ("/Arip/Run/big-args", test_big_args);
  g_test_add_func ("/Arip/Run/cancel/escalation", test_cancel_escalation);
  g_test_add_func ("/Arip/Run/cancel/cooperative", test_cancel_cooperative);
  g_test_add_func ("/Arip/Run/cancel/before-start", test_cancel_before);
  g_test_add_func ("/Arip/Run/cancel/immediately", test_cancel_immediately);
  g_test_add_func ("/Arip/Run/startup-timeout", test_startup_timeout);
  g_test_add_func ("/Arip/Run/spawn-failed", test_spawn_failed);
  g_test_add_func ("/Arip/Run/worker-exits-early", test_worker_exits_early);
  g_test_add_func ("/Arip/Run/fork-needs-one-thread", test_fork_needs_one_thread);

  /* Last, so that a failure here does not hide the others. */
  g_test_add_func ("/Arip/Run/answer-then-busy", test_answer_then_busy);

  return g_test_run ();
}
