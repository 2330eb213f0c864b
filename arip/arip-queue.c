/* arip-queue.c: a queue shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-queue.h"
#include "arip-shared-private.h"

/**
 * AripQueue:
 *
 * A first-in first-out queue of #GVariant items that every process it is
 * handed to can put to and get from (multiprocessing's and
 * aioprocessing's `Queue`).
 *
 * A queue may be bounded: a put waits while it holds `max_size` items,
 * which gives producers back pressure. Every wait can be cancelled, and
 * the `_sync` forms take a timeout; a cancelled or timed-out get takes
 * nothing, a cancelled put puts nothing. An item is got exactly once: an
 * item that was on its way to a process that died goes back to the front
 * of the queue.
 *
 * After arip_queue_close(), puts fail with %ARIP_ERROR_CLOSED; gets drain
 * what is left, then fail with %ARIP_ERROR_CLOSED.
 *
 * In a child, arip_queue_put_sync() of an item up to 64 KiB, with no
 * timeout and no cancellable, does not wait for the parent's answer while
 * the queue has room (as a multiprocessing queue's put does not): the
 * item is on its way, and anything the child does afterwards (a call's
 * result, a message, another shared object's operation) reaches the
 * parent after it. So a child puts tens of thousands of items a second.
 * Should the queue be closed while such puts are on their way, they do
 * not get in, and the child's next put fails with %ARIP_ERROR_CLOSED
 * saying how many did not. A child that dies after its puts has still
 * put them.
 *
 * Items may hold handles of other shared objects; `h` handles in an item
 * index the descriptors put with it (arip_queue_put_with_fds_sync()),
 * which come out with it (arip_queue_get_with_fds_sync()).
 */

struct _AripQueue {
  AripShared parent_instance;
  guint      max_size;
};

G_DEFINE_FINAL_TYPE (AripQueue, arip_queue, ARIP_TYPE_SHARED)

typedef struct {
  GVariant    *value;
  GUnixFDList *fds;
} Item;

typedef struct {
  AripSharedState parent;
  guint           max_size;
  gboolean        closed;
  GQueue          items;     /* Item */
  GQueue          getters;   /* AripWaiter */
  GQueue          putters;   /* AripWaiter, their item in their arg */
} QueueState;

static void
item_free (gpointer data)
{
  Item *item = data;

  g_variant_unref (item->value);
  g_clear_object (&item->fds);
  g_free (item);
}

static Item *
item_new (GVariant    *value,
          GUnixFDList *fds)
{
  Item *item = g_new0 (Item, 1);

  item->value = g_variant_ref (value);
  item->fds = fds != NULL ? g_object_ref (fds) : NULL;
  return item;
}

/* Hands @item to a waiting getter, if there is one (then it is taken). */
static gboolean
hand_to_getter (QueueState *queue,
                Item       *item)
{
  AripWaiter *getter = g_queue_peek_head (&queue->getters);

  if (getter == NULL)
    return FALSE;
  arip_waiter_return_item (getter, &queue->getters, g_variant_new ("(v)", item->value),
                           g_steal_pointer (&item->fds));
  item_free (item);
  return TRUE;
}

/* Items posted at most: a large one takes its time through the socket
 * whether the child waits or not, and waiting keeps the two from taking
 * turns at every socket buffer's worth. */
#define POST_MAX_SIZE (64 * 1024)

/* What a put answers: how many more items fit now, as a child's credit
 * for puts it does not wait for. */
static guint
room (QueueState *queue)
{
  if (queue->max_size == 0)
    return G_MAXUINT32;
  return queue->items.length < queue->max_size ? queue->max_size - queue->items.length : 0;
}

static GVariant *
room_reply (QueueState *queue)
{
  return g_variant_new ("(u)", room (queue));
}

/* The item in a put's "(v)" argument (checked). */
static GVariant *
put_item (AripWaiter *waiter)
{
  g_autoptr(GVariant) boxed = g_variant_get_child_value (waiter->arg, 0);

  return g_variant_get_variant (boxed);
}

