/* arip-broker.c: where the state of this process's shared objects lives,
 * and the connections its children reach it by
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One lock guards every state, waiter and connection. Connections are
 * read and written in one thread of ours with its own main context, so
 * that children make progress whatever this process's main loops do (a
 * _sync call here may wait for a child's put). Operations made in this
 * process run in the calling thread, under the lock. Local completions
 * (a GTask returning, which may run its callback at once) happen after
 * the lock is let go, so that a callback may use any shared object.
 */
#define _GNU_SOURCE 1   /* memfd_create() */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-shared-private.h"

struct _AripHolder {
  gint          ref_count;      /* atomic */
  AripChannel  *channel;        /* NULL: this process */
  GSource      *in_source;
  GSource      *out_source;
  GHashTable   *opened;         /* id → AripSharedState, a reference each */
  GHashTable   *parked;         /* serial → AripWaiter */
  GQueue        unacked;        /* Unacked, in the order they were sent */
  guint64       n_sent;         /* replies that asked to be acknowledged */
  /* A page the child counts the replies it received in: acknowledging
   * takes it no system call, and us no wake-up. NULL: it sends ACKs. */
  guint64      *acks;
  guint         quiet_posts;    /* posts taken since the last answer to one */
  gboolean      drain;          /* dropped for a failed write: read what it sent first */
  gboolean      gone;
};

typedef struct {
  AripSharedState *state;
  GVariant        *value;
  GUnixFDList     *fds;
  guint32          serial;
  guint64          seq;         /* its place among the holder's */
} Unacked;

#define ACK_PAGE_SIZE 4096

/* Set while a cancellable's handler of ours runs in this thread, where
 * g_cancellable_disconnect() would wait for itself. */
static GPrivate in_cancel_handler;

static struct {
  GMutex        lock;
  GCond         cond;
  GHashTable   *states;         /* id → AripSharedState, unowned */
  GPtrArray    *done;           /* local waiters to complete after the lock */
  gboolean      wake_sync;      /* a _sync waiter here is done: wake it after the lock */
  guint         cond_waiters;   /* _sync waiters asleep on the condition */
  GMainContext *context;
  GThread      *thread;
  guint64       next_id;
  AripHolder    local;
} broker = { .local = { .ref_count = 1 } };

static gpointer
broker_thread (gpointer data)
{
  GMainContext *context = data;

  /* Operations started here (arip_queue_get_to_queue()) complete here,
   * as soon as what they wait for comes in. */
  g_main_context_push_thread_default (context);
  for (;;)
    g_main_context_iteration (context, TRUE);
  return NULL;
}

/* Under the lock. */
static void
ensure_init (void)
{
  if (broker.states != NULL)
    return;
  broker.states = g_hash_table_new (g_int64_hash, g_int64_equal);
  broker.done = g_ptr_array_new ();
  broker.next_id = 1;
}

static void
ensure_thread (void)
{
  if (broker.thread != NULL)
    return;
  broker.context = g_main_context_new ();
  broker.thread = g_thread_new ("arip-shared", broker_thread, broker.context);
}

GMainContext *
arip_broker_get_context (void)
{
  GMainContext *context;

  arip_broker_lock ();
  ensure_thread ();
  context = broker.context;
  arip_broker_unlock ();
  return context;
}

void
arip_broker_lock (void)
{
  g_mutex_lock (&broker.lock);
  ensure_init ();
}

static void
waiter_free (AripWaiter *waiter)
{
  g_clear_pointer (&waiter->arg, g_variant_unref);
  g_clear_object (&waiter->fds);
  g_clear_pointer (&waiter->reply, g_variant_unref);
  g_clear_object (&waiter->reply_fds);
  g_clear_error (&waiter->error);
  g_clear_object (&waiter->task);
  g_clear_object (&waiter->cancellable);
  g_free (waiter);
}

static void
unacked_free (gpointer data)
{
  Unacked *unacked = data;

  g_variant_unref (unacked->value);
  g_clear_object (&unacked->fds);
  g_free (unacked);
}

void
arip_shared_reply_free (gpointer data)
{
  AripSharedReply *reply = data;

  g_clear_pointer (&reply->value, g_variant_unref);
  g_clear_object (&reply->fds);
  g_free (reply);
}

