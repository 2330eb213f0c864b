/* test-shared.c: objects shared between the parent and its children
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* ((stt)(stt)u): puts 0 .. n - 1 into each of the two queues in turn;
 * between two puts, what the main context has (answers that came) is
 * dispatched. */
static void
fn_put_alternately (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) first_handle = g_variant_get_child_value (args, 0);
  g_autoptr(GVariant) second_handle = g_variant_get_child_value (args, 1);
  g_autoptr(AripQueue) first = open_shared (call, first_handle, ARIP_TYPE_QUEUE);
  g_autoptr(AripQueue) second = open_shared (call, second_handle, ARIP_TYPE_QUEUE);
  g_autoptr(GError) error = NULL;
  guint32 n;

  if (first == NULL || second == NULL)
    return;
  g_variant_get_child (args, 2, "u", &n);
  for (guint32 i = 0; i < n; i++)
    {
      if (!arip_queue_put_sync (first, g_variant_new_uint32 (i), -1, NULL, &error) ||
          !arip_queue_put_sync (second, g_variant_new_uint32 (i), -1, NULL, &error))
        {
          arip_call_return_gerror (call, error);
          return;
        }
      while (g_main_context_iteration (g_main_context_get_thread_default (), FALSE))
        ;
    }
  arip_call_return_value (call, g_variant_new ("(u)", n));
}

/* ((stt)u): puts 0 .. n - 1 in bursts of 10, each once the queue is
 * empty, so that the parent's gets wait between them however slow it is
 * (valgrind). */
static void
fn_put_in_bursts (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripQueue) queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  guint32 n;

  if (queue == NULL)
    return;
  g_variant_get_child (args, 1, "u", &n);
  for (guint32 i = 0; i < n; i++)
    {
      while (i % 10 == 0 && arip_queue_get_length (queue) > 0)
        g_usleep (500);
      g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (i), -1, NULL, NULL));
    }
  arip_call_return_value (call, NULL);
}

/* ((stt)u): puts 0 .. n - 1 and dies before it answers: puts a child
 * did not wait for must not die with it. */
static void
fn_put_and_die (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripQueue) queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  guint32 n;

  if (queue == NULL)
    return;
  g_variant_get_child (args, 1, "u", &n);
  for (guint32 i = 0; i < n; i++)
    g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (i), -1, NULL, NULL));
  kill (getpid (), SIGKILL);
}

/* ((stt)): puts 0, 1, 2 ... until a put fails; answers how many were
 * put and the error, (uis). */
static void
fn_put_until_closed (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripQueue) queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  g_autoptr(GError) error = NULL;
  guint32 n = 0;

  if (queue == NULL)
    return;
  while (arip_queue_put_sync (queue, g_variant_new_uint32 (n), -1, NULL, &error))
    n++;
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CLOSED);
  arip_call_return_value (call, g_variant_new ("(uis)", n, error->code, error->message));
}

/* ((stt)): gets items asynchronously until the queue is closed, each get
 * cancelled at once or at a random moment up to 2 ms after it began; answers
 * the items and how many gets were cancelled, (auu). */
typedef struct {
  AripCall     *call;
  AripQueue    *queue;
  GArray       *got;
  guint         cancelled;
  GCancellable *cancellable;
  GSource      *timer;
} Storm;

static void storm_next (Storm *storm);

static gboolean
storm_cancel (gpointer data)
{
  Storm *storm = data;

  g_clear_pointer (&storm->timer, g_source_unref);
  g_cancellable_cancel (storm->cancellable);
  return G_SOURCE_REMOVE;
}

static void
storm_got (GObject *source, GAsyncResult *result, gpointer data)
{
  Storm *storm = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) item = arip_queue_get_finish (storm->queue, result, &error);

  if (storm->timer != NULL)
    g_source_destroy (storm->timer);
  g_clear_pointer (&storm->timer, g_source_unref);
  g_clear_object (&storm->cancellable);

  if (item != NULL)
    {
      guint32 value = g_variant_get_uint32 (item);

      g_array_append_val (storm->got, value);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    storm->cancelled++;
  else
    {
      if (g_error_matches (error, ARIP_ERROR, ARIP_ERROR_CLOSED))
        arip_call_return_value (storm->call,
                                g_variant_new ("(@auu)",
                                               g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32,
                                                                          storm->got->data,
                                                                          storm->got->len,
                                                                          sizeof (guint32)),
                                               storm->cancelled));
      else
        arip_call_return_gerror (storm->call, error);
      g_object_unref (storm->call);
      g_object_unref (storm->queue);
      g_array_unref (storm->got);
      g_free (storm);
      return;
    }
  storm_next (storm);
}

static void
storm_next (Storm *storm)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();

  storm->cancellable = g_cancellable_new ();
  arip_queue_get_async (storm->queue, storm->cancellable, storm_got, storm);
  /* Half at once (before or after the parent answers), half soon. */
  if (g_random_boolean ())
    {
      g_cancellable_cancel (storm->cancellable);
      return;
    }
  storm->timer = g_timeout_source_new (g_random_int_range (0, 3));
  g_source_set_callback (storm->timer, storm_cancel, storm, NULL);
  g_source_attach (storm->timer, context);
}

