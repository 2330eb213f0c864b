/* arip-pool.c: warm workers reused across calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A pool worker is started like a one-shot worker, with ":pool" added to
 * ARIP_WORKER: it says hello, then serves call frames one after the other,
 * answering each with a result or an error frame, until its channel closes.
 * Calls are numbered from 1 on each worker; an interrupt is sent with
 * sigqueue() carrying that number, so it can only ever reach the call it
 * was meant for, and the worker writes the number of each call it begins
 * on a page it shares with the parent, so a call that a dying worker never
 * began goes to another worker instead of failing.
 *
 * The worker's process, channel, exit and slot are an AripChild; what is
 * here is the queue, the idle workers and their recycling.
 *
 * All the pool's state lives in the main context that was the thread
 * default when the pool was created; calls made from other threads are
 * handed over to it with g_main_context_invoke(). Everything that may
 * complete a call (and so run user code, which may drop the last
 * reference to the pool) holds a reference to the pool while it works.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "arip-channel-private.h"
#include "arip-child-private.h"
#include "arip-error.h"
#include "arip-error-private.h"
#include "arip-launcher-private.h"
#include "arip-limiter.h"
#include "arip-limiter-private.h"
#include "arip-pool.h"
#include "arip-pool-private.h"
#include "arip-process-private.h"
#include "arip-signals-private.h"

#define DEFAULT_IDLE_TIMEOUT_S 300
/* After a worker could not be started, how long to wait before trying
 * again while other workers serve the queue. */
#define START_RETRY_MS 100
/* How often a call that a dying worker never began is given to another. */
#define MAX_REQUEUES 3

/**
 * AripPool:
 *
 * Warm worker processes reused across calls, for programs that run many
 * small calls: what anyio's `to_process` and aioprocessing's `AioPool` give
 * Python.
 *
 * [method@Arip.Pool.run_async] runs a call on an idle worker (the most
 * recently used first), starts a new worker if none is idle and fewer than
 * [property@Arip.Pool:max-workers] run, and otherwise queues the call, first
 * come first served. Workers count against the global limiter
 * ([func@Arip.get_max_processes]) for as long as they live; an idle worker
 * gives its slot up (and stops) when another process waits for one.
 *
 * A worker that crashes or exits fails only the call it was running, with
 * the same errors a one-shot [class@Arip.Process] gives
 * (%ARIP_ERROR_SIGNALED, %ARIP_ERROR_EXITED, …), and is replaced; a call it
 * had not begun yet goes to another worker. Workers idle for
 * [property@Arip.Pool:idle-timeout] seconds stop, and
 * [property@Arip.Pool:max-calls-per-worker] recycles them after a number of
 * calls.
 *
 * Pool workers inherit the parent's standard streams: the launcher's
 * `*_PIPE` flags do not apply to them. Like every worker they start with
 * the parent's environment as it is when they start, with the launcher's
 * changes.
 */

typedef enum {
  WORKER_WAITING_SLOT,
  WORKER_STARTING,
  WORKER_IDLE,
  WORKER_BUSY,
  WORKER_RETIRING,
  WORKER_DEAD,
} WorkerState;

typedef struct _PoolWorker PoolWorker;
typedef struct _PoolCall   PoolCall;

struct _PoolWorker {
  gint          ref_count;
  AripPool     *pool;          /* NULL once the pool is disposed */
  WorkerState   state;
  AripChild    *child;
  guint32       n_calls;
  gint64        idle_since;    /* monotonic µs, when it last became idle */
  gboolean      yields;        /* idle, and its slot may go to a waiter */
  PoolCall     *call;
  GSource      *timer;         /* idle timeout */
  GCancellable *slot_cancellable;
  GList         link;          /* in pool->workers */
  GList         idle_link;     /* in pool->idle */
};

struct _PoolCall {
  AripPool     *pool;          /* unowned: the task owns the pool */
  GTask        *task;          /* unowned: the task owns the call; NULL for a process */
  AripProcess  *process;       /* the call of an AripProcess on the pool, or NULL */
  GQueue        early_messages;   /* a process's messages (GVariant) before its call was sent */
  char         *function;
  GVariant     *args;
  GUnixFDList  *fds;           /* sent with the call, or NULL */
  GUnixFDList  *result_fds;    /* came with the result, or NULL */
  GCancellable *cancellable;   /* the caller's, while connected */
  gulong        cancel_handler;
  PoolWorker   *worker;        /* while running */
  guint32       seq;
  guint         cancelled : 1;
  guint         completed : 1;
  guint         timed_out : 1;
  guint         worker_died : 1;
  gint          worker_status;    /* when worker_died */
  guint         requeues;
  AripStopStage stop_stage;
  GSource      *stop_timer;
  GSource      *call_timer;
  GList         link;          /* in pool->queue */
};

struct _AripPool
{
  GObject       parent_instance;

  AripLauncher *launcher;
  guint         max_workers;
  guint         idle_timeout;
  guint         max_calls_per_worker;

  GMainContext *context;
  GQueue        workers;       /* every worker not yet dead */
  GQueue        idle;          /* idle workers, most recently used first */
  GQueue        queue;         /* calls waiting for a worker */
  guint         n_starting;
  GSource      *retry_timer;   /* no new worker before it fires */
  gboolean      closing;
  gboolean      dispatching;
  gboolean      dispatch_again;
  GList        *close_tasks;

  /* Calls whose cancellable fired, from whatever thread cancelled it,
   * handed to the pool's context by one source. (A cancellable source per
   * call would make every iteration of the context walk all the calls
   * queued: thousands of calls awaited at once made each one cost in
   * proportion to their number.) */
  GMutex        cancelled_lock;
  GPtrArray    *cancelled;     /* of GTask, each a reference */
  GSource      *cancelled_source;
};

enum {
  PROP_0,
  PROP_LAUNCHER,
  PROP_MAX_WORKERS,
  PROP_N_WORKERS,
  PROP_IDLE_TIMEOUT,
  PROP_MAX_CALLS_PER_WORKER,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (AripPool, arip_pool, G_TYPE_OBJECT)

static void dispatch        (AripPool   *self);
static void retire_worker   (PoolWorker *worker);
static void check_closed    (AripPool   *self);

/* ---------------------------------------------------------------------- */
/* Workers                                                                */

static PoolWorker *
worker_ref (PoolWorker *worker)
{
  worker->ref_count++;
  return worker;
}

static void
destroy_source (GSource *source)
{
  g_source_destroy (source);
  g_source_unref (source);
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

static void
worker_unref (PoolWorker *worker)
{
  if (--worker->ref_count > 0)
    return;

  g_assert (worker->call == NULL);
  clear_source (&worker->timer);
  if (worker->child != NULL)
    {
      arip_child_detach (worker->child);
      arip_child_unref (worker->child);
    }
  g_clear_object (&worker->slot_cancellable);
  g_free (worker);
}

static void
notify_n_workers (AripPool *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WORKERS]);
}

