/* test-peers.c: what the peers' users reach for first: call timeouts, a
 * pool's map, external commands, and pool calls with progress and
 * messages (issue 9)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>

#include "arip-test-util.h"

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

static void
fn_whoami (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) getpid ()));
}

/* (u): busy for that many milliseconds, deaf to interrupts. */
static void
fn_stubborn (AripCall *call, GVariant *args, gpointer user_data)
{
  guint32 ms;
  gint64 end;

  g_variant_get (args, "(u)", &ms);
  end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end)
    g_usleep (1000);
  arip_call_return_value (call, g_variant_new ("(s)", "done"));
}

/* (u): busy for that many milliseconds, or until interrupted. */
static void
fn_cooperative (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  guint32 ms;
  gint64 end;

  g_variant_get (args, "(u)", &ms);
  end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED, "interrupted");
          return;
        }
      g_usleep (1000);
    }
  arip_call_return_value (call, g_variant_new ("(s)", "done"));
}

/* (i): its square, unless it is 13. */
static void
fn_square (AripCall *call, GVariant *args, gpointer user_data)
{
  gint32 n;

  g_variant_get (args, "(i)", &n);
  if (n == 13)
    arip_call_return_error (call, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%d is unlucky", n);
  else
    arip_call_return_value (call, g_variant_new ("(i)", n * n));
}

/* Reports progress 0.25, 0.5, 1.0 and a message each time, then echoes
 * every message it gets until one says "stop". */
static void
on_call_message (AripCall *call, GVariant *message, gpointer user_data)
{
  if (g_variant_is_of_type (message, G_VARIANT_TYPE_STRING) &&
      g_str_equal (g_variant_get_string (message, NULL), "stop"))
    arip_call_return_value (call, g_variant_new ("(s)", "stopped"));
  else
    arip_call_send_message (call, g_variant_new ("(sv)", "echo", message));
}

static void
fn_chatty (AripCall *call, GVariant *args, gpointer user_data)
{
  static const gdouble steps[] = { 0.25, 0.5, 1.0 };

  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      arip_call_set_progress (call, steps[i]);
      arip_call_send_message (call, g_variant_new ("(sv)", "step", g_variant_new_double (steps[i])));
    }
  g_signal_connect (call, "message", G_CALLBACK (on_call_message), NULL);
}

/* ---------------------------------------------------------------------- */
/* Call timeouts                                                          */

static void
test_timeout_oneshot (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint64 start;

  /* Stubborn, with no stop grace: killed when the time is up. */
  arip_launcher_set_call_timeout (launcher, 300);
  arip_launcher_set_stop_timeouts (launcher, 0, 0);
  g_assert_cmpuint (arip_launcher_get_call_timeout (launcher), ==, 300);
  start = g_get_monotonic_time ();
  value = arip_test_launcher_run (launcher, "stubborn", g_variant_new ("(u)", 60000), NULL, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
  g_test_message ("%s (after %" G_GINT64_FORMAT " ms)", error->message,
                  (g_get_monotonic_time () - start) / 1000);
  g_assert_nonnull (strstr (error->message, "ran longer than its call timeout of 300 ms"));
  g_assert_null (strstr (error->message, "cancelled"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 20 * G_USEC_PER_SEC);

  /* A call that ends in time is not touched. */
  g_clear_error (&error);
  g_clear_pointer (&value, g_variant_unref);
  value = arip_test_launcher_run (launcher, "stubborn", g_variant_new ("(u)", 10), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(s)", "done"));
}

static void
test_timeout_process_cooperative (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  /* Cooperative: the interrupt ends it; the error is still the timeout. */
  arip_launcher_set_call_timeout (launcher, 200);
  p = arip_process_new (launcher, "cooperative", g_variant_new ("(u)", 60000));
  value = arip_test_run_process (p, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
  g_assert_true (g_error_matches (arip_process_get_error (p), ARIP_ERROR, ARIP_ERROR_TIMED_OUT));
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  arip_test_assert_pid_gone (arip_process_get_pid (p));
}

static void
test_timeout_pool (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint32 first, second;

  arip_launcher_set_call_timeout (launcher, 200);
  arip_launcher_set_stop_timeouts (launcher, 2000, 0);
  pool = arip_pool_new (launcher, 1);

  value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i)", &first);
  g_clear_pointer (&value, g_variant_unref);

  /* Cooperative: the call ends in time; the worker stays. */
  value = arip_pool_run_sync (pool, "cooperative", g_variant_new ("(u)", 60000), NULL, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
  g_clear_error (&error);
  value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i)", &second);
  g_assert_cmpint (second, ==, first);
  g_clear_pointer (&value, g_variant_unref);

  /* Stubborn: its worker goes, and the next call gets a new one. */
  value = arip_pool_run_sync (pool, "stubborn", g_variant_new ("(u)", 60000), NULL, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
  g_clear_error (&error);
  value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i)", &second);
  g_assert_cmpint (second, !=, first);
  arip_test_wait_until (arip_test_pid_is_gone (first));
}

/* ---------------------------------------------------------------------- */
/* Map                                                                    */

static GVariant *
squares_args (gint32 from, gint32 to)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(i)"));
  for (gint32 i = from; i < to; i++)
    g_variant_builder_add (&builder, "(i)", i);
  return g_variant_builder_end (&builder);
}

static GVariant *
map (AripPool      *pool,
     const char    *function,
     GVariant      *args,
     GCancellable  *cancellable,
     GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_pool_map_async (pool, function, args, cancellable, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_pool_map_finish (pool, result, error);
}

static void
test_map_in_order (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 3);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = map (pool, "square", squares_args (0, 12), NULL, &error);

  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (results, G_VARIANT_TYPE ("av")));
  g_assert_cmpuint (g_variant_n_children (results), ==, 12);
  for (gsize i = 0; i < 12; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);
      gint32 n;

      g_variant_get (value, "(i)", &n);
      g_assert_cmpint (n, ==, (gint32) (i * i));
    }

  /* Nothing to do: nothing to wait for. */
  g_clear_pointer (&results, g_variant_unref);
  results = map (pool, "square", g_variant_new_array (G_VARIANT_TYPE ("(i)"), NULL, 0), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 0);
}

