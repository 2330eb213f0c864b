/* arip-process.c: one child process running one call
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here happens in the main context that was the thread default
 * when the process was started: the channel's reads, the child watch, the
 * timers and every signal. A started process keeps itself alive until it
 * is FINISHED, and its child watch keeps it alive until the child is
 * reaped, so dropping the last reference of a running process is safe.
 *
 * How a process ends, in order of precedence:
 *   - an error of ours (invalid data, startup timeout, spawn failure);
 *   - arip_process_kill() (or the last step of a stop): PROCESS_KILLED;
 *   - the child died of a signal: SIGNALED, with its last words;
 *   - the child exited with a non-zero status: EXITED;
 *   - status 0 with a result or an error frame: that;
 *   - status 0 with neither: EXITED.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include "arip-channel-private.h"
#include "arip-enum-types.h"
#include "arip-error.h"
#include "arip-error-private.h"
#include "arip-launcher-private.h"
#include "arip-limiter-private.h"
#include "arip-process.h"
#include "arip-process-private.h"
#include "arip-signals-private.h"

#define MAX_LAST_WORDS     (16 * 1024)
/* How long a child may linger after it answered, or after it closed its
 * channel, before we kill it: at least this, or the stop timeouts. */
#define MIN_GRACE_MS       1000

/**
 * AripProcess:
 *
 * One child process running one call of a registered function: what
 * `asyncio-run-in-process`'s `open_in_process` gives Python.
 *
 * Create it with [ctor@Arip.Process.new], start it with
 * [method@Arip.Process.start_async] (which completes once the function is
 * executing) and get the result with [method@Arip.Process.wait_async].
 * Meanwhile it moves through the states of [enum@Arip.State], emitting
 * [signal@Arip.Process::state-changed] and `notify::state` for each;
 * it relays the child's messages ([signal@Arip.Process::message]) and
 * progress ([property@Arip.Process:progress]); and it can be signalled,
 * interrupted, terminated, killed or stopped at any moment.
 *
 * All signals are emitted, and all callbacks run, in the thread-default
 * main context of the thread that started the process.
 */

typedef enum {
  WAITER_WAIT,
  WAITER_STATE,
  WAITER_STOP,
} WaiterKind;

typedef struct {
  AripProcess *self;       /* unowned */
  GTask       *task;       /* owned while in self->waiters */
  GSource     *cancel_source;
  WaiterKind   kind;
  AripState    state;
} Waiter;

struct _AripProcess
{
  GObject        parent_instance;

  char          *function;
  GVariant      *args;
  AripLauncher  *launcher;

  GMainContext  *context;
  AripState      state;
  GPid           pid;
  gdouble        progress;

  guint          startup_timeout_ms;
  guint          interrupt_timeout_ms;
  guint          terminate_timeout_ms;

  guint          started : 1;
  guint          spawned : 1;
  guint          has_slot : 1;
  guint          reaped : 1;
  guint          finished : 1;
  guint          killed_by_user : 1;
  guint          answered : 1;       /* a result or error frame arrived */
  guint          start_cancelled : 1;
  guint          reached_executing : 1;
  guint          lingered : 1;          /* killed after answering */
  guint          if_exited : 1;
  guint          if_signaled : 1;
  AripStopStage  stop_stage;
  gint           exit_status;
  gint           term_sig;

  GVariant      *result;
  GError        *child_error;   /* the error frame, mapped */
  GError        *own_error;     /* ours: invalid data, timeout, spawn */
  GError        *error;         /* the outcome */

  AripChannel   *channel;
  gint           crash_fd;
  GString       *last_words;

  GInputStream  *stdout_pipe;
  GInputStream  *stderr_pipe;
  GOutputStream *stdin_pipe;

  GSource       *child_watch;
  GSource       *startup_timer;
  GSource       *stop_timer;
  GSource       *grace_timer;
  GSource       *start_cancel_source;
  GCancellable  *slot_cancellable;

  GTask         *start_task;
  GList         *waiters;
  GQueue         early_messages;   /* GBytes frames sent before the spawn */
};

enum {
  PROP_0,
  PROP_FUNCTION,
  PROP_ARGS,
  PROP_LAUNCHER,
  PROP_STATE,
  PROP_PID,
  PROP_PROGRESS,
  N_PROPS
};

enum {
  SIGNAL_STATE_CHANGED,
  SIGNAL_MESSAGE,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AripProcess, arip_process, G_TYPE_OBJECT)

static void kill_child    (AripProcess  *self);
static void fail_with     (AripProcess  *self,
                           GError       *error);
static void conclude      (AripProcess  *self,
                           gint          wait_status);

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
arip_process_dispose (GObject *object)
{
  AripProcess *self = ARIP_PROCESS (object);

  /* Only reached once the process is finished or was never started: a
   * running process holds a reference to itself. */
  g_clear_pointer (&self->channel, arip_channel_unref);

  G_OBJECT_CLASS (arip_process_parent_class)->dispose (object);
}

static void
arip_process_finalize (GObject *object)
{
  AripProcess *self = ARIP_PROCESS (object);

  g_assert (self->waiters == NULL);
  g_assert (self->start_task == NULL);

  if (self->crash_fd >= 0)
    close (self->crash_fd);
  g_free (self->function);
  g_clear_pointer (&self->args, g_variant_unref);
  g_clear_object (&self->launcher);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->result, g_variant_unref);
  g_clear_error (&self->child_error);
  g_clear_error (&self->own_error);
  g_clear_error (&self->error);
  if (self->last_words != NULL)
    g_string_free (self->last_words, TRUE);
  g_clear_object (&self->stdout_pipe);
  g_clear_object (&self->stderr_pipe);
  g_clear_object (&self->stdin_pipe);
  g_clear_object (&self->slot_cancellable);
  g_queue_clear_full (&self->early_messages, (GDestroyNotify) g_bytes_unref);

  G_OBJECT_CLASS (arip_process_parent_class)->finalize (object);
}

