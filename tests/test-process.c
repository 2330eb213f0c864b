/* test-process.c: AripProcess lifecycle, states, signals, messages, pipes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>

#include "arip-test-util.h"

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

static void
fn_hang (AripCall *call, GVariant *args, gpointer user_data)
{
  /* Never answers: the worker's main loop runs until it is killed. */
}

/* Ignores SIGTERM and never answers: only SIGKILL ends it. */
static void
fn_stubborn (AripCall *call, GVariant *args, gpointer user_data)
{
  signal (SIGTERM, SIG_IGN);
}

static void
on_call_message (AripCall *call, GVariant *message, gpointer user_data)
{
  if (g_variant_is_of_type (message, G_VARIANT_TYPE_STRING) &&
      g_str_equal (g_variant_get_string (message, NULL), "stop"))
    {
      arip_call_return_value (call, g_variant_new ("(s)", "stopped"));
      return;
    }
  arip_call_send_message (call, message);
}

/* Echoes each message back, returns when it receives the string "stop". */
static void
fn_wait_for_message (AripCall *call, GVariant *args, gpointer user_data)
{
  g_signal_connect (call, "message", G_CALLBACK (on_call_message), NULL);
}

/* Sets its progress to 0.5, then behaves as wait_for_message. */
static void
fn_progress (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_set_progress (call, 0.5);
  arip_call_set_progress (call, 0.5);
  g_signal_connect (call, "message", G_CALLBACK (on_call_message), NULL);
}

/* Busy synchronously until interrupted; then returns a value ("value") or
 * G_IO_ERROR_CANCELLED ("error"). */
static void
fn_busy_until_interrupted (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  const char *mode;

  g_variant_get (args, "(&s)", &mode);

  while (!g_cancellable_is_cancelled (cancellable))
    {
      if (g_get_monotonic_time () > deadline)
        {
          arip_call_return_value (call, g_variant_new ("(s)", "never interrupted"));
          return;
        }
      g_usleep (1000);
    }

  if (g_str_equal (mode, "error"))
    arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Interrupted");
  else
    arip_call_return_value (call, g_variant_new ("(s)", "interrupted"));
}

static void
on_noticed_once_message (AripCall *call, GVariant *message, gpointer user_data)
{
  if (g_variant_is_of_type (message, G_VARIANT_TYPE_STRING) &&
      g_str_equal (g_variant_get_string (message, NULL), "finish"))
    arip_call_return_value (call, g_variant_new ("(i)", 9999));
}

/* asyncio-run-in-process's "SIGINT can be ignored": notices the first
 * interrupt, tells the parent, keeps running through a second one and
 * finishes normally when asked to. */
static void
fn_noticed_once (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (!g_cancellable_is_cancelled (cancellable) && g_get_monotonic_time () < deadline)
    g_usleep (1000);

  arip_call_send_message (call, g_variant_new_string ("noticed"));
  g_signal_connect (call, "message", G_CALLBACK (on_noticed_once_message), NULL);
}

static void
fn_send_messages (AripCall *call, GVariant *args, gpointer user_data)
{
  guint32 n;

  g_variant_get (args, "(u)", &n);
  for (guint32 i = 0; i < n; i++)
    arip_call_send_message (call, g_variant_new ("(u)", i));
  arip_call_return_value (call, g_variant_new ("(u)", n));
}

/* Says its last words as a message, then crashes. */
static void
fn_message_then_crash (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_set_progress (call, 0.75);
  arip_call_send_message (call, g_variant_new_string ("last words"));
  raise (SIGSEGV);
}

static void
fn_print (AripCall *call, GVariant *args, gpointer user_data)
{
  printf ("hello from child %d\n", (int) getpid ());
  fflush (stdout);
  fprintf (stderr, "complaint from child %d\n", (int) getpid ());
  fflush (stderr);
  arip_call_return_value (call, g_variant_new ("(s)", "printed"));
}