/* Room was made: the first waiting putter's item goes in. */
static void
admit_putter (QueueState *queue)
{
  AripWaiter *putter;
  g_autoptr(GVariant) value = NULL;

  if (queue->max_size > 0 && queue->items.length >= queue->max_size)
    return;
  putter = g_queue_peek_head (&queue->putters);
  if (putter == NULL)
    return;
  value = put_item (putter);
  g_queue_push_tail (&queue->items, item_new (value, putter->fds));
  arip_waiter_return (putter, &queue->putters, room_reply (queue), NULL);
}

static void
fail_closed (AripWaiter *waiter,
             GQueue     *parked_in)
{
  arip_waiter_return_error (waiter, parked_in, ARIP_ERROR, ARIP_ERROR_CLOSED,
                            waiter->op == ARIP_QUEUE_OP_GET || waiter->op == ARIP_QUEUE_OP_TRY_GET
                              ? _("The queue is closed, and empty")
                              : _("The queue is closed: nothing can be put any more"));
}

static void
queue_run (AripSharedState *state,
           AripWaiter      *waiter)
{
  QueueState *queue = (QueueState *) state;

  switch (waiter->op)
    {
    case ARIP_QUEUE_OP_PUT:
    case ARIP_QUEUE_OP_TRY_PUT:
    case ARIP_QUEUE_OP_POST:
      {
        g_autoptr(GVariant) value = NULL;

        if (!arip_waiter_check_arg (waiter, "(v)"))
          return;
        if (queue->closed)
          {
            fail_closed (waiter, NULL);
            return;
          }
        value = put_item (waiter);
        if (queue->getters.head != NULL)
          hand_to_getter (queue, item_new (value, waiter->fds));
        else if (queue->max_size == 0 || queue->items.length < queue->max_size ||
                 (waiter->op == ARIP_QUEUE_OP_POST &&
                  queue->items.length < queue->max_size + ARIP_SHARED_POST_WINDOW))
          /* A post is in even if other producers filled the queue since
           * its child last heard of room: it has gone on as if it were,
           * and what it does next must find the item there. */
          g_queue_push_tail (&queue->items, item_new (value, waiter->fds));
        else if (waiter->op != ARIP_QUEUE_OP_TRY_PUT)
          {
            /* (A post beyond what any child of ours has in flight: not
             * ours, and it waits like a put.) */
            arip_waiter_park (waiter, &queue->putters);
            return;
          }
        else
          {
            arip_waiter_return (waiter, NULL, g_variant_new ("(b)", FALSE), NULL);
            return;
          }
        if (waiter->op == ARIP_QUEUE_OP_POST)
          arip_waiter_return_post (waiter, room (queue));
        else
          arip_waiter_return (waiter, NULL,
                              waiter->op == ARIP_QUEUE_OP_TRY_PUT ? g_variant_new ("(b)", TRUE)
                                                                  : room_reply (queue),
                              NULL);
        return;
      }

    case ARIP_QUEUE_OP_GET:
    case ARIP_QUEUE_OP_TRY_GET:
      {
        Item *item = g_queue_pop_head (&queue->items);

        if (item != NULL)
          {
            GVariant *inner = g_variant_new_variant (item->value);

            arip_waiter_return_item (waiter, NULL,
                                     waiter->op == ARIP_QUEUE_OP_GET
                                       ? g_variant_new_tuple (&inner, 1)
                                       : g_variant_new ("(m@v)", inner),
                                     g_steal_pointer (&item->fds));
            item_free (item);
            admit_putter (queue);
          }
        else if (queue->closed)
          fail_closed (waiter, NULL);
        else if (waiter->op == ARIP_QUEUE_OP_GET)
          arip_waiter_park (waiter, &queue->getters);
        else
          arip_waiter_return (waiter, NULL, g_variant_new ("(mv)", NULL), NULL);
        return;
      }

    case ARIP_QUEUE_OP_CLOSE:
      queue->closed = TRUE;
      while (queue->getters.head != NULL)
        fail_closed (queue->getters.head->data, &queue->getters);
      while (queue->putters.head != NULL)
        fail_closed (queue->putters.head->data, &queue->putters);
      arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      return;

    case ARIP_QUEUE_OP_UNGET:
      {
        g_autoptr(GVariant) value = NULL;
        Item *item;

        if (!arip_waiter_check_arg (waiter, "(v)"))
          return;
        value = put_item (waiter);
        item = item_new (value, waiter->fds);
        if (!hand_to_getter (queue, item))
          g_queue_push_head (&queue->items, item);
        arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
        return;
      }

    case ARIP_QUEUE_OP_LENGTH:
      arip_waiter_return (waiter, NULL, g_variant_new ("(u)", queue->items.length), NULL);
      return;

    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("A queue has no operation %u"), waiter->op);
    }
}