static void
fn_cancel_storm_get (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  AripQueue *queue = open_shared (call, handle, ARIP_TYPE_QUEUE);
  Storm *storm;

  if (queue == NULL)
    return;
  storm = g_new0 (Storm, 1);
  storm->call = g_object_ref (call);
  storm->queue = queue;
  storm->got = g_array_new (FALSE, FALSE, sizeof (guint32));
  storm_next (storm);
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

/* ((stt)b): waits at the barrier; with TRUE, dies once all but one party
 * wait (itself among them). */
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
  if (!arip_barrier_wait_sync (barrier, -1, &index, NULL, &error))
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

/* ((stt)): holds the lock, then writes garbage on every socket it has:
 * its channel and its shared objects' connection. */
static void
fn_garbage (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, 0);
  g_autoptr(AripLock) lock = open_shared (call, handle, ARIP_TYPE_LOCK);
  static const char garbage[64] = "\xff\xff\xff\x7f\x09\x00\x00\x00 not a frame at all";

  if (lock == NULL)
    return;
  g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, NULL));
  for (int fd = 3; fd < 1024; fd++)
    {
      struct stat st;

      if (fstat (fd, &st) == 0 && S_ISSOCK (st.st_mode))
        (void) !write (fd, garbage, sizeof garbage);
    }
  /* Whatever comes now, it is not for us to see. */
  g_usleep (G_USEC_PER_SEC * 60);
  arip_call_return_value (call, g_variant_new ("()"));
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
  g_autoptr(GAsyncResult) done = NULL;

  arip_test_wait_until (*result != NULL);
  done = g_steal_pointer (result);
  return arip_launcher_run_finish (launcher, done, error);
}

/* Takes the numbers first .. first + n - 1 from @queue, in order, and
 * finds it empty after them. */
static void
assert_takes_in_order (AripQueue *queue,
                       guint32    first,
                       guint32    n)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (arip_queue_get_length (queue), ==, n);
  for (guint32 i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = arip_queue_try_get (queue, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_get_uint32 (item), ==, first + i);
    }
  g_assert_null (arip_queue_try_get (queue, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
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
  g_assert_true (arip_queue_put_finish (queue, result, &error));
  g_clear_object (&result);
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
  g_assert_null (arip_queue_get_finish (queue, result, &error));
  g_clear_object (&result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (arip_queue_try_put (queue, g_variant_new_string ("d"), &error));
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 1);

  /* Closed: puts fail, gets drain, then fail. */
  arip_queue_get_async (queue, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  item = arip_queue_get_finish (queue, result, &error);
  g_clear_object (&result);
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
  assert_takes_in_order (queue, 100, 50);
}

static GVariant *
handle (gpointer shared)
{
  return arip_shared_to_variant (ARIP_SHARED (shared));
}

/* A child's puts into an unbounded queue go without waiting for their
 * answers: a child that dies right after them has still put them all. */
static void
test_queue_put_then_killed (void)
{
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = run ("put_and_die", g_variant_new ("(@(stt)u)", handle (queue), 500), &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_null (reply);
  assert_takes_in_order (queue, 0, 500);
}

/* A child's puts into a bounded queue and an unbounded one in turn: the
 * parent answers a child's puts only now and then, and the bounded queue
 * still never holds more than its size, however slowly it is emptied;
 * every item of both arrives once, in order. */
static void
test_queue_bounded_beside_unbounded (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) bounded = arip_queue_new (100);
  g_autoptr(AripQueue) unbounded = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GAsyncResult *result = NULL;
  const guint32 n = 1000;
  guint32 i;
  guint max_seen = 0;

  start (launcher, "put_alternately", g_variant_new ("(@(stt)@(stt)u)", handle (bounded),
                                                     handle (unbounded), n),
         &result);
  /* In bursts: once the child has run into the bound (and has had time
   * to go past it, if it could), everything is taken at once. */
  for (i = 0; i < n;)
    {
      arip_test_wait_until (arip_queue_get_length (bounded) >= 100 || result != NULL);
      g_usleep (1000);
      guint32 before = i;

      max_seen = MAX (max_seen, arip_queue_get_length (bounded));
      for (;;)
        {
          g_autoptr(GVariant) item = arip_queue_try_get (bounded, NULL);

          if (item == NULL)
            break;
          g_assert_cmpuint (g_variant_get_uint32 (item), ==, i);
          i++;
        }
      if (i == before && result != NULL)
        break;   /* the child is done, and took it all with it */
    }
  reply = finish (launcher, &result, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (reply, g_variant_new ("(u)", n));
  g_test_message ("at most %u items in the bounded queue", max_seen);
  g_assert_cmpuint (max_seen, <=, 100);
  g_assert_cmpuint (i, ==, n);
  g_assert_cmpuint (arip_queue_get_length (bounded), ==, 0);
  assert_takes_in_order (unbounded, 0, n);
}

/* Waits (generously) until @results holds a result, and takes it. */
static GAsyncResult *
pop_result (AripResultQueue *results,
            guint64         *tag)
{
  struct pollfd pfd = { .fd = arip_result_queue_get_fd (results), .events = POLLIN };
  GAsyncResult *result;

  g_assert_cmpint (poll (&pfd, 1, 30000 * arip_test_timeout_multiplier ()), ==, 1);
  result = arip_result_queue_pop (results, tag);
  g_assert_nonnull (result);
  return result;
}

typedef struct {
  AripQueue       *queue;
  AripResultQueue *results;
  GCancellable    *cancellable;
  guint64          tag;
} GetFromThread;

static gpointer
get_from_thread (gpointer data)
{
  GetFromThread *get = data;

  arip_queue_get_to_queue (get->queue, get->results, get->tag, get->cancellable);
  return NULL;
}

/* Takes the next result of @results: its tag is @tag and @queue's get
 * ended with the item @value. */
static void
assert_got (AripResultQueue *results,
            AripQueue       *queue,
            guint64          tag,
            guint32          value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GVariant) item = NULL;
  guint64 got_tag = 0;

  result = pop_result (results, &got_tag);
  g_assert_cmpuint (got_tag, ==, tag);
  item = arip_queue_get_finish (queue, result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_uint32 (item), ==, value);
}

/* A get from another thread, whose result goes to a result queue: the
 * item a child puts, the item put here, a cancelled wait that takes
 * nothing, an item already there, a closed queue. */
static void
test_queue_get_to_queue (void)
{
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(AripResultQueue) results = arip_result_queue_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  GetFromThread get = { queue, results, NULL, 7 };
  guint64 tag = 0;

  /* Waiting first, then ended by a child's put. */
  g_thread_join (g_thread_new ("get", get_from_thread, &get));
  {
    g_autoptr(GVariant) reply = run ("put", g_variant_new ("(@(stt)uu)", handle (queue), 40, 1),
                                     &error);

    g_assert_no_error (error);
    assert_got (results, queue, 7, 40);
  }

  /* An item put in this process. */
  get.tag = 8;
  g_thread_join (g_thread_new ("get", get_from_thread, &get));
  g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (41), -1, NULL, &error));
  assert_got (results, queue, 8, 41);

  /* Cancelled while it waits: it takes nothing. */
  get.tag = 9;
  get.cancellable = cancellable;
  g_thread_join (g_thread_new ("get", get_from_thread, &get));
  g_cancellable_cancel (cancellable);
  {
    g_autoptr(GAsyncResult) result = pop_result (results, &tag);
    g_autoptr(GVariant) item = arip_queue_get_finish (queue, result, &error);

    g_assert_cmpuint (tag, ==, 9);
    g_assert_null (item);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }
  g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (42), -1, NULL, &error));

  /* An item there before the get starts. */
  get.tag = 10;
  get.cancellable = NULL;
  g_thread_join (g_thread_new ("get", get_from_thread, &get));
  assert_got (results, queue, 10, 42);

  /* A closed, drained queue: CLOSED, for a get waiting then as for one
   * started after. */
  get.tag = 11;
  g_thread_join (g_thread_new ("get", get_from_thread, &get));
  arip_queue_close (queue);
  for (guint64 expected = 11; expected <= 12; expected++)
    {
      g_autoptr(GAsyncResult) result = pop_result (results, &tag);
      g_autoptr(GVariant) item = arip_queue_get_finish (queue, result, &error);

      g_assert_cmpuint (tag, ==, expected);
      g_assert_null (item);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_CLOSED);
      g_clear_error (&error);
      if (expected == 11)
        {
          get.tag = 12;
          g_thread_join (g_thread_new ("get", get_from_thread, &get));
        }
    }
}

