/* arip-result-queue.c: calls whose results wait for another thread's loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arip-pool-private.h"
#include "arip-result-queue.h"
#include "arip-shared-private.h"

/**
 * AripResultQueue:
 *
 * Where calls started with [method@Arip.Pool.run_to_queue] end, for an
 * event loop that runs in another thread than the pool's main context: a
 * language binding's (Python's asyncio) or a program's own.
 *
 * Such a loop watches one file descriptor, [method@Arip.ResultQueue.get_fd],
 * which is readable while results wait, and takes them with
 * [method@Arip.ResultQueue.pop], each with the tag its call was given;
 * [method@Arip.Pool.run_finish] then gives the call's value or error, in
 * that thread. Neither starting a call nor taking its result runs anything
 * in the pool's thread but arip's own C code: no callback of the binding
 * waits there for the binding's lock, and the loop is woken once for all
 * the results that arrived meanwhile.
 *
 * All of its methods may be called from any thread.
 */

typedef struct
{
  guint64       tag;
  GAsyncResult *result;
} Ended;

struct _AripResultQueue
{
  GObject  parent_instance;
  GMutex   lock;
  GArray  *ended;     /* of Ended, oldest first */
  guint    next;      /* the first not yet popped */
  gint     fd;        /* an eventfd: readable while @ended has some */
};

G_DEFINE_FINAL_TYPE (AripResultQueue, arip_result_queue, G_TYPE_OBJECT)

static void
arip_result_queue_finalize (GObject *object)
{
  AripResultQueue *self = ARIP_RESULT_QUEUE (object);

  for (guint i = self->next; i < self->ended->len; i++)
    g_object_unref (g_array_index (self->ended, Ended, i).result);
  g_array_unref (self->ended);
  if (self->fd >= 0)
    close (self->fd);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (arip_result_queue_parent_class)->finalize (object);
}

static void
arip_result_queue_class_init (AripResultQueueClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = arip_result_queue_finalize;
}

static void
arip_result_queue_init (AripResultQueue *self)
{
  g_mutex_init (&self->lock);
  self->ended = g_array_new (FALSE, FALSE, sizeof (Ended));
  self->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->fd < 0)
    g_error ("arip: cannot make an eventfd for a result queue: %s", g_strerror (errno));
}

/**
 * arip_result_queue_new:
 *
 * Makes an empty result queue.
 *
 * Returns: (transfer full): the queue
 */
AripResultQueue *
arip_result_queue_new (void)
{
  return g_object_new (ARIP_TYPE_RESULT_QUEUE, NULL);
}

/**
 * arip_result_queue_get_fd:
 * @self: a result queue
 *
 * The descriptor to watch for reading: readable while results wait in
 * the queue. It stays the queue's: do not read it or close it.
 *
 * Returns: the file descriptor
 */
gint
arip_result_queue_get_fd (AripResultQueue *self)
{
  g_return_val_if_fail (ARIP_IS_RESULT_QUEUE (self), -1);

  return self->fd;
}

/**
 * arip_result_queue_pop:
 * @self: a result queue
 * @out_tag: (out) (optional): where to put the tag of its call
 *
 * Takes the result that has waited longest, for
 * [method@Arip.Pool.run_finish].
 *
 * Returns: (transfer full) (nullable): the result, or %NULL if none waits
 */
GAsyncResult *
arip_result_queue_pop (AripResultQueue *self,
                       guint64         *out_tag)
{
  GAsyncResult *result = NULL;

  g_return_val_if_fail (ARIP_IS_RESULT_QUEUE (self), NULL);

  g_mutex_lock (&self->lock);
  if (self->next < self->ended->len)
    {
      Ended *ended = &g_array_index (self->ended, Ended, self->next++);

      result = ended->result;
      if (out_tag != NULL)
        *out_tag = ended->tag;
      if (self->next == self->ended->len)
        {
          guint64 count;

          /* Empty: the descriptor is not readable any more. */
          g_array_set_size (self->ended, 0);
          self->next = 0;
          while (read (self->fd, &count, sizeof count) < 0 && errno == EINTR)
            ;
        }
    }
  g_mutex_unlock (&self->lock);
  return result;
}