static void
set_timer (PoolWorker  *worker,
           guint        ms,
           GSourceFunc  func,
           const char  *name)
{
  clear_source (&worker->timer);
  worker->timer = g_timeout_source_new (ms);
  g_source_set_callback (worker->timer, func, worker, NULL);
  g_source_set_static_name (worker->timer, name);
  g_source_attach (worker->timer, worker->pool->context);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                  */

/* After this, the cancellable's handler for @call neither runs nor is
 * running (g_cancellable_disconnect() waits for one in another thread). */
static void
disconnect_cancellable (PoolCall *call)
{
  if (call->cancellable == NULL)
    return;
  if (call->cancel_handler != 0)
    g_cancellable_disconnect (call->cancellable, call->cancel_handler);
  call->cancel_handler = 0;
  g_clear_object (&call->cancellable);
}

static void
pool_call_free (PoolCall *call)
{
  g_assert (call->worker == NULL);
  disconnect_cancellable (call);
  clear_source (&call->stop_timer);
  clear_source (&call->call_timer);
  g_free (call->function);
  g_clear_pointer (&call->args, g_variant_unref);
  g_clear_object (&call->fds);
  g_clear_object (&call->result_fds);
  g_queue_clear_full (&call->early_messages, (GDestroyNotify) g_variant_unref);
  g_clear_object (&call->process);
  g_free (call);
}

static gboolean
call_is_cancelled (PoolCall *call)
{
  return call->cancelled ||
         (call->task != NULL && g_cancellable_is_cancelled (g_task_get_cancellable (call->task)));
}

/* Detaches @call from its worker or the queue and completes its task with
 * @value or @error (both consumed). */
static void
complete_call (PoolCall *call,
               GVariant *value,
               GError   *error)
{
  GTask *task = call->task;

  call->completed = TRUE;
  disconnect_cancellable (call);
  clear_source (&call->stop_timer);
  clear_source (&call->call_timer);
  if (call->worker != NULL)
    {
      call->worker->call = NULL;
      call->worker = NULL;
    }
  if (call->link.data != NULL)
    {
      g_queue_unlink (&call->pool->queue, &call->link);
      call->link.data = NULL;
    }

  /* Cancelled before we completed it: cancelled, whatever came, as GIO
   * promises. */
  if (call_is_cancelled (call))
    {
      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&error);
      error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, _("Running “%s” was cancelled"),
                           call->function);
    }
  else if (call->timed_out)
    {
      guint timeout_ms = arip_launcher_get_call_timeout (call->pool->launcher);

      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&error);
      error = g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                           _("“%s” ran longer than its call timeout of %u ms; it was stopped"),
                           call->function, timeout_ms);
    }
  else if (error != NULL)
    g_clear_pointer (&value, g_variant_unref);

  if (call->process != NULL)
    {
      g_autoptr(AripProcess) process = g_steal_pointer (&call->process);

      /* The process owns nothing of the call any more. */
      arip_process_pool_finish (process, value, error, call->worker_died, call->worker_status);
      pool_call_free (call);
      return;
    }

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, value, (GDestroyNotify) g_variant_unref);

  g_object_unref (task);
}

/* Puts a call that never began back at the head of the queue. */
static void
requeue_call (PoolCall *call)
{
  AripPool *self = call->pool;

  clear_source (&call->stop_timer);
  clear_source (&call->call_timer);
  if (call->worker != NULL)
    {
      call->worker->call = NULL;
      call->worker = NULL;
    }
  call->stop_stage = ARIP_STOP_NONE;
  call->requeues++;
  call->link.data = call;
  g_queue_push_head_link (&self->queue, &call->link);
}

static gboolean on_stop_timer (gpointer user_data);

static void
escalate (PoolCall *call)
{
  PoolWorker *worker = call->worker;
  guint interrupt_ms, terminate_ms;
  gint wait_ms;

  clear_source (&call->stop_timer);
  if (worker == NULL || worker->child == NULL)
    return;

  arip_launcher_get_stop_timeouts (call->pool->launcher, &interrupt_ms, &terminate_ms);

  /* The interrupt names the call, so it cannot reach the worker's next. */
  wait_ms = arip_child_stop_step (worker->child, call->seq, &call->stop_stage,
                                  interrupt_ms, terminate_ms);
  if (wait_ms == 0)
    {
      escalate (call);
      return;
    }
  if (wait_ms < 0)
    return;

  call->stop_timer = g_timeout_source_new (wait_ms);
  g_source_set_callback (call->stop_timer, on_stop_timer, call, NULL);
  g_source_set_static_name (call->stop_timer, "[arip] pool call stop");
  g_source_attach (call->stop_timer, call->pool->context);
}

static gboolean
on_stop_timer (gpointer user_data)
{
  PoolCall *call = user_data;

  g_clear_pointer (&call->stop_timer, g_source_unref);
  escalate (call);
  return G_SOURCE_REMOVE;
}

static gboolean
on_call_timeout (gpointer user_data)
{
  PoolCall *call = user_data;

  g_clear_pointer (&call->call_timer, g_source_unref);
  call->timed_out = TRUE;
  if (call->stop_stage == ARIP_STOP_NONE)
    escalate (call);
  return G_SOURCE_REMOVE;
}

static void
call_cancelled (PoolCall *call)
{
  g_autoptr(AripPool) self = g_object_ref (call->pool);

  call->cancelled = TRUE;
  if (call->worker == NULL)
    complete_call (call, NULL, NULL);   /* still queued: it never runs */
  else if (call->stop_stage == ARIP_STOP_NONE)
    escalate (call);                     /* answered or dead: completes */
}

/* In the pool's context: the calls whose cancellable fired. */
static gboolean
on_cancelled_calls (gpointer user_data)
{
  AripPool *self = user_data;
  g_autoptr(GPtrArray) batch = NULL;

  g_source_set_ready_time (self->cancelled_source, -1);
  g_mutex_lock (&self->cancelled_lock);
  batch = g_steal_pointer (&self->cancelled);
  g_mutex_unlock (&self->cancelled_lock);
  if (batch == NULL)
    return G_SOURCE_CONTINUE;

  for (guint i = 0; i < batch->len; i++)
    {
      GTask *task = g_ptr_array_index (batch, i);
      PoolCall *call = g_task_get_task_data (task);

      /* Completed meanwhile, or cancelled twice: nothing to do. */
      if (call != NULL && call->task == task && !call->completed && !call->cancelled)
        call_cancelled (call);
    }
  g_ptr_array_set_free_func (batch, g_object_unref);
  return G_SOURCE_CONTINUE;
}

static gboolean
cancelled_source_dispatch (GSource     *source,
                           GSourceFunc  callback,
                           gpointer     user_data)
{
  return callback (user_data);
}

static GSourceFuncs cancelled_source_funcs = {
  .dispatch = cancelled_source_dispatch,
};

/* The cancellable's ::cancelled handler: in the thread that cancelled.
 * The task is alive (its call disconnects this handler before it ends,
 * which waits for it if it runs now); the reference taken here keeps it
 * so until the pool's context has looked at it. */
static void
on_cancellable_fired (GCancellable *cancellable,
                      gpointer      user_data)
{
  GTask *task = user_data;
  AripPool *self = g_task_get_source_object (task);

  g_mutex_lock (&self->cancelled_lock);
  if (self->cancelled == NULL)
    self->cancelled = g_ptr_array_new ();
  g_ptr_array_add (self->cancelled, g_object_ref (task));
  g_mutex_unlock (&self->cancelled_lock);
  g_source_set_ready_time (self->cancelled_source, 0);
}