/* Closed while a child puts as fast as it can: every put that said yes
 * is in the queue, or the put that failed says how many did not get in. */
static void
test_queue_closed_while_putting (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *message = NULL;
  GAsyncResult *result = NULL;
  guint32 put, drained = 0;
  gint code;

  start (launcher, "put_until_closed", g_variant_new ("(@(stt))", handle (queue)), &result);
  arip_test_wait_until (arip_queue_get_length (queue) >= 100);
  arip_queue_close (queue);
  reply = finish (launcher, &result, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(uis)", &put, &code, &message);
  g_assert_cmpint (code, ==, ARIP_ERROR_CLOSED);

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GVariant) item = arip_queue_try_get (queue, &local_error);

      if (item == NULL)
        {
          g_assert_error (local_error, ARIP_ERROR, ARIP_ERROR_CLOSED);
          break;
        }
      g_assert_cmpuint (g_variant_get_uint32 (item), ==, drained);
      drained++;
    }
  g_assert_cmpuint (drained, >=, 100);
  g_assert_cmpuint (drained, <=, put);
  if (drained < put)
    {
      g_autofree char *count = g_strdup_printf ("(%u item", put - drained);

      if (strstr (message, count) == NULL)
        g_error ("%u puts said yes, %u got in, and the failed put said: %s", put, drained, message);
    }
  g_test_message ("%u puts said yes, %u got in before the close", put, drained);
}

static void
test_queue_child_gets (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (3);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GAsyncResult *result = NULL;

  start (launcher, "get", g_variant_new ("(@(stt)i)", handle (queue), -1), &result);
  /* Asynchronously: a _sync put would block the main context that starts
   * the child, once the queue is full. */
  for (guint32 i = 0; i < 20; i++)
    {
      GAsyncResult *put = NULL;

      arip_queue_put_async (queue, g_variant_new_uint32 (i), NULL, arip_test_store_result, &put);
      arip_test_wait_until (put != NULL);
      g_assert_true (arip_queue_put_finish (queue, put, &error));
      g_object_unref (put);
    }
  arip_queue_close (queue);
  reply = finish (launcher, &result, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) got = g_variant_get_child_value (reply, 0);
    gsize n;
    const guint32 *values = g_variant_get_fixed_array (got, &n, sizeof (guint32));

    g_assert_cmpuint (n, ==, 20);
    for (guint32 i = 0; i < 20; i++)
      g_assert_cmpuint (values[i], ==, i);
  }
}

