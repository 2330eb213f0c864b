/* arip-call.c: the running call, as the child sees it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include <glib/gi18n-lib.h>

#include "arip-call.h"
#include "arip-call-private.h"
#include "arip-error.h"
#include "arip-shared-private.h"
#include "arip-worker-private.h"

/**
 * AripCall:
 *
 * The call a worker process is serving, as the registered [callback@Arip.Func]
 * sees it: much like a `GDBusMethodInvocation`.
 *
 * The function answers exactly once, with [method@Arip.Call.return_value] or
 * one of the `return_error` variants; it may do so before it returns or
 * later, from the main context that was the thread default when it was
 * called (the worker runs that context until the call is answered). Once
 * answered, the worker sends the answer and exits.
 *
 * While it runs, the function can talk to the parent with
 * [method@Arip.Call.send_message] and [method@Arip.Call.set_progress], and
 * hears the parent through the [signal@Arip.Call::message] signal. The call's
 * cancellable ([method@Arip.Call.get_cancellable]) is cancelled when the
 * parent interrupts the process ([method@Arip.Process.interrupt]), even while
 * the function is busy and the main context is not running.
 *
 * Sending and answering may happen from any thread.
 */

struct _AripCall
{
  GObject       parent_instance;

  char         *function;
  GVariant     *args;
  GUnixFDList  *fd_list;     /* what came with the call, or NULL */
  GCancellable *cancellable;
  AripChannel  *channel;
  GMainContext *context;

  GMutex        lock;        /* serializes writes to the channel */
  gboolean      returned;
  gdouble       progress;
};

enum {
  SIGNAL_MESSAGE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AripCall, arip_call, G_TYPE_OBJECT)

static void
arip_call_finalize (GObject *object)
{
  AripCall *self = ARIP_CALL (object);

  g_free (self->function);
  g_clear_pointer (&self->args, g_variant_unref);
  g_clear_object (&self->fd_list);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->channel, arip_channel_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (arip_call_parent_class)->finalize (object);
}

static void
arip_call_class_init (AripCallClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = arip_call_finalize;

  /**
   * AripCall::message:
   * @self: the call
   * @message: the message the parent sent with [method@Arip.Process.send_message]
   *
   * Emitted in the call's main context for each message from the parent, in
   * the order they were sent. Messages wait while the function keeps that
   * main context from running.
   */
  signals[SIGNAL_MESSAGE] =
    g_signal_new ("message",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 1, G_TYPE_VARIANT);
}

static void
arip_call_init (AripCall *self)
{
  g_mutex_init (&self->lock);
  self->progress = -1.0;
}

AripCall *
arip_call_new (const char   *function,
               GVariant     *args,
               GUnixFDList  *fd_list,
               AripChannel  *channel,
               GCancellable *cancellable,
               GMainContext *context)
{
  AripCall *self = g_object_new (ARIP_TYPE_CALL, NULL);

  self->function = g_strdup (function);
  self->args = g_variant_ref_sink (args);
  self->fd_list = fd_list != NULL ? g_object_ref (fd_list) : NULL;
  self->channel = channel != NULL ? arip_channel_ref (channel) : NULL;
  self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : g_cancellable_new ();
  self->context = context != NULL ? g_main_context_ref (context) : NULL;
  return self;
}

void
arip_call_emit_message (AripCall *self,
                        GVariant *message)
{
  g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, message);
}

/* Writes one encoded frame (consumed; NULL if it was too large) and waits
 * until it is out; returns FALSE when the parent is gone, which the worker
 * notices by itself soon after. */
static gboolean
send_frame (AripCall  *self,
            GBytes    *frame,
            GError   **error)
{
  gboolean ok = FALSE;

  /* What the parent learns from this finds the call's puts done. */
  arip_shared_client_drain ();
  g_mutex_lock (&self->lock);
  if (self->channel != NULL &&
      arip_channel_send_bytes (self->channel, frame, NULL, error))
    ok = arip_channel_flush_sync (self->channel, error);
  else if (self->channel == NULL && frame != NULL)
    g_bytes_unref (frame);
  g_mutex_unlock (&self->lock);

  return ok;
}

/* Sends @value (not consumed) in a RESULT or MESSAGE frame, in a memfd
 * when it is large, and waits until it is out. */
static gboolean
send_value (AripCall       *self,
            AripFrameKind   kind,
            GVariant       *value,
            GUnixFDList    *fds,
            GError        **error)
{
  gboolean ok = FALSE;

  arip_shared_client_drain ();
  g_mutex_lock (&self->lock);
  if (self->channel != NULL &&
      arip_channel_send_value_with_fds (self->channel, kind, value, fds, error))
    ok = arip_channel_flush_sync (self->channel, error);
  g_mutex_unlock (&self->lock);

  return ok;
}

