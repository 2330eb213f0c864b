/* arip-shared.c: the base of the shared objects, their handles, and a
 * child's side of the connection to them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-shared-private.h"

/**
 * AripShared:
 *
 * The base of the objects that several processes use at once: queues,
 * locks, events, semaphores, conditions, barriers, shared memory and
 * shared dictionaries.
 *
 * One is created in a parent process and handed to a child inside a
 * call's arguments (or a message) as its handle,
 * arip_shared_to_variant(); the child opens the handle with
 * arip_call_get_shared() and gets a live object of the same type. The
 * parent holds the state; every operation of every process runs there,
 * so a process that dies frees what it held: see each type.
 */

typedef struct {
  AripSharedState *state;   /* in the process that made it */
  guint64          id;
  guint64          key;
  /* In a child, under the client's lock: its posts. */
  guint            credit;      /* posts that may go before a reply says more */
  guint            posted;      /* sent, not answered */
  guint            refused;     /* answered with an error */
  gboolean         post_failed; /* one was: no more posts */
  GError          *post_error;  /* the first refusal, for the next request */
} AripSharedPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (AripShared, arip_shared, G_TYPE_OBJECT)

static const AripSharedStateClass * const classes[] = {
  &arip_queue_state_class,
  &arip_lock_state_class,
  &arip_event_state_class,
  &arip_semaphore_state_class,
  &arip_condition_state_class,
  &arip_barrier_state_class,
  &arip_shared_memory_state_class,
  &arip_shared_dict_state_class,
};

/* ------------------------------------------------------------------ */
/* A child's connection                                               */

typedef struct {
  guint32       serial;
  GTask        *task;       /* or a _sync call waits */
  gboolean      done;
  gboolean      cancel_sent;
  AripSharedReply *reply;
  GError       *error;
  GCancellable *cancellable;
  gulong        cancel_id;
  AripShared   *posted_by;  /* a post of this object's: nobody waits */
} Pending;

static struct {
  GMutex        lock;       /* all below but the channel's writing side */
  GCond         cond;
  GMutex        write_lock;
  AripChannel  *channel;
  GMainContext *context;    /* where events are emitted */
  GPtrArray    *sources;    /* a reader in each context that awaits a reply */
  GHashTable   *pending;    /* serial → Pending */
  GHashTable   *objects;    /* id → AripShared, unowned */
  GPtrArray    *done;       /* Pending with a task, to complete unlocked */
  GQueue        posts;      /* Pending posts not answered, in the order sent */
  guint32       next_serial;
  guint         posted;     /* posts not answered yet */
  guint64      *acks;       /* the parent's page: replies received, counted */
  guint64       n_received; /* ... of those that asked to be acknowledged */
  guint         cond_waiters; /* _sync calls asleep on the condition */
  gboolean      reading;    /* a _sync call polls the socket */
  GError       *error;      /* the connection is gone */
} client;

static void
pending_free (Pending *pending)
{
  g_clear_pointer (&pending->reply, arip_shared_reply_free);
  g_clear_error (&pending->error);
  g_clear_object (&pending->task);
  g_clear_object (&pending->cancellable);
  g_clear_object (&pending->posted_by);
  g_free (pending);
}

/* Under the lock. (A broadcast is a system call even with nobody to
 * wake.) */
static void
wake_waiters (void)
{
  if (client.cond_waiters > 0)
    g_cond_broadcast (&client.cond);
}

/* Under the lock: let go, then complete what was completed meanwhile. */
static void
client_unlock (void)
{
  g_autoptr(GPtrArray) done = NULL;

  if (client.done != NULL && client.done->len > 0)
    {
      done = client.done;
      client.done = g_ptr_array_new ();
    }
  g_mutex_unlock (&client.lock);

  for (guint i = 0; done != NULL && i < done->len; i++)
    {
      Pending *pending = done->pdata[i];

      if (pending->posted_by != NULL)
        {
          /* Its object may go now: not under the lock. */
          pending_free (pending);
          continue;
        }
      if (pending->cancel_id != 0)
        g_cancellable_disconnect (pending->cancellable, pending->cancel_id);
      if (pending->error != NULL)
        g_task_return_error (pending->task, g_steal_pointer (&pending->error));
      else
        g_task_return_pointer (pending->task, g_steal_pointer (&pending->reply),
                               arip_shared_reply_free);
      pending_free (pending);
    }
}