static void
queue_give_back (AripSharedState *state,
                 GVariant        *value,
                 GUnixFDList     *fds)
{
  QueueState *queue = (QueueState *) state;
  g_autoptr(GVariant) maybe = NULL;
  g_autoptr(GVariant) inner = NULL;
  Item *item;

  /* The reply it went out in: "(v)" from a get, "(mv)" from a try_get. */
  maybe = g_variant_get_child_value (value, 0);
  if (g_variant_is_of_type (maybe, G_VARIANT_TYPE_VARIANT))
    inner = g_variant_get_variant (maybe);
  else
    {
      g_autoptr(GVariant) boxed = g_variant_get_maybe (maybe);

      inner = g_variant_get_variant (boxed);
    }
  item = item_new (inner, fds);
  if (!hand_to_getter (queue, item))
    g_queue_push_head (&queue->items, item);
}

static GVariant *
queue_describe (AripSharedState *state,
                GUnixFDList     *fds)
{
  return g_variant_new ("(u)", ((QueueState *) state)->max_size);
}

static void
queue_finalize (AripSharedState *state)
{
  QueueState *queue = (QueueState *) state;

  g_queue_clear_full (&queue->items, item_free);
}

static gboolean
queue_opened (AripShared   *object,
              GVariant     *info,
              GUnixFDList  *fds,
              GError      **error)
{
  if (!g_variant_is_of_type (info, G_VARIANT_TYPE ("(u)")))
    {
      g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                           _("The parent described the queue wrongly"));
      return FALSE;
    }
  g_variant_get (info, "(u)", &ARIP_QUEUE (object)->max_size);
  /* Into an unbounded queue a put never waits: it need not wait for its
   * answer either. A bounded one learns its room from a first answer. */
  arip_shared_set_credit (object, ARIP_QUEUE (object)->max_size == 0 ? G_MAXUINT : 0);
  return TRUE;
}

const AripSharedStateClass arip_queue_state_class = {
  .get_type = arip_queue_get_type,
  .run = queue_run,
  .withdraw = arip_waiter_withdraw_default,
  .give_back = queue_give_back,
  .describe = queue_describe,
  .finalize = queue_finalize,
  .opened = queue_opened,
};

static void
arip_queue_class_init (AripQueueClass *klass)
{
}

static void
arip_queue_init (AripQueue *self)
{
}

/**
 * arip_queue_new:
 * @max_size: the most items it holds, or 0 for no limit
 *
 * A new, empty queue, to hand to children with arip_shared_to_variant().
 *
 * Returns: (transfer full): the queue
 */
AripQueue *
arip_queue_new (guint max_size)
{
  AripQueue *self = g_object_new (ARIP_TYPE_QUEUE, NULL);
  QueueState *state = arip_shared_state_new (&arip_queue_state_class, sizeof (QueueState),
                                             ARIP_SHARED (self));

  state->max_size = max_size;
  self->max_size = max_size;
  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

/**
 * arip_queue_put_async:
 * @self: a queue
 * @item: the item; a floating reference is sunk
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the item is in the queue (or given to a getter)
 * @user_data: data for @callback
 *
 * Puts @item at the end of the queue, waiting for room if the queue is
 * full.
 */
void
arip_queue_put_async (AripQueue           *self,
                      GVariant            *item,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_QUEUE (self));
  g_return_if_fail (item != NULL);

  arip_shared_request_async (ARIP_SHARED (self), ARIP_QUEUE_OP_PUT,
                             g_variant_new ("(v)", item), NULL, cancellable, callback, user_data,
                             arip_queue_put_async);
}

