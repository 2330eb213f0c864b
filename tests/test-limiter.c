/* test-limiter.c: at most arip_get_max_processes() children at once
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <arip.h>

#include "arip-test-util.h"

static void
on_call_message (AripCall *call, GVariant *message, gpointer user_data)
{
  if (g_variant_is_of_type (message, G_VARIANT_TYPE_STRING) &&
      g_str_equal (g_variant_get_string (message, NULL), "stop"))
    arip_call_return_value (call, g_variant_new ("(s)", "stopped"));
}

/* Runs until the parent sends the string "stop". */
static void
fn_wait_for_message (AripCall *call, GVariant *args, gpointer user_data)
{
  g_signal_connect (call, "message", G_CALLBACK (on_call_message), NULL);
}

static void
release (AripProcess *p)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  arip_process_send_message (p, g_variant_new_string ("stop"));
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "stopped"));
}

static AripProcess *
start_holder (GAsyncResult **start_result)
{
  AripProcess *p = arip_process_new (NULL, "wait_for_message", NULL);

  arip_process_start_async (p, NULL, arip_test_store_result, start_result);
  return p;
}

static void
assert_started (AripProcess *p, GAsyncResult *start_result)
{
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (start_result);
  g_assert_true (arip_process_start_finish (p, start_result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);
  g_assert_cmpint (arip_process_get_pid (p), >, 0);
}

static void
assert_queued (AripProcess *p, GAsyncResult *start_result)
{
  g_assert_null (start_result);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_INITIALIZING);
  g_assert_cmpint (arip_process_get_pid (p), ==, 0);
}

static void
test_default (void)
{
  if (g_getenv ("ARIP_MAX_PROCS") != NULL)
    {
      g_test_skip ("ARIP_MAX_PROCS is set");
      return;
    }
  g_assert_cmpuint (arip_get_max_processes (), ==, 16);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);
}

static void
test_queue (void)
{
  const guint saved = arip_get_max_processes ();
  AripProcess *p[5];
  GAsyncResult *start[5] = { NULL, };

  arip_set_max_processes (4);
  g_assert_cmpuint (arip_get_max_processes (), ==, 4);

  for (guint i = 0; i < 5; i++)
    p[i] = start_holder (&start[i]);

  arip_test_wait_until (start[0] && start[1] && start[2] && start[3]);
  for (guint i = 0; i < 4; i++)
    assert_started (p[i], start[i]);

  /* Let anything that should not happen have its chance. */
  arip_test_iterate_for (300);
  assert_queued (p[4], start[4]);
  g_assert_cmpuint (arip_get_running_processes (), ==, 4);

  release (p[0]);
  arip_test_wait_until (start[4] != NULL);
  assert_started (p[4], start[4]);
  g_assert_cmpuint (arip_get_running_processes (), ==, 4);

  for (guint i = 1; i < 5; i++)
    release (p[i]);
  arip_test_wait_until (arip_get_running_processes () == 0);

  for (guint i = 0; i < 5; i++)
    {
      g_object_unref (start[i]);
      g_object_unref (p[i]);
    }
  arip_set_max_processes (saved);
}

static void
test_fifo (void)
{
  const guint saved = arip_get_max_processes ();
  AripProcess *p[4];
  GAsyncResult *start[4] = { NULL, };

  arip_set_max_processes (1);

  p[0] = start_holder (&start[0]);
  arip_test_wait_until (start[0] != NULL);
  assert_started (p[0], start[0]);

  for (guint i = 1; i < 4; i++)
    p[i] = start_holder (&start[i]);
  arip_test_iterate_for (100);

  /* Each finish lets exactly the next one in line run. */
  for (guint i = 1; i < 4; i++)
    {
      for (guint j = i; j < 4; j++)
        assert_queued (p[j], start[j]);
      g_assert_cmpuint (arip_get_running_processes (), ==, 1);

      release (p[i - 1]);
      arip_test_wait_until (start[i] != NULL);
      assert_started (p[i], start[i]);
      arip_test_iterate_for (50);
    }
  release (p[3]);
  arip_test_wait_until (arip_get_running_processes () == 0);

  for (guint i = 0; i < 4; i++)
    {
      g_object_unref (start[i]);
      g_object_unref (p[i]);
    }
  arip_set_max_processes (saved);
}

static void
on_state_changed_record (AripProcess *p, AripState old_state, AripState new_state, gpointer user_data)
{
  GArray *states = user_data;
  guint s = new_state;

  g_array_append_val (states, s);
}

