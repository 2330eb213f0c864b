/* arip-process.c: one child process running one call
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here happens in the main context that was the thread default
 * when the process was started: the child's frames, its exit, the timers
 * and every signal. A started process keeps itself alive until it is
 * FINISHED, so dropping the last reference of a running process is safe.
 * The child itself (its channel, crash pipe, exit and slot) is an
 * AripChild; what is here is the call and its states.
 *
 * How a process ends, in order of precedence:
 *   - an error of ours (invalid data, startup timeout, spawn failure);
 *   - the call timeout expired: TIMED_OUT;
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
#include "arip-child-private.h"
#include "arip-enum-types.h"
#include "arip-error.h"
#include "arip-error-private.h"
#include "arip-launcher-private.h"
#include "arip-limiter-private.h"
#include "arip-process.h"
#include "arip-pool-private.h"
#include "arip-process-private.h"
#include "arip-signals-private.h"

/* Messages to a child that is not reading wait in the parent's memory up
 * to this much; beyond, they are dropped (with a warning). */
#define MAX_QUEUED_MESSAGE_BYTES (64 * 1024 * 1024)

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
 * The child runs in a process group of its own. Terminating, killing or
 * stopping it reaches the processes it started too, as long as they stay
 * in its group (a GSubprocess, a fork); a process that moved to a session
 * of its own (setsid(), daemon()) is out of reach. When the child ends,
 * whatever is left of its group is killed.
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
  GUnixFDList   *fd_list;       /* sent with the call, or NULL */
  GUnixFDList   *result_fds;    /* came with the result, or NULL */
  AripLauncher  *launcher;
  AripPool      *pool;          /* the call runs on a worker of this pool */
  AripPoolCall  *pool_call;     /* while it is queued or running there */

  GMainContext  *context;
  AripState      state;
  GPid           pid;
  AripStartMethod start_method;
  AripSandboxFlags sandbox;
  gdouble        progress;

  guint          startup_timeout_ms;
  guint          call_timeout_ms;
  guint          interrupt_timeout_ms;
  guint          terminate_timeout_ms;

  guint          started : 1;
  guint          spawned : 1;
  guint          finished : 1;
  guint          killed_by_user : 1;
  guint          answered : 1;       /* a result or error frame arrived */
  guint          start_cancelled : 1;
  guint          reached_executing : 1;
  guint          timed_out : 1;      /* the call timeout expired */
  guint          if_exited : 1;
  guint          if_signaled : 1;
  guint          blocking : 1;       /* a sync run waits for it */
  guint          warned_dropping : 1;
  AripStopStage  stop_stage;
  gint           exit_status;
  gint           term_sig;

  GVariant      *result;
  GError        *child_error;   /* the error frame, mapped */
  GError        *own_error;     /* ours: a failed send */
  GError        *error;         /* the outcome */

  AripChild     *child;

  GInputStream  *stdout_pipe;
  GInputStream  *stderr_pipe;
  GOutputStream *stdin_pipe;

  GSource       *stop_timer;
  GSource       *call_timer;
  GSource       *start_cancel_source;
  GCancellable  *slot_cancellable;
  GCancellable  *run_cancellable;   /* a run's: cancelled, it never spawns */
  GCancellable  *start_cancellable;

  GTask         *start_task;
  GList         *waiters;
  GQueue         early_messages;   /* GVariant messages sent before the spawn */
  gsize          early_bytes;
};