static void
push (AripResultQueue *self,
      guint64          tag,
      GAsyncResult    *result)
{
  Ended ended = { tag, result };

  g_mutex_lock (&self->lock);
  g_array_append_val (self->ended, ended);
  if (self->ended->len - self->next == 1)
    {
      guint64 one = 1;

      while (write (self->fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    }
  g_mutex_unlock (&self->lock);
}

/* What a call or a get started from any thread begins with: where its
 * result goes, under which tag, and how the rest of it is freed. */
typedef struct
{
  AripResultQueue *queue;
  guint64          tag;
  GDestroyNotify   free;
} Ending;

static void
on_ended (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Ending *ending = user_data;

  push (ending->queue, ending->tag, g_object_ref (result));
  g_clear_object (&ending->queue);
  ending->free (ending);
}

/* ---------------------------------------------------------------------- */
/* Starting calls from any thread                                         */

typedef struct
{
  Ending           ending;
  AripPool        *pool;
  char            *function;
  GVariant        *args;
  GCancellable    *cancellable;
} Request;

static void
request_free (Request *request)
{
  g_object_unref (request->pool);
  g_free (request->function);
  g_clear_pointer (&request->args, g_variant_unref);
  g_clear_object (&request->cancellable);
  g_free (request);
}


/* Requests waiting for their pool's context, per pool; one invocation
 * starts all those that piled up. */
static GMutex requests_lock;
static GHashTable *requests;   /* AripPool -> GPtrArray of Request */

static gboolean
start_requests (gpointer user_data)
{
  AripPool *pool = user_data;
  g_autoptr(GPtrArray) batch = NULL;

  g_mutex_lock (&requests_lock);
  g_hash_table_steal_extended (requests, pool, NULL, (gpointer *) &batch);
  g_mutex_unlock (&requests_lock);

  for (guint i = 0; batch != NULL && i < batch->len; i++)
    {
      Request *request = g_ptr_array_index (batch, i);

      /* run_async() takes a reference of its own (the request's goes
       * with the request). */
      arip_pool_run_async (request->pool, request->function, request->args,
                           request->cancellable, on_ended, request);
    }
  g_object_unref (pool);
  return G_SOURCE_REMOVE;
}

/**
 * arip_pool_run_to_queue:
 * @self: a pool
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is taken
 * @queue: where the call ends
 * @tag: what [method@Arip.ResultQueue.pop] gives with its result
 * @cancellable: (nullable): cancels the call, as for
 *   [method@Arip.Pool.run_async]
 *
 * Runs @function as [method@Arip.Pool.run_async] does, from any thread:
 * the call starts in the pool's main context, and its result goes to
 * @queue, to be taken with [method@Arip.ResultQueue.pop] and finished
 * with [method@Arip.Pool.run_finish] in whatever thread watches the
 * queue. Calls made from one thread start in the order they were made.
 */
void
arip_pool_run_to_queue (AripPool        *self,
                        const char      *function,
                        GVariant        *args,
                        AripResultQueue *queue,
                        guint64          tag,
                        GCancellable    *cancellable)
{
  Request *request;
  GPtrArray *batch;
  gboolean first;

  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (args == NULL || g_variant_is_of_type (args, G_VARIANT_TYPE_TUPLE));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  g_return_if_fail (ARIP_IS_RESULT_QUEUE (queue));

  request = g_new0 (Request, 1);
  request->pool = g_object_ref (self);
  request->function = g_strdup (function);
  request->args = args != NULL ? g_variant_ref_sink (args) : NULL;
  request->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  request->ending.queue = g_object_ref (queue);
  request->ending.tag = tag;
  request->ending.free = (GDestroyNotify) request_free;

  g_mutex_lock (&requests_lock);
  if (requests == NULL)
    requests = g_hash_table_new (NULL, NULL);
  batch = g_hash_table_lookup (requests, self);
  first = batch == NULL;
  if (first)
    {
      batch = g_ptr_array_new ();   /* each request is its call's until it ends */
      g_hash_table_insert (requests, self, batch);
    }
  g_ptr_array_add (batch, request);
  g_mutex_unlock (&requests_lock);

  /* Always from a source of the pool's context: g_main_context_invoke()
   * would run it in this thread if the context is this thread's default
   * one and nobody iterates it this instant, beside the pool's own. */
  if (first)
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, start_requests, g_object_ref (self), NULL);
      g_source_set_static_name (source, "[arip] pool calls to a result queue");
      g_source_attach (source, arip_pool_get_context (self));
      g_source_unref (source);
    }
}

/* ---------------------------------------------------------------------- */
/* Queue gets from any thread                                             */

typedef struct
{
  Ending           ending;
  AripQueue       *source;
  GCancellable    *cancellable;
} Get;

static void
get_free (Get *get)
{
  g_object_unref (get->source);
  g_clear_object (&get->cancellable);
  g_free (get);
}

static gboolean
start_get (gpointer user_data)
{
  Get *get = user_data;

  arip_queue_get_async (get->source, get->cancellable, on_ended, get);
  return G_SOURCE_REMOVE;
}

/**
 * arip_queue_get_to_queue:
 * @self: a queue
 * @queue: where the get ends
 * @tag: what [method@Arip.ResultQueue.pop] gives with its result
 * @cancellable: (nullable): cancels the wait, as for
 *   [method@Arip.Queue.get_async]
 *
 * Takes the first item of @self as [method@Arip.Queue.get_async] does,
 * from any thread, and puts the result in @queue, to be taken with
 * [method@Arip.ResultQueue.pop] and finished with
 * [method@Arip.Queue.get_finish] in whatever thread watches it: for an
 * event loop in another thread than a GLib main loop (Python's asyncio).
 *
 * In the process that holds the queue, the wait runs in arip's own
 * thread for shared objects, and an item a child puts ends it there at
 * once: no main context of the program is involved. Elsewhere (in a
 * worker), it runs in the calling thread's thread-default main context,
 * which must be running, as for arip_queue_get_async().
 *
 * As with arip_queue_get_async(), an item taken just as the wait was
 * cancelled is handed out: give it back with [method@Arip.Queue.unget]
 * if it is not wanted.
 */
void
arip_queue_get_to_queue (AripQueue       *self,
                         AripResultQueue *queue,
                         guint64          tag,
                         GCancellable    *cancellable)
{
  Get *get;

  g_return_if_fail (ARIP_IS_QUEUE (self));
  g_return_if_fail (ARIP_IS_RESULT_QUEUE (queue));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  get = g_new0 (Get, 1);
  get->source = g_object_ref (self);
  get->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  get->ending.queue = g_object_ref (queue);
  get->ending.tag = tag;
  get->ending.free = (GDestroyNotify) get_free;

  if (arip_shared_is_owner (ARIP_SHARED (self)))
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, start_get, get, NULL);
      g_source_set_static_name (source, "[arip] queue get to a result queue");
      g_source_attach (source, arip_broker_get_context ());
      g_source_unref (source);
    }
  else
    start_get (get);
}