static void
connect_cancellable (AripPool     *self,
                     PoolCall     *call,
                     GCancellable *cancellable)
{
  if (self->cancelled_source == NULL)
    {
      self->cancelled_source = g_source_new (&cancelled_source_funcs, sizeof (GSource));
      g_source_set_callback (self->cancelled_source, on_cancelled_calls, self, NULL);
      g_source_set_static_name (self->cancelled_source, "[arip] pool calls cancelled");
      g_source_attach (self->cancelled_source, self->context);
    }
  call->cancellable = g_object_ref (cancellable);
  /* Runs the handler at once if it is cancelled already. */
  call->cancel_handler = g_cancellable_connect (cancellable, G_CALLBACK (on_cancellable_fired),
                                                call->task, NULL);
}

/* ---------------------------------------------------------------------- */
/* Worker lifecycle                                                       */

static void
make_idle (PoolWorker *worker)
{
  AripPool *self = worker->pool;

  worker->state = WORKER_IDLE;
  worker->idle_link.data = worker;
  g_queue_push_head_link (&self->idle, &worker->idle_link);
  arip_child_set_function (worker->child, NULL);
  /* It yields its slot once dispatch() left it idle. */
  worker->yields = FALSE;
}

static gboolean on_idle_timeout (gpointer user_data);

/* One timer per worker stays armed across calls (re-creating it on every
 * call costs more than the call's bookkeeping); when it fires, it checks
 * how long the worker has really been idle. */
static void
arm_idle_timer (PoolWorker *worker)
{
  worker->idle_since = g_get_monotonic_time ();
  if (worker->pool->idle_timeout == 0)
    clear_source (&worker->timer);
  else if (worker->timer == NULL)
    set_timer (worker, worker->pool->idle_timeout * 1000, on_idle_timeout, "[arip] pool idle timeout");
}

static gboolean
on_idle_timeout (gpointer user_data)
{
  PoolWorker *worker = user_data;
  gint64 timeout_us = (gint64) worker->pool->idle_timeout * G_USEC_PER_SEC;
  gint64 idle_for = g_get_monotonic_time () - worker->idle_since;

  g_clear_pointer (&worker->timer, g_source_unref);

  if (worker->state == WORKER_IDLE && idle_for >= timeout_us)
    retire_worker (worker);
  else if (worker->state == WORKER_IDLE || worker->state == WORKER_BUSY)
    set_timer (worker,
               worker->state == WORKER_IDLE ? (guint) ((timeout_us - idle_for) / 1000) + 1
                                            : worker->pool->idle_timeout * 1000,
               on_idle_timeout, "[arip] pool idle timeout");
  return G_SOURCE_REMOVE;
}

/* Lets a worker go: it exits when its channel closes, or is killed soon
 * after. */
static void
retire_worker (PoolWorker *worker)
{
  AripPool *self = worker->pool;

  if (worker->idle_link.data != NULL)
    {
      g_queue_unlink (&self->idle, &worker->idle_link);
      worker->idle_link.data = NULL;
    }

  if (worker->state == WORKER_WAITING_SLOT)
    {
      /* Never spawned: it goes now. */
      g_cancellable_cancel (worker->slot_cancellable);
      return;
    }

  if (worker->state == WORKER_STARTING)
    self->n_starting--;

  worker->state = WORKER_RETIRING;
  clear_source (&worker->timer);
  if (worker->child != NULL)
    arip_child_release (worker->child);
}

/* Removes a worker that is gone (or never came) from the pool. */
static void
forget_worker (PoolWorker *worker)
{
  AripPool *self = worker->pool;

  if (worker->idle_link.data != NULL)
    {
      g_queue_unlink (&self->idle, &worker->idle_link);
      worker->idle_link.data = NULL;
    }
  if (worker->state == WORKER_WAITING_SLOT || worker->state == WORKER_STARTING)
    self->n_starting--;
  worker->state = WORKER_DEAD;
  clear_source (&worker->timer);

  if (worker->link.data != NULL)
    {
      g_queue_unlink (&self->workers, &worker->link);
      worker->link.data = NULL;
      notify_n_workers (self);
      worker_unref (worker);
    }
}

static gboolean
on_retry_timer (gpointer user_data)
{
  AripPool *self = user_data;

  g_clear_pointer (&self->retry_timer, g_source_unref);
  dispatch (self);
  return G_SOURCE_REMOVE;
}

/* A worker could not start (the launcher is broken, or the system is out
 * of processes or descriptors). While other workers live, the queue waits
 * for them, and a new start is tried a little later. With none left, the
 * oldest queued call fails: a launcher that can never start a worker fails
 * calls instead of trying forever. */
static void
worker_start_failed (PoolWorker *worker,
                     GError     *error)
{
  AripPool *self = worker->pool;
  PoolCall *call;

  forget_worker (worker);

  if (self->workers.length > 0)
    {
      g_debug ("A pool worker could not start (%s); the live workers serve the queue",
               error->message);
      g_error_free (error);
      if (self->retry_timer == NULL)
        {
          self->retry_timer = g_timeout_source_new (START_RETRY_MS);
          g_source_set_callback (self->retry_timer, on_retry_timer, self, NULL);
          g_source_set_static_name (self->retry_timer, "[arip] pool start retry");
          g_source_attach (self->retry_timer, self->context);
        }
    }
  else
    {
      call = g_queue_peek_head (&self->queue);
      if (call != NULL)
        complete_call (call, NULL, error);
      else
        g_error_free (error);
    }

  dispatch (self);
  check_closed (self);
}

static void
on_child_ready (AripChild *child,
                gpointer   user_data)
{
  PoolWorker *worker = user_data;
  g_autoptr(AripPool) self = g_object_ref (worker->pool);

  if (worker->state != WORKER_STARTING)
    {
      arip_child_protocol_violation (child, _("a hello out of turn"));
      return;
    }

  self->n_starting--;
  arip_child_stop_startup_timer (child);
  if (self->closing)
    {
      worker->state = WORKER_IDLE;   /* so retiring counts right */
      retire_worker (worker);
      check_closed (self);
      return;
    }
  make_idle (worker);
  arm_idle_timer (worker);
  dispatch (self);
}