enum {
  PROP_0,
  PROP_FUNCTION,
  PROP_ARGS,
  PROP_LAUNCHER,
  PROP_POOL,
  PROP_STATE,
  PROP_PID,
  PROP_PROGRESS,
  PROP_SANDBOX,
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

static void conclude      (AripProcess  *self);
static void begin_stop    (AripProcess  *self);

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
arip_process_dispose (GObject *object)
{
  AripProcess *self = ARIP_PROCESS (object);

  /* Only reached once the process is finished or was never started: a
   * running process holds a reference to itself. */
  if (self->child != NULL)
    {
      arip_child_detach (self->child);
      g_clear_pointer (&self->child, arip_child_unref);
    }

  G_OBJECT_CLASS (arip_process_parent_class)->dispose (object);
}

static void
arip_process_finalize (GObject *object)
{
  AripProcess *self = ARIP_PROCESS (object);

  g_assert (self->waiters == NULL);
  g_assert (self->start_task == NULL);

  g_free (self->function);
  g_clear_pointer (&self->args, g_variant_unref);
  g_clear_object (&self->fd_list);
  g_clear_object (&self->result_fds);
  g_clear_object (&self->launcher);
  g_clear_object (&self->pool);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->result, g_variant_unref);
  g_clear_error (&self->child_error);
  g_clear_error (&self->own_error);
  g_clear_error (&self->error);
  g_clear_object (&self->stdout_pipe);
  g_clear_object (&self->stderr_pipe);
  g_clear_object (&self->stdin_pipe);
  g_clear_object (&self->slot_cancellable);
  g_clear_object (&self->run_cancellable);
  g_clear_object (&self->start_cancellable);
  g_queue_clear_full (&self->early_messages, (GDestroyNotify) g_variant_unref);

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
    case PROP_POOL:
      g_value_set_object (value, self->pool);
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
    case PROP_SANDBOX:
      g_value_set_flags (value, self->sandbox);
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
    case PROP_POOL:
      self->pool = g_value_dup_object (value);
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
   * AripProcess:pool:
   *
   * The pool whose workers run the call, for a process made with
   * [ctor@Arip.Process.new_for_pool]; %NULL for a child of its own.
   */
  properties[PROP_POOL] =
    g_param_spec_object ("pool", NULL, NULL, ARIP_TYPE_POOL,
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
   * AripProcess:sandbox:
   *
   * The pieces of its launcher's sandbox the worker applied to itself
   * (arip_launcher_set_sandbox()); known from %ARIP_STATE_WAIT_EXEC_DATA
   * on, %ARIP_SANDBOX_NONE before and when the launcher asks for none.
   */
  properties[PROP_SANDBOX] =
    g_param_spec_flags ("sandbox", NULL, NULL, ARIP_TYPE_SANDBOX_FLAGS, ARIP_SANDBOX_NONE,
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

/**
 * arip_process_new_with_fds:
 * @launcher: (nullable): the launcher whose settings start the worker, or
 *   %NULL for the defaults
 * @function: the registered name of the function to run
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @fd_list: (nullable): the descriptors that `h` handles in @args index
 *
 * As [ctor@Arip.Process.new], with copies of the descriptors of @fd_list
 * sent along: the function gets them from arip_call_get_fd_list(). What
 * it returns with arip_call_return_value_with_fds() comes back as
 * [method@Arip.Process.get_result_fd_list].
 *
 * Returns: (transfer full): a new process
 */
AripProcess *
arip_process_new_with_fds (AripLauncher *launcher,
                           const char   *function,
                           GVariant     *args,
                           GUnixFDList  *fd_list)
{
  AripProcess *self;

  g_return_val_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list), NULL);

  self = arip_process_new (launcher, function, args);
  if (self != NULL && fd_list != NULL)
    self->fd_list = g_object_ref (fd_list);
  return self;
}

/**
 * arip_process_get_result_fd_list:
 * @self: a finished process
 *
 * The descriptors that came with the function's result: `h` handles in
 * the result index them.
 *
 * Returns: (transfer none) (nullable): the list, or %NULL if none came
 */
GUnixFDList *
arip_process_get_result_fd_list (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);

  return self->result_fds;
}