/* Under the lock: a post was answered. */
static void
post_answered (Pending *pending)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (pending->posted_by);

  priv->posted--;
  client.posted--;
  if (pending->error != NULL)
    {
      priv->post_failed = TRUE;
      priv->refused++;
      if (priv->post_error == NULL)
        priv->post_error = g_steal_pointer (&pending->error);
    }
  else if (pending->reply != NULL && g_variant_is_of_type (pending->reply->value, G_VARIANT_TYPE ("(u)")))
    g_variant_get (pending->reply->value, "(u)", &priv->credit);
  else if (priv->credit > 0 && priv->credit != G_MAXUINT)
    /* Taken without an answer of its own: it used a place the last
     * answer said there was. */
    priv->credit--;
}

/* Under the lock: the parent answered request @serial, so it took every
 * post sent before it (it runs a connection's requests in order, and
 * answers a post only now and then: an error at once). */
static void
answer_posts_before (guint32 serial)
{
  Pending *post;

  while ((post = g_queue_peek_head (&client.posts)) != NULL &&
         (gint32) (post->serial - serial) < 0)
    {
      g_queue_pop_head (&client.posts);
      post->done = TRUE;
      g_hash_table_steal (client.pending, GUINT_TO_POINTER (post->serial));
      post_answered (post);
      g_ptr_array_add (client.done, post);
    }
}

static void
complete (Pending *pending)
{
  pending->done = TRUE;
  g_hash_table_steal (client.pending, GUINT_TO_POINTER (pending->serial));
  if (pending->posted_by != NULL)
    {
      g_queue_remove (&client.posts, pending);
      post_answered (pending);
      g_ptr_array_add (client.done, pending);
    }
  else if (pending->task != NULL)
    g_ptr_array_add (client.done, pending);
  else
    wake_waiters ();
}

/* Sends a request; under the lock (or before anyone can read). */
static gboolean
client_send (guint32       serial,
             guint         op,
             guint64       id,
             GVariant     *arg,
             GUnixFDList  *fds,
             GError      **error)
{
  gboolean ok;
  GBytes *frame;

  if (client.error != NULL)
    {
      g_variant_unref (g_variant_ref_sink (arg));
      g_propagate_error (error, g_error_copy (client.error));
      return FALSE;
    }
  frame = arip_frame_encode_request (serial, op, id, arg,
                                     fds != NULL ? g_unix_fd_list_get_length (fds) : 0);
  if (frame == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_FAILED,
                   _("The value is larger than the limit of %u bytes"), ARIP_FRAME_MAX_SIZE);
      return FALSE;
    }
  g_mutex_lock (&client.write_lock);
  ok = arip_channel_send_bytes (client.channel, frame, fds, error) &&
       arip_channel_flush_sync (client.channel, error);
  g_mutex_unlock (&client.write_lock);
  return ok;
}

static GError *
error_from_reply (GVariant *payload)
{
  const char *domain, *message;
  gint code;
  GQuark quark;

  g_variant_get (payload, "(u&si&s)", NULL, &domain, &code, &message);
  /* Only ours come from the parent's broker: no quark is made for what a
   * peer names. */
  quark = g_str_equal (domain, g_quark_to_string (G_IO_ERROR)) ? G_IO_ERROR : ARIP_ERROR;
  if (quark == ARIP_ERROR && !g_str_equal (domain, g_quark_to_string (ARIP_ERROR)))
    code = ARIP_ERROR_FAILED;
  return g_error_new_literal (quark, code, message);
}

typedef struct {
  AripShared *object;
  char       *what;
  GVariant   *value;
} Event;

static gboolean
deliver_event (gpointer data)
{
  Event *event = data;

  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    if (G_OBJECT_TYPE (event->object) == classes[i]->get_type () && classes[i]->event != NULL)
      classes[i]->event (event->object, event->what, event->value);
  return G_SOURCE_REMOVE;
}

static void
event_free (gpointer data)
{
  Event *event = data;

  g_object_unref (event->object);
  g_free (event->what);
  g_variant_unref (event->value);
  g_free (event);
}