static void
fn_read_stdin (AripCall *call, GVariant *args, gpointer user_data)
{
  char line[256] = { 0 };

  if (fgets (line, sizeof line, stdin) == NULL)
    line[0] = '\0';
  arip_call_return_value (call, g_variant_new ("(s)", line));
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

/* ---------------------------------------------------------------------- */
/* Recording states                                                        */

typedef struct {
  AripProcess *process;
  GArray      *changes;   /* pairs of guint: old, new */
  GArray      *notified;  /* guint: the state at each notify::state */
  GPid         pid_at_initialized;
  GPid         pid_prop_at_initialized;
} StateLog;

static void
on_state_changed (AripProcess *process,
                  AripState    old_state,
                  AripState    new_state,
                  gpointer     user_data)
{
  StateLog *log = user_data;
  guint pair[2] = { old_state, new_state };

  g_assert_true (process == log->process);
  g_assert_cmpint (arip_process_get_state (process), ==, new_state);
  g_array_append_vals (log->changes, pair, 2);

  if (new_state == ARIP_STATE_INITIALIZED)
    {
      log->pid_at_initialized = arip_process_get_pid (process);
      g_object_get (process, "pid", &log->pid_prop_at_initialized, NULL);
    }
}

static void
on_notify_state (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  StateLog *log = user_data;
  AripState state;

  g_object_get (object, "state", &state, NULL);
  g_array_append_val (log->notified, state);
}

static StateLog *
state_log_new (AripProcess *process)
{
  StateLog *log = g_new0 (StateLog, 1);

  log->process = process;
  log->changes = g_array_new (FALSE, FALSE, sizeof (guint));
  log->notified = g_array_new (FALSE, FALSE, sizeof (guint));
  g_signal_connect (process, "state-changed", G_CALLBACK (on_state_changed), log);
  g_signal_connect (process, "notify::state", G_CALLBACK (on_notify_state), log);
  return log;
}

static void
state_log_free (StateLog *log)
{
  g_signal_handlers_disconnect_by_data (log->process, log);
  g_array_unref (log->changes);
  g_array_unref (log->notified);
  g_free (log);
}

/* Asserts that the states went INITIALIZING -> expected[0] -> ... */
static void
state_log_assert (StateLog        *log,
                  const AripState *expected,
                  guint            n_expected)
{
  guint prev = ARIP_STATE_INITIALIZING;

  g_assert_cmpuint (log->changes->len, ==, 2 * n_expected);
  g_assert_cmpuint (log->notified->len, ==, n_expected);
  for (guint i = 0; i < n_expected; i++)
    {
      g_assert_cmpuint (g_array_index (log->changes, guint, 2 * i), ==, prev);
      g_assert_cmpuint (g_array_index (log->changes, guint, 2 * i + 1), ==, expected[i]);
      g_assert_cmpuint (g_array_index (log->notified, guint, i), ==, expected[i]);
      prev = expected[i];
    }
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void
test_new (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(AripProcess) q = NULL;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GVariant) args = NULL;
  g_autofree char *function = NULL;
  g_autoptr(AripLauncher) prop_launcher = NULL;
  GVariant *floating;
  AripState state;
  GPid pid;
  gdouble progress;

  p = arip_process_new (NULL, "echo", NULL);
  g_assert_true (ARIP_IS_PROCESS (p));
  g_assert_cmpstr (arip_process_get_function (p), ==, "echo");
  g_assert_nonnull (arip_process_get_args (p));
  arip_test_assert_variant (arip_process_get_args (p), g_variant_new ("()"));
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_INITIALIZING);
  g_assert_cmpint (arip_process_get_pid (p), ==, 0);
  g_assert_cmpfloat (arip_process_get_progress (p), ==, 0.0);
  g_assert_null (arip_process_get_error (p));
  g_assert_null (arip_process_get_stdout_pipe (p));
  g_assert_null (arip_process_get_stderr_pipe (p));
  g_assert_null (arip_process_get_stdin_pipe (p));

  floating = g_variant_new ("(si)", "x", 42);
  q = arip_process_new (launcher, "echo", floating);
  g_assert_true (arip_process_get_args (q) == floating);
  g_assert_false (g_variant_is_floating (floating));
  g_assert_true (arip_process_get_launcher (q) == launcher);

  g_object_get (q,
                "function", &function,
                "args", &args,
                "launcher", &prop_launcher,
                "state", &state,
                "pid", &pid,
                "progress", &progress,
                NULL);
  g_assert_cmpstr (function, ==, "echo");
  arip_test_assert_variant (args, g_variant_new ("(si)", "x", 42));
  g_assert_true (prop_launcher == launcher);
  g_assert_cmpint (state, ==, ARIP_STATE_INITIALIZING);
  g_assert_cmpint (pid, ==, 0);
  g_assert_cmpfloat (progress, ==, 0.0);
}