/**
 * arip_process_new_for_pool:
 * @pool: the pool whose workers run the call
 * @function: the registered name of the function to run
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 *
 * Creates a process whose call runs on a warm worker of @pool, with
 * everything a process gives: its states, the function's messages and
 * progress, messages to the function, interrupts, stop and kill. Start it
 * with [method@Arip.Process.start_async] from the pool's main context,
 * where all its signals are emitted.
 *
 * It is %ARIP_STATE_INITIALIZING while the call waits in the pool's queue,
 * and passes through the other states to %ARIP_STATE_EXECUTING as a worker
 * takes it; it is %ARIP_STATE_FINISHED once the call is answered (the
 * worker lives on and serves other calls). Its pid is the worker's. A
 * worker that dies before it began the call hands it to another, and the
 * pid changes. Killing or terminating the process ends its worker, which
 * the pool replaces; interrupting it only interrupts its call.
 *
 * Returns: (transfer full): a new process
 */
AripProcess *
arip_process_new_for_pool (AripPool   *pool,
                           const char *function,
                           GVariant   *args)
{
  g_return_val_if_fail (ARIP_IS_POOL (pool), NULL);
  g_return_val_if_fail (function != NULL, NULL);

  return g_object_new (ARIP_TYPE_PROCESS,
                       "pool", pool,
                       "launcher", arip_pool_get_launcher (pool),
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
  clear_source (&self->stop_timer);
  clear_source (&self->call_timer);
  if (self->slot_cancellable != NULL)
    g_cancellable_cancel (self->slot_cancellable);

  g_assert (self->error != NULL || self->result != NULL);

  set_state (self, ARIP_STATE_FINISHED);
  complete_start (self);
  complete_waiters (self);

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

static gboolean
on_call_timeout (gpointer user_data)
{
  AripProcess *self = user_data;

  g_clear_pointer (&self->call_timer, g_source_unref);
  if (self->answered || self->finished)
    return G_SOURCE_REMOVE;

  self->timed_out = TRUE;
  begin_stop (self);
  return G_SOURCE_REMOVE;
}

static void
set_sandbox (AripProcess      *self,
             AripSandboxFlags  sandbox)
{
  if (self->sandbox == sandbox)
    return;
  self->sandbox = sandbox;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SANDBOX]);
}

static void
on_child_ready (AripChild *child,
                gpointer   user_data)
{
  g_autoptr(AripProcess) self = g_object_ref (user_data);

  /* Handlers may end the process (and drop the last reference) from any
   * state change: hold one while we work. */
  if (self->state != ARIP_STATE_INITIALIZED)
    arip_child_protocol_violation (child, _("a hello out of turn"));
  else
    {
      set_sandbox (self, arip_child_get_sandbox (child));
      set_state (self, ARIP_STATE_WAIT_EXEC_DATA);
    }
}