/* A child's get that times out takes nothing; the error is what the
 * child's function saw. */
static void
test_queue_child_timeout (void)
{
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) item = NULL;

  reply = run ("get", g_variant_new ("(@(stt)i)", handle (queue), 30), &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_null (reply);
  g_assert_true (arip_queue_try_put (queue, g_variant_new_uint32 (7), NULL));
  item = arip_queue_try_get (queue, NULL);
  g_assert_cmpuint (g_variant_get_uint32 (item), ==, 7);
}

/* A child killed inside get: no item goes to it. */
static void
test_queue_killed_in_get (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) item = NULL;
  gint64 start_time;

  process = arip_process_new (launcher, "get_forever", g_variant_new ("(@(stt))", handle (queue)));
  g_assert_true (arip_test_start (process, &error));
  g_assert_true (arip_test_wait_for_state (process, ARIP_STATE_EXECUTING, &error));
  /* Let its get arrive, then kill it: whatever is put after is ours. */
  arip_test_iterate_for (50);
  arip_process_kill (process);
  g_assert_null (arip_test_wait (process, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
  g_clear_error (&error);

  start_time = g_get_monotonic_time ();
  g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (1), -1, NULL, NULL));
  item = arip_queue_get_sync (queue, 1000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_uint32 (item), ==, 1);
  g_assert_cmpint (g_get_monotonic_time () - start_time, <, G_USEC_PER_SEC);
}

/* An item on its way to a child that dies before it reads it goes back;
 * one it read is its own. */
static void
test_queue_unread_goes_back (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) item = NULL;
  GAsyncResult *result = NULL;
  GPid pid;

  process = arip_process_new (launcher, "get_forever", g_variant_new ("(@(stt))", handle (queue)));
  g_assert_true (arip_test_start (process, &error));
  g_assert_true (arip_test_wait_for_state (process, ARIP_STATE_EXECUTING, &error));
  arip_test_iterate_for (50);
  /* Stopped in its get: the item goes out to it, and is never read. */
  pid = arip_process_get_pid (process);
  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);
  g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (7), -1, NULL, NULL));
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 0);
  arip_process_kill (process);
  g_assert_null (arip_test_wait (process, &error));
  g_clear_error (&error);
  item = arip_queue_get_sync (queue, 1000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_uint32 (item), ==, 7);
  g_clear_pointer (&item, g_variant_unref);

  /* Read: the child's own, not given back when it ends. */
  start (launcher, "get", g_variant_new ("(@(stt)i)", handle (queue), -1), &result);
  g_assert_true (arip_queue_put_sync (queue, g_variant_new_uint32 (8), -1, NULL, NULL));
  arip_queue_close (queue);
  item = finish (launcher, &result, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (item, g_variant_new_parsed ("([uint32 8],)"));
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 0);
}

static gpointer
acquire_then_notify (gpointer data)
{
  AripCondition *cond = data;
  AripLock *lock = arip_condition_get_lock (cond);

  g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, NULL));
  arip_condition_notify_all (cond);
  arip_lock_release (lock);
  return NULL;
}

/* In one process, two threads: a condition's wait hands its lock to a
 * thread blocked acquiring it, which must wake (and may notify us). */
static void
test_condition_hands_lock_to_thread (void)
{
  g_autoptr(AripCondition) cond = arip_condition_new (NULL);
  AripLock *lock = arip_condition_get_lock (cond);
  g_autoptr(GError) error = NULL;
  GThread *thread;

  g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, NULL));
  thread = g_thread_new ("acquirer", acquire_then_notify, cond);
  /* Let it block in its acquire. */
  g_usleep (100 * 1000);
  g_assert_true (arip_condition_wait_sync (cond, 10000, NULL, &error));
  g_assert_no_error (error);
  arip_lock_release (lock);
  g_thread_join (thread);
}