void
arip_broker_unlock (void)
{
  g_autoptr(GPtrArray) done = NULL;
  gboolean wake;

  if (broker.done->len > 0)
    {
      done = broker.done;
      broker.done = g_ptr_array_new ();
    }
  /* (A broadcast is a system call even with nobody to wake.) */
  wake = broker.wake_sync && broker.cond_waiters > 0;
  broker.wake_sync = FALSE;
  g_mutex_unlock (&broker.lock);
  /* Not under the lock: the waiter would wake only to wait for it. */
  if (wake)
    g_cond_broadcast (&broker.cond);

  for (guint i = 0; done != NULL && i < done->len; i++)
    {
      AripWaiter *waiter = done->pdata[i];

      if (waiter->cancel_id != 0 && g_private_get (&in_cancel_handler) != NULL)
        g_signal_handler_disconnect (waiter->cancellable, waiter->cancel_id);
      else if (waiter->cancel_id != 0)
        g_cancellable_disconnect (waiter->cancellable, waiter->cancel_id);
      if (waiter->error != NULL)
        g_task_return_error (waiter->task, g_steal_pointer (&waiter->error));
      else
        {
          AripSharedReply *reply = g_new0 (AripSharedReply, 1);

          reply->value = g_steal_pointer (&waiter->reply);
          reply->fds = g_steal_pointer (&waiter->reply_fds);
          g_task_return_pointer (waiter->task, reply, arip_shared_reply_free);
        }
      waiter_free (waiter);
    }
}

gpointer
arip_shared_state_new (const AripSharedStateClass *klass,
                       gsize                       size,
                       AripShared                 *object)
{
  AripSharedState *state;

  g_assert (size >= sizeof (AripSharedState));
  state = g_malloc0 (size);
  state->klass = klass;
  state->ref_count = 1;
  state->key = ((guint64) g_random_int () << 32) | g_random_int ();
  state->openers = g_ptr_array_new ();
  g_weak_ref_init (&state->object, object);
  state->context = g_main_context_ref_thread_default ();

  arip_broker_lock ();
  state->id = broker.next_id++;
  g_hash_table_insert (broker.states, &state->id, state);
  arip_broker_unlock ();
  return state;
}

void
arip_shared_state_ref (AripSharedState *state)
{
  state->ref_count++;
}

void
arip_shared_state_unref (AripSharedState *state)
{
  if (--state->ref_count > 0)
    return;
  g_hash_table_remove (broker.states, &state->id);
  g_ptr_array_unref (state->openers);
  g_weak_ref_clear (&state->object);
  g_main_context_unref (state->context);
  if (state->klass->finalize != NULL)
    state->klass->finalize (state);
  g_free (state);
}

/* ------------------------------------------------------------------ */
/* Completions                                                        */

gboolean
arip_holder_is_local (AripHolder *holder)
{
  return holder == &broker.local;
}

gboolean
arip_holder_equal (AripHolder *a,
                   AripHolder *b)
{
  return a == b;
}

static AripHolder *
holder_ref (AripHolder *holder)
{
  g_atomic_int_inc (&holder->ref_count);
  return holder;
}

static void
holder_unref (AripHolder *holder)
{
  if (holder == &broker.local || !g_atomic_int_dec_and_test (&holder->ref_count))
    return;
  g_clear_pointer (&holder->opened, g_hash_table_unref);
  g_clear_pointer (&holder->parked, g_hash_table_unref);
  g_queue_clear_full (&holder->unacked, unacked_free);
  if (holder->acks != NULL)
    munmap (holder->acks, ACK_PAGE_SIZE);
  g_clear_pointer (&holder->channel, arip_channel_unref);
  g_free (holder);
}

void
arip_waiter_park (AripWaiter *waiter,
                  GQueue     *queue)
{
  waiter->parked = TRUE;
  waiter->parked_in = queue;
  waiter->link.data = waiter;
  g_queue_push_tail_link (queue, &waiter->link);
  if (waiter->holder->parked != NULL)
    g_hash_table_insert (waiter->holder->parked, GUINT_TO_POINTER (waiter->serial), waiter);
}