static void
on_child_frame (AripChild *child,
                AripFrame *frame,
                gpointer   user_data)
{
  PoolWorker *worker = user_data;
  g_autoptr(AripPool) self = g_object_ref (worker->pool);

  switch (frame->kind)
    {
    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_ERROR:
      {
        PoolCall *call = worker->call;
        GVariant *value = NULL;
        GError *error = NULL;

        if (worker->state != WORKER_BUSY || call == NULL)
          {
            arip_child_protocol_violation (child, _("an answer while no call was running"));
            break;
          }

        if (frame->kind == ARIP_FRAME_RESULT &&
            !arip_variant_check_handles (frame->value, frame->fds, NULL))
          {
            arip_child_protocol_violation (child, _("a result whose handle indexes no file descriptor"));
            break;
          }
        if (frame->kind == ARIP_FRAME_RESULT)
          {
            value = g_variant_ref (frame->value);
            g_set_object (&call->result_fds, frame->fds);
          }
        else if ((error = arip_frame_payload_to_error (frame->payload)) == NULL)
          {
            arip_child_protocol_violation (child, _("an error whose domain is not a valid name"));
            break;
          }

        worker->state = WORKER_IDLE;   /* not yet in the idle queue */
        complete_call (call, value, error);

        if (worker->state != WORKER_IDLE)
          ;   /* the callback disposed of the pool meanwhile */
        else if (self->closing ||
                 (self->max_calls_per_worker > 0 && worker->n_calls >= self->max_calls_per_worker))
          retire_worker (worker);
        else
          {
            make_idle (worker);
            arm_idle_timer (worker);
          }
        dispatch (self);
        check_closed (self);
      }
      break;

    case ARIP_FRAME_MESSAGE:
    case ARIP_FRAME_PROGRESS:
      if (worker->state != WORKER_BUSY || worker->call == NULL)
        arip_child_protocol_violation (child, _("a message while no call was running"));
      else if (worker->call->process != NULL)
        {
          /* Only a process has someone to tell. */
          if (!arip_process_pool_frame (worker->call->process, frame))
            arip_child_protocol_violation (child, _("a progress report out of range"));
        }
      break;

    case ARIP_FRAME_HELLO:
    case ARIP_FRAME_STATE:
    case ARIP_FRAME_CALL:
    default:
      {
        g_autofree char *what = g_strdup_printf (_("an unexpected %s frame"),
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
  PoolWorker *worker = user_data;

  return g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                      _("Pool worker process %d did not say hello within %u ms; it was killed. "
                        "If the worker is this program started again, check that its main() "
                        "calls arip_init() at the top"),
                      (int) arip_child_get_pid (child),
                      arip_launcher_get_startup_timeout (worker->pool->launcher));
}

static void
on_child_exited (AripChild *child,
                 gpointer   user_data)
{
  PoolWorker *worker = user_data;
  g_autoptr(AripPool) self = g_object_ref (worker->pool);
  PoolCall *call = worker->call;
  const GError *own = arip_child_get_error (child);
  gint wait_status = arip_child_get_wait_status (child);

  worker_ref (worker);

  if (worker->state == WORKER_STARTING)
    {
      GError *error = own != NULL ? g_error_copy (own)
                                  : arip_child_exit_error_new (child, "(pool worker startup)");
      worker_start_failed (worker, error);
      worker_unref (worker);
      return;
    }

  if (call != NULL)
    {
      /* The worker died before it began this call (a crash after its last
       * answer, a kill while idle): the call goes to another worker. */
      if (arip_child_get_started_call (child) < call->seq && call->requeues < MAX_REQUEUES &&
          !call_is_cancelled (call) && !self->closing && call->stop_stage != ARIP_STOP_KILLED)
        requeue_call (call);
      else
        {
          GError *error;

          call->worker_died = TRUE;
          call->worker_status = wait_status;
          if (own != NULL)
            error = g_error_copy (own);
          else if (call->stop_stage == ARIP_STOP_KILLED && WIFSIGNALED (wait_status) &&
                   WTERMSIG (wait_status) == SIGKILL)
            error = g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                                 _("Pool worker process %d running “%s” was killed"),
                                 (int) arip_child_get_pid (child), call->function);
          else
            error = arip_child_exit_error_new (child, call->function);

          complete_call (call, NULL, error);
        }
    }

  if (worker->pool != NULL)
    forget_worker (worker);
  worker_unref (worker);
  dispatch (self);
  check_closed (self);
}

static const AripChildCallbacks child_callbacks = {
  on_child_ready,
  on_child_frame,
  on_child_startup_timeout,
  on_child_exited,
};

static void
spawn_worker (PoolWorker *worker,
              AripSlot   *slot)
{
  AripPool *self = worker->pool;
  GError *error = NULL;

  worker->child = arip_child_new (self->launcher, ARIP_CHILD_POOL, slot, self->context,
                                  &child_callbacks, worker, &error);
  if (worker->child == NULL)
    {
      worker_start_failed (worker, error);
      return;
    }
  worker->state = WORKER_STARTING;
}

static void
on_worker_slot (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  PoolWorker *worker = user_data;
  AripSlot *slot = arip_limiter_acquire_finish (result, NULL);

  if (slot == NULL)
    {
      /* Cancelled: the pool closed or was disposed meanwhile. */
      if (worker->pool != NULL)
        {
          g_autoptr(AripPool) self = g_object_ref (worker->pool);

          forget_worker (worker);
          dispatch (self);
          check_closed (self);
        }
      worker_unref (worker);
      return;
    }

  if (worker->pool == NULL || worker->state != WORKER_WAITING_SLOT)
    arip_slot_release (slot);
  else if (worker->pool->closing)
    {
      g_autoptr(AripPool) self = g_object_ref (worker->pool);

      arip_slot_release (slot);
      forget_worker (worker);
      check_closed (self);
    }
  else
    spawn_worker (worker, slot);

  worker_unref (worker);
}

static void
start_worker (AripPool *self)
{
  PoolWorker *worker = g_new0 (PoolWorker, 1);
  AripSlot *slot;

  worker->ref_count = 1;   /* the pool's */
  worker->pool = self;
  worker->state = WORKER_WAITING_SLOT;
  worker->link.data = worker;
  g_queue_push_tail_link (&self->workers, &worker->link);
  self->n_starting++;
  notify_n_workers (self);

  slot = arip_limiter_try_acquire (self->context);
  if (slot != NULL)
    spawn_worker (worker, slot);
  else
    {
      worker->slot_cancellable = g_cancellable_new ();
      arip_limiter_acquire_async (FALSE, worker->slot_cancellable, on_worker_slot,
                                  worker_ref (worker));
    }
}

/* FALSE if @worker turned out to be gone: @call goes back to the queue. */
static gboolean
assign (PoolWorker *worker,
        PoolCall   *call)
{
  g_autoptr(GError) error = NULL;
  guint timeout_ms;

  worker->state = WORKER_BUSY;
  worker->call = call;
  call->worker = worker;
  call->seq = ++worker->n_calls;

  if (!arip_child_send_call (worker->child, call->function, call->args, call->fds, &error))
    {
      if (error->domain != G_IO_ERROR)
        {
          /* Too large, or no memory for it: the call fails, the worker is
           * still fine. */
          worker->state = WORKER_IDLE;
          complete_call (call, NULL, g_steal_pointer (&error));
          make_idle (worker);
          arm_idle_timer (worker);
          return TRUE;
        }

      /* The worker is gone (an idle worker the OOM killer took, say); its
       * exit comes soon. The call never ran: it goes to another. */
      call->worker = NULL;
      worker->call = NULL;
      worker->state = WORKER_RETIRING;
      arip_child_fail (worker->child, g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                                   _("Pool worker process %d is gone: %s"),
                                                   (int) arip_child_get_pid (worker->child),
                                                   error->message));
      return FALSE;
    }

  arip_child_set_function (worker->child, call->function);

  /* A process's messages sent before its call went out follow it. */
  while (!g_queue_is_empty (&call->early_messages))
    arip_child_send_message (worker->child, g_queue_pop_head (&call->early_messages), NULL);
  if (call->process != NULL)
    arip_process_pool_assigned (call->process, arip_child_get_pid (worker->child),
                                arip_child_get_start_method (worker->child),
                                arip_child_get_sandbox (worker->child));

  timeout_ms = arip_launcher_get_call_timeout (call->pool->launcher);
  if (timeout_ms > 0)
    {
      call->call_timer = g_timeout_source_new (timeout_ms);
      g_source_set_callback (call->call_timer, on_call_timeout, call, NULL);
      g_source_set_static_name (call->call_timer, "[arip] pool call timeout");
      g_source_attach (call->call_timer, call->pool->context);
    }
  return TRUE;
}