/**
 * arip_queue_put_finish:
 * @self: a queue
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes arip_queue_put_async().
 *
 * Returns: %TRUE if the item was put; %FALSE with %G_IO_ERROR_CANCELLED
 *   (nothing was put) or %ARIP_ERROR_CLOSED
 */
gboolean
arip_queue_put_finish (AripQueue     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);

  return reply != NULL;
}

/**
 * arip_queue_put_with_fds_sync:
 * @self: a queue
 * @item: the item; a floating reference is sunk
 * @fd_list: (nullable): the descriptors that `h` handles in @item index
 * @timeout_ms: how long to wait for room, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Puts @item, and with it copies of the descriptors of @fd_list, which
 * the process that gets the item receives.
 *
 * Returns: %TRUE if the item was put; %FALSE with %G_IO_ERROR_TIMED_OUT,
 *   %G_IO_ERROR_CANCELLED or %ARIP_ERROR_CLOSED
 */
gboolean
arip_queue_put_with_fds_sync (AripQueue     *self,
                              GVariant      *item,
                              GUnixFDList   *fd_list,
                              gint           timeout_ms,
                              GCancellable  *cancellable,
                              GError       **error)
{
  AripShared *shared = ARIP_SHARED (self);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (ARIP_IS_QUEUE (self), FALSE);
  g_return_val_if_fail (item != NULL, FALSE);

  if (!arip_shared_check_posts (shared, error))
    {
      g_variant_unref (g_variant_ref_sink (item));
      return FALSE;
    }
  /* In a child, with room known and nothing to time out or cancel: on
   * its way, the put is as good as done (see the type's description). */
  if (timeout_ms < 0 && cancellable == NULL && arip_shared_may_post (shared) &&
      g_variant_get_size (item) <= POST_MAX_SIZE)
    return arip_shared_post (shared, ARIP_QUEUE_OP_POST, g_variant_new ("(v)", item), fd_list,
                             error);

  reply = arip_shared_request_sync (shared, ARIP_QUEUE_OP_PUT, g_variant_new ("(v)", item),
                                    fd_list, timeout_ms, cancellable, NULL, &local_error);
  if (reply == NULL)
    {
      /* Posts answered while this put waited were refused too: say so. */
      g_autoptr(GError) refusal = NULL;

      if (!arip_shared_check_posts (shared, &refusal))
        g_propagate_error (error, g_steal_pointer (&refusal));
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (!arip_shared_is_owner (shared))
    {
      guint room;

      g_variant_get (reply, "(u)", &room);
      arip_shared_set_credit (shared, room);
    }
  return TRUE;
}

/**
 * arip_queue_put_sync:
 * @self: a queue
 * @item: the item; a floating reference is sunk
 * @timeout_ms: how long to wait for room, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Puts @item at the end of the queue, blocking while it is full.
 *
 * Returns: %TRUE if the item was put; %FALSE with %G_IO_ERROR_TIMED_OUT,
 *   %G_IO_ERROR_CANCELLED (nothing was put) or %ARIP_ERROR_CLOSED
 */
gboolean
arip_queue_put_sync (AripQueue     *self,
                     GVariant      *item,
                     gint           timeout_ms,
                     GCancellable  *cancellable,
                     GError       **error)
{
  return arip_queue_put_with_fds_sync (self, item, NULL, timeout_ms, cancellable, error);
}

/**
 * arip_queue_get_async:
 * @self: a queue
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the first item
 * @user_data: data for @callback
 *
 * Takes the first item of the queue, waiting for one if it is empty. If
 * the wait is cancelled after an item was taken for it, the item is
 * handed out all the same: none is ever lost.
 */
void
arip_queue_get_async (AripQueue           *self,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_QUEUE (self));

  arip_shared_request_async (ARIP_SHARED (self), ARIP_QUEUE_OP_GET, NULL, NULL, cancellable,
                             callback, user_data, arip_queue_get_async);
}

static GVariant *
unbox (GVariant *reply)
{
  GVariant *item = NULL;

  if (reply != NULL)
    g_variant_get (reply, "(v)", &item);
  g_clear_pointer (&reply, g_variant_unref);
  return item;
}