static void
unpark (AripWaiter *waiter,
        GQueue     *queue)
{
  if (!waiter->parked)
    return;
  waiter->parked = FALSE;
  /* A waiter moving from one list to another is in none. */
  if (waiter->parked_in != NULL)
    g_queue_unlink (waiter->parked_in, &waiter->link);
  waiter->parked_in = NULL;
  if (waiter->holder->parked != NULL)
    g_hash_table_remove (waiter->holder->parked, GUINT_TO_POINTER (waiter->serial));
}

static void schedule_drop (AripHolder *holder);

/* Under the lock: what the child says it received is its own. (A count
 * beyond what was sent is a child's lie, and counts as all.) */
static void
prune_acked (AripHolder *holder)
{
  guint64 acked;

  if (holder->acks == NULL)
    return;
  acked = __atomic_load_n (holder->acks, __ATOMIC_ACQUIRE);
  while (holder->unacked.head != NULL && ((Unacked *) holder->unacked.head->data)->seq < acked)
    unacked_free (g_queue_pop_head (&holder->unacked));
}

static gboolean
on_writable (gint         fd,
             GIOCondition condition,
             gpointer     user_data)
{
  AripHolder *holder = user_data;
  g_autoptr(GError) error = NULL;
  gboolean more;

  arip_broker_lock ();
  more = !holder->gone && !arip_channel_flush_nowait (holder->channel, &error) &&
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  if (error != NULL && !more && !holder->gone)
    schedule_drop (holder);
  if (!more)
    g_clear_pointer (&holder->out_source, g_source_unref);
  arip_broker_unlock ();
  return more ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Sends a frame on a connection: under the lock. A connection that fails,
 * or whose peer lets too much pile up, is dropped soon (not now: the
 * caller may be in the middle of changing a state). */
static void
holder_send (AripHolder  *holder,
             GBytes      *frame,
             GUnixFDList *fds)
{
  g_autoptr(GError) error = NULL;

  if (holder->gone)
    {
      g_bytes_unref (frame);
      return;
    }
  if (!arip_channel_send_bytes (holder->channel, frame, fds, &error) ||
      (!arip_channel_flush_nowait (holder->channel, &error) &&
       !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
    {
      g_debug ("A shared objects' connection failed: %s", error->message);
      holder->drain = TRUE;
      schedule_drop (holder);
      return;
    }
  if (error != NULL && holder->out_source == NULL)
    {
      holder->out_source = g_unix_fd_source_new (arip_channel_get_fd (holder->channel), G_IO_OUT);
      g_source_set_callback (holder->out_source, G_SOURCE_FUNC (on_writable),
                             holder_ref (holder), (GDestroyNotify) holder_unref);
      g_source_set_static_name (holder->out_source, "[arip] shared write");
      g_source_set_can_recurse (holder->out_source, TRUE);
      g_source_attach (holder->out_source, broker.context);
    }
  if (arip_channel_get_queued_bytes (holder->channel) > ARIP_SHARED_MAX_QUEUED)
    {
      g_warning ("A child does not read what its shared objects tell it; "
                 "its connection to them is closed");
      schedule_drop (holder);
    }
}

static void
complete_local (AripWaiter *waiter)
{
  waiter->done = TRUE;
  if (waiter->sync)
    broker.wake_sync = TRUE;
  else
    g_ptr_array_add (broker.done, waiter);
}

static void
waiter_return_full (AripWaiter  *waiter,
                    GQueue      *queue,
                    GVariant    *value,
                    GUnixFDList *fds,
                    gboolean     needs_ack)
{
  unpark (waiter, queue);
  g_variant_ref_sink (value);

  if (arip_holder_is_local (waiter->holder))
    {
      waiter->reply = value;
      waiter->reply_fds = fds;
      complete_local (waiter);
      return;
    }

  if (needs_ack && !waiter->holder->gone)
    {
      Unacked *unacked = g_new0 (Unacked, 1);

      prune_acked (waiter->holder);
      unacked->state = waiter->state;
      unacked->value = g_variant_ref (value);
      unacked->fds = fds != NULL ? g_object_ref (fds) : NULL;
      unacked->serial = waiter->serial;
      unacked->seq = waiter->holder->n_sent++;
      g_queue_push_tail (&waiter->holder->unacked, unacked);
    }
  holder_send (waiter->holder,
               arip_frame_encode_reply (waiter->serial, needs_ack, value,
                                        fds != NULL ? g_unix_fd_list_get_length (fds) : 0),
               fds);
  g_variant_unref (value);
  g_clear_object (&fds);
  holder_unref (waiter->holder);
  waiter_free (waiter);
}

void
arip_waiter_return (AripWaiter  *waiter,
                    GQueue      *queue,
                    GVariant    *value,
                    GUnixFDList *fds)
{
  waiter_return_full (waiter, queue, value, fds, FALSE);
}

void
arip_waiter_return_post (AripWaiter *waiter,
                         guint       room)
{
  AripHolder *holder = waiter->holder;

  if (!arip_holder_is_local (holder) && !waiter->parked &&
      holder->quiet_posts + 1 < ARIP_SHARED_QUIET_POSTS)
    {
      holder->quiet_posts++;
      holder_unref (holder);
      waiter_free (waiter);
      return;
    }
  holder->quiet_posts = 0;
  waiter_return_full (waiter, NULL, g_variant_new ("(u)", room), NULL, FALSE);
}

void
arip_waiter_return_item (AripWaiter  *waiter,
                         GQueue      *queue,
                         GVariant    *value,
                         GUnixFDList *fds)
{
  waiter_return_full (waiter, queue, value, fds, TRUE);
}

static void
waiter_return_gerror (AripWaiter *waiter,
                      GQueue     *queue,
                      GError     *error)
{
  unpark (waiter, queue);

  if (arip_holder_is_local (waiter->holder))
    {
      waiter->error = error;
      complete_local (waiter);
      return;
    }

  holder_send (waiter->holder,
               arip_frame_encode (ARIP_FRAME_REPLY_ERROR,
                                  g_variant_new ("(usis)", waiter->serial,
                                                 g_quark_to_string (error->domain),
                                                 error->code, error->message),
                                  0),
               NULL);
  g_error_free (error);
  holder_unref (waiter->holder);
  waiter_free (waiter);
}

void
arip_waiter_return_error (AripWaiter *waiter,
                          GQueue     *queue,
                          GQuark      domain,
                          gint        code,
                          const char *format,
                          ...)
{
  va_list args;
  GError *error;

  va_start (args, format);
  error = g_error_new_valist (domain, code, format, args);
  va_end (args);
  waiter_return_gerror (waiter, queue, error);
}

gboolean
arip_waiter_withdraw_default (AripSharedState *state,
                              AripWaiter      *waiter,
                              gboolean         gone)
{
  g_queue_unlink (waiter->parked_in, &waiter->link);
  waiter->parked_in = NULL;
  return TRUE;
}

/* A parked waiter is cancelled: under the lock. */
static void
cancel_parked (AripWaiter *waiter,
               GError     *error)
{
  if (!waiter->parked || !waiter->state->klass->withdraw (waiter->state, waiter, FALSE))
    {
      g_error_free (error);
      return;
    }
  waiter->parked = FALSE;
  if (waiter->holder->parked != NULL)
    g_hash_table_remove (waiter->holder->parked, GUINT_TO_POINTER (waiter->serial));
  waiter_return_gerror (waiter, NULL, error);
}

/* ------------------------------------------------------------------ */
/* This process's operations                                          */

static AripWaiter *
local_waiter_new (AripSharedState *state,
                  guint            op,
                  GVariant        *arg,
                  GUnixFDList     *fds)
{
  AripWaiter *waiter = g_new0 (AripWaiter, 1);

  waiter->state = state;
  waiter->holder = &broker.local;
  waiter->op = op;
  waiter->arg = arg != NULL ? g_variant_ref_sink (arg) : g_variant_ref_sink (g_variant_new ("()"));
  waiter->fds = fds != NULL ? g_object_ref (fds) : NULL;
  return waiter;
}

static void
on_local_cancelled (GCancellable *cancellable,
                    AripWaiter   *waiter)
{
  g_private_set (&in_cancel_handler, GINT_TO_POINTER (1));
  arip_broker_lock ();
  if (!waiter->done)
    cancel_parked (waiter, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                _("Operation was cancelled")));
  arip_broker_unlock ();
  g_private_set (&in_cancel_handler, NULL);
}

void
arip_broker_run_async (AripSharedState *state,
                       guint            op,
                       GVariant        *arg,
                       GUnixFDList     *fds,
                       GTask           *task)
{
  AripWaiter *waiter = local_waiter_new (state, op, arg, fds);
  GCancellable *cancellable = g_task_get_cancellable (task);

  waiter->task = g_object_ref (task);
  /* What was got is handed out even if the wait was cancelled meanwhile:
   * nothing is lost. */
  g_task_set_check_cancellable (task, FALSE);
  /* Before the waiter can complete (and go): a handler that runs now
   * finds nothing parked, which the check below makes up for. */
  if (cancellable != NULL)
    {
      waiter->cancellable = g_object_ref (cancellable);
      waiter->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_local_cancelled),
                                                 waiter, NULL);
    }

  arip_broker_lock ();
  state->klass->run (state, waiter);
  if (!waiter->done && cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    cancel_parked (waiter, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                _("Operation was cancelled")));
  arip_broker_unlock ();
}