static void
test_states (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "echo", g_variant_new ("(s)", "states"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) again = NULL;
  StateLog *log = state_log_new (p);
  static const AripState expected[] = {
    ARIP_STATE_INITIALIZED, ARIP_STATE_WAIT_EXEC_DATA, ARIP_STATE_BOOTING,
    ARIP_STATE_STARTED, ARIP_STATE_EXECUTING, ARIP_STATE_FINISHED,
  };
  GPid pid;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), >=, ARIP_STATE_EXECUTING);
  pid = arip_process_get_pid (p);
  g_assert_cmpint (pid, >, 0);
  g_assert_cmpint (pid, !=, getpid ());

  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  arip_test_assert_variant (result, g_variant_new ("(s)", "states"));

  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  state_log_assert (log, expected, G_N_ELEMENTS (expected));
  g_assert_cmpint (log->pid_at_initialized, ==, pid);
  g_assert_cmpint (log->pid_prop_at_initialized, ==, pid);

  /* The result stays available, as a new reference each time. */
  again = arip_process_get_result (p, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (again, result));
  g_assert_null (arip_process_get_error (p));
  g_assert_true (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_exit_status (p), ==, 0);
  g_assert_false (arip_process_get_if_signaled (p));

  arip_test_assert_pid_gone (pid);
  state_log_free (log);
}