static void
on_child_frame (AripChild *child,
                AripFrame *frame,
                gpointer   user_data)
{
  g_autoptr(AripProcess) self = g_object_ref (user_data);

  if (self->finished)
    return;

  switch (frame->kind)
    {
    case ARIP_FRAME_STATE:
      {
        guint32 state = frame->u32;

        if (state < ARIP_STATE_BOOTING || state > ARIP_STATE_EXECUTING ||
            state != (guint32) self->state + 1)
          {
            g_autofree char *what =
              g_strdup_printf (_("a state change from %s to %s"), state_name (self->state),
                               state <= ARIP_STATE_FINISHED ? state_name (state) : "?");
            arip_child_protocol_violation (child, what);
            break;
          }
        set_state (self, state);
        if (state == ARIP_STATE_EXECUTING && !self->finished)
          {
            arip_child_stop_startup_timer (child);
            if (self->call_timeout_ms > 0 && !self->answered)
              self->call_timer = add_timeout (self, self->call_timeout_ms, on_call_timeout,
                                              "[arip] call timeout");
            complete_start (self);
          }
      }
      break;

    case ARIP_FRAME_RESULT:
      if (self->answered || self->state != ARIP_STATE_EXECUTING)
        {
          arip_child_protocol_violation (child, self->answered ? _("a second answer")
                                                               : _("a result before executing"));
          break;
        }
      if (!arip_variant_check_handles (frame->value, frame->fds, NULL))
        {
          arip_child_protocol_violation (child, _("a result whose handle indexes no file descriptor"));
          break;
        }
      self->result = g_variant_ref (frame->value);
      g_set_object (&self->result_fds, frame->fds);
      self->answered = TRUE;
      clear_source (&self->call_timer);
      arip_child_expect_exit (child);
      break;

    case ARIP_FRAME_ERROR:
      if (self->answered || self->state < ARIP_STATE_BOOTING)
        {
          arip_child_protocol_violation (child, self->answered ? _("a second answer")
                                                               : _("an error before booting"));
          break;
        }
      self->child_error = arip_frame_payload_to_error (frame->payload);
      if (self->child_error == NULL)
        {
          arip_child_protocol_violation (child, _("an error whose domain is not a valid name"));
          break;
        }
      self->answered = TRUE;
      clear_source (&self->call_timer);
      arip_child_expect_exit (child);
      break;

    case ARIP_FRAME_MESSAGE:
      /* After the answer nothing the channel says matters (a process that
       * still holds it, such as a grandchild, may go on talking). */
      if (self->answered)
        break;
      if (self->state < ARIP_STATE_STARTED)
        {
          arip_child_protocol_violation (child, _("a message outside the call"));
          break;
        }
      g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, frame->value);
      break;

    case ARIP_FRAME_PROGRESS:
      {
        gdouble progress = frame->dbl;

        if (self->answered)
          break;
        if (isnan (progress) || progress < 0.0 || progress > 1.0 ||
            self->state < ARIP_STATE_STARTED)
          {
            arip_child_protocol_violation (child, _("a progress report out of range or outside the call"));
            break;
          }
        if (progress != self->progress)
          {
            self->progress = progress;
            g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROGRESS]);
          }
      }
      break;

    case ARIP_FRAME_HELLO:
    case ARIP_FRAME_CALL:
    default:
      {
        g_autofree char *what = g_strdup_printf (_("a %s frame, which only the parent sends"),
                                                 arip_frame_kind_to_string (frame->kind));
        arip_child_protocol_violation (child, what);
      }
      break;
    }
}

static GError *
on_child_startup_timeout (AripChild *child,
                          gpointer   user_data)
{
  AripProcess *self = user_data;

  return g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                      _("Child process %d did not start running “%s” within %u ms "
                        "(stuck in state %s); it was killed. If the worker is this program "
                        "started again, check that its main() calls arip_init() at the top"),
                      (int) self->pid, self->function, self->startup_timeout_ms,
                      state_name (self->state));
}

static void
on_child_exited (AripChild *child,
                 gpointer   user_data)
{
  AripProcess *self = user_data;

  g_object_ref (self);
  conclude (self);
  g_object_unref (self);
}

static const AripChildCallbacks child_callbacks = {
  on_child_ready,
  on_child_frame,
  on_child_startup_timeout,
  on_child_exited,
};

/* ---------------------------------------------------------------------- */
/* The end of the child                                                   */

static void
conclude (AripProcess *self)
{
  AripChild *child = self->child;
  gint wait_status;
  const GError *child_own;

  if (self->finished)
    return;

  wait_status = arip_child_get_wait_status (child);
  child_own = arip_child_get_error (child);

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

  if (child_own != NULL)
    self->error = g_error_copy (child_own);
  else if (self->own_error != NULL)
    self->error = g_error_copy (self->own_error);
  else if (self->timed_out)
    self->error = g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                               _("“%s” in child process %d ran longer than its call timeout of "
                                 "%u ms; it was stopped"),
                               self->function, (int) self->pid, self->call_timeout_ms);
  else if (arip_child_get_lingered (child) && self->child_error != NULL)
    self->error = g_error_copy (self->child_error);
  else if (arip_child_get_lingered (child) && self->result != NULL)
    ;   /* answered, then put down for lingering: a success */
  else if (self->killed_by_user && self->if_signaled && self->term_sig == SIGKILL)
    self->error = g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                               _("Child process %d running “%s” was killed"),
                               (int) self->pid, self->function);
  else if (self->if_signaled || (self->if_exited && self->exit_status != 0))
    self->error = arip_child_exit_error_new (child, self->function);
  else if (self->child_error != NULL)
    self->error = g_error_copy (self->child_error);
  else if (self->result == NULL)
    self->error = arip_child_exit_error_new (child, self->function);

  /* A result followed by a crash or a failure is not a success. */
  if (self->error != NULL)
    g_clear_pointer (&self->result, g_variant_unref);

  finish (self);
}

