/* test-shared.c: objects shared between the parent and its children
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>

#include "arip-test-util.h"

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

static gpointer
open_shared (AripCall *call,
             GVariant *handle,
             GType     type)
{
  g_autoptr(GError) error = NULL;
  AripShared *shared = arip_call_get_shared (call, handle, &error);

  if (shared == NULL)
    {
      arip_call_return_gerror (call, error);
      return NULL;
    }
  g_assert_true (G_TYPE_CHECK_INSTANCE_TYPE (shared, type));
  return shared;
}

/* ((stt)uu): puts the numbers first .. first + n - 1. */
static void
fn_put (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripQueue) queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  g_autoptr(GError) error = NULL;
  guint32 first, n;

  if (queue == NULL)
    return;
  g_variant_get_child (args, 1, "u", &first);
  g_variant_get_child (args, 2, "u", &n);
  for (guint32 i = 0; i < n; i++)
    if (!arip_queue_put_sync (queue, g_variant_new_uint32 (first + i), -1, NULL, &error))
      {
        arip_call_return_gerror (call, error);
        return;
      }
  arip_call_return_value (call, g_variant_new ("(u)", n));
}

/* ((stt)i): gets items until the queue is closed, or one with a timeout;
 * answers the items it got, in order. */
static void
fn_get (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripQueue) queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  g_autoptr(GVariantBuilder) got = g_variant_builder_new (G_VARIANT_TYPE ("au"));
  gint32 timeout_ms;

  if (queue == NULL)
    return;
  g_variant_get_child (args, 1, "i", &timeout_ms);
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) item = arip_queue_get_sync (queue, timeout_ms, NULL, &error);

      if (item == NULL && g_error_matches (error, ARIP_ERROR, ARIP_ERROR_CLOSED))
        break;
      if (item == NULL)
        {
          arip_call_return_gerror (call, error);
          return;
        }
      g_variant_builder_add (got, "u", g_variant_get_uint32 (item));
      if (timeout_ms >= 0)
        break;
    }
  arip_call_return_value (call, g_variant_new ("(au)", got));
}

/* ((stt)): blocks in a get until killed. */
static void
fn_get_forever (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripQueue) queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  g_autoptr(GVariant) item = NULL;

  if (queue == NULL)
    return;
  item = arip_queue_get_sync (queue, -1, NULL, NULL);
  /* It got one: that is not what the test wanted. */
  arip_call_return_value (call, g_variant_new ("(b)", item != NULL));
}

/* ((stt)b): acquires the lock; dies holding it if told to, or answers
 * whether it was abandoned and releases it. */
static void
fn_lock (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripLock) lock = open_shared (call, handle, ARIP_TYPE_LOCK);
  g_autoptr(GError) error = NULL;
  gboolean die, abandoned;

  if (lock == NULL)
    return;
  g_variant_get_child (args, 1, "b", &die);
  if (!arip_lock_acquire_sync (lock, -1, NULL, &error))
    {
      arip_call_return_gerror (call, error);
      return;
    }
  if (die)
    kill (getpid (), SIGKILL);
  abandoned = arip_lock_get_abandoned (lock);
  arip_lock_release (lock);
  arip_call_return_value (call, g_variant_new ("(b)", abandoned));
}

/* ((stt)u): takes n units of the semaphore and dies. */
static void
fn_take_units_and_die (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripSemaphore) sem = open_shared (call, handle, ARIP_TYPE_SEMAPHORE);
  guint32 n;

  if (sem == NULL)
    return;
  g_variant_get_child (args, 1, "u", &n);
  for (guint32 i = 0; i < n; i++)
    g_assert_true (arip_semaphore_acquire_sync (sem, -1, NULL, NULL));
  kill (getpid (), SIGKILL);
}

/* ((stt)b): waits at the barrier; with TRUE, dies once the others wait. */
static void
fn_barrier (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripBarrier) barrier = open_shared (call, handle, ARIP_TYPE_BARRIER);
  g_autoptr(GError) error = NULL;
  gboolean die;
  guint index;

  if (barrier == NULL)
    return;
  g_variant_get_child (args, 1, "b", &die);
  if (die)
    {
      /* Wait in the background: a GSource on the connection, no thread. */
      arip_barrier_wait_async (barrier, NULL, NULL, NULL);
      while (arip_barrier_get_n_waiting (barrier) < arip_barrier_get_parties (barrier) - 1)
        g_usleep (1000);
      kill (getpid (), SIGKILL);
    }
  if (!arip_barrier_wait_sync (barrier, -1, NULL, &index, &error))
    {
      arip_call_return_gerror (call, error);
      return;
    }
  arip_call_return_value (call, g_variant_new ("(u)", index));
}