static void
test_unknown_function (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "no-such-function", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) wait_error = NULL;
  g_autoptr(GError) result_error = NULL;
  g_autoptr(GVariant) result = NULL;
  StateLog *log = state_log_new (p);
  static const AripState expected[] = {
    ARIP_STATE_INITIALIZED, ARIP_STATE_WAIT_EXEC_DATA, ARIP_STATE_BOOTING,
    ARIP_STATE_FINISHED,
  };
  const GError *stored;

  g_assert_false (arip_test_start (p, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
  g_assert_nonnull (strstr (error->message, "no-such-function"));
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  state_log_assert (log, expected, G_N_ELEMENTS (expected));

  result = arip_test_wait (p, &wait_error);
  g_assert_null (result);
  g_assert_error (wait_error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);

  result = arip_process_get_result (p, &result_error);
  g_assert_null (result);
  g_assert_error (result_error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
  stored = arip_process_get_error (p);
  g_assert_nonnull (stored);
  g_assert_true (g_error_matches (stored, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION));
  g_assert_true (stored != result_error);

  arip_test_assert_pid_gone (log->pid_at_initialized);
  state_log_free (log);
}

static void
test_start_twice (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  arip_process_start_async (p, NULL, arip_test_store_result, &first);
  arip_process_start_async (p, NULL, arip_test_store_result, &second);
  arip_test_wait_until (first != NULL && second != NULL);

  g_assert_false (arip_process_start_finish (p, second, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_clear_error (&error);

  g_assert_true (arip_process_start_finish (p, first, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);

  /* Once more, now that it runs. */
  g_assert_false (arip_test_start (p, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_clear_error (&error);

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "stopped"));
}

static void
test_not_started (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "echo", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_process_get_result (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_null (arip_process_get_error (p));

  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_INITIALIZING);
  g_assert_cmpint (arip_process_get_pid (p), ==, 0);
}

static void
test_result_before_finished (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);

  result = arip_process_get_result (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_null (arip_process_get_error (p));

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
}

static void
test_wait_for_state (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) start_result = NULL;

  /* Waiting for a state before starting: completes once it is reached. */
  arip_process_start_async (p, NULL, arip_test_store_result, &start_result);
  g_assert_true (arip_test_wait_for_state (p, ARIP_STATE_STARTED, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), >=, ARIP_STATE_STARTED);

  g_assert_true (arip_test_wait_for_state (p, ARIP_STATE_EXECUTING, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);

  /* An earlier state has been passed: completes TRUE at once. */
  g_assert_true (arip_test_wait_for_state (p, ARIP_STATE_BOOTING, &error));
  g_assert_no_error (error);

  arip_test_wait_until (start_result != NULL);
  g_assert_true (arip_process_start_finish (p, start_result, &error));
  g_assert_no_error (error);

  arip_process_send_message (p, g_variant_new_string ("stop"));
  g_assert_true (arip_test_wait_for_state (p, ARIP_STATE_FINISHED, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
}

static void
test_kill (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "hang", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  const GError *stored;
  GPid pid;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  pid = arip_process_get_pid (p);
  g_assert_false (arip_test_pid_is_gone (pid));

  arip_process_kill (p);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  stored = arip_process_get_error (p);
  g_assert_nonnull (stored);
  g_assert_true (g_error_matches (stored, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGKILL);
  g_assert_false (arip_process_get_if_exited (p));

  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);

  arip_test_assert_pid_gone (pid);

  /* Killing a finished process does nothing. */
  arip_process_kill (p);
  g_assert_true (g_error_matches (arip_process_get_error (p), ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED));
}

static void
test_terminate (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "hang", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GPid pid;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  pid = arip_process_get_pid (p);

  arip_process_terminate (p);
  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "SIGTERM"));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGTERM);
  g_assert_false (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  arip_test_assert_pid_gone (pid);
}

static void
test_send_signal (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "hang", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);

  arip_process_send_signal (p, SIGHUP);
  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "SIGHUP"));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGHUP);
}

static void
test_crash (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "crash", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GPid pid;

  /* The function crashes as it starts: start either succeeds (it reached
   * EXECUTING first) or fails with the crash. */
  if (!arip_test_start (p, &error))
    {
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
      g_clear_error (&error);
    }
  pid = arip_process_get_pid (p);

  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_test_message ("crash message: %s", error->message);
  g_assert_nonnull (strstr (error->message, "SIGSEGV"));
  g_assert_nonnull (strstr (error->message, "fatal signal SIGSEGV"));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGSEGV);
  g_assert_false (arip_process_get_if_exited (p));
  arip_test_assert_pid_gone (pid);
}

static void
test_exit_status (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "exit", g_variant_new ("(i)", 7));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  if (!arip_test_start (p, &error))
    {
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      g_clear_error (&error);
    }
  result = arip_test_wait (p, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
  g_assert_true (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_exit_status (p), ==, 7);
  g_assert_false (arip_process_get_if_signaled (p));
}

static void
run_interrupt (const char *mode,
               GVariant  **result_out,
               GError    **error_out,
               AripProcess **process_out)
{
  AripProcess *p = arip_process_new (NULL, "busy_until_interrupted", g_variant_new ("(s)", mode));
  g_autoptr(GError) error = NULL;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);

  arip_process_interrupt (p);
  *result_out = arip_test_wait (p, error_out);
  *process_out = p;
}

static void
test_interrupt_handled (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;

  run_interrupt ("value", &result, &error, &p);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "interrupted"));
  g_assert_true (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_exit_status (p), ==, 0);
}

static void
test_interrupt_cancelled (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;

  run_interrupt ("error", &result, &error, &p);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED);
  g_assert_false (arip_process_get_if_signaled (p));
}

static void
on_noticed_message (AripProcess *process, GVariant *message, gpointer user_data)
{
  guint *n_noticed = user_data;

  if (g_variant_is_of_type (message, G_VARIANT_TYPE_STRING) &&
      g_str_equal (g_variant_get_string (message, NULL), "noticed"))
    (*n_noticed)++;
}