static void
dispatch (AripPool *self)
{
  /* Completing a call runs its callback, which may queue another call:
   * loop instead of recursing. */
  if (self->dispatching)
    {
      self->dispatch_again = TRUE;
      return;
    }
  self->dispatching = TRUE;
  g_object_ref (self);

  do
    {
      self->dispatch_again = FALSE;

      for (;;)
        {
          PoolCall *call = g_queue_peek_head (&self->queue);
          PoolWorker *worker = g_queue_peek_head (&self->idle);

          if (call == NULL)
            break;

          /* A cancelled call never starts, even if its cancellation has
           * not been dispatched yet. */
          if (call_is_cancelled (call))
            {
              call->cancelled = TRUE;
              complete_call (call, NULL, NULL);
              continue;
            }

          if (worker == NULL)
            break;

          g_queue_unlink (&self->idle, &worker->idle_link);
          worker->idle_link.data = NULL;

          /* Its slot went to a process that waited for one: the worker
           * is on its way out. */
          if (!arip_child_set_busy (worker->child))
            {
              worker->state = WORKER_RETIRING;
              continue;
            }

          g_queue_unlink (&self->queue, &call->link);
          call->link.data = NULL;
          if (!assign (worker, call))
            requeue_call (call);
        }

      while (!self->closing && self->retry_timer == NULL &&
             self->queue.length > self->n_starting &&
             self->workers.length < self->max_workers)
        start_worker (self);

      /* Workers still waiting for a slot that the queue no longer needs
       * stop waiting: they would take slots others wait for. */
      if (self->queue.length < self->n_starting)
        {
          guint excess = self->n_starting - self->queue.length;

          for (GList *l = self->workers.tail; l != NULL && excess > 0; )
            {
              PoolWorker *worker = l->data;

              l = l->prev;
              if (worker->state == WORKER_WAITING_SLOT)
                {
                  retire_worker (worker);
                  excess--;
                }
            }
        }
    }
  while (self->dispatch_again);

  /* What is left idle may give its slot to a process that waits for one:
   * the limiter ends the worker idle the longest. */
  for (GList *l = self->idle.head; l != NULL; l = l->next)
    {
      PoolWorker *worker = l->data;

      if (!worker->yields)
        {
          worker->yields = TRUE;
          arip_child_set_idle (worker->child);
        }
    }

  self->dispatching = FALSE;
  g_object_unref (self);
}

/* ---------------------------------------------------------------------- */
/* Closing                                                                */

static void
check_closed (AripPool *self)
{
  GList *tasks;

  if (!self->closing || self->workers.length > 0 || self->close_tasks == NULL)
    return;

  tasks = g_steal_pointer (&self->close_tasks);
  for (GList *l = tasks; l != NULL; l = l->next)
    {
      GTask *task = l->data;

      g_task_set_task_data (task, NULL, NULL);   /* destroys the cancel source */
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
  g_list_free (tasks);
}

static void
begin_close (AripPool *self)
{
  GList *workers;

  if (self->closing)
    return;
  self->closing = TRUE;
  clear_source (&self->retry_timer);

  while (self->queue.head != NULL)
    {
      PoolCall *call = self->queue.head->data;

      complete_call (call, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                              _("The pool was closed before “%s” could run"),
                                              call->function));
    }

  /* Busy workers retire once their call is answered. */
  workers = g_list_copy (self->workers.head);
  for (GList *l = workers; l != NULL; l = l->next)
    {
      PoolWorker *worker = l->data;

      if (worker->state == WORKER_IDLE || worker->state == WORKER_WAITING_SLOT ||
          worker->state == WORKER_STARTING)
        retire_worker (worker);
    }
  g_list_free (workers);
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

static void
arip_pool_dispose (GObject *object)
{
  AripPool *self = ARIP_POOL (object);

  /* Normally no call is pending here (each holds a reference to the
   * pool), but g_object_run_dispose() may come at any time: the calls
   * fail, and every worker goes now. */
  self->closing = TRUE;
  clear_source (&self->retry_timer);
  g_object_ref (self);

  while (self->queue.head != NULL)
    complete_call (self->queue.head->data, NULL,
                   g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED, _("The pool was disposed of")));

  while (self->workers.head != NULL)
    {
      PoolWorker *worker = self->workers.head->data;

      g_queue_unlink (&self->workers, &worker->link);
      worker->link.data = NULL;
      if (worker->idle_link.data != NULL)
        g_queue_unlink (&self->idle, &worker->idle_link);
      worker->idle_link.data = NULL;
      worker->state = WORKER_DEAD;
      if (worker->call != NULL)
        complete_call (worker->call, NULL,
                       g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                    _("The pool was disposed of while “%s” ran"),
                                    worker->call->function));
      worker->pool = NULL;
      clear_source (&worker->timer);
      if (worker->slot_cancellable != NULL)
        g_cancellable_cancel (worker->slot_cancellable);
      if (worker->child != NULL)
        arip_child_detach (worker->child);
      worker_unref (worker);
    }
  g_queue_init (&self->idle);
  self->n_starting = 0;
  check_closed (self);

  /* The last reference may be the one taken above. */
  G_OBJECT_CLASS (arip_pool_parent_class)->dispose (object);
  g_object_unref (self);
}

static void
arip_pool_finalize (GObject *object)
{
  AripPool *self = ARIP_POOL (object);

  g_clear_object (&self->launcher);
  /* No call is left, so no cancelled one either (each holds the pool). */
  clear_source (&self->cancelled_source);
  g_clear_pointer (&self->cancelled, g_ptr_array_unref);
  g_mutex_clear (&self->cancelled_lock);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (arip_pool_parent_class)->finalize (object);
}

static void
arip_pool_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  AripPool *self = ARIP_POOL (object);

  switch (prop_id)
    {
    case PROP_LAUNCHER:
      g_value_set_object (value, self->launcher);
      break;
    case PROP_MAX_WORKERS:
      g_value_set_uint (value, self->max_workers);
      break;
    case PROP_N_WORKERS:
      g_value_set_uint (value, self->workers.length);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, self->idle_timeout);
      break;
    case PROP_MAX_CALLS_PER_WORKER:
      g_value_set_uint (value, self->max_calls_per_worker);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