static void
test_lock_abandoned (void)
{
  g_autoptr(AripLock) lock = arip_lock_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = run ("lock", g_variant_new ("(@(stt)b)", handle (lock), TRUE), &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_clear_error (&error);

  /* Freed by the death, within a second; the next holder is told. */
  g_assert_true (arip_lock_acquire_sync (lock, 1000, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (arip_lock_get_abandoned (lock));
  arip_lock_release (lock);

  /* The next one is not. */
  reply = run ("lock", g_variant_new ("(@(stt)b)", handle (lock), FALSE), &error);
  g_assert_no_error (error);
  arip_test_assert_variant (reply, g_variant_new ("(b)", FALSE));
  g_assert_true (arip_lock_try_acquire (lock));
  g_assert_false (arip_lock_get_abandoned (lock));
  arip_lock_release (lock);
}

/* A lock held by the parent: the child waits, cancelled waits take
 * nothing. */
static void
test_lock_contended (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLock) lock = arip_lock_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GAsyncResult *result = NULL, *mine = NULL;

  g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, &error));
  g_assert_false (arip_lock_try_acquire (lock));
  start (launcher, "lock", g_variant_new ("(@(stt)b)", handle (lock), FALSE), &result);
  arip_test_iterate_for (100);
  g_assert_null (result);

  /* Our own second acquire waits behind the child's, and is cancelled. */
  arip_lock_acquire_async (lock, cancellable, arip_test_store_result, &mine);
  g_cancellable_cancel (cancellable);
  arip_test_wait_until (mine != NULL);
  g_assert_false (arip_lock_acquire_finish (lock, mine, &error));
  g_clear_object (&mine);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  arip_lock_release (lock);
  reply = finish (launcher, &result, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (reply, g_variant_new ("(b)", FALSE));
  g_assert_true (arip_lock_try_acquire (lock));
  arip_lock_release (lock);
}

static void
test_semaphore_death (void)
{
  g_autoptr(AripSemaphore) sem = arip_semaphore_new (3, 3);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = run ("take_units_and_die", g_variant_new ("(@(stt)u)", handle (sem), 2), &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_clear_error (&error);
  /* Its two units are back by the time its death is reported. */
  g_assert_cmpuint (arip_semaphore_get_value (sem), ==, 3);

  g_assert_true (arip_semaphore_acquire_sync (sem, 0, NULL, &error));
  g_assert_true (arip_semaphore_release (sem, &error));
  g_assert_false (arip_semaphore_release (sem, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_clear_error (&error);
  for (guint i = 0; i < 3; i++)
    g_assert_true (arip_semaphore_try_acquire (sem));
  g_assert_false (arip_semaphore_try_acquire (sem));
  g_assert_false (arip_semaphore_acquire_sync (sem, 10, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

static void
test_barrier (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripBarrier) barrier = arip_barrier_new (3);
  g_autoptr(GError) error = NULL;
  GAsyncResult *results[2] = { NULL, NULL }, *mine = NULL;
  guint index, seen = 0;

  for (guint i = 0; i < 2; i++)
    start (launcher, "barrier", g_variant_new ("(@(stt)b)", handle (barrier), FALSE), &results[i]);
  /* Asynchronously: a _sync wait would block the main context that starts
   * the children. */
  arip_barrier_wait_async (barrier, NULL, arip_test_store_result, &mine);
  arip_test_wait_until (mine != NULL);
  g_assert_true (arip_barrier_wait_finish (barrier, mine, &index, &error));
  g_clear_object (&mine);
  g_assert_no_error (error);
  seen |= 1u << index;
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GVariant) reply = finish (launcher, &results[i], &error);
      guint32 child_index;

      g_assert_no_error (error);
      g_variant_get (reply, "(u)", &child_index);
      seen |= 1u << child_index;
    }
  g_assert_cmpuint (seen, ==, 7);

  /* A party dies waiting: the others' waits break, and later ones. */
  start (launcher, "barrier", g_variant_new ("(@(stt)b)", handle (barrier), TRUE), &results[0]);
  arip_barrier_wait_async (barrier, NULL, arip_test_store_result, &mine);
  arip_test_wait_until (mine != NULL);
  g_assert_false (arip_barrier_wait_finish (barrier, mine, NULL, &error));
  g_clear_object (&mine);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_BROKEN);
  g_clear_error (&error);
  g_assert_null (finish (launcher, &results[0], &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_clear_error (&error);

  g_assert_true (arip_barrier_is_broken (barrier));
  g_assert_false (arip_barrier_wait_sync (barrier, -1, NULL, NULL, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_BROKEN);
  g_clear_error (&error);
  arip_barrier_reset (barrier);
  g_assert_false (arip_barrier_is_broken (barrier));
  g_assert_cmpuint (arip_barrier_get_n_waiting (barrier), ==, 0);

  /* Aborted: broken, for waits under way and later ones, until reset. */
  arip_barrier_wait_async (barrier, NULL, arip_test_store_result, &mine);
  arip_test_wait_until (arip_barrier_get_n_waiting (barrier) == 1);
  arip_barrier_abort (barrier);
  arip_test_wait_until (mine != NULL);
  g_assert_false (arip_barrier_wait_finish (barrier, mine, NULL, &error));
  g_clear_object (&mine);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_BROKEN);
  g_clear_error (&error);
  g_assert_true (arip_barrier_is_broken (barrier));
  arip_barrier_reset (barrier);
  g_assert_false (arip_barrier_is_broken (barrier));
}

static void
on_changed (AripSharedDict *dict,
            const char     *key,
            gpointer        user_data)
{
  GPtrArray *keys = user_data;

  g_ptr_array_add (keys, g_strdup (key));
}

static void
test_event_and_dict (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripEvent) event = arip_event_new ();
  g_autoptr(AripSharedDict) dict = arip_shared_dict_new ();
  g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;
  g_auto(GStrv) keys = NULL;
  GAsyncResult *result = NULL;

  g_signal_connect (dict, "changed", G_CALLBACK (on_changed), changes);
  g_assert_true (arip_shared_dict_set (dict, "counter", g_variant_new_int32 (1), NULL));
  start (launcher, "event_then_dict",
         g_variant_new ("(@(stt)@(stt))", handle (event), handle (dict)), &result);
  arip_test_iterate_for (50);
  g_assert_null (result);
  g_assert_false (arip_event_is_set (event));
  arip_event_set (event);
  g_assert_true (arip_event_is_set (event));
  reply = finish (launcher, &result, &error);
  g_assert_no_error (error);

  value = arip_shared_dict_lookup (dict, "counter", NULL);
  g_assert_cmpint (g_variant_get_int32 (value), ==, 2);
  g_clear_pointer (&value, g_variant_unref);
  value = arip_shared_dict_lookup (dict, "from-child", NULL);
  g_assert_nonnull (value);
  g_assert_null (arip_shared_dict_lookup (dict, "nothing", NULL));
  keys = arip_shared_dict_get_keys (dict, NULL);
  g_assert_cmpuint (g_strv_length (keys), ==, 2);
  g_assert_true (arip_shared_dict_remove (dict, "from-child", NULL));
  g_assert_false (arip_shared_dict_remove (dict, "from-child", NULL));
  g_assert_false (arip_shared_dict_replace (dict, "new", g_variant_new_int32 (0),
                                            g_variant_new_int32 (1), NULL));
  g_assert_true (arip_shared_dict_replace (dict, "new", NULL, g_variant_new_int32 (1), NULL));

  /* Every change, the child's too, was announced here. */
  arip_test_wait_until (changes->len == 5);
  g_assert_cmpstr (changes->pdata[0], ==, "counter");
  g_assert_cmpstr (changes->pdata[1], ==, "from-child");
  g_assert_cmpstr (changes->pdata[2], ==, "counter");
  g_assert_cmpstr (changes->pdata[3], ==, "from-child");
  g_assert_cmpstr (changes->pdata[4], ==, "new");
  arip_test_iterate_for (20);
  g_assert_cmpuint (changes->len, ==, 5);
}

static void
test_condition_and_memory (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripCondition) cond = arip_condition_new (NULL);
  g_autoptr(AripSharedMemory) shm = NULL;
  AripLock *lock = arip_condition_get_lock (cond);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GAsyncResult *result = NULL;
  volatile guint8 *flag;

  shm = arip_shared_memory_new (1 << 20, &error);
  g_assert_no_error (error);
  flag = arip_shared_memory_get_data (shm, NULL);
  g_assert_cmpuint (flag[0], ==, 0);

  /* Waiting needs the lock. */
  g_assert_false (arip_condition_wait_sync (cond, 0, NULL, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  g_clear_error (&error);

  start (launcher, "condition", g_variant_new ("(@(stt)@(stt))", handle (cond), handle (shm)),
         &result);
  /* Until the child waits, nothing to notify. */
  for (;;)
    {
      g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, NULL));
      arip_condition_notify (cond, 1);
      if (arip_lock_get_abandoned (lock))
        g_error ("the child died");
      flag[0] = 1;
      arip_condition_notify_all (cond);
      arip_lock_release (lock);
      break;
    }
  reply = finish (launcher, &result, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (reply, g_variant_new ("(u)", 1 << 20));
  /* What the child wrote is here. */
  g_assert_cmpuint (flag[0], ==, 2);

  /* A timed-out wait has the lock again. */
  g_assert_true (arip_lock_acquire_sync (lock, -1, NULL, NULL));
  g_assert_false (arip_condition_wait_sync (cond, 10, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_false (arip_lock_try_acquire (lock));
  arip_lock_release (lock);
}

static void
test_bad_handles (void)
{
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GVariant) own = g_variant_ref_sink (arip_shared_to_variant (ARIP_SHARED (queue)));
  guint64 id, key;
  const char *name;
  GVariant *bad[4];

  g_variant_get (own, "(&stt)", &name, &id, &key);
  bad[0] = g_variant_new ("(stt)", "AripQueue", id, key + 1);     /* another key */
  bad[1] = g_variant_new ("(stt)", "AripQueue", id + 1000, key);  /* no such object */
  bad[2] = g_variant_new ("(stt)", "AripLock", id, key);          /* another type */
  bad[3] = g_variant_new ("(stt)", "GObject", id, key);           /* not ours */

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      /* The queue's handle goes along, so the child has a connection. */
      g_autoptr(GVariant) reply = run ("open", g_variant_new ("(v@(stt))", bad[i], handle (queue)),
                                       &error);

      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
      g_assert_null (reply);
    }

  /* In a child without a connection, a handle is no use either. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run ("open", g_variant_new ("(v)", g_variant_new ("(stt)", "AripQueue",
                                                                                  id, key)),
                                     &error);

    /* A handle inside a variant is found too: it works. */
    g_assert_no_error (error);
    arip_test_assert_variant (reply, g_variant_new ("(s)", "AripQueue"));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run ("open", g_variant_new ("(v)", g_variant_new ("(sst)", "AripQueue",
                                                                                  "x", key)),
                                     &error);

    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  }
  {
    g_autoptr(GError) error = NULL;

    g_autoptr(GVariant) stale = g_variant_ref_sink (g_variant_new ("(stt)", "AripQueue", id + 7, key));

    g_assert_null (arip_shared_from_variant (stale, &error));
    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE);
  }
}

/* A hostile child writes garbage on its connection: it is dropped, what
 * it held is freed, and others go on. */
static void
test_hostile_connection (void)
{
  g_autoptr(AripLock) lock = arip_lock_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = run ("garbage", g_variant_new ("(@(stt))", handle (lock)), &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (arip_lock_acquire_sync (lock, 1000, NULL, &error));
  g_assert_true (arip_lock_get_abandoned (lock));
  arip_lock_release (lock);
  reply = run ("lock", g_variant_new ("(@(stt)b)", handle (lock), FALSE), &error);
  g_assert_no_error (error);
}

/* A pool worker reuses its connection: descriptors stay flat. */
static void
test_pool_reuse (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = arip_pool_new (launcher, 2);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  guint fds_before = 0;
  const guint n_calls = 2000;

  for (guint i = 0; i < n_calls; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply =
        arip_pool_run_sync (pool, "put", g_variant_new ("(@(stt)uu)", handle (queue), i, 1),
                            NULL, &error);

      g_assert_no_error (error);
      if (i == 10)
        fds_before = arip_test_count_fds ();
    }
  g_assert_cmpuint (arip_test_count_fds (), ==, fds_before);
  g_assert_cmpuint (arip_queue_get_length (queue), ==, n_calls);
}

/* 10,000 items through a bounded queue, 3 producers, 2 consumers: each
 * got exactly once, in order per producer. */
static void
test_queue_many (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (16);
  g_autoptr(GError) error = NULL;
  GAsyncResult *producers[3] = { NULL }, *consumers[2] = { NULL };
  const guint32 per_producer = 3334;
  g_autofree guint8 *seen = g_new0 (guint8, 3 * per_producer);

  for (guint i = 0; i < 2; i++)
    start (launcher, "get", g_variant_new ("(@(stt)i)", handle (queue), -1), &consumers[i]);
  for (guint i = 0; i < 3; i++)
    start (launcher, "put", g_variant_new ("(@(stt)uu)", handle (queue), i * per_producer,
                                           per_producer),
           &producers[i]);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GVariant) reply = finish (launcher, &producers[i], &error);

      g_assert_no_error (error);
    }
  arip_queue_close (queue);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GVariant) reply = finish (launcher, &consumers[i], &error);
      g_autoptr(GVariant) got = NULL;
      const guint32 *values;
      guint32 last[3] = { 0, 0, 0 };
      gboolean any[3] = { FALSE, FALSE, FALSE };
      gsize n;

      g_assert_no_error (error);
      got = g_variant_get_child_value (reply, 0);
      values = g_variant_get_fixed_array (got, &n, sizeof (guint32));
      for (gsize k = 0; k < n; k++)
        {
          guint p = values[k] / per_producer;

          g_assert_cmpuint (values[k], <, 3 * per_producer);
          g_assert_cmpuint (seen[values[k]], ==, 0);
          seen[values[k]] = 1;
          if (any[p])
            g_assert_cmpuint (values[k], >, last[p]);
          any[p] = TRUE;
          last[p] = values[k];
        }
    }
  for (guint32 i = 0; i < 3 * per_producer; i++)
    g_assert_cmpuint (seen[i], ==, 1);
}