/* ---------------------------------------------------------------------- */
/* Starting                                                               */

/* The cancellation of a process that has not started must win the race
 * with its slot: a cancelled call never runs. */
static gboolean
start_is_cancelled (AripProcess *self)
{
  return g_cancellable_is_cancelled (self->run_cancellable) ||
         g_cancellable_is_cancelled (self->start_cancellable);
}

static void
spawn (AripProcess *self,
       AripSlot    *slot)
{
  g_autoptr(GError) error = NULL;
  AripLauncher *launcher = self->launcher != NULL ? self->launcher : arip_launcher_get_default ();
  gint fd;

  if (self->finished)
    {
      arip_slot_release (slot);
      return;
    }

  if (start_is_cancelled (self))
    {
      arip_slot_release (slot);
      self->start_cancelled = g_cancellable_is_cancelled (self->start_cancellable);
      finish_without_child (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                               _("Running “%s” was cancelled before it started"),
                                               self->function));
      return;
    }

  self->startup_timeout_ms = arip_launcher_get_startup_timeout (launcher);
  self->call_timeout_ms = arip_launcher_get_call_timeout (launcher);
  arip_launcher_get_stop_timeouts (launcher, &self->interrupt_timeout_ms,
                                   &self->terminate_timeout_ms);

  self->child = arip_child_new (launcher, ARIP_CHILD_ONE_SHOT, slot, self->context,
                                &child_callbacks, self, &error);
  if (self->child == NULL)
    {
      finish_without_child (self, g_steal_pointer (&error));
      return;
    }

  self->spawned = TRUE;
  self->pid = arip_child_get_pid (self->child);
  self->start_method = arip_child_get_start_method (self->child);
  arip_child_set_function (self->child, self->function);
  if ((fd = arip_child_steal_stdio (self->child, 0)) >= 0)
    self->stdin_pipe = g_unix_output_stream_new (fd, TRUE);
  if ((fd = arip_child_steal_stdio (self->child, 1)) >= 0)
    self->stdout_pipe = g_unix_input_stream_new (fd, TRUE);
  if ((fd = arip_child_steal_stdio (self->child, 2)) >= 0)
    self->stderr_pipe = g_unix_input_stream_new (fd, TRUE);

  /* The call goes at once, ahead of the hello: the worker finds it there. */
  if (arip_child_send_call (self->child, self->function, self->args, self->fd_list, &error))
    {
      GVariant *message;

      while ((message = g_queue_pop_head (&self->early_messages)) != NULL)
        arip_child_send_message (self->child, message, NULL);
      self->early_bytes = 0;
    }
  else if (error->domain != G_IO_ERROR)
    {
      /* Our failure (the call is too large). An I/O error means the child
       * is already gone: how it ended tells more. */
      arip_child_fail (self->child,
                       g_error_new (error->domain, error->code,
                                    _("Could not send the call to “%s” to child process %d: %s"),
                                    self->function, (int) self->pid, error->message));
    }

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
  set_state (self, ARIP_STATE_INITIALIZED);
}

typedef struct {
  AripProcess *self;
  AripSlot    *slot;
} SpawnLater;