static void
test_interrupt_noticed_once (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "noticed_once", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  guint n_noticed = 0;

  g_signal_connect (p, "message", G_CALLBACK (on_noticed_message), &n_noticed);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);

  arip_process_interrupt (p);
  arip_test_wait_until (n_noticed > 0);

  /* A second interrupt is noticed by nobody and does no harm. */
  arip_process_interrupt (p);
  arip_test_iterate_for (100);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);

  arip_process_send_message (p, g_variant_new_string ("finish"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(i)", 9999));
  g_assert_cmpuint (n_noticed, ==, 1);
  g_assert_true (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_exit_status (p), ==, 0);
}

static void
test_stop_escalates (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid;

  arip_launcher_set_stop_timeouts (launcher, 200, 200);
  p = arip_process_new (launcher, "hang", NULL);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  pid = arip_process_get_pid (p);

  g_assert_true (arip_test_stop (p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  g_assert_nonnull (arip_process_get_error (p));
  /* "hang" ignores the interrupt; SIGTERM ends it. */
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGTERM);
  arip_test_assert_pid_gone (pid);

  /* Stopping a finished process completes at once. */
  g_assert_true (arip_test_stop (p, &error));
  g_assert_no_error (error);
}

static void
test_stop_to_sigkill (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  guint interrupt_ms = 0, terminate_ms = 0;
  GPid pid;

  arip_launcher_get_stop_timeouts (launcher, &interrupt_ms, &terminate_ms);
  g_assert_cmpuint (interrupt_ms, ==, 2000);
  g_assert_cmpuint (terminate_ms, ==, 2000);
  arip_launcher_set_stop_timeouts (launcher, 100, 100);
  arip_launcher_get_stop_timeouts (launcher, &interrupt_ms, &terminate_ms);
  g_assert_cmpuint (interrupt_ms, ==, 100);
  g_assert_cmpuint (terminate_ms, ==, 100);

  p = arip_process_new (launcher, "stubborn", NULL);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  pid = arip_process_get_pid (p);

  g_assert_true (arip_test_stop (p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  g_assert_nonnull (arip_process_get_error (p));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGKILL);
  arip_test_assert_pid_gone (pid);
}

static void
test_stop_cooperative (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "busy_until_interrupted",
                                               g_variant_new ("(s)", "error"));
  g_autoptr(GError) error = NULL;
  GPid pid;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  pid = arip_process_get_pid (p);

  g_assert_true (arip_test_stop (p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  g_assert_true (g_error_matches (arip_process_get_error (p), ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED));
  g_assert_false (arip_process_get_if_signaled (p));
  arip_test_assert_pid_gone (pid);
}

static void
test_wait_cancelled (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) wait_result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GPid pid;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  pid = arip_process_get_pid (p);

  arip_process_wait_async (p, cancellable, arip_test_store_result, &wait_result);
  arip_test_iterate_for (50);
  g_assert_null (wait_result);
  g_cancellable_cancel (cancellable);
  arip_test_wait_until (wait_result != NULL);
  result = arip_process_wait_finish (p, wait_result, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* The child keeps running. */
  arip_test_iterate_for (100);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);
  g_assert_false (arip_test_pid_is_gone (pid));

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "stopped"));
}

static void
on_message_collect (AripProcess *process, GVariant *message, gpointer user_data)
{
  GPtrArray *messages = user_data;

  g_ptr_array_add (messages, g_variant_ref (message));
}

static void
test_messages_from_child (void)
{
  const guint32 n = 2000;
  g_autoptr(AripProcess) p = arip_process_new (NULL, "send_messages", g_variant_new ("(u)", n));
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  g_signal_connect (p, "message", G_CALLBACK (on_message_collect), messages);
  arip_test_start (p, &error);
  g_assert_no_error (error);
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(u)", n));

  /* Every message came before the result, in order. */
  g_assert_cmpuint (messages->len, ==, n);
  for (guint32 i = 0; i < n; i++)
    arip_test_assert_variant (messages->pdata[i], g_variant_new ("(u)", i));
}

static void
test_messages_both_ways (void)
{
  const gint32 n = 20;
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  g_signal_connect (p, "message", G_CALLBACK (on_message_collect), messages);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);

  for (gint32 i = 0; i < n; i++)
    arip_process_send_message (p, g_variant_new ("(is)", i, "ping"));
  arip_test_wait_until (messages->len == (guint) n);
  for (gint32 i = 0; i < n; i++)
    arip_test_assert_variant (messages->pdata[i], g_variant_new ("(is)", i, "ping"));

  /* A second round after the first was answered. */
  arip_process_send_message (p, g_variant_new ("as", NULL));
  arip_test_wait_until (messages->len == (guint) n + 1);
  arip_test_assert_variant (messages->pdata[n], g_variant_new ("as", NULL));

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "stopped"));
  g_assert_cmpuint (messages->len, ==, (guint) n + 1);
}