static void
arip_process_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  AripProcess *self = ARIP_PROCESS (object);

  switch (prop_id)
    {
    case PROP_FUNCTION:
      g_value_set_string (value, self->function);
      break;
    case PROP_ARGS:
      g_value_set_variant (value, self->args);
      break;
    case PROP_LAUNCHER:
      g_value_set_object (value, self->launcher);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_PID:
      g_value_set_int (value, self->pid);
      break;
    case PROP_PROGRESS:
      g_value_set_double (value, self->progress);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
arip_process_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  AripProcess *self = ARIP_PROCESS (object);

  switch (prop_id)
    {
    case PROP_FUNCTION:
      self->function = g_value_dup_string (value);
      break;
    case PROP_ARGS:
      {
        GVariant *args = g_value_get_variant (value);
        self->args = args != NULL ? g_variant_ref_sink (args)
                                  : arip_variant_unit ();
      }
      break;
    case PROP_LAUNCHER:
      self->launcher = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
arip_process_constructed (GObject *object)
{
  AripProcess *self = ARIP_PROCESS (object);

  G_OBJECT_CLASS (arip_process_parent_class)->constructed (object);

  if (self->args == NULL)
    self->args = arip_variant_unit ();
}

static void
arip_process_class_init (AripProcessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  _arip_i18n_init ();

  object_class->dispose = arip_process_dispose;
  object_class->finalize = arip_process_finalize;
  object_class->get_property = arip_process_get_property;
  object_class->set_property = arip_process_set_property;
  object_class->constructed = arip_process_constructed;

  /**
   * AripProcess:function:
   *
   * The registered name of the function the child runs.
   */
  properties[PROP_FUNCTION] =
    g_param_spec_string ("function", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * AripProcess:args:
   *
   * The arguments passed to the function; `()` when none were given.
   */
  properties[PROP_ARGS] =
    g_param_spec_variant ("args", NULL, NULL, G_VARIANT_TYPE_ANY, NULL,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * AripProcess:launcher:
   *
   * The launcher whose settings start the child, or %NULL for the defaults.
   */
  properties[PROP_LAUNCHER] =
    g_param_spec_object ("launcher", NULL, NULL, ARIP_TYPE_LAUNCHER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * AripProcess:state:
   *
   * Where the process is in its lifecycle.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, ARIP_TYPE_STATE, ARIP_STATE_INITIALIZING,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripProcess:pid:
   *
   * The child's process id; 0 until %ARIP_STATE_INITIALIZED. It stays set
   * after the child is gone, for reference only.
   */
  properties[PROP_PID] =
    g_param_spec_int ("pid", NULL, NULL, 0, G_MAXINT, 0,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripProcess:progress:
   *
   * How far the function is, from 0.0 to 1.0, as it last said with
   * arip_call_set_progress().
   */
  properties[PROP_PROGRESS] =
    g_param_spec_double ("progress", NULL, NULL, 0.0, 1.0, 0.0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * AripProcess::state-changed:
   * @self: the process
   * @old_state: the state it left
   * @new_state: the state it entered
   *
   * Emitted once for each step of the lifecycle, in order, even when the
   * child reported several at once; `notify::state` follows.
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, ARIP_TYPE_STATE, ARIP_TYPE_STATE);

  /**
   * AripProcess::message:
   * @self: the process
   * @message: what the function sent with arip_call_send_message()
   *
   * Emitted for each message from the child, in the order it sent them.
   */
  signals[SIGNAL_MESSAGE] =
    g_signal_new ("message",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_VARIANT);
}

static void
arip_process_init (AripProcess *self)
{
  self->state = ARIP_STATE_INITIALIZING;
  self->crash_fd = -1;
}

/**
 * arip_process_new:
 * @launcher: (nullable): settings for starting the child, or %NULL for
 *   the defaults
 * @function: the registered name of the function to run
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 *
 * Creates a process that will run @function in a child once started with
 * [method@Arip.Process.start_async].
 *
 * Returns: (transfer full): a new process
 */
AripProcess *
arip_process_new (AripLauncher *launcher,
                  const char   *function,
                  GVariant     *args)
{
  g_return_val_if_fail (launcher == NULL || ARIP_IS_LAUNCHER (launcher), NULL);
  g_return_val_if_fail (function != NULL, NULL);

  return g_object_new (ARIP_TYPE_PROCESS,
                       "launcher", launcher,
                       "function", function,
                       "args", args,
                       NULL);
}

/* ---------------------------------------------------------------------- */
/* Waiters                                                                */

static void
waiter_remove (Waiter *waiter)
{
  AripProcess *self = waiter->self;

  self->waiters = g_list_remove (self->waiters, waiter);
  if (waiter->cancel_source != NULL)
    {
      g_source_destroy (waiter->cancel_source);
      g_clear_pointer (&waiter->cancel_source, g_source_unref);
    }
}

static void
waiter_free (Waiter *waiter)
{
  g_clear_object (&waiter->task);
  g_free (waiter);
}

static gboolean
on_waiter_cancelled (GCancellable *cancellable,
                     gpointer      user_data)
{
  Waiter *waiter = user_data;
  GTask *task = g_steal_pointer (&waiter->task);

  waiter_remove (waiter);
  waiter_free (waiter);

  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("The operation was cancelled"));
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static void
add_waiter (AripProcess *self,
            GTask       *task,
            WaiterKind   kind,
            AripState    state)
{
  Waiter *waiter = g_new0 (Waiter, 1);
  GCancellable *cancellable = g_task_get_cancellable (task);

  waiter->self = self;
  waiter->task = g_object_ref (task);
  waiter->kind = kind;
  waiter->state = state;
  self->waiters = g_list_append (self->waiters, waiter);

  if (cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (waiter->cancel_source, G_SOURCE_FUNC (on_waiter_cancelled),
                             waiter, NULL);
      g_source_set_static_name (waiter->cancel_source, "[arip] process wait cancelled");
      g_source_attach (waiter->cancel_source, g_task_get_context (task));
    }
}

static void
return_outcome (AripProcess *self,
                GTask       *task)
{
  if (self->error != NULL)
    g_task_return_error (task, g_error_copy (self->error));
  else
    g_task_return_pointer (task, g_variant_ref (self->result),
                           (GDestroyNotify) g_variant_unref);
}

/* Completes the waiters that the current state satisfies. */
static void
complete_waiters (AripProcess *self)
{
  GList *ready = NULL;

  for (GList *l = self->waiters; l != NULL; l = l->next)
    {
      Waiter *waiter = l->data;

      if (self->finished ||
          (waiter->kind == WAITER_STATE && self->state >= waiter->state))
        ready = g_list_prepend (ready, waiter);
    }
  ready = g_list_reverse (ready);

  for (GList *l = ready; l != NULL; l = l->next)
    {
      Waiter *waiter = l->data;
      GTask *task = g_steal_pointer (&waiter->task);

      waiter_remove (waiter);

      switch (waiter->kind)
        {
        case WAITER_WAIT:
          return_outcome (self, task);
          break;
        case WAITER_STATE:
        case WAITER_STOP:
          g_task_return_boolean (task, TRUE);
          break;
        default:
          g_assert_not_reached ();
        }

      waiter_free (waiter);
      g_object_unref (task);
    }
  g_list_free (ready);
}

static void
complete_start (AripProcess *self)
{
  GTask *task = g_steal_pointer (&self->start_task);

  if (task == NULL)
    return;

  if (self->start_cancel_source != NULL)
    {
      g_source_destroy (self->start_cancel_source);
      g_clear_pointer (&self->start_cancel_source, g_source_unref);
    }

  if (self->start_cancelled)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             _("Starting the process was cancelled"));
  else if (!self->reached_executing && self->error != NULL)
    g_task_return_error (task, g_error_copy (self->error));
  else
    g_task_return_boolean (task, TRUE);

  g_object_unref (task);
}

/* ---------------------------------------------------------------------- */
/* State                                                                  */

static void
set_state (AripProcess *self,
           AripState    new_state)
{
  AripState old_state = self->state;

  if (new_state <= old_state)
    return;

  self->state = new_state;
  if (new_state == ARIP_STATE_EXECUTING)
    self->reached_executing = TRUE;
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, old_state, new_state);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);

  complete_waiters (self);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static GSource *
add_timeout (AripProcess *self,
             guint        ms,
             GSourceFunc  func,
             const char  *name)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, name);
  g_source_attach (source, self->context);
  return source;
}

/* The end: everything is known. Emits FINISHED and completes every task. */
static void
finish (AripProcess *self)
{
  if (self->finished)
    return;

  g_object_ref (self);

  self->finished = TRUE;
  clear_source (&self->startup_timer);
  clear_source (&self->stop_timer);
  clear_source (&self->grace_timer);
  if (self->slot_cancellable != NULL)
    g_cancellable_cancel (self->slot_cancellable);
  if (self->channel != NULL)
    arip_channel_close (self->channel);
  if (self->crash_fd >= 0)
    {
      close (self->crash_fd);
      self->crash_fd = -1;
    }

  g_assert (self->error != NULL || self->result != NULL);

  set_state (self, ARIP_STATE_FINISHED);
  complete_start (self);
  complete_waiters (self);

  /* Last, so the next queued process starts after this one is seen to end. */
  if (self->has_slot)
    {
      self->has_slot = FALSE;
      arip_limiter_release ();
    }

  /* Drop the reference that kept the running process alive. */
  if (self->started)
    g_object_unref (self);
  g_object_unref (self);
}

/* Ends a process that never got a child (spawn failure, stopped while
 * queued, killed while queued). */
static void
finish_without_child (AripProcess *self,
                      GError      *error)
{
  g_clear_error (&self->error);
  self->error = error;
  finish (self);
}

/* ---------------------------------------------------------------------- */
/* The child's frames                                                     */

static const char *
state_name (AripState state)
{
  GEnumClass *klass = g_type_class_ref (ARIP_TYPE_STATE);
  GEnumValue *value = g_enum_get_value (klass, state);
  g_type_class_unref (klass);
  return value != NULL ? value->value_nick : "?";
}

static void
protocol_violation (AripProcess *self,
                    const char  *what)
{
  fail_with (self, g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("Child process %d running “%s” sent invalid data: %s; it was killed"),
                                (int) self->pid, self->function, what));
}

static gboolean
on_grace_expired (gpointer user_data)
{
  AripProcess *self = user_data;

  g_clear_pointer (&self->grace_timer, g_source_unref);
  if (self->answered)
    {
      /* It answered, then did not exit: the answer stands. */
      self->lingered = TRUE;
      kill_child (self);
    }
  else
    protocol_violation (self, _("it closed its channel without answering and did not exit"));
  return G_SOURCE_REMOVE;
}

static void
arm_grace_timer (AripProcess *self)
{
  if (self->grace_timer != NULL || self->finished)
    return;
  self->grace_timer = add_timeout (self,
                                   MAX (MIN_GRACE_MS, self->interrupt_timeout_ms + self->terminate_timeout_ms),
                                   on_grace_expired, "[arip] child exit grace");
}

static void
handle_frame (AripProcess *self,
              AripFrame   *frame)
{
  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      {
        guint32 version = frame->u32;
        gint32 pid = frame->i32;

        if (self->state != ARIP_STATE_INITIALIZED)
          protocol_violation (self, _("a second hello"));
        else if (version != ARIP_PROTOCOL_VERSION)
          {
            g_autofree char *what =
              g_strdup_printf (_("it speaks protocol version %u, not %u (is the worker built "
                                 "against another version of arip?)"),
                               version, ARIP_PROTOCOL_VERSION);
            protocol_violation (self, what);
          }
        else if (pid != self->pid)
          {
            g_autofree char *what = g_strdup_printf (_("its hello names process %d"), (int) pid);
            protocol_violation (self, what);
          }
        else
          set_state (self, ARIP_STATE_WAIT_EXEC_DATA);
      }
      break;

    case ARIP_FRAME_STATE:
      {
        guint32 state = frame->u32;

        if (state < ARIP_STATE_BOOTING || state > ARIP_STATE_EXECUTING ||
            state != (guint32) self->state + 1)
          {
            g_autofree char *what =
              g_strdup_printf (_("a state change from %s to %s"), state_name (self->state),
                               state <= ARIP_STATE_FINISHED ? state_name (state) : "?");
            protocol_violation (self, what);
            break;
          }
        set_state (self, state);
        if (state == ARIP_STATE_EXECUTING && !self->finished)
          {
            clear_source (&self->startup_timer);
            complete_start (self);
          }
      }
      break;

    case ARIP_FRAME_RESULT:
      if (self->answered || self->state != ARIP_STATE_EXECUTING)
        {
          protocol_violation (self, self->answered ? _("a second answer")
                                                   : _("a result before executing"));
          break;
        }
      self->result = g_variant_ref (frame->value);
      self->answered = TRUE;
      arm_grace_timer (self);
      break;

    case ARIP_FRAME_ERROR:
      if (self->answered || self->state < ARIP_STATE_BOOTING)
        {
          protocol_violation (self, self->answered ? _("a second answer")
                                                   : _("an error before booting"));
          break;
        }
      self->child_error = arip_frame_payload_to_error (frame->payload);
      if (self->child_error == NULL)
        {
          protocol_violation (self, _("an error whose domain is not a valid name"));
          break;
        }
      self->answered = TRUE;
      arm_grace_timer (self);
      break;

    case ARIP_FRAME_MESSAGE:
      {
        if (self->answered || self->state < ARIP_STATE_STARTED)
          {
            protocol_violation (self, _("a message outside the call"));
            break;
          }
        g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, frame->value);
      }
      break;

    case ARIP_FRAME_PROGRESS:
      {
        gdouble progress = frame->dbl;

        if (isnan (progress) || progress < 0.0 || progress > 1.0 ||
            self->answered || self->state < ARIP_STATE_STARTED)
          {
            protocol_violation (self, _("a progress report out of range or outside the call"));
            break;
          }
        if (progress != self->progress)
          {
            self->progress = progress;
            g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROGRESS]);
          }
      }
      break;

    case ARIP_FRAME_CALL:
    default:
      {
        g_autofree char *what = g_strdup_printf (_("a %s frame, which only the parent sends"),
                                                 arip_frame_kind_to_string (frame->kind));
        protocol_violation (self, what);
      }
      break;
    }
}