GVariant *
arip_broker_run_sync (AripSharedState  *state,
                      guint             op,
                      GVariant         *arg,
                      GUnixFDList      *fds,
                      gint              timeout_ms,
                      GCancellable     *cancellable,
                      GUnixFDList     **out_fds,
                      GError          **error)
{
  AripWaiter *waiter = local_waiter_new (state, op, arg, fds);
  gint64 deadline = timeout_ms >= 0 ? g_get_monotonic_time () + (gint64) timeout_ms * 1000 : -1;
  gboolean timed_out = FALSE;
  GVariant *reply;

  waiter->sync = TRUE;
  if (cancellable != NULL)
    {
      waiter->cancellable = g_object_ref (cancellable);
      waiter->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_local_cancelled),
                                                 waiter, NULL);
    }

  arip_broker_lock ();
  state->klass->run (state, waiter);
  if (!waiter->done && cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    cancel_parked (waiter, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                _("Operation was cancelled")));
  while (!waiter->done)
    {
      gboolean woken = TRUE;

      /* Our own operation may have ended another thread's wait (a
       * condition's wait hands its lock on): that one is woken now, as
       * waiting lets go of the lock without arip_broker_unlock(). */
      if (broker.wake_sync && broker.cond_waiters > 0)
        g_cond_broadcast (&broker.cond);
      broker.wake_sync = FALSE;
      broker.cond_waiters++;
      if (deadline < 0)
        g_cond_wait (&broker.cond, &broker.lock);
      else
        woken = g_cond_wait_until (&broker.cond, &broker.lock, deadline);
      broker.cond_waiters--;
      if (!woken && !waiter->done)
        {
          /* A waiter that the type ends itself (a condition taking its
           * lock back) is then waited for without a limit. */
          cancel_parked (waiter, g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                              _("Timed out after %d ms"), timeout_ms));
          deadline = -1;
          timed_out = TRUE;
        }
    }
  arip_broker_unlock ();

  if (waiter->cancel_id != 0)
    g_cancellable_disconnect (cancellable, waiter->cancel_id);
  waiter->cancel_id = 0;
  if (waiter->error != NULL)
    {
      if (timed_out && g_error_matches (waiter->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, _("Timed out after %d ms"), timeout_ms);
      else
        g_propagate_error (error, g_steal_pointer (&waiter->error));
      reply = NULL;
    }
  else
    {
      reply = g_steal_pointer (&waiter->reply);
      if (out_fds != NULL)
        *out_fds = g_steal_pointer (&waiter->reply_fds);
    }
  waiter_free (waiter);
  return reply;
}