static gboolean
begin_return (AripCall   *self,
              const char *func)
{
  gboolean first;

  g_mutex_lock (&self->lock);
  first = !self->returned;
  self->returned = TRUE;
  g_mutex_unlock (&self->lock);

  if (!first)
    g_critical ("%s: the call to “%s” was already answered; a call is answered once",
                func, self->function);
  return first;
}

static void
end_return (AripCall *self)
{
  /* The worker checks for an answer before it waits in its main context;
   * only an answer from another thread has to wake it. */
  GMainContext *current = g_main_context_get_thread_default ();

  if (current == NULL)
    current = g_main_context_default ();
  if (self->context != NULL && current != self->context)
    g_main_context_wakeup (self->context);
}

static void
send_error (AripCall   *self,
            GQuark      domain,
            gint        code,
            const char *message)
{
  send_frame (self,
              arip_frame_encode (ARIP_FRAME_ERROR,
                                 g_variant_new ("(sis)", g_quark_to_string (domain), code,
                                                message != NULL ? message : ""), 0),
              NULL);
}

/**
 * arip_call_get_function_name:
 * @self: a call
 *
 * Gets the name the function was asked for by.
 *
 * Returns: the function's registered name
 */
const char *
arip_call_get_function_name (AripCall *self)
{
  g_return_val_if_fail (ARIP_IS_CALL (self), NULL);

  return self->function;
}

/**
 * arip_call_get_args:
 * @self: a call
 *
 * Gets the arguments the parent passed.
 *
 * Returns: (transfer none): the arguments; `()` when the parent passed none
 */
GVariant *
arip_call_get_args (AripCall *self)
{
  g_return_val_if_fail (ARIP_IS_CALL (self), NULL);

  return self->args;
}

/**
 * arip_call_get_cancellable:
 * @self: a call
 *
 * Gets the cancellable that is cancelled when the parent interrupts the
 * call with [method@Arip.Process.interrupt] (or while stopping it). It is
 * cancelled from a helper thread, so it works while the function is busy;
 * poll it with g_cancellable_is_cancelled() or pass it to GIO calls.
 *
 * A function that notices may still answer with a value, or answer with
 * %G_IO_ERROR_CANCELLED, which the parent sees as %ARIP_ERROR_CHILD_CANCELLED.
 *
 * Returns: (transfer none): the call's cancellable
 */
GCancellable *
arip_call_get_cancellable (AripCall *self)
{
  g_return_val_if_fail (ARIP_IS_CALL (self), NULL);

  /* Interrupts reach it through a thread that starts now if it has not. */
  arip_worker_start_watch ();
  return self->cancellable;
}

/**
 * arip_call_has_returned:
 * @self: a call
 *
 * Checks whether the call was already answered.
 *
 * Returns: %TRUE once one of the `return` functions was called
 */
gboolean
arip_call_has_returned (AripCall *self)
{
  gboolean returned;

  g_return_val_if_fail (ARIP_IS_CALL (self), FALSE);

  g_mutex_lock (&self->lock);
  returned = self->returned;
  g_mutex_unlock (&self->lock);
  return returned;
}

/**
 * arip_call_return_value:
 * @self: a call
 * @value: (nullable) (transfer floating): the result, or %NULL for `()`
 *
 * Answers the call with @value, which the parent receives from
 * [method@Arip.Process.wait_finish] or [func@Arip.run_in_process_finish]
 * as an equal GVariant. A floating @value is consumed.
 *
 * A large value travels in a sealed memfd, never copied by the kernel nor
 * by the parent. A value too large for the channel (512 MiB) is replaced
 * by an %ARIP_ERROR_FAILED error.
 */
/**
 * arip_call_return_value_with_fds:
 * @self: a call
 * @value: (nullable) (transfer floating): the result, or %NULL for `()`
 * @fd_list: (nullable): the descriptors that `h` handles in @value index
 *
 * Answers the call with @value and copies of the descriptors of
 * @fd_list, which the parent gets from
 * [method@Arip.Launcher.run_with_fds_finish],
 * [method@Arip.Pool.run_with_fds_finish] or
 * [method@Arip.Process.get_result_fd_list]. A handle that indexes no
 * descriptor is an error on the parent's side, as an `h` returned by
 * arip_call_return_value() is.
 */
void
arip_call_return_value_with_fds (AripCall    *self,
                                 GVariant    *value,
                                 GUnixFDList *fd_list)
{
  g_autoptr(GVariant) owned = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (ARIP_IS_CALL (self));
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));

  owned = value != NULL ? g_variant_ref_sink (value) : arip_variant_unit ();
  if (!begin_return (self, "arip_call_return_value"))
    return;

  /* Too large, or no memory for it: the parent hears why. A failure to
   * write means the parent is gone. */
  if (!send_value (self, ARIP_FRAME_RESULT, owned, fd_list, &error) && error != NULL &&
      error->domain == ARIP_ERROR)
    send_error (self, ARIP_ERROR, error->code, error->message);

  end_return (self);
}