static void
on_client_frame (AripChannel *channel,
                 AripFrame   *frame,
                 gpointer     user_data)
{
  Pending *pending;
  guint32 serial;

  if (frame->kind == ARIP_FRAME_EVENT)
    {
      g_autoptr(GVariant) value = NULL;
      const char *what;
      guint64 id;
      AripShared *object;

      g_variant_get (frame->payload, "(t&sv)", &id, &what, &value);
      object = g_hash_table_lookup (client.objects, &id);
      if (object != NULL)
        {
          Event *event = g_new0 (Event, 1);

          event->object = g_object_ref (object);
          event->what = g_strdup (what);
          event->value = g_steal_pointer (&value);
          /* Never at once: not under our lock. */
          GSource *source = g_idle_source_new ();

          g_source_set_callback (source, deliver_event, event, event_free);
          g_source_set_static_name (source, "[arip] shared signal");
          g_source_attach (source, client.context);
          g_source_unref (source);
        }
      return;
    }

  if (frame->kind != ARIP_FRAME_REPLY && frame->kind != ARIP_FRAME_REPLY_ERROR)
    {
      g_warning ("Unexpected %s frame from the parent's shared objects",
                 arip_frame_kind_to_string (frame->kind));
      return;
    }

  if (frame->kind == ARIP_FRAME_REPLY)
    serial = frame->u32;
  else
    g_variant_get_child (frame->payload, 0, "u", &serial);
  /* We have it: if we die now, it is ours to lose, not before. Every one
   * is counted, in the order they came, whatever becomes of it. */
  if (frame->kind == ARIP_FRAME_REPLY && frame->i32 != 0)
    {
      if (client.acks != NULL)
        __atomic_store_n (client.acks, ++client.n_received, __ATOMIC_RELEASE);
      else
        client_send (0, ARIP_SHARED_OP_ACK, 0, g_variant_new ("(u)", serial), NULL, NULL);
    }
  answer_posts_before (serial);
  pending = g_hash_table_lookup (client.pending, GUINT_TO_POINTER (serial));
  if (pending == NULL)
    return;

  if (frame->kind == ARIP_FRAME_REPLY_ERROR)
    pending->error = error_from_reply (frame->payload);
  else
    {
      if (frame->needs_check && !arip_frame_check (frame))
        {
          pending->error = g_error_new_literal (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                                _("The parent sent a value not in normal form"));
          complete (pending);
          return;
        }
      pending->reply = g_new0 (AripSharedReply, 1);
      pending->reply->value = g_variant_ref (frame->value);
      pending->reply->fds = frame->fds != NULL ? g_object_ref (frame->fds) : NULL;
    }
  complete (pending);
}

static void
on_client_closed (AripChannel  *channel,
                  const GError *error,
                  gpointer      user_data)
{
  GHashTableIter iter;
  gpointer value;

  if (client.error == NULL)
    client.error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                        _("The process that holds the shared objects is gone"));
  g_queue_clear (&client.posts);
  g_hash_table_iter_init (&iter, client.pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Pending *pending = value;

      pending->error = g_error_copy (client.error);
      pending->done = TRUE;
      g_hash_table_iter_steal (&iter);
      if (pending->posted_by != NULL)
        post_answered (pending);
      if (pending->task != NULL || pending->posted_by != NULL)
        g_ptr_array_add (client.done, pending);
    }
  wake_waiters ();
}