GVariant *
arip_broker_finish (GTask         *task,
                    GUnixFDList  **out_fds,
                    GError       **error)
{
  AripSharedReply *reply = g_task_propagate_pointer (task, error);
  GVariant *value;

  if (reply == NULL)
    return NULL;
  value = g_steal_pointer (&reply->value);
  if (out_fds != NULL)
    *out_fds = g_steal_pointer (&reply->fds);
  arip_shared_reply_free (reply);
  return value;
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */

static void
holder_drop (AripHolder *holder)
{
  GHashTableIter iter;
  gpointer value;

  if (holder->gone)
    return;
  holder->gone = TRUE;

  if (holder->in_source != NULL)
    g_source_destroy (holder->in_source);
  g_clear_pointer (&holder->in_source, g_source_unref);
  if (holder->out_source != NULL)
    g_source_destroy (holder->out_source);
  g_clear_pointer (&holder->out_source, g_source_unref);
  arip_channel_close (holder->channel);

  /* Its waits first, so that what it held goes to someone else. One at a
   * time: taking one out (a barrier breaking) may end others. */
  for (;;)
    {
      AripWaiter *waiter;

      g_hash_table_iter_init (&iter, holder->parked);
      if (!g_hash_table_iter_next (&iter, NULL, &value))
        break;
      g_hash_table_iter_remove (&iter);
      waiter = value;
      waiter->state->klass->withdraw (waiter->state, waiter, TRUE);
      waiter->parked = FALSE;
      holder_unref (waiter->holder);
      waiter_free (waiter);
    }

  /* What the dead child counted last is final. */
  prune_acked (holder);
  for (GList *l = holder->unacked.head; l != NULL; l = l->next)
    {
      Unacked *unacked = l->data;

      if (unacked->state->klass->give_back != NULL)
        unacked->state->klass->give_back (unacked->state, unacked->value, unacked->fds);
    }
  g_queue_clear_full (&holder->unacked, unacked_free);

  g_hash_table_iter_init (&iter, holder->opened);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      AripSharedState *state = value;

      if (state->klass->holder_gone != NULL)
        state->klass->holder_gone (state, holder);
      g_ptr_array_remove_fast (state->openers, holder);
    }
  /* The states' references go last: give_back() above needed them. */
  g_hash_table_remove_all (holder->opened);

  holder_unref (holder);
}