static gboolean
spawn_when_idle (gpointer user_data)
{
  SpawnLater *later = user_data;

  spawn (later->self, g_steal_pointer (&later->slot));
  return G_SOURCE_REMOVE;
}

static void
spawn_later_free (gpointer data)
{
  SpawnLater *later = data;

  arip_slot_release (later->slot);
  g_object_unref (later->self);
  g_free (later);
}

static void
on_slot_acquired (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(AripProcess) self = user_data;
  g_autoptr(GError) error = NULL;
  AripSlot *slot = arip_limiter_acquire_finish (result, &error);

  if (slot == NULL)
    {
      /* We cancel the wait when the process ended while queued; the
       * limiter refuses a blocking wait that could never end. */
      if (!self->finished && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_prefix_error (&error, _("Could not run “%s”: "), self->function);
          finish_without_child (self, g_steal_pointer (&error));
        }
      return;
    }

  spawn (self, slot);
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
  AripSlot *slot;

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
  self->start_cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  /* A running process keeps itself alive until it is finished. */
  g_object_ref (self);

  if (self->pool != NULL)
    {
      /* Everything happens in the pool's context. */
      g_main_context_unref (self->context);
      self->context = g_main_context_ref (arip_pool_get_context (self->pool));
    }

  if (cancellable != NULL)
    {
      self->start_cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->start_cancel_source, G_SOURCE_FUNC (on_start_cancelled),
                             self, NULL);
      g_source_set_static_name (self->start_cancel_source, "[arip] start cancelled");
      g_source_attach (self->start_cancel_source, self->context);
    }

  if (self->pool != NULL)
    {
      GVariant *message;

      self->pool_call = arip_pool_submit_process (self->pool, self, self->function, self->args);
      /* Messages sent before the start follow the call. */
      while ((message = g_queue_pop_head (&self->early_messages)) != NULL)
        {
          if (self->pool_call != NULL)
            arip_pool_call_send (self->pool_call, message);
          else
            g_variant_unref (message);
        }
      self->early_bytes = 0;
      return;
    }

  slot = arip_limiter_try_acquire (self->context);
  if (slot != NULL)
    {
      GSource *source = g_idle_source_new ();
      SpawnLater *later = g_new0 (SpawnLater, 1);

      /* Spawn from the main context, not inside this call, so that handlers
       * connected right after start_async() see every state change. */
      later->self = g_object_ref (self);
      later->slot = slot;
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, spawn_when_idle, later, spawn_later_free);
      g_source_set_static_name (source, "[arip] spawn");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
  else
    {
      self->slot_cancellable = g_cancellable_new ();
      arip_limiter_acquire_async (self->blocking, self->slot_cancellable, on_slot_acquired,
                                  g_object_ref (self));
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
  if (self->finished || self->child == NULL)
    return;

  /* The last step kills: the process then ended by our hand. */
  if (self->stop_stage == ARIP_STOP_TERMINATED)
    self->killed_by_user = TRUE;

  wait_ms = arip_child_stop_step (self->child, 0, &self->stop_stage,
                                  self->interrupt_timeout_ms, self->terminate_timeout_ms);
  if (wait_ms == 0)
    escalate (self);
  else if (wait_ms > 0)
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

  if (self->pool_call != NULL)
    {
      self->stop_stage = ARIP_STOP_INTERRUPTED;
      arip_pool_call_stop (self->pool_call);
      return;
    }

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

  if (self->pool_call != NULL && !self->finished)
    arip_pool_call_signal (self->pool_call, signum);
  else if (self->child != NULL && !self->finished)
    arip_child_send_signal (self->child, signum);
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
 * Kills the child with SIGKILL, and the processes it started that are
 * still in its process group. When this returns, the process is
 * %ARIP_STATE_FINISHED with %ARIP_ERROR_PROCESS_KILLED and term sig 9 —
 * unless the child had already ended on its own, in which case that
 * outcome stands. A process still waiting for a limiter slot ends at once.
 * This never waits for the child for more than a moment.
 */
void
arip_process_kill (AripProcess *self)
{
  g_return_if_fail (ARIP_IS_PROCESS (self));

  if (!self->started || self->finished)
    return;

  self->killed_by_user = TRUE;

  if (self->pool_call != NULL)
    {
      g_object_ref (self);
      arip_pool_call_kill (self->pool_call);
      g_object_unref (self);
      return;
    }

  if (!self->spawned)
    {
      finish_without_child (self, g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                                               _("The process running “%s” was killed before it started"),
                                               self->function));
      return;
    }

  g_object_ref (self);
  arip_child_kill (self->child);
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
 * messages to a child that is gone are dropped. So are messages beyond
 * 64 MiB waiting for a child that does not read them (with a warning): the
 * parent's memory is not theirs to fill.
 */
void
arip_process_send_message (AripProcess *self,
                           GVariant    *message)
{
  g_autoptr(GVariant) owned = NULL;
  g_autoptr(GError) error = NULL;
  gsize queued, size;

  g_return_if_fail (ARIP_IS_PROCESS (self));
  g_return_if_fail (message != NULL);

  owned = g_variant_ref_sink (message);

  if (self->finished || (self->child != NULL && arip_child_has_exited (self->child)))
    {
      g_debug ("Dropping a message for “%s”: the child is not running", self->function);
      return;
    }

  size = g_variant_get_size (owned);
  if (size > ARIP_FRAME_MAX_SIZE)
    {
      g_warning ("Dropping a message for “%s”: it is larger than the limit of %u bytes",
                 self->function, ARIP_FRAME_MAX_SIZE);
      return;
    }

  if (self->pool_call != NULL)
    queued = arip_pool_call_get_queued_bytes (self->pool_call);
  else
    queued = self->child != NULL ? arip_child_get_queued_bytes (self->child) : self->early_bytes;
  if (queued > 0 && queued + size > MAX_QUEUED_MESSAGE_BYTES)
    {
      if (!self->warned_dropping)
        g_warning ("Dropping messages for “%s” in child process %d: %" G_GSIZE_FORMAT
                   " bytes of them wait already, and the child does not read them",
                   self->function, (int) self->pid, queued);
      self->warned_dropping = TRUE;
      return;
    }

  if (self->pool_call != NULL)
    {
      arip_pool_call_send (self->pool_call, g_steal_pointer (&owned));
      return;
    }

  if (self->child == NULL)
    {
      /* Not spawned yet: it goes right after the call. */
      self->early_bytes += size;
      g_queue_push_tail (&self->early_messages, g_steal_pointer (&owned));
      return;
    }

  if (!arip_child_send_message (self->child, g_steal_pointer (&owned), &error))
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
 * arip_process_get_pool:
 * @self: a process
 *
 * Gets the pool whose workers run the call, for a process made with
 * [ctor@Arip.Process.new_for_pool].
 *
 * Returns: (transfer none) (nullable): the pool, or %NULL
 */
AripPool *
arip_process_get_pool (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), NULL);
  return self->pool;
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
 * arip_process_get_sandbox:
 * @self: a process
 *
 * Gets what the worker applied of the sandbox its launcher asks for
 * (arip_launcher_set_sandbox()): under %ARIP_SANDBOX_POLICY_BEST_EFFORT,
 * the pieces this kernel and this environment allowed.
 *
 * Returns: the pieces applied; %ARIP_SANDBOX_NONE before
 *   %ARIP_STATE_WAIT_EXEC_DATA
 */
AripSandboxFlags
arip_process_get_sandbox (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), ARIP_SANDBOX_NONE);
  return self->sandbox;
}

