/* shared.c: a queue, an event and a lock shared with a child, in C
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * aioprocessing's own example, with arip: a worker takes the lock, sets
 * the event and puts its items (blocking calls, in its own process); the
 * parent waits for the event and then the lock, puts one more item and
 * closes the queue, while it reads the queue until it is closed. All the
 * parent's waits are asynchronous, on its main loop. Exits 0 when every
 * item arrived, in order.
 */
#include <arip.h>

static void
func (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) queue_handle = g_variant_get_child_value (args, 0);
  g_autoptr(GVariant) event_handle = g_variant_get_child_value (args, 1);
  g_autoptr(GVariant) lock_handle = g_variant_get_child_value (args, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(AripQueue) queue = ARIP_QUEUE (arip_call_get_shared (call, queue_handle, &error));
  g_autoptr(AripEvent) event = ARIP_EVENT (arip_call_get_shared (call, event_handle, &error));
  g_autoptr(AripLock) lock = ARIP_LOCK (arip_call_get_shared (call, lock_handle, &error));

  if (queue == NULL || event == NULL || lock == NULL)
    {
      arip_call_return_gerror (call, error);
      return;
    }

  arip_lock_acquire_sync (lock, -1, NULL, NULL);
  arip_event_set (event);
  for (gint32 item = 1; item <= 5; item++)
    {
      g_usleep (50 * 1000);
      if (!arip_queue_put_sync (queue, g_variant_new_int32 (item + 5), -1, NULL, &error))
        break;
    }
  arip_lock_release (lock);

  if (error != NULL)
    arip_call_return_gerror (call, error);
  else
    arip_call_return_value (call, NULL);
}

typedef struct {
  GMainLoop *loop;
  AripQueue *queue;
  AripEvent *event;
  AripLock  *lock;
  gint32     got[8];
  guint      n_got;
  gboolean   queue_closed;
  gboolean   worker_done;
  gboolean   failed;
} Example;

static void
check_done (Example *ex)
{
  if (ex->queue_closed && ex->worker_done)
    g_main_loop_quit (ex->loop);
}

static void
fail (Example   *ex,
      const char *what,
      GError     *error)
{
  g_printerr ("%s: %s\n", what, error->message);
  ex->failed = TRUE;
  g_main_loop_quit (ex->loop);
}

/* example: reads the queue until it is closed. */
static void
on_item (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Example *ex = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) item = arip_queue_get_finish (ex->queue, result, &error);

  if (g_error_matches (error, ARIP_ERROR, ARIP_ERROR_CLOSED))
    {
      ex->queue_closed = TRUE;
      check_done (ex);
      return;
    }
  if (item == NULL)
    return fail (ex, "get", error);
  if (ex->n_got == G_N_ELEMENTS (ex->got))
    {
      g_printerr ("more items than were put\n");
      ex->failed = TRUE;
      g_main_loop_quit (ex->loop);
      return;
    }
  ex->got[ex->n_got++] = g_variant_get_int32 (item);
  g_print ("Got result %d\n", ex->got[ex->n_got - 1]);
  arip_queue_get_async (ex->queue, NULL, on_item, ex);
}

/* example2: once the worker let the lock go, puts 78 and closes. */
static void
on_put (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Example *ex = user_data;
  g_autoptr(GError) error = NULL;

  if (!arip_queue_put_finish (ex->queue, result, &error))
    fail (ex, "put", error);
  arip_queue_close (ex->queue);
  arip_lock_release (ex->lock);
}

static void
on_locked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Example *ex = user_data;
  g_autoptr(GError) error = NULL;

  if (!arip_lock_acquire_finish (ex->lock, result, &error))
    return fail (ex, "acquire", error);
  arip_queue_put_async (ex->queue, g_variant_new_int32 (78), NULL, on_put, ex);
}

static void
on_event (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Example *ex = user_data;
  g_autoptr(GError) error = NULL;

  if (!arip_event_wait_finish (ex->event, result, &error))
    return fail (ex, "wait", error);
  arip_lock_acquire_async (ex->lock, NULL, on_locked, ex);
}

static void
on_worker_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Example *ex = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_run_in_process_finish (result, &error);

  if (value == NULL && error != NULL)
    return fail (ex, "worker", error);
  ex->worker_done = TRUE;
  check_done (ex);
}

int
main (int argc, char **argv)
{
  static const gint32 expected[] = { 6, 7, 8, 9, 10, 78 };
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(AripQueue) queue = NULL;
  g_autoptr(AripEvent) event = NULL;
  g_autoptr(AripLock) lock = NULL;
  Example ex = { 0 };

  arip_register_function ("func", func, NULL, NULL);
  arip_init (&argc, &argv);

  loop = g_main_loop_new (NULL, FALSE);
  queue = arip_queue_new (0);
  event = arip_event_new ();
  lock = arip_lock_new ();
  ex = (Example) { loop, queue, event, lock };

  arip_run_in_process_async ("func",
                             g_variant_new ("(@(stt)@(stt)@(stt))",
                                            arip_shared_to_variant (ARIP_SHARED (queue)),
                                            arip_shared_to_variant (ARIP_SHARED (event)),
                                            arip_shared_to_variant (ARIP_SHARED (lock))),
                             NULL, on_worker_done, &ex);
  arip_queue_get_async (queue, NULL, on_item, &ex);
  arip_event_wait_async (event, NULL, on_event, &ex);
  g_main_loop_run (loop);

  if (ex.failed || ex.n_got != G_N_ELEMENTS (expected))
    return 1;
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    if (ex.got[i] != expected[i])
      return 1;
  return 0;
}