static gboolean
on_client_readable (gint         fd,
                    GIOCondition condition,
                    gpointer     user_data)
{
  gboolean more = TRUE;

  g_mutex_lock (&client.lock);
  if (!client.reading)
    more = arip_channel_read_nowait (client.channel);
  client_unlock ();
  return more ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Under the lock: replies are read in @context too (an asynchronous call
 * made from a thread whose main context is not the worker's: the Python
 * layer's, say). */
static void
ensure_reader (GMainContext *context)
{
  GSource *source;

  if (context == NULL)
    context = g_main_context_default ();
  for (guint i = 0; i < client.sources->len; i++)
    if (g_source_get_context (client.sources->pdata[i]) == context)
      return;
  source = g_unix_fd_source_new (arip_channel_get_fd (client.channel), G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (source, G_SOURCE_FUNC (on_client_readable), NULL, NULL);
  g_source_set_static_name (source, "[arip] shared objects");
  /* Replies are read and let go before callbacks run: a nested loop in
   * one may dispatch this again. Spares GLib two wake-ups per dispatch. */
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, context);
  g_ptr_array_add (client.sources, source);
}

void
arip_shared_client_connect (gint          fd,
                            gint          ack_fd,
                            GMainContext *context)
{
  g_autoptr(GError) error = NULL;
  AripChannel *channel;
  gpointer acks = MAP_FAILED;
  struct stat st;

  if (client.channel != NULL)
    {
      /* A parent sends one; a second is not ours to use. */
      close (fd);
      if (ack_fd >= 0)
        close (ack_fd);
      return;
    }
  if (ack_fd >= 0)
    {
      if (fstat (ack_fd, &st) == 0 && st.st_size >= (off_t) sizeof (guint64))
        acks = mmap (NULL, sizeof (guint64), PROT_READ | PROT_WRITE, MAP_SHARED, ack_fd, 0);
      close (ack_fd);
    }
  channel = arip_channel_new (fd, &error);
  if (channel == NULL)
    {
      g_warning ("The shared objects' connection is unusable: %s", error->message);
      return;
    }

  g_mutex_lock (&client.lock);
  client.channel = channel;
  client.acks = acks != MAP_FAILED ? acks : NULL;
  arip_channel_set_sync_writes (channel, TRUE);
  arip_channel_set_handlers (channel, on_client_frame, on_client_closed, NULL);
  client.pending = g_hash_table_new (NULL, NULL);
  client.objects = g_hash_table_new (g_int64_hash, g_int64_equal);
  client.done = g_ptr_array_new ();
  client.next_serial = 1;
  client.context = g_main_context_ref (context);
  client.sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
  ensure_reader (context);
  client_unlock ();
}

/* Under the lock: a new request, sent. NULL with @error if it could not
 * be. */
static gboolean
client_start (Pending      *pending,
              guint         op,
              guint64       id,
              GVariant     *arg,
              GUnixFDList  *fds,
              GError      **error)
{
  if (client.channel == NULL)
    {
      g_variant_unref (g_variant_ref_sink (arg));
      g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                           _("This process has no connection to shared objects: "
                             "it is not a worker that was handed one"));
      return FALSE;
    }
  pending->serial = client.next_serial++;
  if (client.next_serial == 0)
    client.next_serial = 1;
  if (!client_send (pending->serial, op, id, arg, fds, error))
    {
      pending->serial = 0;
      return FALSE;
    }
  g_hash_table_insert (client.pending, GUINT_TO_POINTER (pending->serial), pending);
  return TRUE;
}

static void
send_cancel (Pending *pending)
{
  if (pending->serial == 0 || pending->done || pending->cancel_sent)
    return;
  pending->cancel_sent = TRUE;
  client_send (0, ARIP_SHARED_OP_CANCEL, 0, g_variant_new ("(u)", pending->serial), NULL, NULL);
}

static void
on_client_cancelled (GCancellable *cancellable,
                     Pending      *pending)
{
  g_mutex_lock (&client.lock);
  if (pending->task != NULL)
    send_cancel (pending);
  else
    wake_waiters ();   /* a _sync call notices */
  g_mutex_unlock (&client.lock);
}

static void
client_request_async (guint64       id,
                      guint         op,
                      GVariant     *arg,
                      GUnixFDList  *fds,
                      GTask        *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  Pending *pending = g_new0 (Pending, 1);

  g_task_set_check_cancellable (task, FALSE);
  pending->task = g_object_ref (task);
  /* Before the request goes, so that the pending cannot be completed (and
   * freed) first; a handler that runs now finds nothing sent, which the
   * check below makes up for. */
  if (cancellable != NULL)
    {
      pending->cancellable = g_object_ref (cancellable);
      pending->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_client_cancelled),
                                                  pending, NULL);
    }

  g_mutex_lock (&client.lock);
  if (!client_start (pending, op, id, arg, fds, &error))
    {
      pending->error = error;
      pending->done = TRUE;
      g_ptr_array_add (client.done != NULL ? client.done : (client.done = g_ptr_array_new ()),
                       pending);
    }
  else
    {
      ensure_reader (g_task_get_context (task));
      if (cancellable != NULL && g_cancellable_is_cancelled (cancellable))
        send_cancel (pending);
    }
  client_unlock ();
}