static void
on_frame (AripChannel *channel,
          AripFrame   *frame,
          gpointer     user_data)
{
  AripProcess *self = user_data;

  if (self->finished || self->own_error != NULL)
    return;

  /* A frame's descriptors have no use yet in the parent. */
  handle_frame (self, frame);
}

static void
on_channel_closed (AripChannel  *channel,
                   const GError *error,
                   gpointer      user_data)
{
  AripProcess *self = user_data;

  if (self->finished || self->own_error != NULL)
    return;

  if (error != NULL && error->domain == ARIP_ERROR)
    {
      protocol_violation (self, error->message);
      return;
    }

  /* The child closed its end (it is probably dying; the child watch tells
   * how). One that hangs on without its channel is of no use. */
  arm_grace_timer (self);
}

/* ---------------------------------------------------------------------- */
/* The end of the child                                                   */

GString *
arip_read_last_words (gint fd)
{
  GString *words = NULL;
  char buf[4096];

  if (fd < 0)
    return NULL;

  for (;;)
    {
      gssize n = read (fd, buf, sizeof buf);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (words == NULL)
        words = g_string_new (NULL);
      if (words->len < MAX_LAST_WORDS)
        g_string_append_len (words, buf, MIN ((gsize) n, MAX_LAST_WORDS - words->len));
    }

  return words;
}