/**
 * arip_queue_get_with_fds_finish:
 * @self: a queue
 * @result: the result given to the callback
 * @out_fd_list: (out) (optional) (nullable) (transfer full): the
 *   descriptors that came with the item
 * @error: return location for a #GError
 *
 * Finishes [method@Arip.Queue.get_async], with the descriptors that came
 * with the item (`h` handles in it index them).
 *
 * Returns: (transfer full): the item, or %NULL with %G_IO_ERROR_CANCELLED
 *   or %ARIP_ERROR_CLOSED
 */
GVariant *
arip_queue_get_with_fds_finish (AripQueue     *self,
                                GAsyncResult  *result,
                                GUnixFDList  **out_fd_list,
                                GError       **error)
{
  return unbox (arip_shared_request_finish (ARIP_SHARED (self), result, out_fd_list, error));
}

/**
 * arip_queue_get_finish:
 * @self: a queue
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Arip.Queue.get_async].
 *
 * Returns: (transfer full): the item, or %NULL with %G_IO_ERROR_CANCELLED
 *   or %ARIP_ERROR_CLOSED
 */
GVariant *
arip_queue_get_finish (AripQueue     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  return arip_queue_get_with_fds_finish (self, result, NULL, error);
}

/* In the process that holds the queue, an item that is there is taken
 * at once, without a waiter and a reply built around it. FALSE if the
 * queue is elsewhere or empty and open (the caller waits, or not). */
static gboolean
take_here (AripQueue    *self,
           GVariant    **item,
           GUnixFDList **fds,
           GError      **error)
{
  QueueState *queue = (QueueState *) arip_shared_get_state (ARIP_SHARED (self));
  Item *taken;
  gboolean closed;

  if (queue == NULL)
    return FALSE;
  arip_broker_lock ();
  taken = g_queue_pop_head (&queue->items);
  closed = queue->closed;
  if (taken != NULL)
    admit_putter (queue);
  arip_broker_unlock ();

  if (taken != NULL)
    {
      *item = g_steal_pointer (&taken->value);
      if (fds != NULL)
        *fds = g_steal_pointer (&taken->fds);
      g_clear_object (&taken->fds);
      g_free (taken);
      return TRUE;
    }
  if (!closed)
    return FALSE;
  *item = NULL;
  g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_CLOSED, _("The queue is closed, and empty"));
  return TRUE;
}

/**
 * arip_queue_get_with_fds_sync:
 * @self: a queue
 * @timeout_ms: how long to wait for an item, or -1 for no limit
 * @out_fd_list: (out) (optional) (nullable) (transfer full): the
 *   descriptors that came with the item
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Like [method@Arip.Queue.get_sync], and hands back the descriptors
 * that came with the item as well.
 *
 * Returns: (transfer full): the item, or %NULL with %G_IO_ERROR_TIMED_OUT,
 *   %G_IO_ERROR_CANCELLED (the item stays in the queue) or
 *   %ARIP_ERROR_CLOSED
 */
GVariant *
arip_queue_get_with_fds_sync (AripQueue     *self,
                              gint           timeout_ms,
                              GUnixFDList  **out_fd_list,
                              GCancellable  *cancellable,
                              GError       **error)
{
  GVariant *item;

  g_return_val_if_fail (ARIP_IS_QUEUE (self), NULL);

  if (out_fd_list != NULL)
    *out_fd_list = NULL;
  if ((cancellable == NULL || !g_cancellable_is_cancelled (cancellable)) &&
      take_here (self, &item, out_fd_list, error))
    return item;
  return unbox (arip_shared_request_sync (ARIP_SHARED (self), ARIP_QUEUE_OP_GET, NULL, NULL,
                                          timeout_ms, cancellable, out_fd_list, error));
}

/**
 * arip_queue_get_sync:
 * @self: a queue
 * @timeout_ms: how long to wait for an item, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Takes the first item of the queue, blocking while it is empty.
 *
 * Returns: (transfer full): the item, or %NULL with %G_IO_ERROR_TIMED_OUT,
 *   %G_IO_ERROR_CANCELLED (the item stays in the queue) or
 *   %ARIP_ERROR_CLOSED
 */