static GVariant *
client_request_sync (guint64        id,
                     guint          op,
                     GVariant      *arg,
                     GUnixFDList   *fds,
                     gint           timeout_ms,
                     GCancellable  *cancellable,
                     GUnixFDList  **out_fds,
                     GError       **error)
{
  gint64 deadline = timeout_ms >= 0 ? g_get_monotonic_time () + (gint64) timeout_ms * 1000 : -1;
  gboolean timed_out = FALSE;
  gulong cancel_id = 0;
  Pending *pending;
  GVariant *value = NULL;

  pending = g_new0 (Pending, 1);
  g_mutex_lock (&client.lock);
  if (!client_start (pending, op, id, arg, fds, error))
    {
      client_unlock ();
      pending_free (pending);
      return NULL;
    }
  if (cancellable != NULL)
    {
      /* Its handler only takes the lock to wake us. */
      g_mutex_unlock (&client.lock);
      cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_client_cancelled), pending, NULL);
      g_mutex_lock (&client.lock);
    }

  while (!pending->done)
    {
      gboolean stop = (cancellable != NULL && g_cancellable_is_cancelled (cancellable)) ||
                      (deadline >= 0 && g_get_monotonic_time () >= deadline);

      if (stop && !pending->cancel_sent)
        {
          timed_out = !(cancellable != NULL && g_cancellable_is_cancelled (cancellable));
          /* The wait ends when the parent says how: the request was taken
           * out, or what it got meanwhile is ours after all. */
          send_cancel (pending);
          continue;
        }

      if (!client.reading)
        {
          struct pollfd pfds[2] = {
            { .fd = arip_channel_get_fd (client.channel), .events = POLLIN },
            { .fd = -1, .events = POLLIN },
          };
          gint timeout = -1;

          if (!pending->cancel_sent && cancellable != NULL)
            pfds[1].fd = g_cancellable_get_fd (cancellable);
          if (!pending->cancel_sent && deadline >= 0)
            timeout = (gint) MAX (0, (deadline - g_get_monotonic_time () + 999) / 1000);

          /* Frames that came in someone else's read are in the decoder;
           * what has not come yet the poll waits for. */
          if (!arip_channel_dispatch_buffered (client.channel))
            continue;
          if (pending->done)
            break;

          client.reading = TRUE;
          g_mutex_unlock (&client.lock);
          while (poll (pfds, 2, timeout) < 0 && errno == EINTR)
            ;
          g_mutex_lock (&client.lock);
          client.reading = FALSE;
          if (pfds[1].fd >= 0)
            g_cancellable_release_fd (cancellable);
          arip_channel_read_nowait (client.channel);
          /* Another waiter may read now. */
          wake_waiters ();
        }
      else
        {
          client.cond_waiters++;
          if (deadline >= 0 && !pending->cancel_sent)
            g_cond_wait_until (&client.cond, &client.lock, deadline);
          else
            g_cond_wait (&client.cond, &client.lock);
          client.cond_waiters--;
        }
    }
  client_unlock ();

  if (cancel_id != 0)
    g_cancellable_disconnect (cancellable, cancel_id);

  if (pending->error != NULL)
    {
      if (timed_out && g_error_matches (pending->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, _("Timed out after %d ms"), timeout_ms);
      else
        g_propagate_error (error, g_steal_pointer (&pending->error));
    }
  else
    {
      value = g_steal_pointer (&pending->reply->value);
      if (out_fds != NULL)
        *out_fds = g_steal_pointer (&pending->reply->fds);
    }
  pending_free (pending);
  return value;
}

/* ------------------------------------------------------------------ */
/* The object                                                         */

static void
arip_shared_finalize (GObject *object)
{
  AripShared *self = ARIP_SHARED (object);
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);

  if (priv->state != NULL)
    {
      arip_broker_lock ();
      arip_shared_state_unref (priv->state);
      arip_broker_unlock ();
    }
  else if (priv->id != 0)
    {
      g_mutex_lock (&client.lock);
      if (client.objects != NULL && g_hash_table_lookup (client.objects, &priv->id) == self)
        g_hash_table_remove (client.objects, &priv->id);
      g_mutex_unlock (&client.lock);
    }

  g_clear_error (&priv->post_error);

  G_OBJECT_CLASS (arip_shared_parent_class)->finalize (object);
}