static void
read_last_words (AripProcess *self)
{
  if (self->crash_fd < 0)
    return;

  self->last_words = arip_read_last_words (self->crash_fd);
  close (self->crash_fd);
  self->crash_fd = -1;
}

GError *
arip_exit_error_new (GPid           pid,
                     const char    *function,
                     gint           wait_status,
                     const GString *last_words)
{
  if (WIFSIGNALED (wait_status))
    {
      g_autofree char *signame = arip_signal_describe (WTERMSIG (wait_status));
      g_autoptr(GString) message = g_string_new (NULL);

      g_string_printf (message, _("Child process %d was terminated by %s while running “%s”"),
                       (int) pid, signame, function);

      if (last_words != NULL && last_words->len > 0)
        {
          g_autofree char *valid = g_utf8_make_valid (last_words->str, last_words->len);

          g_string_append (message, _(". Its last words:"));
          g_string_append_c (message, '\n');
          g_string_append (message, g_strchomp (valid));
        }

      return g_error_new_literal (ARIP_ERROR, ARIP_ERROR_SIGNALED, message->str);
    }

  if (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) != 0)
    return g_error_new (ARIP_ERROR, ARIP_ERROR_EXITED,
                        _("Child process %d exited with status %d while running “%s”"),
                        (int) pid, WEXITSTATUS (wait_status), function);

  return g_error_new (ARIP_ERROR, ARIP_ERROR_EXITED,
                      _("Child process %d exited with status %d before “%s” returned a result"),
                      (int) pid, WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : -1, function);
}

static void
conclude (AripProcess *self,
          gint         wait_status)
{
  if (self->finished)
    return;

  /* Whatever the child wrote before it died is in the socket buffer. */
  if (self->channel != NULL)
    arip_channel_drain (self->channel);
  read_last_words (self);

  if (WIFEXITED (wait_status))
    {
      self->if_exited = TRUE;
      self->exit_status = WEXITSTATUS (wait_status);
    }
  else if (WIFSIGNALED (wait_status))
    {
      self->if_signaled = TRUE;
      self->term_sig = WTERMSIG (wait_status);
    }

  g_clear_error (&self->error);

  if (self->own_error != NULL)
    self->error = g_error_copy (self->own_error);
  else if (self->lingered && self->child_error != NULL)
    self->error = g_error_copy (self->child_error);
  else if (self->lingered && self->result != NULL)
    ;   /* answered, then put down for lingering: a success */
  else if (self->killed_by_user && self->if_signaled && self->term_sig == SIGKILL)
    self->error = g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                               _("Child process %d running “%s” was killed"),
                               (int) self->pid, self->function);
  else if (self->if_signaled || (self->if_exited && self->exit_status != 0))
    self->error = arip_exit_error_new (self->pid, self->function, wait_status, self->last_words);
  else if (self->child_error != NULL)
    self->error = g_error_copy (self->child_error);
  else if (self->result == NULL)
    self->error = arip_exit_error_new (self->pid, self->function, wait_status, NULL);

  /* A result followed by a crash or a failure is not a success. */
  if (self->error != NULL)
    g_clear_pointer (&self->result, g_variant_unref);

  finish (self);
}