static gboolean
cancel_soon (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* Gets cancelled at random moments while items flow: none is lost. */
static void
test_queue_cancel_storm (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GAsyncResult *producer = NULL;
  const guint32 n_items = 2000;
  g_autofree guint8 *seen = g_new0 (guint8, n_items);
  guint got = 0, cancelled = 0;

  start (launcher, "put_in_bursts", g_variant_new ("(@(stt)u)", handle (queue), n_items), &producer);
  while (got < n_items)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GVariant) item = NULL;
      GAsyncResult *result = NULL;

      arip_queue_get_async (queue, cancellable, arip_test_store_result, &result);
      if (g_random_boolean ())
        g_cancellable_cancel (cancellable);
      else
        g_timeout_add_full (G_PRIORITY_HIGH, g_random_int_range (0, 2), cancel_soon,
                            g_object_ref (cancellable), g_object_unref);
      arip_test_wait_until (result != NULL);
      item = arip_queue_get_finish (queue, result, &error);
      g_object_unref (result);
      if (item == NULL)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          g_clear_error (&error);
          cancelled++;
          continue;
        }
      g_assert_cmpuint (seen[g_variant_get_uint32 (item)], ==, 0);
      seen[g_variant_get_uint32 (item)] = 1;
      got++;
    }
  reply = finish (launcher, &producer, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 0);
  g_test_message ("%u gets cancelled on the way", cancelled);
  g_assert_cmpuint (cancelled, >, 0);
}