GVariant *
arip_queue_get_sync (AripQueue     *self,
                     gint           timeout_ms,
                     GCancellable  *cancellable,
                     GError       **error)
{
  return arip_queue_get_with_fds_sync (self, timeout_ms, NULL, cancellable, error);
}

/**
 * arip_queue_try_put:
 * @self: a queue
 * @item: the item; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Puts @item if the queue has room, without waiting.
 *
 * Returns: %TRUE if it was put; %FALSE with %G_IO_ERROR_WOULD_BLOCK if the
 *   queue is full, or %ARIP_ERROR_CLOSED
 */
gboolean
arip_queue_try_put (AripQueue  *self,
                    GVariant   *item,
                    GError    **error)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean put;

  g_return_val_if_fail (ARIP_IS_QUEUE (self), FALSE);
  g_return_val_if_fail (item != NULL, FALSE);

  reply = arip_shared_request_sync (ARIP_SHARED (self), ARIP_QUEUE_OP_TRY_PUT,
                                    g_variant_new ("(v)", item), NULL, -1, NULL, NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(b)", &put);
  if (!put)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, _("The queue is full"));
  return put;
}

/**
 * arip_queue_try_get:
 * @self: a queue
 * @error: return location for a #GError
 *
 * Takes the first item if there is one, without waiting.
 *
 * Returns: (transfer full): the item, or %NULL with %G_IO_ERROR_WOULD_BLOCK
 *   if the queue is empty, or %ARIP_ERROR_CLOSED if it is also closed
 */
GVariant *
arip_queue_try_get (AripQueue  *self,
                    GError    **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) maybe = NULL;
  GVariant *item = NULL;

  g_return_val_if_fail (ARIP_IS_QUEUE (self), NULL);

  if (take_here (self, &item, NULL, error))
    return item;
  if (arip_shared_get_state (ARIP_SHARED (self)) != NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, _("The queue is empty"));
      return NULL;
    }
  reply = arip_shared_request_sync (ARIP_SHARED (self), ARIP_QUEUE_OP_TRY_GET, NULL, NULL, -1,
                                    NULL, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(mv)", &item);
  if (item == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, _("The queue is empty"));
  return item;
}

/**
 * arip_queue_unget:
 * @self: a queue
 * @item: an item got from the queue; a floating reference is sunk
 *
 * Puts @item back at the front of the queue, even if the queue is full or
 * closed: for a caller that got an item it cannot use after all (its
 * wait was cancelled just after the item was taken for it, say).
 */
void
arip_queue_unget (AripQueue *self,
                  GVariant  *item)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_if_fail (ARIP_IS_QUEUE (self));
  g_return_if_fail (item != NULL);

  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_QUEUE_OP_UNGET,
                                   g_variant_new ("(v)", item));
}

/**
 * arip_queue_close:
 * @self: a queue
 *
 * Closes the queue, for every process: puts fail from now on (those
 * waiting too), gets take what is left and then fail with
 * %ARIP_ERROR_CLOSED (those waiting at once, as the queue is empty).
 */
void
arip_queue_close (AripQueue *self)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_if_fail (ARIP_IS_QUEUE (self));

  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_QUEUE_OP_CLOSE, NULL);
}

/**
 * arip_queue_get_length:
 * @self: a queue
 *
 * How many items the queue holds now.
 *
 * Returns: the number of items in the queue now
 */
guint
arip_queue_get_length (AripQueue *self)
{
  g_return_val_if_fail (ARIP_IS_QUEUE (self), 0);

  return arip_shared_request_uint (ARIP_SHARED (self), ARIP_QUEUE_OP_LENGTH);
}

/**
 * arip_queue_get_max_size:
 * @self: a queue
 *
 * The bound the queue was made with.
 *
 * Returns: the most items the queue holds, or 0 for no limit
 */
guint
arip_queue_get_max_size (AripQueue *self)
{
  g_return_val_if_fail (ARIP_IS_QUEUE (self), 0);

  return self->max_size;
}