static void
on_child_exit (GPid     pid,
               gint     wait_status,
               gpointer user_data)
{
  AripProcess *self = user_data;

  self->reaped = TRUE;
  g_clear_pointer (&self->child_watch, g_source_unref);
  conclude (self, wait_status);
}

static void
kill_child (AripProcess *self)
{
  if (self->pid > 0 && !self->reaped)
    kill (self->pid, SIGKILL);
}

static void
fail_with (AripProcess *self,
           GError      *error)
{
  if (self->own_error == NULL)
    self->own_error = error;
  else
    g_error_free (error);

  if (self->channel != NULL)
    arip_channel_close (self->channel);

  if (self->spawned)
    kill_child (self);
  else
    finish_without_child (self, g_error_copy (self->own_error));
}

static gboolean
on_startup_timeout (gpointer user_data)
{
  AripProcess *self = user_data;

  g_clear_pointer (&self->startup_timer, g_source_unref);
  fail_with (self, g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                                _("Child process %d did not start running “%s” within %u ms "
                                  "(stuck in state %s); it was killed"),
                                (int) self->pid, self->function, self->startup_timeout_ms,
                                state_name (self->state)));
  return G_SOURCE_REMOVE;
}

/* ---------------------------------------------------------------------- */
/* Starting                                                               */

static void
spawn (AripProcess *self)
{
  g_autoptr(AripLauncher) default_launcher = NULL;
  g_autoptr(GError) error = NULL;
  AripLauncher *launcher = self->launcher;
  AripSpawnResult spawned;

  if (launcher == NULL)
    launcher = default_launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);

  self->startup_timeout_ms = arip_launcher_get_startup_timeout (launcher);
  arip_launcher_get_stop_timeouts (launcher, &self->interrupt_timeout_ms,
                                   &self->terminate_timeout_ms);

  if (!arip_launcher_spawn (launcher, FALSE, &spawned, &error))
    {
      finish_without_child (self, g_steal_pointer (&error));
      return;
    }

  self->spawned = TRUE;
  self->pid = spawned.pid;
  self->crash_fd = spawned.crash_fd;
  if (spawned.stdin_fd >= 0)
    self->stdin_pipe = g_unix_output_stream_new (spawned.stdin_fd, TRUE);
  if (spawned.stdout_fd >= 0)
    self->stdout_pipe = g_unix_input_stream_new (spawned.stdout_fd, TRUE);
  if (spawned.stderr_fd >= 0)
    self->stderr_pipe = g_unix_input_stream_new (spawned.stderr_fd, TRUE);

  self->child_watch = g_child_watch_source_new (self->pid);
  g_source_set_callback (self->child_watch, G_SOURCE_FUNC (on_child_exit),
                         g_object_ref (self), g_object_unref);
  g_source_set_static_name (self->child_watch, "[arip] child watch");
  g_source_attach (self->child_watch, self->context);

  self->startup_timer = add_timeout (self, self->startup_timeout_ms,
                                     on_startup_timeout, "[arip] startup timeout");

  self->channel = arip_channel_new (spawned.channel_fd, &error);
  if (self->channel != NULL)
    {
      arip_channel_start_reading (self->channel, self->context, on_frame, on_channel_closed, self);
      if (arip_channel_send_bytes (self->channel,
                                   arip_frame_encode_call (self->function, self->args, 0),
                                   NULL, &error))
        {
          GBytes *message;

          while ((message = g_queue_pop_head (&self->early_messages)) != NULL)
            arip_channel_send_bytes (self->channel, message, NULL, NULL);
        }
      else if (
          !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED) &&
          error->domain != G_IO_ERROR)
        {
          /* Our failure (the call is too large). An I/O error means the child
           * is already gone: how it ended tells more. */
          self->own_error = g_error_new (ARIP_ERROR, ARIP_ERROR_FAILED,
                                         _("Could not send the call to “%s” to child process %d: %s"),
                                         self->function, (int) self->pid, error->message);
          kill_child (self);
        }
    }
  else
    {
      self->own_error = g_steal_pointer (&error);
      kill_child (self);
    }

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
  set_state (self, ARIP_STATE_INITIALIZED);
}

static gboolean
spawn_when_idle (gpointer user_data)
{
  AripProcess *self = user_data;

  /* Killed or stopped meanwhile: finish() already gave the slot back. */
  if (!self->finished)
    spawn (self);
  return G_SOURCE_REMOVE;
}

static void
on_slot_acquired (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(AripProcess) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!arip_limiter_acquire_finish (result, &error))
    {
      /* Only we cancel the wait, when the process ended while queued. */
      return;
    }

  self->has_slot = TRUE;
  if (self->finished)
    {
      self->has_slot = FALSE;
      arip_limiter_release ();
      return;
    }

  spawn (self);
}

static gboolean
on_start_cancelled (GCancellable *cancellable,
                    gpointer      user_data)
{
  AripProcess *self = user_data;

  g_clear_pointer (&self->start_cancel_source, g_source_unref);
  if (self->start_task == NULL)
    return G_SOURCE_REMOVE;

  self->start_cancelled = TRUE;
  arip_process_stop_async (self, NULL, NULL, NULL);
  return G_SOURCE_REMOVE;
}

/**
 * arip_process_start_async:
 * @self: a process
 * @cancellable: (nullable): cancelling it stops the process, as
 *   [method@Arip.Process.stop_async] does, and fails the start with
 *   %G_IO_ERROR_CANCELLED
 * @callback: (scope async) (closure user_data): called once the function
 *   is executing, or the process ended before it could
 * @user_data: data for @callback
 *
 * Starts the process: waits for a slot of the global limiter
 * ([func@Arip.get_max_processes]), spawns the child and sends it the call.
 * The state moves from %ARIP_STATE_INITIALIZING through the lifecycle.
 *
 * The operation completes at %ARIP_STATE_EXECUTING, so signals and
 * messages sent afterwards reach a child that handles them. If the process
 * ends before that (the function is unknown, the worker could not be
 * spawned or timed out), it fails with the process's error.
 *
 * The thread-default main context of the caller becomes the process's:
 * every signal and callback of the process is dispatched there.
 */