arip_pool_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  AripPool *self = ARIP_POOL (object);

  switch (prop_id)
    {
    case PROP_LAUNCHER:
      self->launcher = g_value_dup_object (value);
      break;
    case PROP_MAX_WORKERS:
      self->max_workers = g_value_get_uint (value);
      break;
    case PROP_IDLE_TIMEOUT:
      arip_pool_set_idle_timeout (self, g_value_get_uint (value));
      break;
    case PROP_MAX_CALLS_PER_WORKER:
      arip_pool_set_max_calls_per_worker (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
arip_pool_constructed (GObject *object)
{
  AripPool *self = ARIP_POOL (object);

  G_OBJECT_CLASS (arip_pool_parent_class)->constructed (object);

  /* Its own, so that it may differ from a process's; without changes it
   * copies nothing. */
  if (self->launcher == NULL)
    self->launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  if (self->max_workers == 0)
    self->max_workers = MAX (1, MIN (arip_get_max_processes (), g_get_num_processors ()));
}

static void
arip_pool_class_init (AripPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  _arip_i18n_init ();

  object_class->dispose = arip_pool_dispose;
  object_class->finalize = arip_pool_finalize;
  object_class->get_property = arip_pool_get_property;
  object_class->set_property = arip_pool_set_property;
  object_class->constructed = arip_pool_constructed;

  /**
   * AripPool:launcher:
   *
   * The settings workers are started with.
   */
  properties[PROP_LAUNCHER] =
    g_param_spec_object ("launcher", NULL, NULL, ARIP_TYPE_LAUNCHER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * AripPool:max-workers:
   *
   * The most workers the pool runs at once. 0 at construction means the
   * global limit or the number of CPUs, whichever is smaller.
   */
  properties[PROP_MAX_WORKERS] =
    g_param_spec_uint ("max-workers", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * AripPool:n-workers:
   *
   * How many workers live now, including those being started.
   */
  properties[PROP_N_WORKERS] =
    g_param_spec_uint ("n-workers", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripPool:idle-timeout:
   *
   * Seconds a worker may stay idle before it stops; 0 keeps idle workers
   * until the pool closes.
   */
  properties[PROP_IDLE_TIMEOUT] =
    g_param_spec_uint ("idle-timeout", NULL, NULL, 0, G_MAXUINT / 1000, DEFAULT_IDLE_TIMEOUT_S,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS |
                       G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripPool:max-calls-per-worker:
   *
   * How many calls a worker serves before it is replaced by a fresh one
   * (to bound what a leaky function can accumulate); 0 for no limit.
   */
  properties[PROP_MAX_CALLS_PER_WORKER] =
    g_param_spec_uint ("max-calls-per-worker", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS |
                       G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
arip_pool_init (AripPool *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->idle_timeout = DEFAULT_IDLE_TIMEOUT_S;
  g_mutex_init (&self->cancelled_lock);
}

/**
 * arip_pool_new:
 * @launcher: (nullable): settings for starting workers, or %NULL for the
 *   defaults
 * @max_workers: the most workers to run at once, or 0 for the global
 *   limit or the number of CPUs, whichever is smaller
 *
 * Creates a pool. No worker starts before the first call. The pool works in
 * the thread-default main context of the caller: that context must run for
 * calls to make progress.
 *
 * Returns: (transfer full): a new pool
 */
AripPool *
arip_pool_new (AripLauncher *launcher,
               guint         max_workers)
{
  g_return_val_if_fail (launcher == NULL || ARIP_IS_LAUNCHER (launcher), NULL);

  return g_object_new (ARIP_TYPE_POOL,
                       "launcher", launcher,
                       "max-workers", max_workers,
                       NULL);
}

/* ---------------------------------------------------------------------- */
/* Running                                                                */

static gboolean
enqueue_call (gpointer user_data)
{
  GTask *task = user_data;
  PoolCall *call = g_task_get_task_data (task);
  AripPool *self = call->pool;
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (self->closing)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CLOSED,
                               _("The pool is closed; “%s” was not run"), call->function);
      g_object_unref (task);
      return G_SOURCE_REMOVE;
    }

  call->link.data = call;
  g_queue_push_tail_link (&self->queue, &call->link);

  if (cancellable != NULL)
    connect_cancellable (self, call, cancellable);

  dispatch (self);
  return G_SOURCE_REMOVE;
}

/**
 * arip_pool_run_async:
 * @self: a pool
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @cancellable: (nullable): cancels the call: it is interrupted in its
 *   worker (its call's cancellable is cancelled); if it has not ended after
 *   the launcher's stop timeouts, the worker is terminated, then killed,
 *   and replaced. The call fails with %G_IO_ERROR_CANCELLED.
 * @callback: (scope async) (closure user_data): called when the call ended
 * @user_data: data for @callback
 *
 * Runs @function on a worker of the pool, and hands back its result as
 * [func@Arip.run_in_process_async] does.
 */
static void
run_async (AripPool            *self,
           const char          *function,
           GVariant            *args,
           GUnixFDList         *fds,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data,
           gpointer             source_tag)
{
  GTask *task;
  PoolCall *call;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  /* Cancelled before the callback runs: G_IO_ERROR_CANCELLED, even if the
   * value came just before. */
  g_task_set_check_cancellable (task, TRUE);

  call = g_new0 (PoolCall, 1);
  call->pool = self;
  call->task = task;
  call->function = g_strdup (function);
  call->args = args != NULL ? g_variant_ref_sink (args) : arip_variant_unit ();
  call->fds = fds != NULL ? g_object_ref (fds) : NULL;
  g_task_set_task_data (task, call, (GDestroyNotify) pool_call_free);

  if (g_cancellable_is_cancelled (cancellable))
    {
      call->cancelled = TRUE;
      complete_call (call, NULL, NULL);
      return;
    }

  /* The task's reference now belongs to the pool until the call ends. */
  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, enqueue_call, task, NULL);
}

void
arip_pool_run_async (AripPool            *self,
                     const char          *function,
                     GVariant            *args,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  run_async (self, function, args, NULL, cancellable, callback, user_data, arip_pool_run_async);
}

/**
 * arip_pool_run_with_fds_async:
 * @self: a pool
 * @function: the registered name of the function to run
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @fd_list: (nullable): the descriptors that `h` handles in @args index
 * @cancellable: (nullable): cancels the call
 * @callback: (scope async) (closure user_data): called when the call ended
 * @user_data: data for @callback
 *
 * As [method@Arip.Pool.run_async], with copies of the descriptors of
 * @fd_list sent along: the function finds them with
 * arip_call_get_fd_list().
 */
void
arip_pool_run_with_fds_async (AripPool            *self,
                              const char          *function,
                              GVariant            *args,
                              GUnixFDList         *fd_list,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  run_async (self, function, args, fd_list, cancellable, callback, user_data,
             arip_pool_run_with_fds_async);
}

/**
 * arip_pool_run_with_fds_finish:
 * @self: a pool
 * @result: the result given to the callback
 * @out_fd_list: (out) (optional) (nullable) (transfer full): the
 *   descriptors that came with the result, or %NULL
 * @error: return location for an error
 *
 * Finishes [method@Arip.Pool.run_with_fds_async].
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_pool_run_with_fds_finish (AripPool      *self,
                               GAsyncResult  *result,
                               GUnixFDList  **out_fd_list,
                               GError       **error)
{
  GVariant *value;
  PoolCall *call;

  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  call = g_task_get_task_data (G_TASK (result));
  value = g_task_propagate_pointer (G_TASK (result), error);
  if (out_fd_list != NULL)
    *out_fd_list = value != NULL && call->result_fds != NULL ? g_object_ref (call->result_fds) : NULL;
  return value;
}

/**
 * arip_pool_run_finish:
 * @self: a pool
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Pool.run_async].
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_pool_run_finish (AripPool      *self,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_sync_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static gboolean
sync_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Starts what a sync call waits for, in the current thread-default
 * context. */
typedef void (*SyncStart) (AripPool            *self,
                           const char          *function,
                           GVariant            *args,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data);

/* Runs @start and blocks until its result is there (see
 * arip_pool_run_sync() for who runs the pool's context meanwhile). */
static GAsyncResult *
wait_sync (AripPool     *self,
           SyncStart     start,
           const char   *function,
           GVariant     *args,
           GCancellable *cancellable)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  GAsyncResult *result = NULL;
  GSource *tick;

  /* The call completes in a context of our own. The pool's work happens
   * in the pool's context: whoever runs that context does it. When nobody
   * does, we run it; when another thread does, we look again now and then,
   * as it may stop (another thread's run_sync that got its answer). */
  tick = g_timeout_source_new (10);
  g_source_set_static_name (tick, "[arip] pool sync wait");
  g_source_set_callback (tick, sync_tick, NULL, NULL);
  g_source_attach (tick, context);

  g_main_context_push_thread_default (context);
  start (self, function, args, cancellable, on_sync_done, &result);
  while (result == NULL)
    {
      if (g_main_context_acquire (self->context))
        {
          g_main_context_push_thread_default (self->context);
          g_main_context_iteration (self->context, TRUE);
          g_main_context_pop_thread_default (self->context);
          g_main_context_release (self->context);
          while (result == NULL && g_main_context_iteration (context, FALSE))
            ;
        }
      else
        g_main_context_iteration (context, TRUE);
    }
  g_main_context_pop_thread_default (context);
  g_source_destroy (tick);
  g_source_unref (tick);
  return result;
}

/**
 * arip_pool_run_sync:
 * @self: a pool
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @cancellable: (nullable): cancels the call
 * @error: return location for an error
 *
 * Runs @function on a worker of the pool and blocks until it ended.
 *
 * The pool's work happens in its main context. While no other thread
 * runs that context, this runs it as it waits (so a program without a main
 * loop can use the pool, from any number of threads); otherwise it waits
 * on a private context while the thread that runs the pool's context does
 * the work.
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_pool_run_sync (AripPool      *self,
                    const char    *function,
                    GVariant      *args,
                    GCancellable  *cancellable,
                    GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);

  result = wait_sync (self, arip_pool_run_async, function, args, cancellable);
  return arip_pool_run_finish (self, result, error);
}

/**
 * arip_pool_map_sync:
 * @self: a pool
 * @function: the registered name of the function
 * @args_list: the arguments of each call: an array of tuples (`a(…)`); a
 *   floating reference is consumed
 * @cancellable: (nullable): cancels every call
 * @error: return location for an error
 *
 * Runs @function once per element of @args_list on the pool's workers and
 * blocks until all of them ended; see arip_pool_map_async() for what it
 * returns, and arip_pool_run_sync() for who runs the pool's context
 * meanwhile.
 *
 * Returns: (transfer full): the results in the order of @args_list
 *   (`av`), or %NULL with the first error
 */
GVariant *
arip_pool_map_sync (AripPool      *self,
                    const char    *function,
                    GVariant      *args_list,
                    GCancellable  *cancellable,
                    GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);
  g_return_val_if_fail (args_list != NULL, NULL);

  result = wait_sync (self, arip_pool_map_async, function, args_list, cancellable);
  return arip_pool_map_finish (self, result, error);
}

/* ---------------------------------------------------------------------- */
/* Processes on the pool                                                  */

GMainContext *
arip_pool_get_context (AripPool *self)
{
  return self->context;
}

AripPoolCall *
arip_pool_submit_process (AripPool    *self,
                          AripProcess *process,
                          const char  *function,
                          GVariant    *args)
{
  PoolCall *call = g_new0 (PoolCall, 1);

  call->pool = self;
  call->process = g_object_ref (process);
  call->function = g_strdup (function);
  call->args = g_variant_ref (args);

  if (self->closing)
    {
      complete_call (call, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                              _("The pool is closed; “%s” was not run"), function));
      return NULL;
    }

  call->link.data = call;
  g_queue_push_tail_link (&self->queue, &call->link);
  g_object_ref (self);
  dispatch (self);
  g_object_unref (self);
  return call;
}

void
arip_pool_call_signal (AripPoolCall *call,
                       gint          signum)
{
  PoolWorker *worker = call->worker;

  if (worker == NULL || worker->child == NULL)
    return;
  if (signum == SIGINT)
    {
      /* Named by the call's number: never the worker's next call. */
      union sigval value = { .sival_int = (int) call->seq };
      sigqueue (arip_child_get_pid (worker->child), SIGINT, value);
    }
  else
    arip_child_send_signal (worker->child, signum);
}

void
arip_pool_call_stop (AripPoolCall *call)
{
  g_autoptr(AripPool) self = g_object_ref (call->pool);

  if (call->worker == NULL)
    {
      call->cancelled = TRUE;
      complete_call (call, NULL, NULL);
      dispatch (self);
    }
  else if (call->stop_stage == ARIP_STOP_NONE)
    escalate (call);
}

void
arip_pool_call_kill (AripPoolCall *call)
{
  g_autoptr(AripPool) self = g_object_ref (call->pool);

  if (call->worker == NULL)
    {
      complete_call (call, NULL, g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                                              _("The process running “%s” was killed before it started"),
                                              call->function));
      dispatch (self);
      return;
    }

  /* Its worker goes, and the pool replaces it; the error says killed. */
  call->stop_stage = ARIP_STOP_KILLED;
  arip_child_kill (call->worker->child);
}

void
arip_pool_call_send (AripPoolCall *call,
                     GVariant     *message)
{
  if (call->worker != NULL && call->worker->child != NULL)
    arip_child_send_message (call->worker->child, message, NULL);
  else
    g_queue_push_tail (&call->early_messages, g_variant_take_ref (message));
}

gsize
arip_pool_call_get_queued_bytes (AripPoolCall *call)
{
  gsize total = 0;

  if (call->worker != NULL && call->worker->child != NULL)
    return arip_child_get_queued_bytes (call->worker->child);
  for (GList *l = call->early_messages.head; l != NULL; l = l->next)
    total += g_variant_get_size (l->data);
  return total;
}

/* ---------------------------------------------------------------------- */
/* Map                                                                    */

typedef struct {
  GCancellable *cancellable;    /* ours: cancels every call */
  GSource      *cancel_source;  /* the caller's cancellable */
  GVariant    **results;
  gsize         n_calls;
  gsize         pending;
  GError       *error;          /* the first failure */
  gboolean      cancelled;      /* the caller cancelled */
} MapData;

typedef struct {
  GTask *task;
  gsize  index;
} MapCall;

static void
map_data_free (MapData *data)
{
  if (data->cancel_source != NULL)
    destroy_source (data->cancel_source);
  for (gsize i = 0; i < data->n_calls; i++)
    g_clear_pointer (&data->results[i], g_variant_unref);
  g_free (data->results);
  g_clear_object (&data->cancellable);
  g_clear_error (&data->error);
  g_free (data);
}

static void
map_complete (GTask *task)
{
  MapData *data = g_task_get_task_data (task);
  GVariantBuilder builder;

  if (data->cancelled)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("The map was cancelled"));
  else if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else
    {
      g_variant_builder_init (&builder, G_VARIANT_TYPE ("av"));
      for (gsize i = 0; i < data->n_calls; i++)
        g_variant_builder_add (&builder, "v", data->results[i]);
      g_task_return_pointer (task, g_variant_ref_sink (g_variant_builder_end (&builder)),
                             (GDestroyNotify) g_variant_unref);
    }
}