void
arip_call_return_value (AripCall *self,
                        GVariant *value)
{
  arip_call_return_value_with_fds (self, value, NULL);
}

/**
 * arip_call_get_fd_list:
 * @self: a call
 *
 * The descriptors that came with the call's arguments
 * ([method@Arip.Launcher.run_with_fds_async] and the like): `h` handles in
 * the arguments index them.
 *
 * Returns: (transfer none) (nullable): the list, or %NULL if none came
 */
GUnixFDList *
arip_call_get_fd_list (AripCall *self)
{
  g_return_val_if_fail (ARIP_IS_CALL (self), NULL);

  return self->fd_list;
}

/**
 * arip_call_return_error_literal:
 * @self: a call
 * @domain: the error domain
 * @code: the error code
 * @message: the error message
 *
 * Answers the call with an error. The parent gets an error of the same
 * domain (re-created from its name), code and message, except that
 * %G_IO_ERROR_CANCELLED becomes %ARIP_ERROR_CHILD_CANCELLED.
 */
void
arip_call_return_error_literal (AripCall   *self,
                                GQuark      domain,
                                gint        code,
                                const char *message)
{
  g_return_if_fail (ARIP_IS_CALL (self));
  g_return_if_fail (domain != 0);
  g_return_if_fail (message != NULL);

  if (!begin_return (self, G_STRFUNC))
    return;
  send_error (self, domain, code, message);
  end_return (self);
}

/**
 * arip_call_return_error: (skip)
 * @self: a call
 * @domain: the error domain
 * @code: the error code
 * @format: printf()-style format of the message
 * @...: the format's arguments
 *
 * Answers the call with an error whose message is built from @format.
 * See [method@Arip.Call.return_error_literal].
 */
void
arip_call_return_error (AripCall   *self,
                        GQuark      domain,
                        gint        code,
                        const char *format,
                        ...)
{
  g_autofree char *message = NULL;
  va_list args;

  g_return_if_fail (ARIP_IS_CALL (self));
  g_return_if_fail (format != NULL);

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  arip_call_return_error_literal (self, domain, code, message);
}

/**
 * arip_call_return_gerror:
 * @self: a call
 * @error: the error
 *
 * Answers the call with a copy of @error.
 * See [method@Arip.Call.return_error_literal].
 */
void
arip_call_return_gerror (AripCall     *self,
                         const GError *error)
{
  g_return_if_fail (ARIP_IS_CALL (self));
  g_return_if_fail (error != NULL);

  arip_call_return_error_literal (self, error->domain, error->code, error->message);
}

/**
 * arip_call_send_message:
 * @self: a call
 * @message: (transfer floating): the message
 *
 * Sends @message to the parent, which receives it, in order, through the
 * [signal@Arip.Process::message] signal. A floating @message is consumed.
 * Once the call is answered, nothing is sent.
 * This blocks while the parent is not reading, so a chatty function cannot
 * fill the parent's memory.
 */
void
arip_call_send_message (AripCall *self,
                        GVariant *message)
{
  g_autoptr(GVariant) owned = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (ARIP_IS_CALL (self));
  g_return_if_fail (message != NULL);

  owned = g_variant_ref_sink (message);
  if (arip_call_has_returned (self))
    {
      g_debug ("Not sending a message for “%s”: the call was already answered", self->function);
      return;
    }
  if (!send_value (self, ARIP_FRAME_MESSAGE, owned, NULL, &error))
    g_warning ("Could not send a message to the parent: %s", error->message);
}

/**
 * arip_call_set_progress:
 * @self: a call
 * @progress: how far the call is, from 0.0 to 1.0
 *
 * Tells the parent how far the call is; the parent's
 * [property@Arip.Process:progress] follows. Values outside 0.0–1.0 are
 * clamped; repeating the same value sends nothing.
 */
void
arip_call_set_progress (AripCall *self,
                        gdouble   progress)
{
  gboolean changed;

  g_return_if_fail (ARIP_IS_CALL (self));
  g_return_if_fail (!isnan (progress));

  progress = CLAMP (progress, 0.0, 1.0);

  g_mutex_lock (&self->lock);
  /* After the answer the parent takes no more news of the call. */
  changed = progress != self->progress && !self->returned;
  self->progress = progress;
  g_mutex_unlock (&self->lock);

  if (changed)
    send_frame (self, arip_frame_encode_double (ARIP_FRAME_PROGRESS, progress), NULL);
}