/* The same storm in a child, whose gets are cancelled there while the
 * parent puts: every item arrives once, in order. */
static gboolean
put_some (gpointer data)
{
  AripQueue *queue = data;
  guint32 *next = g_object_get_data (G_OBJECT (queue), "next");

  /* In bursts, each once the child took the one before, so that its gets
   * wait between them however slow it is. */
  if (arip_queue_get_length (queue) > 0)
    return G_SOURCE_CONTINUE;
  for (guint i = 0; i < 10 && *next < 1000; i++, (*next)++)
    g_assert_true (arip_queue_try_put (queue, g_variant_new_uint32 (*next), NULL));
  if (*next < 1000)
    return G_SOURCE_CONTINUE;
  arip_queue_close (queue);
  return G_SOURCE_REMOVE;
}

static void
test_queue_cancel_storm_in_child (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) got = NULL;
  g_autoptr(AripProcess) process = NULL;
  guint32 next = 0, cancelled;
  const guint32 *items;
  gsize n_items;

  g_object_set_data (G_OBJECT (queue), "next", &next);
  process = arip_process_new (launcher, "cancel_storm_get", g_variant_new ("(@(stt))", handle (queue)));
  g_assert_true (arip_test_start (process, &error));
  /* Items from when the child gets: before, they would all be waiting. */
  g_assert_true (arip_test_wait_for_state (process, ARIP_STATE_EXECUTING, &error));
  g_timeout_add (3, put_some, queue);
  reply = arip_test_wait (process, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@auu)", &got, &cancelled);
  items = g_variant_get_fixed_array (got, &n_items, sizeof (guint32));
  g_assert_cmpuint (n_items, ==, 1000);
  for (guint32 i = 0; i < n_items; i++)
    g_assert_cmpuint (items[i], ==, i);
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 0);
  g_test_message ("%u gets cancelled in the child", cancelled);
  g_assert_cmpuint (cancelled, >, 0);
}