static gboolean
on_drop (gpointer user_data)
{
  AripHolder *holder = user_data;

  arip_broker_lock ();
  /* A child that died has still put what it sent before (a write to it
   * fails as soon as it is gone, before its last requests are read). */
  if (holder->drain && !holder->gone)
    arip_channel_read_nowait (holder->channel);
  holder_drop (holder);
  arip_broker_unlock ();
  return G_SOURCE_REMOVE;
}

static void
schedule_drop (AripHolder *holder)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, on_drop, holder_ref (holder), (GDestroyNotify) holder_unref);
  g_source_set_static_name (source, "[arip] shared drop");
  g_source_attach (source, broker.context);
  g_source_unref (source);
}

static void
reply_error_to (AripHolder *holder,
                guint32     serial,
                gint        code,
                const char *message)
{
  holder_send (holder,
               arip_frame_encode (ARIP_FRAME_REPLY_ERROR,
                                  g_variant_new ("(usis)", serial, g_quark_to_string (ARIP_ERROR),
                                                 code, message),
                                  0),
               NULL);
}

static void
handle_open (AripHolder *holder,
             guint32     serial,
             guint64     id,
             GVariant   *arg)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  AripSharedState *state;
  guint64 key;
  GVariant *info;
  gint n_fds;

  if (!g_variant_is_of_type (arg, G_VARIANT_TYPE ("(t)")))
    {
      schedule_drop (holder);
      return;
    }
  g_variant_get (arg, "(t)", &key);
  state = g_hash_table_lookup (broker.states, &id);
  if (state == NULL || state->key != key)
    {
      reply_error_to (holder, serial, ARIP_ERROR_INVALID_DATA,
                      _("The handle names no shared object of the parent process "
                        "(it was made by another process, or the object is gone)"));
      return;
    }
  if (g_hash_table_lookup (holder->opened, &state->id) == NULL)
    {
      arip_shared_state_ref (state);
      g_hash_table_insert (holder->opened, &state->id, state);
      g_ptr_array_add (state->openers, holder);
    }
  info = state->klass->describe (state, fds);
  n_fds = g_unix_fd_list_get_length (fds);
  holder_send (holder,
               arip_frame_encode (ARIP_FRAME_REPLY,
                                  g_variant_new ("(ubv)", serial, FALSE,
                                                 g_variant_new ("(sv)",
                                                                g_type_name (state->klass->get_type ()),
                                                                info)),
                                  n_fds),
               n_fds > 0 ? fds : NULL);
}