/* ((stt)(stt)): waits for the event, then sets a key of the dict. */
static void
fn_event_then_dict (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) event_handle = g_variant_get_child_value (args, 0);
  g_autoptr(GVariant) dict_handle = g_variant_get_child_value (args, 1);
  g_autoptr(AripEvent) event = open_shared (call, event_handle, ARIP_TYPE_EVENT);
  g_autoptr(AripSharedDict) dict = NULL;
  g_autoptr(GError) error = NULL;
  gboolean replaced;

  if (event == NULL)
    return;
  dict = open_shared (call, dict_handle, ARIP_TYPE_SHARED_DICT);
  if (dict == NULL)
    return;
  if (!arip_event_wait_sync (event, -1, NULL, &error))
    {
      arip_call_return_gerror (call, error);
      return;
    }
  arip_shared_dict_set (dict, "from-child", g_variant_new_int32 ((gint32) getpid ()), &error);
  g_assert_no_error (error);
  /* Only one of two compare-and-sets with the same expectation wins. */
  replaced = arip_shared_dict_replace (dict, "counter", g_variant_new_int32 (1),
                                       g_variant_new_int32 (2), &error);
  g_assert_no_error (error);
  g_assert_true (replaced);
  replaced = arip_shared_dict_replace (dict, "counter", g_variant_new_int32 (1),
                                       g_variant_new_int32 (3), &error);
  g_assert_false (replaced);
  arip_call_return_value (call, g_variant_new ("(b)", TRUE));
}

/* ((stt)): waits on the condition until the dict-free flag in the shared
 * memory's first byte is 1, then sets it to 2. */
static void
fn_condition (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) cond_handle = g_variant_get_child_value (args, 0);
  g_autoptr(GVariant) shm_handle = g_variant_get_child_value (args, 1);
  g_autoptr(AripCondition) cond = open_shared (call, cond_handle, ARIP_TYPE_CONDITION);
  g_autoptr(AripSharedMemory) shm = NULL;
  AripLock *lock;
  volatile guint8 *flag;
  g_autoptr(GError) error = NULL;

  if (cond == NULL)
    return;
  shm = open_shared (call, shm_handle, ARIP_TYPE_SHARED_MEMORY);
  if (shm == NULL)
    return;
  flag = arip_shared_memory_get_data (shm, NULL);
  lock = arip_condition_get_lock (cond);
  g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, NULL));
  while (flag[0] != 1)
    if (!arip_condition_wait_sync (cond, -1, NULL, &error))
      {
        arip_lock_release (lock);
        arip_call_return_gerror (call, error);
        return;
      }
  flag[0] = 2;
  arip_lock_release (lock);
  arip_call_return_value (call, g_variant_new ("(u)", (guint32) arip_shared_memory_get_size (shm)));
}