void
arip_process_start_async (AripProcess         *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ARIP_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_process_start_async);
  g_task_set_check_cancellable (task, FALSE);

  if (self->started)
    {
      g_task_return_new_error (task, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                               _("The process running “%s” was already started"),
                               self->function);
      return;
    }

  self->started = TRUE;
  self->context = g_main_context_ref_thread_default ();
  self->start_task = g_steal_pointer (&task);
  /* A running process keeps itself alive until it is finished. */
  g_object_ref (self);

  if (cancellable != NULL)
    {
      self->start_cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->start_cancel_source, G_SOURCE_FUNC (on_start_cancelled),
                             self, NULL);
      g_source_set_static_name (self->start_cancel_source, "[arip] start cancelled");
      g_source_attach (self->start_cancel_source, self->context);
    }

  if (arip_limiter_try_acquire ())
    {
      GSource *source = g_idle_source_new ();

      /* Spawn from the main context, not inside this call, so that handlers
       * connected right after start_async() see every state change. */
      self->has_slot = TRUE;
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, spawn_when_idle, g_object_ref (self), g_object_unref);
      g_source_set_static_name (source, "[arip] spawn");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
  else
    {
      self->slot_cancellable = g_cancellable_new ();
      arip_limiter_acquire_async (self->slot_cancellable, on_slot_acquired, g_object_ref (self));
    }
}

/**
 * arip_process_start_finish:
 * @self: a process
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Process.start_async].
 *
 * Returns: %TRUE once the function is executing (or already ended), %FALSE
 *   with @error set if the process ended before, was already started, or the
 *   start was cancelled
 */
gboolean
arip_process_start_finish (AripProcess   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */

/**
 * arip_process_wait_async:
 * @self: a started process
 * @cancellable: (nullable): cancelling it only stops the waiting, as with
 *   `GSubprocess`: the child goes on
 * @callback: (scope async) (closure user_data): called once the process
 *   is %ARIP_STATE_FINISHED
 * @user_data: data for @callback
 *
 * Waits for the process to finish: for the child to answer and be reaped.
 * Waiting on a process that was never started fails with
 * %ARIP_ERROR_INVALID_STATE.
 */
void
arip_process_wait_async (AripProcess         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ARIP_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_process_wait_async);

  if (!self->started)
    g_task_return_new_error (task, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                             _("The process running “%s” was never started; start it "
                               "before waiting for it"), self->function);
  else if (self->finished)
    return_outcome (self, task);
  else
    add_waiter (self, task, WAITER_WAIT, ARIP_STATE_FINISHED);
}

/**
 * arip_process_wait_finish:
 * @self: a process
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Process.wait_async].
 *
 * Returns: (transfer full): the function's result, or %NULL with the
 *   process's error set
 */
GVariant *
arip_process_wait_finish (AripProcess   *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * arip_process_wait_for_state_async:
 * @self: a process
 * @state: the state to wait for
 * @cancellable: (nullable): stops the waiting
 * @callback: (scope async) (closure user_data): called once the process
 *   reached @state or a later one
 * @user_data: data for @callback
 *
 * Waits until the process is in @state or past it. A process that finishes
 * is past every state, so this always completes once it is finished.
 */
void
arip_process_wait_for_state_async (AripProcess         *self,
                                   AripState            state,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ARIP_IS_PROCESS (self));
  g_return_if_fail (state <= ARIP_STATE_FINISHED);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_process_wait_for_state_async);

  if (self->state >= state)
    g_task_return_boolean (task, TRUE);
  else
    add_waiter (self, task, WAITER_STATE, state);
}

/**
 * arip_process_wait_for_state_finish:
 * @self: a process
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Process.wait_for_state_async].
 *
 * Returns: %TRUE once the state was reached, %FALSE if the wait was cancelled
 */
gboolean
arip_process_wait_for_state_finish (AripProcess   *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Stopping                                                               */

static gboolean on_stop_timer (gpointer user_data);

static void
escalate (AripProcess *self)
{
  gint wait_ms;

  clear_source (&self->stop_timer);
  if (self->finished || self->pid <= 0 || self->reaped)
    return;

  /* The last step kills: the process then ended by our hand. */
  if (self->stop_stage == ARIP_STOP_TERMINATED)
    self->killed_by_user = TRUE;

  wait_ms = arip_stop_step (self->pid, 0, &self->stop_stage,
                            self->interrupt_timeout_ms, self->terminate_timeout_ms);
  if (wait_ms >= 0)
    self->stop_timer = add_timeout (self, wait_ms, on_stop_timer, "[arip] stop timeout");
}

static gboolean
on_stop_timer (gpointer user_data)
{
  AripProcess *self = user_data;

  g_clear_pointer (&self->stop_timer, g_source_unref);
  escalate (self);
  return G_SOURCE_REMOVE;
}

static void
begin_stop (AripProcess *self)
{
  if (self->finished || self->stop_stage != ARIP_STOP_NONE)
    return;

  if (!self->spawned)
    {
      self->stop_stage = ARIP_STOP_KILLED;
      finish_without_child (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                               _("The process running “%s” was stopped before it started"),
                                               self->function));
      return;
    }

  escalate (self);
}

/**
 * arip_process_stop_async:
 * @self: a started process
 * @cancellable: (nullable): stops the waiting, not the stop
 * @callback: (scope async) (closure user_data): called once the process
 *   is finished
 * @user_data: data for @callback
 *
 * Stops the process, politely first: interrupts it (its call's
 * cancellable is cancelled), waits the launcher's interrupt timeout
 * (2 seconds by default), terminates it with SIGTERM, waits the terminate
 * timeout (2 seconds), then kills it. Completes once it is finished, with
 * whatever outcome the child had: a function that notices the interrupt and
 * returns still delivers its result.
 *
 * A process still waiting for a limiter slot ends at once with
 * %G_IO_ERROR_CANCELLED, without ever running.
 */