static void
test_messages_before_crash (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "message_then_crash", NULL);
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* What the child sent before it died arrives before the end. */
  g_signal_connect (p, "message", G_CALLBACK (on_message_collect), messages);
  arip_test_start (p, NULL);
  result = arip_test_wait (p, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_cmpuint (messages->len, ==, 1);
  arip_test_assert_variant (messages->pdata[0], g_variant_new_string ("last words"));
  g_assert_cmpfloat_with_epsilon (arip_process_get_progress (p), 0.75, 1e-9);
}

static void
on_notify_progress (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  guint *n_notify = user_data;

  (*n_notify)++;
}

static void
test_progress (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "progress", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  guint n_notify = 0;
  gdouble progress = -1;

  g_signal_connect (p, "notify::progress", G_CALLBACK (on_notify_progress), &n_notify);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);

  arip_test_wait_until (n_notify > 0);
  g_assert_cmpfloat_with_epsilon (arip_process_get_progress (p), 0.5, 1e-9);
  g_object_get (p, "progress", &progress, NULL);
  g_assert_cmpfloat_with_epsilon (progress, 0.5, 1e-9);
  g_assert_cmpuint (n_notify, ==, 1);

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
}

static char *
read_all (GInputStream *stream)
{
  g_autoptr(GError) error = NULL;
  char buf[4096];
  GString *s = g_string_new (NULL);

  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, sizeof buf, NULL, &error);

      g_assert_no_error (error);
      if (n <= 0)
        break;
      g_string_append_len (s, buf, n);
    }
  return g_string_free (s, FALSE);
}

static void
test_stdout_pipe (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(AripProcess) p = arip_process_new (launcher, "print", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *expected_out = NULL;
  g_autofree char *expected_err = NULL;
  GInputStream *stdout_pipe;
  GInputStream *stderr_pipe;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  stdout_pipe = arip_process_get_stdout_pipe (p);
  stderr_pipe = arip_process_get_stderr_pipe (p);
  g_assert_true (G_IS_INPUT_STREAM (stdout_pipe));
  g_assert_true (G_IS_INPUT_STREAM (stderr_pipe));
  g_assert_null (arip_process_get_stdin_pipe (p));

  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "printed"));

  expected_out = g_strdup_printf ("hello from child %d\n", (int) arip_process_get_pid (p));
  expected_err = g_strdup_printf ("complaint from child %d\n", (int) arip_process_get_pid (p));
  out = read_all (stdout_pipe);
  err = read_all (stderr_pipe);
  g_assert_cmpstr (out, ==, expected_out);
  g_assert_nonnull (strstr (err, expected_err));
}

static void
test_stdin_pipe (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_autoptr(AripProcess) p = arip_process_new (launcher, "read_stdin", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GOutputStream *stdin_pipe;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  stdin_pipe = arip_process_get_stdin_pipe (p);
  g_assert_true (G_IS_OUTPUT_STREAM (stdin_pipe));
  g_assert_true (g_output_stream_write_all (stdin_pipe, "ping\n", 5, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (stdin_pipe, NULL, &error));
  g_assert_no_error (error);

  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "ping\n"));
}