static void
test_cancel_queued (void)
{
  const guint saved = arip_get_max_processes ();
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) holder_start = NULL;
  g_autoptr(GAsyncResult) queued_start = NULL;
  g_autoptr(GAsyncResult) run_result = NULL;
  g_autoptr(GAsyncResult) last_start = NULL;
  g_autoptr(AripProcess) holder = NULL;
  g_autoptr(AripProcess) queued = NULL;
  g_autoptr(AripProcess) last = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  arip_set_max_processes (1);
  holder = start_holder (&holder_start);
  arip_test_wait_until (holder_start != NULL);
  assert_started (holder, holder_start);

  /* A queued process that is stopped ends without ever being spawned. */
  queued = arip_process_new (NULL, "wait_for_message", NULL);
  g_signal_connect (queued, "state-changed", G_CALLBACK (on_state_changed_record), states);
  arip_process_start_async (queued, NULL, arip_test_store_result, &queued_start);
  arip_test_iterate_for (100);
  assert_queued (queued, queued_start);

  g_assert_true (arip_test_stop (queued, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_state (queued), ==, ARIP_STATE_FINISHED);
  g_assert_cmpint (arip_process_get_pid (queued), ==, 0);
  g_assert_cmpuint (states->len, ==, 1);
  g_assert_cmpuint (g_array_index (states, guint, 0), ==, ARIP_STATE_FINISHED);
  arip_test_wait_until (queued_start != NULL);
  g_assert_false (arip_process_start_finish (queued, queued_start, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  /* A queued process that is killed ends at once, never spawned. */
  {
    g_autoptr(AripProcess) killed = arip_process_new (NULL, "wait_for_message", NULL);
    g_autoptr(GAsyncResult) killed_start = NULL;
    g_autoptr(GVariant) killed_result = NULL;

    arip_process_start_async (killed, NULL, arip_test_store_result, &killed_start);
    arip_test_iterate_for (50);
    assert_queued (killed, killed_start);
    arip_process_kill (killed);
    g_assert_cmpint (arip_process_get_state (killed), ==, ARIP_STATE_FINISHED);
    g_assert_true (g_error_matches (arip_process_get_error (killed), ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED));
    g_assert_cmpint (arip_process_get_pid (killed), ==, 0);
    arip_test_wait_until (killed_start != NULL);
    g_assert_false (arip_process_start_finish (killed, killed_start, &error));
    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
    g_clear_error (&error);
    killed_result = arip_test_wait (killed, &error);
    g_assert_null (killed_result);
    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
    g_clear_error (&error);
    g_assert_cmpuint (arip_get_running_processes (), ==, 1);
  }

  /* A queued run whose cancellable is cancelled ends cancelled. */
  arip_run_in_process_async ("echo", NULL, cancellable, arip_test_store_result, &run_result);
  arip_test_iterate_for (100);
  g_assert_null (run_result);
  g_cancellable_cancel (cancellable);
  arip_test_wait_until (run_result != NULL);
  result = arip_run_in_process_finish (run_result, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  /* The cancelled ones left the queue: the next one in line runs as soon
   * as the holder finishes. */
  last = start_holder (&last_start);
  arip_test_iterate_for (100);
  assert_queued (last, last_start);
  release (holder);
  arip_test_wait_until (last_start != NULL);
  assert_started (last, last_start);
  release (last);
  arip_test_wait_until (arip_get_running_processes () == 0);

  arip_set_max_processes (saved);
}

static void
test_runs_never_fail (void)
{
  const guint saved = arip_get_max_processes ();
  GAsyncResult *results[6] = { NULL, };

  arip_set_max_processes (2);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    arip_run_in_process_async ("echo", g_variant_new ("(u)", i), NULL,
                               arip_test_store_result, &results[i]);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      arip_test_wait_until (results[i] != NULL);
      g_assert_cmpuint (arip_get_running_processes (), <=, 2);
      result = arip_run_in_process_finish (results[i], &error);
      g_assert_no_error (error);
      arip_test_assert_variant (result, g_variant_new ("(u)", i));
      g_object_unref (results[i]);
    }
  arip_test_wait_until (arip_get_running_processes () == 0);
  arip_set_max_processes (saved);
}

int
main (int argc, char **argv)
{
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("wait_for_message", fn_wait_for_message, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Limiter/default", test_default);
  g_test_add_func ("/Arip/Limiter/queue", test_queue);
  g_test_add_func ("/Arip/Limiter/fifo", test_fifo);
  g_test_add_func ("/Arip/Limiter/cancel-queued", test_cancel_queued);
  g_test_add_func ("/Arip/Limiter/runs-never-fail", test_runs_never_fail);

  return g_test_run ();
}