/* Many calls passing primitives under a low descriptor limit. */
static void
test_fd_limit (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripQueue) queue = arip_queue_new (0);
  g_autoptr(AripLock) lock = arip_lock_new ();
  struct rlimit old, low;
  guint ok = 0, failed = 0;

  getrlimit (RLIMIT_NOFILE, &old);
  low = old;
  low.rlim_cur = 100;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &low), ==, 0);
  for (guint i = 0; i < 150; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply =
        arip_test_launcher_run (launcher, "put", g_variant_new ("(@(stt)uu)", handle (queue), i, 1),
                                NULL, &error);

      if (reply != NULL)
        ok++;
      else
        failed++;
    }
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &old), ==, 0);
  g_assert_cmpuint (ok, ==, 150);
  g_assert_cmpuint (arip_queue_get_length (queue), ==, 150);
  g_assert_true (arip_lock_try_acquire (lock));
  arip_lock_release (lock);
}

int
main (int argc, char **argv)
{
  arip_register_function ("put", fn_put, NULL, NULL);
  arip_register_function ("put_alternately", fn_put_alternately, NULL, NULL);
  arip_register_function ("get", fn_get, NULL, NULL);
  arip_register_function ("put_and_die", fn_put_and_die, NULL, NULL);
  arip_register_function ("put_in_bursts", fn_put_in_bursts, NULL, NULL);
  arip_register_function ("cancel_storm_get", fn_cancel_storm_get, NULL, NULL);
  arip_register_function ("put_until_closed", fn_put_until_closed, NULL, NULL);
  arip_register_function ("get_forever", fn_get_forever, NULL, NULL);
  arip_register_function ("lock", fn_lock, NULL, NULL);
  arip_register_function ("take_units_and_die", fn_take_units_and_die, NULL, NULL);
  arip_register_function ("barrier", fn_barrier, NULL, NULL);
  arip_register_function ("event_then_dict", fn_event_then_dict, NULL, NULL);
  arip_register_function ("condition", fn_condition, NULL, NULL);
  arip_register_function ("open", fn_open, NULL, NULL);
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("garbage", fn_garbage, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  g_test_add_func ("/Arip/Shared/queue/local", test_queue_local);
  g_test_add_func ("/Arip/Shared/queue/child-puts", test_queue_child_puts);
  g_test_add_func ("/Arip/Shared/queue/child-gets", test_queue_child_gets);
  g_test_add_func ("/Arip/Shared/queue/put-then-killed", test_queue_put_then_killed);
  g_test_add_func ("/Arip/Shared/queue/closed-while-putting", test_queue_closed_while_putting);
  g_test_add_func ("/Arip/Shared/queue/get-to-queue", test_queue_get_to_queue);
  g_test_add_func ("/Arip/Shared/queue/bounded-beside-unbounded",
                   test_queue_bounded_beside_unbounded);
  g_test_add_func ("/Arip/Shared/queue/child-timeout", test_queue_child_timeout);
  g_test_add_func ("/Arip/Shared/queue/killed-in-get", test_queue_killed_in_get);
  g_test_add_func ("/Arip/Shared/queue/unread-goes-back", test_queue_unread_goes_back);
  g_test_add_func ("/Arip/Shared/queue/many", test_queue_many);
  g_test_add_func ("/Arip/Shared/queue/cancel-storm", test_queue_cancel_storm);
  g_test_add_func ("/Arip/Shared/queue/cancel-storm-in-child", test_queue_cancel_storm_in_child);
  g_test_add_func ("/Arip/Shared/lock/abandoned", test_lock_abandoned);
  g_test_add_func ("/Arip/Shared/lock/contended", test_lock_contended);
  g_test_add_func ("/Arip/Shared/condition/hands-lock-to-thread", test_condition_hands_lock_to_thread);
  g_test_add_func ("/Arip/Shared/semaphore/death", test_semaphore_death);
  g_test_add_func ("/Arip/Shared/barrier", test_barrier);
  g_test_add_func ("/Arip/Shared/event-and-dict", test_event_and_dict);
  g_test_add_func ("/Arip/Shared/condition-and-memory", test_condition_and_memory);
  g_test_add_func ("/Arip/Shared/bad-handles", test_bad_handles);
  g_test_add_func ("/Arip/Shared/hostile-connection", test_hostile_connection);
  g_test_add_func ("/Arip/Shared/pool-reuse", test_pool_reuse);
  g_test_add_func ("/Arip/Shared/fd-limit", test_fd_limit);

  return g_test_run ();
}