static void
handle_request (AripHolder *holder,
                AripFrame  *frame)
{
  g_autoptr(GVariant) arg = g_variant_ref (frame->value);
  GUnixFDList *fds = frame->fds;
  AripSharedState *state;
  AripWaiter *waiter;
  guint32 serial = frame->u32, op = (guint32) frame->i32;
  guint64 id = frame->u64;

  switch (op)
    {
    case ARIP_SHARED_OP_OPEN:
      handle_open (holder, serial, id, arg);
      return;

    case ARIP_SHARED_OP_CANCEL:
      if (g_variant_is_of_type (arg, G_VARIANT_TYPE ("(u)")))
        {
          guint32 which;

          g_variant_get (arg, "(u)", &which);
          waiter = g_hash_table_lookup (holder->parked, GUINT_TO_POINTER (which));
          if (waiter != NULL)
            cancel_parked (waiter, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                        _("Operation was cancelled")));
        }
      return;

    case ARIP_SHARED_OP_SYNC:
      /* Answered in turn: after every request before it. */
      holder_send (holder,
                   arip_frame_encode_reply (serial, FALSE, g_variant_new ("()"), 0),
                   NULL);
      return;

    case ARIP_SHARED_OP_ACK:
      if (g_variant_is_of_type (arg, G_VARIANT_TYPE ("(u)")))
        {
          guint32 which;

          g_variant_get (arg, "(u)", &which);
          /* (From a child without the page.) */
          for (GList *l = holder->unacked.head; l != NULL; l = l->next)
            if (((Unacked *) l->data)->serial == which)
              {
                unacked_free (l->data);
                g_queue_delete_link (&holder->unacked, l);
                break;
              }
        }
      return;

    default:
      break;
    }

  state = g_hash_table_lookup (holder->opened, &id);
  if (state == NULL)
    {
      reply_error_to (holder, serial, ARIP_ERROR_INVALID_STATE,
                      _("This process did not open that shared object"));
      return;
    }
  if (g_hash_table_contains (holder->parked, GUINT_TO_POINTER (serial)))
    {
      /* Two waits under one number: not our client. */
      schedule_drop (holder);
      return;
    }

  waiter = g_new0 (AripWaiter, 1);
  waiter->state = state;
  waiter->holder = holder_ref (holder);
  waiter->op = op;
  waiter->serial = serial;
  waiter->arg = g_steal_pointer (&arg);
  waiter->fds = fds != NULL ? g_object_ref (fds) : NULL;
  state->klass->run (state, waiter);
}

static void
on_holder_frame (AripChannel *channel,
                 AripFrame   *frame,
                 gpointer     user_data)
{
  AripHolder *holder = user_data;

  if (holder->gone)
    return;
  if (frame->kind != ARIP_FRAME_REQUEST)
    {
      g_debug ("A child sent a %s frame on its shared objects' connection",
               arip_frame_kind_to_string (frame->kind));
      schedule_drop (holder);
      return;
    }
  if (frame->needs_check && !arip_frame_check (frame))
    {
      schedule_drop (holder);
      return;
    }
  handle_request (holder, frame);
}

static void
on_holder_closed (AripChannel  *channel,
                  const GError *error,
                  gpointer      user_data)
{
  schedule_drop (user_data);
}

static gboolean
on_holder_readable (gint         fd,
                    GIOCondition condition,
                    gpointer     user_data)
{
  AripHolder *holder = user_data;

  arip_broker_lock ();
  if (!holder->gone)
    arip_channel_read_nowait (holder->channel);
  arip_broker_unlock ();
  return G_SOURCE_CONTINUE;
}

/* The page a child counts what it received in: sealed at its size, so
 * that the child cannot shrink it under our mapping. NULL and -1 if it
 * cannot be made: the child sends ACK frames then. */