static void
arip_shared_class_init (AripSharedClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = arip_shared_finalize;
}

static void
arip_shared_init (AripShared *self)
{
}

AripSharedState *
arip_shared_get_state (AripShared *self)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);

  return priv->state;
}

void
arip_shared_set_state (AripShared      *self,
                       AripSharedState *state)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);

  priv->state = state;
  priv->id = state->id;
  priv->key = state->key;
}

/**
 * arip_shared_is_owner:
 * @self: a shared object
 *
 * Whether this process holds the object's state: it made the object, and
 * the object lives as long as it does.
 *
 * Returns: %TRUE in the process that created @self
 */
gboolean
arip_shared_is_owner (AripShared *self)
{
  g_return_val_if_fail (ARIP_IS_SHARED (self), FALSE);

  return arip_shared_get_state (self) != NULL;
}

/**
 * arip_shared_to_variant:
 * @self: a shared object
 *
 * The handle that stands for @self in a call's arguments, a message, a
 * queue's item or a shared dictionary's value: a value of type
 * %ARIP_SHARED_HANDLE_TYPE, which may be anywhere inside them. A child
 * opens it with arip_call_get_shared(). Whatever the object needs (a
 * connection, descriptors) is sent along by arip.
 *
 * Handles made in a child stand for the same object: it may hand them
 * on to its siblings (through a queue, say), not to children of its own.
 *
 * Returns: (transfer floating): the handle
 */
GVariant *
arip_shared_to_variant (AripShared *self)
{
  AripSharedPrivate *priv;

  g_return_val_if_fail (ARIP_IS_SHARED (self), NULL);

  priv = arip_shared_get_instance_private (self);
  return g_variant_new ("(stt)", G_OBJECT_TYPE_NAME (self), priv->id, priv->key);
}

static const AripSharedStateClass *
class_for_name (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    if (g_str_equal (g_type_name (classes[i]->get_type ()), name))
      return classes[i];
  return NULL;
}

/**
 * arip_shared_from_variant:
 * @handle: a value of type %ARIP_SHARED_HANDLE_TYPE
 * @error: return location for a #GError
 *
 * The live object a handle stands for: this process's own object (a
 * handle that came back from a child), or, in a worker, the object of
 * its parent that the handle names, opened on first use and the same
 * object afterwards while it lives. See arip_call_get_shared().
 *
 * Returns: (transfer full): the object, or %NULL with @error set
 */
AripShared *
arip_shared_from_variant (GVariant  *handle,
                          GError   **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  const AripSharedStateClass *klass;
  AripSharedPrivate *priv;
  const char *type_name, *opened_type;
  AripShared *object;
  guint64 id, key;

  g_return_val_if_fail (handle != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_variant_is_of_type (handle, ARIP_SHARED_HANDLE_TYPE))
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("A shared object's handle is of type “(stt)”, not “%s”"),
                   g_variant_get_type_string (handle));
      return NULL;
    }
  g_variant_get (handle, "(&stt)", &type_name, &id, &key);
  klass = class_for_name (type_name);
  if (klass == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("“%s” is not a type of shared object"), type_name);
      return NULL;
    }

  object = arip_broker_lookup (id, key);
  if (object != NULL)
    {
      if (G_OBJECT_TYPE (object) == klass->get_type ())
        return object;
      g_object_unref (object);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("The handle names a shared object of another type than %s"), type_name);
      return NULL;
    }

  g_mutex_lock (&client.lock);
  object = client.objects != NULL ? g_hash_table_lookup (client.objects, &id) : NULL;
  if (object != NULL)
    {
      priv = arip_shared_get_instance_private (object);
      object = priv->key == key && G_OBJECT_TYPE (object) == klass->get_type ()
        ? g_object_ref (object) : NULL;
      g_mutex_unlock (&client.lock);
      if (object == NULL)
        g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                     _("The handle does not match the shared object it names"));
      return object;
    }
  g_mutex_unlock (&client.lock);

  reply = client_request_sync (id, ARIP_SHARED_OP_OPEN, g_variant_new ("(t)", key), NULL, -1,
                               NULL, &fds, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(&sv)", &opened_type, &info);
  if (!g_str_equal (opened_type, type_name))
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                   _("The handle says %s, the object it names is a %s"), type_name, opened_type);
      return NULL;
    }

  object = g_object_new (klass->get_type (), NULL);
  priv = arip_shared_get_instance_private (object);
  priv->id = id;
  priv->key = key;
  if (!klass->opened (object, info, fds, error))
    {
      priv->id = 0;
      g_object_unref (object);
      return NULL;
    }

  g_mutex_lock (&client.lock);
  if (g_hash_table_lookup (client.objects, &id) == NULL)
    g_hash_table_insert (client.objects, &priv->id, object);
  g_mutex_unlock (&client.lock);
  return object;
}