void
arip_process_stop_async (AripProcess         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ARIP_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_process_stop_async);

  if (!self->started)
    {
      g_task_return_new_error (task, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                               _("The process running “%s” was never started"), self->function);
      return;
    }

  if (self->finished)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  add_waiter (self, task, WAITER_STOP, ARIP_STATE_FINISHED);
  begin_stop (self);
}

/**
 * arip_process_stop_finish:
 * @self: a process
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Process.stop_async].
 *
 * Returns: %TRUE once the process is finished
 */
gboolean
arip_process_stop_finish (AripProcess   *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Signals                                                                */

/**
 * arip_process_send_signal:
 * @self: a process
 * @signum: the signal
 *
 * Sends @signum to the child, if it runs. Nothing happens before the child
 * is spawned or after it was reaped, so a recycled pid is never hit.
 */
void
arip_process_send_signal (AripProcess *self,
                          gint         signum)
{
  g_return_if_fail (ARIP_IS_PROCESS (self));

  if (self->pid > 0 && !self->reaped && !self->finished)
    kill (self->pid, signum);
}

/**
 * arip_process_interrupt:
 * @self: a process
 *
 * Interrupts the call: sends SIGINT, on which the worker cancels the call's
 * cancellable ([method@Arip.Call.get_cancellable]), even while the function
 * is busy. It is cooperative: the function decides whether to return a
 * value, return %G_IO_ERROR_CANCELLED (the parent then gets
 * %ARIP_ERROR_CHILD_CANCELLED), or go on.
 */
void
arip_process_interrupt (AripProcess *self)
{
  arip_process_send_signal (self, SIGINT);
}

/**
 * arip_process_terminate:
 * @self: a process
 *
 * Sends SIGTERM to the child, which by default ends it: the process then
 * finishes with %ARIP_ERROR_SIGNALED.
 */
void
arip_process_terminate (AripProcess *self)
{
  arip_process_send_signal (self, SIGTERM);
}

/**
 * arip_process_kill:
 * @self: a process
 *
 * Kills the child with SIGKILL. When this returns, the process is
 * %ARIP_STATE_FINISHED with %ARIP_ERROR_PROCESS_KILLED and term sig 9 —
 * unless the child had already ended on its own, in which case that
 * outcome stands. A process still waiting for a limiter slot ends at once.
 */
void
arip_process_kill (AripProcess *self)
{
  siginfo_t info;
  gint wait_status;
  int r;

  g_return_if_fail (ARIP_IS_PROCESS (self));

  if (!self->started || self->finished)
    return;

  self->killed_by_user = TRUE;

  if (!self->spawned)
    {
      finish_without_child (self, g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                                               _("The process running “%s” was killed before it started"),
                                               self->function));
      return;
    }

  if (self->reaped)
    return;

  kill (self->pid, SIGKILL);

  /* Wait for the child to be dead, but leave it to the child watch to reap
   * it, so that GLib never sees a child it watches vanish. */
  memset (&info, 0, sizeof info);
  do
    r = waitid (P_PID, self->pid, &info, WEXITED | WNOWAIT);
  while (r < 0 && errno == EINTR);

  if (r < 0)
    wait_status = SIGKILL;   /* as if killed: no way to know better */
  else if (info.si_code == CLD_EXITED)
    wait_status = (info.si_status & 0xff) << 8;
  else
    wait_status = info.si_status & 0x7f;

  g_object_ref (self);
  conclude (self, wait_status);
  g_object_unref (self);
}

/**
 * arip_process_send_message:
 * @self: a process
 * @message: (transfer floating): the message; a floating reference is consumed
 *
 * Sends @message to the function, which receives it through
 * [signal@Arip.Call::message] in order, whenever its main context runs.
 * Messages sent before the child is spawned wait and follow the call;
 * messages to a child that is gone are dropped.
 */
void
arip_process_send_message (AripProcess *self,
                           GVariant    *message)
{
  g_autoptr(GVariant) owned = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (ARIP_IS_PROCESS (self));
  g_return_if_fail (message != NULL);

  owned = g_variant_ref_sink (message);

  if (self->finished || (self->spawned && self->channel == NULL))
    {
      g_debug ("Dropping a message for “%s”: the child is not running", self->function);
      return;
    }

  if (self->channel == NULL)
    {
      /* Not spawned yet: it goes right after the call. */
      g_queue_push_tail (&self->early_messages,
                         arip_frame_encode_value (ARIP_FRAME_MESSAGE, owned, 0));
      return;
    }

  if (!arip_channel_send_bytes (self->channel,
                                arip_frame_encode_value (ARIP_FRAME_MESSAGE, owned, 0),
                                NULL, &error))
    g_debug ("Dropping a message for “%s”: %s", self->function, error->message);
}

/* ---------------------------------------------------------------------- */
/* Getters                                                                */

/**
 * arip_process_get_function:
 * @self: a process
 *
 * Gets the registered name of the function the child runs.
 *
 * Returns: the name
 */
const char *
arip_process_get_function (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->function;
}

/**
 * arip_process_get_args:
 * @self: a process
 *
 * Gets the arguments passed to the function.
 *
 * Returns: (transfer none): the arguments
 */
GVariant *
arip_process_get_args (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->args;
}

/**
 * arip_process_get_launcher:
 * @self: a process
 *
 * Gets the launcher the process was created with.
 *
 * Returns: (transfer none) (nullable): the launcher, or %NULL for the defaults
 */
AripLauncher *
arip_process_get_launcher (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->launcher;
}

/**
 * arip_process_get_result:
 * @self: a process
 * @error: return location for an error
 *
 * Gets the outcome of a finished process without waiting.
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 *   to the process's error, or to %ARIP_ERROR_INVALID_STATE if the process
 *   is not finished yet
 */
GVariant *
arip_process_get_result (AripProcess  *self,
                         GError      **error)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!self->finished)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                   _("The process running “%s” has not finished yet"), self->function);
      return NULL;
    }
  if (self->error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->error));
      return NULL;
    }
  return g_variant_ref (self->result);
}

/**
 * arip_process_get_error:
 * @self: a process
 *
 * Gets the error a finished process ended with.
 *
 * Returns: (nullable) (transfer none): the error, or %NULL if the process
 *   succeeded or is not finished
 */