static void
on_map_call_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  MapCall *call = user_data;
  g_autoptr(GTask) task = call->task;
  MapData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GVariant *value = arip_pool_run_finish (ARIP_POOL (source), result, &error);

  if (value != NULL)
    data->results[call->index] = value;
  else if (data->error == NULL && !data->cancelled &&
           !g_cancellable_is_cancelled (data->cancellable))
    {
      /* The first failure is the map's; the other calls stop. */
      g_prefix_error (&error, _("Call %llu of the map: "), (unsigned long long) call->index);
      data->error = g_steal_pointer (&error);
      g_cancellable_cancel (data->cancellable);
    }
  g_free (call);

  if (--data->pending == 0)
    map_complete (task);
}

static gboolean
on_map_cancelled (GCancellable *cancellable,
                  gpointer      user_data)
{
  GTask *task = user_data;
  MapData *data = g_task_get_task_data (task);

  g_clear_pointer (&data->cancel_source, g_source_unref);
  data->cancelled = TRUE;
  g_cancellable_cancel (data->cancellable);
  return G_SOURCE_REMOVE;
}

/**
 * arip_pool_map_async:
 * @self: a pool
 * @function: the registered name of the function
 * @args_list: an array of the arguments of each call (for example of type
 *   `a(i)` for a function that takes `(i)`); a floating reference is consumed
 * @cancellable: (nullable): cancels every call, as for
 *   [method@Arip.Pool.run_async]
 * @callback: (scope async) (closure user_data): called once every call
 *   ended
 * @user_data: data for @callback
 *
 * Runs @function once for each element of @args_list on the pool's
 * workers, as many at once as the pool runs, and hands back the results in
 * the order of @args_list: aioprocessing's `coro_map`. The first call that
 * fails cancels the others, and its error is the map's.
 */