/* (v): opens whatever it is given. */
static void
fn_open (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(GVariant) inner = g_variant_get_variant (handle);
  g_autoptr(GError) error = NULL;
  g_autoptr(AripShared) shared = arip_call_get_shared (call, inner, &error);

  if (shared == NULL)
    arip_call_return_gerror (call, error);
  else
    arip_call_return_value (call, g_variant_new ("(s)", G_OBJECT_TYPE_NAME (shared)));
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static GVariant *
run (const char *function,
     GVariant   *args,
     GError    **error)
{
  return arip_test_run (function, args, NULL, error);
}

static void
start (AripLauncher  *launcher,
       const char    *function,
       GVariant      *args,
       GAsyncResult **result)
{
  arip_launcher_run_async (launcher, function, args, NULL, arip_test_store_result, result);
}

static GVariant *
finish (AripLauncher  *launcher,
        GAsyncResult **result,
        GError       **error)
{
  arip_test_wait_until (*result != NULL);
  return arip_launcher_run_finish (launcher, g_steal_pointer (result), error);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void
test_queue_local (void)
{
  g_autoptr(AripQueue) queue = arip_queue_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *result = NULL;

  g_assert_true (arip_shared_is_owner (ARIP_SHARED (queue)));
  g_assert_cmpuint (arip_queue_get_max_size (queue), ==, 2);
  g_assert_true (arip_queue_try_put (queue, g_variant_new_string ("a"), &error));
  g_assert_true (arip_queue_put_sync (queue, g_variant_new_string ("b"), 0, NULL, &error));
  g_assert_no_error (error);

  /* Full: a put waits, and a timed-out one puts nothing. */
  g_assert_false (arip_queue_try_put (queue, g_variant_new_string ("x"), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  g_assert_false (arip_queue_put_sync (queue, g_variant_new_string ("x"), 20, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 2);

  /* A waiting put goes in when room is made. */
  arip_queue_put_async (queue, g_variant_new_string ("c"), NULL, arip_test_store_result, &result);
  item = arip_queue_get_sync (queue, -1, NULL, &error);
  g_assert_cmpstr (g_variant_get_string (item, NULL), ==, "a");
  g_clear_pointer (&item, g_variant_unref);
  arip_test_wait_until (result != NULL);
  g_assert_true (arip_queue_put_finish (queue, g_steal_pointer (&result), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 2);

  /* A cancelled get takes nothing. */
  item = arip_queue_get_sync (queue, -1, NULL, &error);
  g_clear_pointer (&item, g_variant_unref);
  item = arip_queue_get_sync (queue, -1, NULL, &error);
  g_assert_cmpstr (g_variant_get_string (item, NULL), ==, "c");
  g_clear_pointer (&item, g_variant_unref);
  arip_queue_get_async (queue, cancellable, arip_test_store_result, &result);
  g_cancellable_cancel (cancellable);
  arip_test_wait_until (result != NULL);
  g_assert_null (arip_queue_get_finish (queue, g_steal_pointer (&result), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (arip_queue_try_put (queue, g_variant_new_string ("d"), &error));
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 1);

  /* Closed: puts fail, gets drain, then fail. */
  arip_queue_get_async (queue, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  item = arip_queue_get_finish (queue, g_steal_pointer (&result), &error);
  g_assert_cmpstr (g_variant_get_string (item, NULL), ==, "d");
  g_clear_pointer (&item, g_variant_unref);
  g_assert_true (arip_queue_try_put (queue, g_variant_new_string ("e"), &error));
  arip_queue_close (queue);
  g_assert_false (arip_queue_put_sync (queue, g_variant_new_string ("f"), -1, NULL, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CLOSED);
  g_clear_error (&error);
  item = arip_queue_get_sync (queue, -1, NULL, &error);
  g_assert_cmpstr (g_variant_get_string (item, NULL), ==, "e");
  g_clear_pointer (&item, g_variant_unref);
  g_assert_null (arip_queue_get_sync (queue, -1, NULL, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CLOSED);
}

static void
test_queue_child_puts (void)
{
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = run ("put", g_variant_new ("(@(stt)uu)", arip_shared_to_variant (ARIP_SHARED (queue)),
                                     100, 50),
               &error);
  g_assert_no_error (error);
  arip_test_assert_variant (reply, g_variant_new ("(u)", 50));
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 50);
  for (guint32 i = 0; i < 50; i++)
    {
      g_autoptr(GVariant) item = arip_queue_try_get (queue, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_get_uint32 (item), ==, 100 + i);
    }
  g_assert_null (arip_queue_try_get (queue, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
}

int
main (int argc, char **argv)
{
  arip_register_function ("put", fn_put, NULL, NULL);
  arip_register_function ("get", fn_get, NULL, NULL);
  arip_register_function ("get_forever", fn_get_forever, NULL, NULL);
  arip_register_function ("lock", fn_lock, NULL, NULL);
  arip_register_function ("take_units_and_die", fn_take_units_and_die, NULL, NULL);
  arip_register_function ("barrier", fn_barrier, NULL, NULL);
  arip_register_function ("event_then_dict", fn_event_then_dict, NULL, NULL);
  arip_register_function ("condition", fn_condition, NULL, NULL);
  arip_register_function ("open", fn_open, NULL, NULL);
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  g_test_add_func ("/Arip/Shared/queue/local", test_queue_local);
  g_test_add_func ("/Arip/Shared/queue/child-puts", test_queue_child_puts);

  return g_test_run ();
}