static void
test_map_first_error (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = map (pool, "square", squares_args (0, 40), NULL, &error);

  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "13 is unlucky"));
  g_assert_nonnull (strstr (error->message, "Call 13 of the map"));
}

static gboolean
cancel_now (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_map_cancelled (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  GVariantBuilder builder;
  gint64 start = g_get_monotonic_time ();

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(u)"));
  for (guint i = 0; i < 6; i++)
    g_variant_builder_add (&builder, "(u)", 60000);
  g_timeout_add (300, cancel_now, cancellable);
  results = map (pool, "cooperative", g_variant_builder_end (&builder), cancellable, &error);
  g_assert_null (results);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* Every call stopped, none ran its minute. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 30 * G_USEC_PER_SEC);
}

/* ---------------------------------------------------------------------- */
/* External commands                                                      */

static char *
bytes_to_string (GBytes *bytes)
{
  if (bytes == NULL)
    return NULL;
  /* Empty bytes may have no data pointer at all. */
  if (g_bytes_get_size (bytes) == 0)
    return g_strdup ("");
  return g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static gboolean
run_command (AripLauncher        *launcher,
             const char * const  *argv,
             const char          *input,
             GCancellable        *cancellable,
             char               **out,
             char               **err,
             gint                *status,
             GError             **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) stdin_data = input != NULL ? g_bytes_new (input, strlen (input)) : NULL;
  g_autoptr(GBytes) out_bytes = NULL;
  g_autoptr(GBytes) err_bytes = NULL;
  gboolean ok;

  arip_launcher_run_command_async (launcher, argv, stdin_data, cancellable, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  ok = arip_launcher_run_command_finish (launcher, result, &out_bytes, &err_bytes, status, error);
  *out = bytes_to_string (out_bytes);
  *err = bytes_to_string (err_bytes);
  return ok;
}

static void
test_run_command (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  const char * const cat[] = { "cat", NULL };
  const char * const failing[] = { "sh", "-c", "echo out; echo 'it went wrong' >&2; exit 3", NULL };
  const char * const env[] = { "sh", "-c", "printf %s \"$ARIP_TEST_COMMAND_VAR\"", NULL };
  const char * const missing[] = { "/nonexistent/command", NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  gint status = -2;

  /* Input in, output out. */
  g_assert_true (run_command (launcher, cat, "through cat", NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "through cat");
  g_assert_cmpstr (err, ==, "");
  g_assert_cmpint (status, ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* A non-zero exit is an error with the status and stderr's tail; the
   * outputs are there too. */
  g_assert_false (run_command (launcher, failing, NULL, NULL, &out, &err, &status, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "exited with status 3"));
  g_assert_nonnull (strstr (error->message, "it went wrong"));
  g_assert_cmpint (status, ==, 3);
  g_assert_cmpstr (out, ==, "out\n");
  g_clear_error (&error);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* The launcher's environment. */
  arip_launcher_setenv (launcher, "ARIP_TEST_COMMAND_VAR", "from the launcher", TRUE);
  g_assert_true (run_command (launcher, env, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "from the launcher");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* A command that is not there. */
  g_assert_false (run_command (launcher, missing, NULL, NULL, &out, &err, &status, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
}

static void
test_run_command_cancelled (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  /* Ignores SIGINT and SIGTERM: only the last step ends it. */
  const char * const deaf[] = { "sh", "-c", "trap '' INT TERM; sleep 600 & wait; sleep 600", NULL };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  gint status;

  arip_launcher_set_stop_timeouts (launcher, 100, 100);
  g_timeout_add (200, cancel_now, cancellable);
  g_assert_false (run_command (launcher, deaf, NULL, cancellable, &out, &err, &status, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  arip_test_wait_until (arip_get_running_processes () == 0);
}

static void
test_commands_use_the_limiter (void)
{
  const guint saved = arip_get_max_processes ();
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  const char * const sleeper[] = { "sleep", "600", NULL };
  g_autoptr(GAsyncResult) spawned = NULL;
  g_autoptr(GAsyncResult) queued = NULL;
  g_autoptr(GSubprocess) first = NULL;
  g_autoptr(GSubprocess) second = NULL;
  g_autoptr(GError) error = NULL;

  arip_set_max_processes (1);
  arip_launcher_spawn_command_async (launcher, sleeper, NULL, arip_test_store_result, &spawned);
  arip_test_wait_until (spawned != NULL);
  first = arip_launcher_spawn_command_finish (launcher, spawned, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  /* The second waits for the first's slot. */
  arip_launcher_spawn_command_async (launcher, sleeper, NULL, arip_test_store_result, &queued);
  arip_test_iterate_for (300);
  g_assert_null (queued);

  g_subprocess_force_exit (first);
  arip_test_wait_until (queued != NULL);
  second = arip_launcher_spawn_command_finish (launcher, queued, &error);
  g_assert_no_error (error);
  g_subprocess_force_exit (second);
  arip_test_wait_until (arip_get_running_processes () == 0);
  arip_set_max_processes (saved);
}

/* ---------------------------------------------------------------------- */
/* Pool calls that talk                                                   */

typedef struct {
  GPtrArray *messages;
  GArray    *progress;
  GArray    *states;
} Watch;

static void
on_message (AripProcess *p, GVariant *message, gpointer user_data)
{
  Watch *w = user_data;

  g_ptr_array_add (w->messages, g_variant_ref (message));
}

static void
on_progress (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  Watch *w = user_data;
  gdouble progress = arip_process_get_progress (ARIP_PROCESS (object));

  g_array_append_val (w->progress, progress);
}

static void
on_state (AripProcess *p, AripState old_state, AripState new_state, gpointer user_data)
{
  Watch *w = user_data;

  g_array_append_val (w->states, new_state);
}

static void
test_pool_process_talks (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(AripProcess) p = arip_process_new_for_pool (pool, "chatty", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) warm = NULL;
  Watch w = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref),
              g_array_new (FALSE, FALSE, sizeof (gdouble)), g_array_new (FALSE, FALSE, sizeof (AripState)) };
  gint32 worker;

  g_assert_true (arip_process_get_pool (p) == pool);
  warm = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (warm, "(i)", &worker);

  g_signal_connect (p, "message", G_CALLBACK (on_message), &w);
  g_signal_connect (p, "notify::progress", G_CALLBACK (on_progress), &w);
  g_signal_connect (p, "state-changed", G_CALLBACK (on_state), &w);
  /* A message before the call has a worker follows the call. */
  arip_process_send_message (p, g_variant_new_string ("early"));
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);
  g_assert_cmpint (arip_process_get_pid (p), ==, worker);

  arip_test_wait_until (w.messages->len == 4);
  arip_process_send_message (p, g_variant_new_string ("later"));
  arip_test_wait_until (w.messages->len == 5);
  arip_process_send_message (p, g_variant_new_string ("stop"));
  value = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(s)", "stopped"));

  arip_test_assert_variant (w.messages->pdata[0],
                            g_variant_new ("(sv)", "step", g_variant_new_double (0.25)));
  arip_test_assert_variant (w.messages->pdata[3],
                            g_variant_new ("(sv)", "echo", g_variant_new_string ("early")));
  arip_test_assert_variant (w.messages->pdata[4],
                            g_variant_new ("(sv)", "echo", g_variant_new_string ("later")));
  g_assert_cmpuint (w.progress->len, ==, 3);
  g_assert_cmpfloat (g_array_index (w.progress, gdouble, 2), ==, 1.0);
  /* Every state once, in order. */
  g_assert_cmpuint (w.states->len, ==, 6);
  for (guint i = 0; i < w.states->len; i++)
    g_assert_cmpint (g_array_index (w.states, AripState, i), ==, ARIP_STATE_INITIALIZED + i);

  /* The worker served it and lives on. */
  g_assert_false (arip_test_pid_is_gone (worker));
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);

  g_ptr_array_unref (w.messages);
  g_array_unref (w.progress);
  g_array_unref (w.states);
}

static void
test_pool_process_interrupt_kill (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(AripProcess) p = arip_process_new_for_pool (pool, "cooperative", g_variant_new ("(u)", 60000));
  g_autoptr(AripProcess) k = arip_process_new_for_pool (pool, "stubborn", g_variant_new ("(u)", 60000));
  g_autoptr(AripProcess) queued = arip_process_new_for_pool (pool, "whoami", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GPid worker;

  /* Interrupted: the call ends, the worker stays. */
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  worker = arip_process_get_pid (p);
  arip_process_interrupt (p);
  value = arip_test_wait (p, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CHILD_CANCELLED);
  g_clear_error (&error);
  g_assert_false (arip_test_pid_is_gone (worker));

  /* Killed: at once, and its worker goes; a queued process behind it
   * runs on the next worker. */
  g_assert_true (arip_test_start (k, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_pid (k), ==, worker);
  arip_process_start_async (queued, NULL, NULL, NULL);
  g_assert_cmpint (arip_process_get_state (queued), ==, ARIP_STATE_INITIALIZING);
  arip_process_kill (k);
  g_assert_cmpint (arip_process_get_state (k), ==, ARIP_STATE_FINISHED);
  g_assert_true (g_error_matches (arip_process_get_error (k), ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED));
  g_assert_true (arip_process_get_if_signaled (k));
  g_assert_cmpint (arip_process_get_term_sig (k), ==, SIGKILL);

  g_clear_pointer (&value, g_variant_unref);
  value = arip_test_wait (queued, &error);
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_pid (queued), !=, worker);
  arip_test_wait_until (arip_test_pid_is_gone (worker));
}

static void
test_pool_process_stop_queued (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(AripProcess) busy = arip_process_new_for_pool (pool, "stubborn", g_variant_new ("(u)", 500));
  g_autoptr(AripProcess) queued = arip_process_new_for_pool (pool, "whoami", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  g_assert_true (arip_test_start (busy, &error));
  arip_process_start_async (queued, NULL, NULL, NULL);
  g_assert_true (arip_test_stop (queued, &error));
  g_assert_no_error (error);
  g_assert_true (g_error_matches (arip_process_get_error (queued), G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_assert_cmpint (arip_process_get_pid (queued), ==, 0);
  value = arip_test_wait (busy, &error);
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  arip_register_function ("whoami", fn_whoami, NULL, NULL);
  arip_register_function ("stubborn", fn_stubborn, NULL, NULL);
  arip_register_function ("cooperative", fn_cooperative, NULL, NULL);
  arip_register_function ("square", fn_square, NULL, NULL);
  arip_register_function ("chatty", fn_chatty, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Peers/timeout/oneshot", test_timeout_oneshot);
  g_test_add_func ("/Arip/Peers/timeout/process-cooperative", test_timeout_process_cooperative);
  g_test_add_func ("/Arip/Peers/timeout/pool", test_timeout_pool);
  g_test_add_func ("/Arip/Peers/map/in-order", test_map_in_order);
  g_test_add_func ("/Arip/Peers/map/first-error", test_map_first_error);
  g_test_add_func ("/Arip/Peers/map/cancelled", test_map_cancelled);
  g_test_add_func ("/Arip/Peers/command/run", test_run_command);
  g_test_add_func ("/Arip/Peers/command/cancelled", test_run_command_cancelled);
  g_test_add_func ("/Arip/Peers/command/limiter", test_commands_use_the_limiter);
  g_test_add_func ("/Arip/Peers/pool-process/talks", test_pool_process_talks);
  g_test_add_func ("/Arip/Peers/pool-process/interrupt-kill", test_pool_process_interrupt_kill);
  g_test_add_func ("/Arip/Peers/pool-process/stop-queued", test_pool_process_stop_queued);

  return g_test_run ();
}