void
arip_pool_map_async (AripPool            *self,
                     const char          *function,
                     GVariant            *args_list,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GTask) task = NULL;
  MapData *data;

  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (args_list != NULL);
  g_return_if_fail (g_variant_is_of_type (args_list, G_VARIANT_TYPE_ARRAY));
  g_return_if_fail (g_variant_type_is_tuple (g_variant_type_element (g_variant_get_type (args_list))));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  list = g_variant_ref_sink (args_list);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_pool_map_async);
  g_task_set_check_cancellable (task, TRUE);

  data = g_new0 (MapData, 1);
  data->cancellable = g_cancellable_new ();
  data->n_calls = g_variant_n_children (list);
  data->pending = data->n_calls;
  data->results = g_new0 (GVariant *, MAX (data->n_calls, 1));
  g_task_set_task_data (task, data, (GDestroyNotify) map_data_free);

  if (cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (data->cancel_source, G_SOURCE_FUNC (on_map_cancelled), task, NULL);
      g_source_set_static_name (data->cancel_source, "[arip] pool map cancelled");
      g_source_attach (data->cancel_source, g_task_get_context (task));
    }

  if (data->n_calls == 0)
    {
      map_complete (task);
      return;
    }

  for (gsize i = 0; i < data->n_calls; i++)
    {
      MapCall *call = g_new0 (MapCall, 1);
      g_autoptr(GVariant) args = g_variant_get_child_value (list, i);

      call->task = g_object_ref (task);
      call->index = i;
      arip_pool_run_async (self, function, args, data->cancellable, on_map_call_done, call);
    }
}

/**
 * arip_pool_map_finish:
 * @self: a pool
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Pool.map_async].
 *
 * Returns: (transfer full): the results, as an `av` in the order of the
 *   arguments, or %NULL with @error set
 */
GVariant *
arip_pool_map_finish (AripPool      *self,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == arip_pool_map_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static gboolean
on_close_cancelled (GCancellable *cancellable,
                    gpointer      user_data)
{
  GTask *task = user_data;
  AripPool *self = g_task_get_source_object (task);

  /* Only the waiting stops; the pool goes on closing. */
  self->close_tasks = g_list_remove (self->close_tasks, task);
  g_task_set_task_data (task, NULL, NULL);
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("Waiting for the pool to close was cancelled"));
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static gboolean
close_in_context (gpointer user_data)
{
  GTask *task = user_data;
  AripPool *self = g_task_get_source_object (task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  self->close_tasks = g_list_append (self->close_tasks, task);
  if (cancellable != NULL)
    {
      GSource *source = g_cancellable_source_new (cancellable);

      g_source_set_callback (source, G_SOURCE_FUNC (on_close_cancelled), task, NULL);
      g_source_set_static_name (source, "[arip] pool close cancelled");
      g_source_attach (source, self->context);
      /* The task's data is its cancel source, destroyed with it. */
      g_task_set_task_data (task, source, (GDestroyNotify) destroy_source);
    }

  begin_close (self);
  check_closed (self);
  return G_SOURCE_REMOVE;
}

/**
 * arip_pool_close_async:
 * @self: a pool
 * @cancellable: (nullable): stops the waiting, not the closing
 * @callback: (scope async) (closure user_data): called once every worker
 *   is gone
 * @user_data: data for @callback
 *
 * Closes the pool: calls that run finish, queued calls fail with
 * %G_IO_ERROR_CLOSED, workers stop, and later calls fail with
 * %G_IO_ERROR_CLOSED. Completes once every worker has exited.
 */
void
arip_pool_close_async (AripPool            *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_pool_close_async);

  /* The pool's state lives in its context, whichever thread closes it. */
  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, close_in_context, task, NULL);
}

/**
 * arip_pool_close_finish:
 * @self: a pool
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Pool.close_async].
 *
 * Returns: %TRUE once the pool is closed
 */
gboolean
arip_pool_close_finish (AripPool      *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * arip_pool_get_n_workers:
 * @self: a pool
 *
 * Gets how many workers live now, including those being started.
 *
 * Returns: the number of workers
 */
guint
arip_pool_get_n_workers (AripPool *self)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), 0);
  return self->workers.length;
}

/**
 * arip_pool_get_max_workers:
 * @self: a pool
 *
 * Gets the most workers the pool runs at once.
 *
 * Returns: the limit
 */
guint
arip_pool_get_max_workers (AripPool *self)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), 0);
  return self->max_workers;
}

/**
 * arip_pool_get_launcher:
 * @self: a pool
 *
 * Gets the launcher workers are started with.
 *
 * Returns: (transfer none): the launcher
 */
AripLauncher *
arip_pool_get_launcher (AripPool *self)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  return self->launcher;
}

/**
 * arip_pool_get_idle_timeout:
 * @self: a pool
 *
 * Gets how long workers may stay idle.
 *
 * Returns: seconds; 0 for ever
 */
guint
arip_pool_get_idle_timeout (AripPool *self)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), 0);
  return self->idle_timeout;
}

/**
 * arip_pool_set_idle_timeout:
 * @self: a pool
 * @seconds: seconds a worker may stay idle; 0 for ever
 *
 * Sets how long workers may stay idle before they stop. Applies to workers
 * from their next idle period.
 */
void
arip_pool_set_idle_timeout (AripPool *self,
                            guint     seconds)
{
  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (seconds <= G_MAXUINT / 1000);

  if (self->idle_timeout == seconds)
    return;
  self->idle_timeout = seconds;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_IDLE_TIMEOUT]);
}

/**
 * arip_pool_get_max_calls_per_worker:
 * @self: a pool
 *
 * Gets how many calls a worker serves before it is replaced.
 *
 * Returns: the limit; 0 for none
 */
guint
arip_pool_get_max_calls_per_worker (AripPool *self)
{
  g_return_val_if_fail (ARIP_IS_POOL (self), 0);
  return self->max_calls_per_worker;
}

/**
 * arip_pool_set_max_calls_per_worker:
 * @self: a pool
 * @max_calls: calls per worker; 0 for no limit
 *
 * Sets how many calls a worker serves before it is replaced.
 */
void
arip_pool_set_max_calls_per_worker (AripPool *self,
                                    guint     max_calls)
{
  g_return_if_fail (ARIP_IS_POOL (self));

  if (self->max_calls_per_worker == max_calls)
    return;
  self->max_calls_per_worker = max_calls;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_CALLS_PER_WORKER]);
}