/**
 * arip_call_get_shared:
 * @call: the call being served
 * @handle: a handle from the call's arguments (or a message, or an item)
 * @error: return location for a #GError
 *
 * The shared object @handle stands for, live in this process: see
 * arip_shared_from_variant(). A handle made by another process tree, or
 * of an object that is gone, is %ARIP_ERROR_INVALID_DATA; a value that is
 * no handle too.
 *
 * Returns: (transfer full): the object, or %NULL with @error set
 */
AripShared *
arip_call_get_shared (AripCall  *call,
                      GVariant  *handle,
                      GError   **error)
{
  g_return_val_if_fail (ARIP_IS_CALL (call), NULL);

  return arip_shared_from_variant (handle, error);
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */

void
arip_shared_request_async (AripShared         *self,
                           guint               op,
                           GVariant           *arg,
                           GUnixFDList        *fds,
                           GCancellable       *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer            user_data,
                           gpointer            source_tag)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  if (arg == NULL)
    arg = g_variant_new ("()");
  if (priv->state != NULL)
    arip_broker_run_async (priv->state, op, arg, fds, task);
  else
    client_request_async (priv->id, op, arg, fds, task);
}

GVariant *
arip_shared_request_finish (AripShared    *self,
                            GAsyncResult  *result,
                            GUnixFDList  **out_fds,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return arip_broker_finish (G_TASK (result), out_fds, error);
}

GVariant *
arip_shared_request_sync (AripShared    *self,
                          guint          op,
                          GVariant      *arg,
                          GUnixFDList   *fds,
                          gint           timeout_ms,
                          GCancellable  *cancellable,
                          GUnixFDList  **out_fds,
                          GError       **error)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);

  if (arg == NULL)
    arg = g_variant_new ("()");
  if (priv->state != NULL)
    return arip_broker_run_sync (priv->state, op, arg, fds, timeout_ms, cancellable, out_fds, error);
  return client_request_sync (priv->id, op, arg, fds, timeout_ms, cancellable, out_fds, error);
}

GVariant *
arip_shared_request_now (AripShared *self,
                         guint       op,
                         GVariant   *arg)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply = arip_shared_request_sync (self, op, arg, NULL, -1, NULL, NULL, &error);

  if (reply == NULL)
    g_warning ("%s: %s", G_OBJECT_TYPE_NAME (self), error->message);
  return reply;
}

void
arip_shared_set_credit (AripShared *self,
                        guint       credit)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);

  g_mutex_lock (&client.lock);
  priv->credit = credit;
  g_mutex_unlock (&client.lock);
}

gboolean
arip_shared_may_post (AripShared *self)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);
  gboolean may;

  if (priv->state != NULL || priv->id == 0)
    return FALSE;
  g_mutex_lock (&client.lock);
  may = client.channel != NULL && client.error == NULL && client.posted < ARIP_SHARED_POST_WINDOW &&
        !priv->post_failed && priv->posted < priv->credit;
  g_mutex_unlock (&client.lock);
  return may;
}