/**
 * arip_process_get_start_method:
 * @self: a process
 *
 * Gets how the child was started. It can differ from the launcher's
 * #AripLauncher:start-method: a fork server that is still starting, or
 * that cannot fork in this program, has its workers spawned meanwhile, as
 * are workers that need what only a spawn can do (a worker argv, inherited
 * descriptors).
 *
 * Returns: the start method, or %ARIP_START_METHOD_SPAWN before
 *   %ARIP_STATE_INITIALIZED
 */
AripStartMethod
arip_process_get_start_method (AripProcess *self)
{
  g_return_val_if_fail (ARIP_IS_PROCESS (self), ARIP_START_METHOD_SPAWN);
  return self->start_method;
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
/* On a pool                                                              */

void
arip_process_pool_assigned (AripProcess      *self,
                            GPid              pid,
                            AripStartMethod   start_method,
                            AripSandboxFlags  sandbox)
{
  g_autoptr(AripProcess) keep = g_object_ref (self);

  self->start_method = start_method;
  set_sandbox (self, sandbox);
  if (self->pid != pid)
    {
      self->pid = pid;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
    }
  self->spawned = TRUE;

  /* A pool worker reports no states: the call is sent, and executes. */
  for (AripState state = ARIP_STATE_INITIALIZED; state <= ARIP_STATE_EXECUTING && !self->finished; state++)
    set_state (self, state);
  if (!self->finished)
    complete_start (self);
}

gboolean
arip_process_pool_frame (AripProcess *self,
                         AripFrame   *frame)
{
  g_autoptr(AripProcess) keep = g_object_ref (self);

  if (self->finished)
    return TRUE;

  if (frame->kind == ARIP_FRAME_MESSAGE)
    g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, frame->value);
  else if (frame->kind == ARIP_FRAME_PROGRESS)
    {
      if (isnan (frame->dbl) || frame->dbl < 0.0 || frame->dbl > 1.0)
        return FALSE;
      if (frame->dbl != self->progress)
        {
          self->progress = frame->dbl;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROGRESS]);
        }
    }
  return TRUE;
}