static void
test_wait_twice (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GVariant) r1 = NULL;
  g_autoptr(GVariant) r2 = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  arip_process_wait_async (p, NULL, arip_test_store_result, &first);
  arip_process_wait_async (p, NULL, arip_test_store_result, &second);
  arip_process_send_message (p, g_variant_new_string ("stop"));
  arip_test_wait_until (first != NULL && second != NULL);
  r1 = arip_process_wait_finish (p, first, &error);
  g_assert_no_error (error);
  r2 = arip_process_wait_finish (p, second, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (r1, g_variant_new ("(s)", "stopped"));
  arip_test_assert_variant (r2, g_variant_new ("(s)", "stopped"));
}

static void
test_messages_large (void)
{
  const gsize size = 8 * 1024 * 1024;
  g_autoptr(AripProcess) p = arip_process_new (NULL, "wait_for_message", NULL);
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) big = NULL;
  g_autofree guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (i ^ (i >> 11));
  big = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, size, 1));

  g_signal_connect (p, "message", G_CALLBACK (on_message_collect), messages);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);

  /* More than a socket buffer holds, both ways, several times. */
  for (guint i = 0; i < 3; i++)
    arip_process_send_message (p, big);
  arip_test_wait_until (messages->len == 3);
  /* Compared as bytes: g_variant_equal() prints untrusted values to
   * compare them, which takes seconds at this size. */
  for (guint i = 0; i < 3; i++)
    {
      gsize n = 0;
      const guint8 *got;

      g_assert_true (g_variant_is_of_type (messages->pdata[i], G_VARIANT_TYPE_BYTESTRING));
      got = g_variant_get_fixed_array (messages->pdata[i], &n, 1);
      g_assert_cmpuint (n, ==, size);
      g_assert_true (memcmp (got, data, size) == 0);
    }

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
}

typedef struct {
  AripState     at;
  gboolean      use_kill;
  GAsyncResult *stop_result;
  gboolean      acted;
} StopAt;

static void
on_state_stop_at (AripProcess *p, AripState old_state, AripState new_state, gpointer user_data)
{
  StopAt *data = user_data;

  if (new_state != data->at || data->acted)
    return;
  data->acted = TRUE;
  if (data->use_kill)
    {
      arip_process_kill (p);
      g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
    }
  else
    arip_process_stop_async (p, NULL, arip_test_store_result, &data->stop_result);
}

/* Stopping or killing a process from its own state-changed handler, at
 * every step of its start: it ends, completely, with nothing left over. */
static void
test_stop_at_each_state (gconstpointer user_data)
{
  const gboolean use_kill = GPOINTER_TO_INT (user_data);

  for (AripState at = ARIP_STATE_INITIALIZED; at <= ARIP_STATE_EXECUTING; at++)
    {
      g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      g_autoptr(AripProcess) p = NULL;
      g_autoptr(GAsyncResult) start_result = NULL;
      g_autoptr(GVariant) result = NULL;
      g_autoptr(GError) error = NULL;
      StopAt data = { at, use_kill, NULL, FALSE };
      GPid pid;

      arip_launcher_set_stop_timeouts (launcher, 200, 200);
      p = arip_process_new (launcher, "hang", NULL);
      g_signal_connect (p, "state-changed", G_CALLBACK (on_state_stop_at), &data);
      arip_process_start_async (p, NULL, arip_test_store_result, &start_result);

      if (use_kill)
        arip_test_wait_until (data.acted);
      else
        {
          arip_test_wait_until (data.stop_result != NULL);
          g_assert_true (arip_process_stop_finish (p, data.stop_result, &error));
          g_assert_no_error (error);
          g_clear_object (&data.stop_result);
        }
      g_test_message ("stopped at %d", at);
      g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
      arip_test_wait_until (start_result != NULL);
      /* The function never finished: whatever start says, wait fails. */
      arip_process_start_finish (p, start_result, NULL);
      result = arip_test_wait (p, &error);
      g_assert_null (result);
      g_assert_nonnull (error);
      if (use_kill)
        g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
      pid = arip_process_get_pid (p);
      g_assert_cmpint (pid, >, 0);
      arip_test_assert_pid_gone (pid);
    }
  arip_test_wait_until (arip_get_running_processes () == 0);
}