gboolean
arip_shared_check_posts (AripShared  *self,
                         GError     **error)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);
  g_autoptr(GError) refusal = NULL;
  gboolean unanswered;

  if (priv->state != NULL)
    return TRUE;
  g_mutex_lock (&client.lock);
  unanswered = priv->post_error != NULL && priv->posted > 0;
  g_mutex_unlock (&client.lock);
  /* A refusal came while later posts are on their way: they are refused
   * too, and counted, once the parent has answered past them. */
  if (unanswered)
    {
      GVariant *reply = client_request_sync (0, ARIP_SHARED_OP_SYNC, g_variant_new ("()"), NULL, -1,
                                             NULL, NULL, NULL);

      g_clear_pointer (&reply, g_variant_unref);
    }
  g_mutex_lock (&client.lock);
  refusal = g_steal_pointer (&priv->post_error);
  g_mutex_unlock (&client.lock);
  if (refusal == NULL)
    return TRUE;
  g_set_error (error, refusal->domain, refusal->code,
               g_dngettext (GETTEXT_PACKAGE, "%s (%u item put before did not get in)",
                            "%s (%u items put before did not get in)", priv->refused),
               refusal->message, priv->refused);
  return FALSE;
}

gboolean
arip_shared_post (AripShared   *self,
                  guint         op,
                  GVariant     *arg,
                  GUnixFDList  *fds,
                  GError      **error)
{
  AripSharedPrivate *priv = arip_shared_get_instance_private (self);
  Pending *pending = g_new0 (Pending, 1);
  gboolean ok;

  g_mutex_lock (&client.lock);
  ok = client_start (pending, op, priv->id, arg, fds, error);
  if (ok)
    {
      /* Nobody can answer it before the lock is let go. */
      pending->posted_by = g_object_ref (self);
      priv->posted++;
      client.posted++;
      g_queue_push_tail (&client.posts, pending);
      /* Half the window is out: the answers that came are taken in, so
       * that a child putting as fast as it can does not run out of it
       * and wait for one. */
      if (client.posted >= ARIP_SHARED_POST_WINDOW / 2 && !client.reading)
        arip_channel_read_nowait (client.channel);
    }
  client_unlock ();
  if (!ok)
    pending_free (pending);
  return ok;
}

void
arip_shared_client_drain (void)
{
  gboolean any;

  g_mutex_lock (&client.lock);
  any = client.posted > 0 && client.error == NULL;
  g_mutex_unlock (&client.lock);
  /* Answers come in order: once this one is in, so are the posts'. */
  if (any)
    {
      GVariant *reply = client_request_sync (0, ARIP_SHARED_OP_SYNC, g_variant_new ("()"), NULL, -1,
                                             NULL, NULL, NULL);

      g_clear_pointer (&reply, g_variant_unref);
    }
}

gboolean
arip_shared_request_boolean (AripShared *self,
                             guint       op)
{
  g_autoptr(GVariant) reply = arip_shared_request_now (self, op, NULL);
  gboolean value = FALSE;

  if (reply != NULL)
    g_variant_get (reply, "(b)", &value);
  return value;
}

guint
arip_shared_request_uint (AripShared *self,
                          guint       op)
{
  g_autoptr(GVariant) reply = arip_shared_request_now (self, op, NULL);
  guint value = 0;

  if (reply != NULL)
    g_variant_get (reply, "(u)", &value);
  return value;
}

/* ------------------------------------------------------------------ */
/* Finding handles                                                    */

static gboolean
type_may_hold_handle (const char *type_string)
{
  return strstr (type_string, ARIP_SHARED_HANDLE_TYPE_STRING) != NULL ||
         strchr (type_string, 'v') != NULL;
}

static gboolean
holds_handle (GVariant *value)
{
  GVariantIter iter;
  GVariant *child;

  if (g_variant_is_of_type (value, ARIP_SHARED_HANDLE_TYPE))
    {
      const char *name;

      g_variant_get_child (value, 0, "&s", &name);
      if (class_for_name (name) != NULL)
        return TRUE;
    }
  if (!g_variant_is_container (value) || !type_may_hold_handle (g_variant_get_type_string (value)))
    return FALSE;

  g_variant_iter_init (&iter, value);
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      gboolean found = holds_handle (child);

      g_variant_unref (child);
      if (found)
        return TRUE;
    }
  return FALSE;
}

gboolean
arip_shared_value_has_handles (GVariant *value)
{
  return value != NULL && type_may_hold_handle (g_variant_get_type_string (value)) &&
         holds_handle (value);
}