void
arip_process_pool_finish (AripProcess *self,
                          GVariant    *value,
                          GError      *error,
                          gboolean     worker_died,
                          gint         wait_status)
{
  g_autoptr(AripProcess) keep = g_object_ref (self);

  self->pool_call = NULL;
  if (worker_died)
    {
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
    }

  g_clear_error (&self->error);
  g_clear_pointer (&self->result, g_variant_unref);
  if (error != NULL)
    {
      g_clear_pointer (&value, g_variant_unref);
      self->error = error;
    }
  else
    self->result = value;
  finish (self);
}

/* ---------------------------------------------------------------------- */
/* run_in_process                                                         */

typedef struct {
  AripProcess *process;
  GSource     *cancel_source;
  gboolean     cancelled;
} RunData;

GUnixFDList *
arip_process_run_get_fd_list (GTask *task)
{
  RunData *data = g_task_get_task_data (task);

  return data != NULL ? data->process->result_fds : NULL;
}


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

  /* Cancelled before we could complete: cancelled, whatever came. */
  if (data->cancelled || g_cancellable_is_cancelled (g_task_get_cancellable (task)))
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
  /* Cancelled before the callback runs: G_IO_ERROR_CANCELLED, as GIO
   * promises, even if the value came just before. */
  g_task_set_check_cancellable (task, TRUE);

  if (g_cancellable_is_cancelled (cancellable))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Running “%s” was cancelled"), self->function);
      return;
    }

  data = g_new0 (RunData, 1);
  data->process = g_object_ref (self);
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);
  g_set_object (&self->run_cancellable, cancellable);

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

  self->blocking = TRUE;
  arip_process_run_async (self, NULL, arip_process_run_sync, cancellable, on_sync_done, &data);
  /* Return only once the child is gone, so nothing is left pending on a
   * context nobody will run again. */
  while (data.result == NULL || (self->child != NULL && !arip_child_is_reaped (self->child)))
    g_main_context_iteration (context, TRUE);

  g_main_context_pop_thread_default (context);

  value = g_task_propagate_pointer (G_TASK (data.result), error);
  g_object_unref (data.result);
  return value;
}