const GError *
arip_process_get_error (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->finished ? self->error : NULL;
}

/**
 * arip_process_get_state:
 * @self: a process
 *
 * Gets where the process is in its lifecycle.
 *
 * Returns: the state
 */
AripState
arip_process_get_state (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), ARIP_STATE_INITIALIZING);
  return self->state;
}

/**
 * arip_process_get_pid:
 * @self: a process
 *
 * Gets the child's process id.
 *
 * Returns: the pid, or 0 before %ARIP_STATE_INITIALIZED
 */
GPid
arip_process_get_pid (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), 0);
  return self->pid;
}

/**
 * arip_process_get_if_exited:
 * @self: a process
 *
 * Checks whether the child exited normally (by returning from its worker
 * or calling exit()), as opposed to being killed by a signal.
 *
 * Returns: %TRUE if the finished child exited normally
 */
gboolean
arip_process_get_if_exited (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), FALSE);
  return self->if_exited;
}

/**
 * arip_process_get_exit_status:
 * @self: a process
 *
 * Gets the child's exit status. Only meaningful if
 * [method@Arip.Process.get_if_exited] is %TRUE.
 *
 * Returns: the exit status
 */
gint
arip_process_get_exit_status (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), 0);
  return self->exit_status;
}

/**
 * arip_process_get_if_signaled:
 * @self: a process
 *
 * Checks whether the child was ended by a signal.
 *
 * Returns: %TRUE if the finished child died of a signal
 */
gboolean
arip_process_get_if_signaled (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), FALSE);
  return self->if_signaled;
}

/**
 * arip_process_get_term_sig:
 * @self: a process
 *
 * Gets the signal that ended the child. Only meaningful if
 * [method@Arip.Process.get_if_signaled] is %TRUE.
 *
 * Returns: the signal number
 */
gint
arip_process_get_term_sig (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), 0);
  return self->term_sig;
}

/**
 * arip_process_get_progress:
 * @self: a process
 *
 * Gets how far the function said it is.
 *
 * Returns: the progress, from 0.0 to 1.0
 */
gdouble
arip_process_get_progress (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), 0.0);
  return self->progress;
}

/**
 * arip_process_get_stdout_pipe:
 * @self: a process
 *
 * Gets the pipe the child's stdout goes to, with
 * %G_SUBPROCESS_FLAGS_STDOUT_PIPE on the launcher.
 *
 * Returns: (transfer none) (nullable): the pipe, or %NULL
 */
GInputStream *
arip_process_get_stdout_pipe (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->stdout_pipe;
}

/**
 * arip_process_get_stderr_pipe:
 * @self: a process
 *
 * Gets the pipe the child's stderr goes to, with
 * %G_SUBPROCESS_FLAGS_STDERR_PIPE on the launcher.
 *
 * Returns: (transfer none) (nullable): the pipe, or %NULL
 */
GInputStream *
arip_process_get_stderr_pipe (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->stderr_pipe;
}

/**
 * arip_process_get_stdin_pipe:
 * @self: a process
 *
 * Gets the pipe the child's stdin reads from, with
 * %G_SUBPROCESS_FLAGS_STDIN_PIPE on the launcher.
 *
 * Returns: (transfer none) (nullable): the pipe, or %NULL
 */
GOutputStream *
arip_process_get_stdin_pipe (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->stdin_pipe;
}

/* ---------------------------------------------------------------------- */
/* run_in_process                                                         */

typedef struct {
  AripProcess *process;
  GSource     *cancel_source;
  gboolean     cancelled;
} RunData;

static void
run_data_free (RunData *data)
{
  if (data->cancel_source != NULL)
    {
      g_source_destroy (data->cancel_source);
      g_source_unref (data->cancel_source);
    }
  g_clear_object (&data->process);
  g_free (data);
}

static void
on_run_waited (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  RunData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GVariant *value;

  value = arip_process_wait_finish (ARIP_PROCESS (source), result, &error);

  if (data->cancelled)
    {
      g_clear_pointer (&value, g_variant_unref);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Running “%s” was cancelled"), data->process->function);
    }
  else if (value == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, value, (GDestroyNotify) g_variant_unref);
}

static gboolean
on_run_cancelled (GCancellable *cancellable,
                  gpointer      user_data)
{
  RunData *data = user_data;

  g_clear_pointer (&data->cancel_source, g_source_unref);
  data->cancelled = TRUE;
  arip_process_stop_async (data->process, NULL, NULL, NULL);
  return G_SOURCE_REMOVE;
}

void
arip_process_run_async (AripProcess         *self,
                        gpointer             source_object,
                        gpointer             source_tag,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  RunData *data;

  task = g_task_new (source_object, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  g_task_set_check_cancellable (task, FALSE);

  if (g_cancellable_is_cancelled (cancellable))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Running “%s” was cancelled"), self->function);
      return;
    }

  data = g_new0 (RunData, 1);
  data->process = g_object_ref (self);
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);

  arip_process_start_async (self, NULL, NULL, NULL);
  arip_process_wait_async (self, NULL, on_run_waited, g_object_ref (task));

  if (cancellable != NULL && !self->finished)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (data->cancel_source, G_SOURCE_FUNC (on_run_cancelled), data, NULL);
      g_source_set_static_name (data->cancel_source, "[arip] run cancelled");
      g_source_attach (data->cancel_source, self->context);
    }
}

typedef struct {
  GAsyncResult *result;
} SyncData;

static void
on_sync_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  SyncData *data = user_data;

  data->result = g_object_ref (result);
}

GVariant *
arip_process_run_sync (AripProcess   *self,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  SyncData data = { NULL };
  GVariant *value;

  g_main_context_push_thread_default (context);

  arip_process_run_async (self, NULL, arip_process_run_sync, cancellable, on_sync_done, &data);
  /* Return only once the child is reaped, so nothing is left pending on
   * a context nobody will run again. */
  while (data.result == NULL || (self->spawned && !self->reaped))
    g_main_context_iteration (context, TRUE);

  g_main_context_pop_thread_default (context);

  value = g_task_propagate_pointer (G_TASK (data.result), error);
  g_object_unref (data.result);
  return value;
}