static void
test_programmer_errors (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "echo", NULL);
  AripProcess *bad;

  g_test_expect_message ("Arip", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  bad = arip_process_new (NULL, NULL, NULL);
  g_test_assert_expected_messages ();
  g_assert_null (bad);

  g_test_expect_message ("Arip", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  arip_process_send_message (p, NULL);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Arip", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  g_assert_cmpint (arip_process_get_pid (NULL), ==, 0);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Arip", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  arip_set_max_processes (0);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (arip_get_max_processes (), >, 0);
}

int
main (int argc, char **argv)
{
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("hang", fn_hang, NULL, NULL);
  arip_register_function ("stubborn", fn_stubborn, NULL, NULL);
  arip_register_function ("wait_for_message", fn_wait_for_message, NULL, NULL);
  arip_register_function ("progress", fn_progress, NULL, NULL);
  arip_register_function ("busy_until_interrupted", fn_busy_until_interrupted, NULL, NULL);
  arip_register_function ("noticed_once", fn_noticed_once, NULL, NULL);
  arip_register_function ("send_messages", fn_send_messages, NULL, NULL);
  arip_register_function ("print", fn_print, NULL, NULL);
  arip_register_function ("message_then_crash", fn_message_then_crash, NULL, NULL);
  arip_register_function ("read_stdin", fn_read_stdin, NULL, NULL);
  arip_register_function ("crash", fn_crash, NULL, NULL);
  arip_register_function ("exit", fn_exit, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Process/new", test_new);
  g_test_add_func ("/Arip/Process/states", test_states);
  g_test_add_func ("/Arip/Process/unknown-function", test_unknown_function);
  g_test_add_func ("/Arip/Process/start-twice", test_start_twice);
  g_test_add_func ("/Arip/Process/not-started", test_not_started);
  g_test_add_func ("/Arip/Process/result-before-finished", test_result_before_finished);
  g_test_add_func ("/Arip/Process/wait-for-state", test_wait_for_state);
  g_test_add_func ("/Arip/Process/wait-cancelled", test_wait_cancelled);
  g_test_add_func ("/Arip/Process/kill", test_kill);
  g_test_add_func ("/Arip/Process/terminate", test_terminate);
  g_test_add_func ("/Arip/Process/send-signal", test_send_signal);
  g_test_add_func ("/Arip/Process/crash", test_crash);
  g_test_add_func ("/Arip/Process/exit-status", test_exit_status);
  g_test_add_func ("/Arip/Process/interrupt/handled", test_interrupt_handled);
  g_test_add_func ("/Arip/Process/interrupt/cancelled", test_interrupt_cancelled);
  g_test_add_func ("/Arip/Process/interrupt/noticed-once", test_interrupt_noticed_once);
  g_test_add_func ("/Arip/Process/stop/escalates", test_stop_escalates);
  g_test_add_func ("/Arip/Process/stop/cooperative", test_stop_cooperative);
  g_test_add_func ("/Arip/Process/stop/to-sigkill", test_stop_to_sigkill);
  g_test_add_func ("/Arip/Process/messages/from-child", test_messages_from_child);
  g_test_add_func ("/Arip/Process/messages/both-ways", test_messages_both_ways);
  g_test_add_func ("/Arip/Process/progress", test_progress);
  g_test_add_func ("/Arip/Process/stdout-pipe", test_stdout_pipe);
  g_test_add_func ("/Arip/Process/stdin-pipe", test_stdin_pipe);
  g_test_add_func ("/Arip/Process/wait-twice", test_wait_twice);
  g_test_add_func ("/Arip/Process/messages/large", test_messages_large);
  g_test_add_func ("/Arip/Process/messages/before-crash", test_messages_before_crash);
  g_test_add_data_func ("/Arip/Process/stop/at-each-state", GINT_TO_POINTER (FALSE), test_stop_at_each_state);
  g_test_add_data_func ("/Arip/Process/kill/at-each-state", GINT_TO_POINTER (TRUE), test_stop_at_each_state);
  g_test_add_func ("/Arip/Process/programmer-errors", test_programmer_errors);

  return g_test_run ();
}