static guint64 *
make_ack_page (gint *out_fd)
{
  gpointer page;
  int fd;

  *out_fd = -1;
  fd = memfd_create ("arip-shared-acks", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return NULL;
  if (ftruncate (fd, ACK_PAGE_SIZE) < 0 ||
      fcntl (fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
      (page = mmap (NULL, ACK_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
    {
      close (fd);
      return NULL;
    }
  *out_fd = fd;
  return page;
}

AripHolder *
arip_broker_connect (gint    *out_fd,
                     gint    *out_ack_fd,
                     GError **error)
{
  AripHolder *holder;
  AripChannel *channel;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("Could not make a connection for shared objects: %s"),
                   g_strerror (saved_errno));
      return NULL;
    }
  channel = arip_channel_new (fds[0], error);
  if (channel == NULL)
    {
      close (fds[1]);
      return NULL;
    }
  arip_channel_set_sync_writes (channel, TRUE);

  holder = g_new0 (AripHolder, 1);
  holder->ref_count = 2;   /* ours until it is dropped, and the caller's */
  holder->channel = channel;
  holder->opened = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                          (GDestroyNotify) arip_shared_state_unref);
  holder->parked = g_hash_table_new (NULL, NULL);
  holder->acks = make_ack_page (out_ack_fd);
  arip_channel_set_handlers (channel, on_holder_frame, on_holder_closed, holder);

  arip_broker_lock ();
  ensure_thread ();
  holder->in_source = g_unix_fd_source_new (arip_channel_get_fd (channel),
                                            G_IO_IN | G_IO_HUP | G_IO_ERR);
  /* A reference of its own: the child's exit may drop the holder in
   * another thread while this source is being dispatched. */
  g_source_set_callback (holder->in_source, G_SOURCE_FUNC (on_holder_readable),
                         holder_ref (holder), (GDestroyNotify) holder_unref);
  g_source_set_static_name (holder->in_source, "[arip] shared read");
  /* Nothing in the broker's thread iterates its context again: a source
   * that may recurse spares GLib taking its descriptor out of the poll
   * and back at each dispatch (two wake-ups of the context each time). */
  g_source_set_can_recurse (holder->in_source, TRUE);
  g_source_attach (holder->in_source, broker.context);
  arip_broker_unlock ();

  *out_fd = fds[1];
  return holder;
}

void
arip_holder_close (AripHolder *holder)
{
  arip_broker_lock ();
  /* What the child sent before it ended (puts it did not wait for) is
   * taken in first. */
  if (!holder->gone)
    arip_channel_read_nowait (holder->channel);
  holder_drop (holder);
  arip_broker_unlock ();
  holder_unref (holder);
}

/* ------------------------------------------------------------------ */
/* Signals                                                            */

typedef struct {
  GWeakRef  object;
  char     *what;
  GVariant *value;
} Emission;

static gboolean
emit_here (gpointer user_data)
{
  Emission *emission = user_data;
  g_autoptr(AripShared) object = g_weak_ref_get (&emission->object);

  if (object != NULL)
    {
      AripSharedState *state = arip_shared_get_state (object);

      if (state != NULL && state->klass->event != NULL)
        state->klass->event (object, emission->what, emission->value);
    }
  return G_SOURCE_REMOVE;
}

static void
emission_free (gpointer data)
{
  Emission *emission = data;

  g_weak_ref_clear (&emission->object);
  g_free (emission->what);
  g_variant_unref (emission->value);
  g_free (emission);
}

void
arip_shared_state_emit (AripSharedState *state,
                        const char      *what,
                        GVariant        *value)
{
  g_autoptr(AripShared) object = g_weak_ref_get (&state->object);

  g_variant_ref_sink (value);
  for (guint i = 0; i < state->openers->len; i++)
    holder_send (state->openers->pdata[i],
                 arip_frame_encode (ARIP_FRAME_EVENT,
                                    g_variant_new ("(tsv)", state->id, what, value), 0),
                 NULL);
  if (object != NULL)
    {
      Emission *emission = g_new0 (Emission, 1);

      g_weak_ref_init (&emission->object, object);
      emission->what = g_strdup (what);
      emission->value = g_variant_ref (value);
      /* Never at once: not under our lock, and not in our thread. */
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, emit_here, emission, emission_free);
      g_source_set_static_name (source, "[arip] shared signal");
      g_source_attach (source, state->context);
      g_source_unref (source);
    }
  g_variant_unref (value);
}

gboolean
arip_waiter_check_arg (AripWaiter *waiter,
                       const char *type)
{
  if (g_variant_is_of_type (waiter->arg, G_VARIANT_TYPE (type)))
    return TRUE;
  arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                            _("A request of type “%s” where “%s” belongs"),
                            g_variant_get_type_string (waiter->arg), type);
  return FALSE;
}

AripShared *
arip_broker_lookup (guint64 id,
                    guint64 key)
{
  AripSharedState *state;
  AripShared *object = NULL;

  arip_broker_lock ();
  state = g_hash_table_lookup (broker.states, &id);
  if (state != NULL && state->key == key)
    object = g_weak_ref_get (&state->object);
  arip_broker_unlock ();
  return object;
}
