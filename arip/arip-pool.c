/* arip-pool.c: warm workers reused across calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A pool worker is started like a one-shot worker, with ":pool" added to
 * ARIP_WORKER: it says hello, then serves call frames one after the other,
 * answering each with a result or an error frame, until its channel closes.
 * Calls are numbered from 1 on each worker; an interrupt is sent with
 * sigqueue() carrying that number, so it can only ever reach the call it
 * was meant for.
 *
 * All the pool's state lives in the main context that was the thread
 * default when the pool was created; calls made from other threads are
 * handed over to it with g_main_context_invoke().
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "arip-channel-private.h"
#include "arip-error.h"
#include "arip-error-private.h"
#include "arip-launcher-private.h"
#include "arip-limiter.h"
#include "arip-limiter-private.h"
#include "arip-pool.h"
#include "arip-process-private.h"
#include "arip-signals-private.h"

#define DEFAULT_IDLE_TIMEOUT_S 300

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
 * ([func@Arip.get_max_processes]) for as long as they live.
 *
 * A worker that crashes or exits fails only the call it was running, with
 * the same errors a one-shot [class@Arip.Process] gives
 * (%ARIP_ERROR_SIGNALED, %ARIP_ERROR_EXITED, …), and is replaced. Workers
 * idle for [property@Arip.Pool:idle-timeout] seconds stop, and
 * [property@Arip.Pool:max-calls-per-worker] recycles them after a number of
 * calls.
 *
 * Pool workers inherit the parent's standard streams: the launcher's
 * `*_PIPE` flags do not apply to them.
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
  GPid          pid;
  AripChannel  *channel;
  gint          crash_fd;
  guint         has_slot : 1;
  guint         reaped : 1;
  guint32       n_calls;
  gint64        idle_since;    /* monotonic µs, when it last became idle */
  PoolCall     *call;
  GError       *own_error;     /* invalid data, startup timeout */
  GSource      *child_watch;
  GSource      *timer;         /* startup, idle or retire timeout */
  GCancellable *slot_cancellable;
  GList         link;          /* in pool->workers */
  GList         idle_link;     /* in pool->idle */
};

struct _PoolCall {
  AripPool     *pool;          /* unowned: the task owns the pool */
  GTask        *task;          /* unowned: the task owns the call */
  char         *function;
  GVariant     *args;
  GSource      *cancel_source;
  PoolWorker   *worker;        /* while running */
  guint32       seq;
  guint         cancelled : 1;
  AripStopStage stop_stage;
  GSource      *stop_timer;
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
  gboolean      closing;
  gboolean      dispatching;
  gboolean      dispatch_again;
  GList        *close_tasks;
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
  g_clear_pointer (&worker->channel, arip_channel_unref);
  if (worker->crash_fd >= 0)
    close (worker->crash_fd);
  g_clear_object (&worker->slot_cancellable);
  g_clear_error (&worker->own_error);
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

static void
kill_worker (PoolWorker *worker)
{
  if (worker->pid > 0 && !worker->reaped)
    kill (worker->pid, SIGKILL);
}

static void
worker_fail (PoolWorker *worker,
             GError     *error)
{
  if (worker->own_error == NULL)
    worker->own_error = error;
  else
    g_error_free (error);

  if (worker->channel != NULL)
    arip_channel_close (worker->channel);
  kill_worker (worker);
}

static void
worker_protocol_violation (PoolWorker *worker,
                           const char *what)
{
  worker_fail (worker, g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                    _("Pool worker process %d sent invalid data: %s; it was killed"),
                                    (int) worker->pid, what));
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                  */

static void
pool_call_free (PoolCall *call)
{
  g_assert (call->worker == NULL);
  clear_source (&call->cancel_source);
  clear_source (&call->stop_timer);
  g_free (call->function);
  g_clear_pointer (&call->args, g_variant_unref);
  g_free (call);
}

/* Detaches @call from its worker or the queue and completes its task with
 * @value or @error (both consumed). */
static void
complete_call (PoolCall *call,
               GVariant *value,
               GError   *error)
{
  GTask *task = call->task;

  clear_source (&call->cancel_source);
  clear_source (&call->stop_timer);
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

  if (call->cancelled)
    {
      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&error);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Running “%s” was cancelled"), call->function);
    }
  else if (error != NULL)
    {
      g_clear_pointer (&value, g_variant_unref);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, value, (GDestroyNotify) g_variant_unref);

  g_object_unref (task);
}

static gboolean on_stop_timer (gpointer user_data);

static void
escalate (PoolCall *call)
{
  PoolWorker *worker = call->worker;
  guint interrupt_ms, terminate_ms;
  gint wait_ms;

  clear_source (&call->stop_timer);
  if (worker == NULL || worker->pid <= 0 || worker->reaped)
    return;

  arip_launcher_get_stop_timeouts (call->pool->launcher, &interrupt_ms, &terminate_ms);

  /* The interrupt names the call, so it cannot reach the worker's next. */
  wait_ms = arip_stop_step (worker->pid, call->seq, &call->stop_stage, interrupt_ms, terminate_ms);
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
on_call_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  PoolCall *call = user_data;

  g_clear_pointer (&call->cancel_source, g_source_unref);
  call->cancelled = TRUE;

  if (call->worker == NULL)
    complete_call (call, NULL, NULL);   /* still queued */
  else
    escalate (call);                     /* answered or dead: completes */

  return G_SOURCE_REMOVE;
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

static gboolean
on_retire_timeout (gpointer user_data)
{
  PoolWorker *worker = user_data;

  g_clear_pointer (&worker->timer, g_source_unref);
  kill_worker (worker);
  return G_SOURCE_REMOVE;
}

/* Lets a worker go: it exits when its channel closes. */
static void
retire_worker (PoolWorker *worker)
{
  AripPool *self = worker->pool;
  guint interrupt_ms, terminate_ms;

  if (worker->state == WORKER_IDLE)
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
  if (worker->channel != NULL)
    arip_channel_close (worker->channel);

  arip_launcher_get_stop_timeouts (self->launcher, &interrupt_ms, &terminate_ms);
  set_timer (worker, MAX (1000, terminate_ms), on_retire_timeout, "[arip] pool worker retire");
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

  if (worker->has_slot)
    {
      worker->has_slot = FALSE;
      arip_limiter_release ();
    }

  if (worker->link.data != NULL)
    {
      g_queue_unlink (&self->workers, &worker->link);
      worker->link.data = NULL;
      notify_n_workers (self);
      worker_unref (worker);
    }
}

/* A worker that could not start fails the oldest queued call, so that a
 * launcher that can never start a worker fails calls instead of trying
 * forever. */
static void
worker_start_failed (PoolWorker *worker,
                     GError     *error)
{
  AripPool *self = worker->pool;
  PoolCall *call;

  forget_worker (worker);

  call = g_queue_peek_head (&self->queue);
  if (call != NULL)
    complete_call (call, NULL, error);
  else
    g_error_free (error);

  dispatch (self);
  check_closed (self);
}

static void
on_worker_exit (GPid     pid,
                gint     wait_status,
                gpointer user_data)
{
  PoolWorker *worker = user_data;
  AripPool *self = worker->pool;
  g_autoptr(GString) last_words = NULL;
  PoolCall *call = worker->call;
  WorkerState state = worker->state;

  worker->reaped = TRUE;
  g_clear_pointer (&worker->child_watch, g_source_unref);

  if (self == NULL)
    return;

  /* Frames the worker wrote before it died still count. */
  if (worker->channel != NULL)
    arip_channel_drain (worker->channel);
  call = worker->call;
  state = worker->state;

  last_words = arip_read_last_words (worker->crash_fd);
  if (worker->crash_fd >= 0)
    {
      close (worker->crash_fd);
      worker->crash_fd = -1;
    }

  if (state == WORKER_STARTING)
    {
      GError *error = worker->own_error != NULL
        ? g_error_copy (worker->own_error)
        : arip_exit_error_new (pid, "(pool worker startup)", wait_status, last_words);
      worker_start_failed (worker, error);
      return;
    }

  if (call != NULL)
    {
      GError *error;

      if (worker->own_error != NULL)
        error = g_error_copy (worker->own_error);
      else if (call->stop_stage == ARIP_STOP_KILLED && WIFSIGNALED (wait_status) &&
               WTERMSIG (wait_status) == SIGKILL)
        error = g_error_new (ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED,
                             _("Pool worker process %d running “%s” was killed"),
                             (int) pid, call->function);
      else
        error = arip_exit_error_new (pid, call->function, wait_status, last_words);

      complete_call (call, NULL, error);
    }

  forget_worker (worker);
  dispatch (self);
  check_closed (self);
}

static void
on_worker_frame (AripChannel *channel,
                 AripFrame   *frame,
                 gpointer     user_data)
{
  PoolWorker *worker = user_data;
  AripPool *self = worker->pool;

  if (self == NULL || worker->own_error != NULL)
    return;

  switch (frame->kind)
    {
    case ARIP_FRAME_HELLO:
      {
        guint32 version = frame->u32;
        gint32 pid = frame->i32;

        if (worker->state != WORKER_STARTING)
          worker_protocol_violation (worker, _("a second hello"));
        else if (version != ARIP_PROTOCOL_VERSION || pid != worker->pid)
          worker_protocol_violation (worker, _("a hello with the wrong version or pid"));
        else
          {
            self->n_starting--;
            clear_source (&worker->timer);
            if (self->closing)
              {
                worker->state = WORKER_IDLE;   /* so retiring counts right */
                retire_worker (worker);
                return;
              }
            make_idle (worker);
            arm_idle_timer (worker);
            dispatch (self);
          }
      }
      break;

    case ARIP_FRAME_RESULT:
    case ARIP_FRAME_ERROR:
      {
        PoolCall *call = worker->call;
        GVariant *value = NULL;
        GError *error = NULL;

        if (worker->state != WORKER_BUSY || call == NULL)
          {
            worker_protocol_violation (worker, _("an answer while no call was running"));
            break;
          }

        if (frame->kind == ARIP_FRAME_RESULT)
          value = g_variant_ref (frame->value);
        else if ((error = arip_frame_payload_to_error (frame->payload)) == NULL)
          {
            worker_protocol_violation (worker, _("an error whose domain is not a valid name"));
            break;
          }

        worker->state = WORKER_IDLE;   /* not yet in the idle queue */
        complete_call (call, value, error);

        if (self->closing ||
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
      /* A pool call has nobody to tell. */
      if (worker->state != WORKER_BUSY)
        worker_protocol_violation (worker, _("a message while no call was running"));
      break;

    case ARIP_FRAME_STATE:
    case ARIP_FRAME_CALL:
    default:
      {
        g_autofree char *what = g_strdup_printf (_("an unexpected %s frame"),
                                                 arip_frame_kind_to_string (frame->kind));
        worker_protocol_violation (worker, what);
      }
      break;
    }
}

static void
on_worker_channel_closed (AripChannel  *channel,
                          const GError *error,
                          gpointer      user_data)
{
  PoolWorker *worker = user_data;

  if (worker->pool == NULL || worker->own_error != NULL)
    return;

  if (error != NULL && error->domain == ARIP_ERROR)
    {
      worker_protocol_violation (worker, error->message);
      return;
    }

  /* A worker only closes its channel by exiting; its exit status is
   * already decided, and one that closes it otherwise is of no use. */
  kill_worker (worker);
}

static gboolean
on_startup_timeout (gpointer user_data)
{
  PoolWorker *worker = user_data;
  g_autoptr(AripLauncher) launcher = g_object_ref (worker->pool->launcher);

  g_clear_pointer (&worker->timer, g_source_unref);
  worker_fail (worker, g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                                    _("Pool worker process %d did not say hello within %u ms; it was killed"),
                                    (int) worker->pid, arip_launcher_get_startup_timeout (launcher)));
  return G_SOURCE_REMOVE;
}

static void
spawn_worker (PoolWorker *worker)
{
  AripPool *self = worker->pool;
  AripSpawnResult spawned;
  GError *error = NULL;

  if (!arip_launcher_spawn (self->launcher, TRUE, &spawned, &error))
    {
      worker_start_failed (worker, error);
      return;
    }

  worker->state = WORKER_STARTING;
  worker->pid = spawned.pid;
  worker->crash_fd = spawned.crash_fd;

  worker->child_watch = g_child_watch_source_new (worker->pid);
  g_source_set_callback (worker->child_watch, G_SOURCE_FUNC (on_worker_exit),
                         worker_ref (worker), (GDestroyNotify) worker_unref);
  g_source_set_static_name (worker->child_watch, "[arip] pool child watch");
  g_source_attach (worker->child_watch, self->context);

  set_timer (worker, arip_launcher_get_startup_timeout (self->launcher),
             on_startup_timeout, "[arip] pool startup timeout");

  worker->channel = arip_channel_new (spawned.channel_fd, &error);
  if (worker->channel == NULL)
    {
      worker_fail (worker, error);
      return;
    }
  arip_channel_start_reading (worker->channel, self->context,
                              on_worker_frame, on_worker_channel_closed, worker);
}

static void
on_worker_slot (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  PoolWorker *worker = user_data;

  if (!arip_limiter_acquire_finish (result, NULL))
    {
      /* Cancelled: the pool closed or was disposed meanwhile. */
      if (worker->pool != NULL)
        {
          AripPool *self = worker->pool;

          forget_worker (worker);
          dispatch (self);
          check_closed (self);
        }
      worker_unref (worker);
      return;
    }

  worker->has_slot = TRUE;
  if (worker->pool == NULL || worker->state != WORKER_WAITING_SLOT)
    {
      worker->has_slot = FALSE;
      arip_limiter_release ();
    }
  else if (worker->pool->closing)
    {
      AripPool *self = worker->pool;

      forget_worker (worker);
      check_closed (self);
    }
  else
    spawn_worker (worker);

  worker_unref (worker);
}

static void
start_worker (AripPool *self)
{
  PoolWorker *worker = g_new0 (PoolWorker, 1);

  worker->ref_count = 1;   /* the pool's */
  worker->pool = self;
  worker->state = WORKER_WAITING_SLOT;
  worker->crash_fd = -1;
  worker->link.data = worker;
  g_queue_push_tail_link (&self->workers, &worker->link);
  self->n_starting++;
  notify_n_workers (self);

  if (arip_limiter_try_acquire ())
    {
      worker->has_slot = TRUE;
      spawn_worker (worker);
    }
  else
    {
      worker->slot_cancellable = g_cancellable_new ();
      arip_limiter_acquire_async (worker->slot_cancellable, on_worker_slot, worker_ref (worker));
    }
}

static void
assign (PoolWorker *worker,
        PoolCall   *call)
{
  g_autoptr(GError) error = NULL;

  worker->state = WORKER_BUSY;
  worker->call = call;
  call->worker = worker;
  call->seq = ++worker->n_calls;

  if (!arip_channel_send_bytes (worker->channel,
                                arip_frame_encode_call (call->function, call->args, 0),
                                NULL, &error))
    {
      /* Too large, most likely; the worker is still fine. */
      worker->state = WORKER_IDLE;
      complete_call (call, NULL, g_steal_pointer (&error));
      make_idle (worker);
      arm_idle_timer (worker);
    }
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

  do
    {
      self->dispatch_again = FALSE;

      for (;;)
        {
          PoolCall *call = g_queue_peek_head (&self->queue);
          PoolWorker *worker = g_queue_peek_head (&self->idle);

          if (call == NULL || worker == NULL)
            break;

          g_queue_unlink (&self->queue, &call->link);
          call->link.data = NULL;
          g_queue_unlink (&self->idle, &worker->idle_link);
          worker->idle_link.data = NULL;
          assign (worker, call);
        }

      while (!self->closing &&
             self->queue.length > self->n_starting &&
             self->workers.length < self->max_workers)
        start_worker (self);
    }
  while (self->dispatch_again);

  self->dispatching = FALSE;
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

  /* No call can be pending here: each holds a reference to the pool. What
   * is left are idle or retiring workers: they go now. */
  while (self->workers.head != NULL)
    {
      PoolWorker *worker = self->workers.head->data;

      g_queue_unlink (&self->workers, &worker->link);
      worker->link.data = NULL;
      worker->idle_link.data = NULL;
      worker->pool = NULL;
      clear_source (&worker->timer);
      if (worker->slot_cancellable != NULL)
        g_cancellable_cancel (worker->slot_cancellable);
      if (worker->channel != NULL)
        arip_channel_close (worker->channel);
      kill_worker (worker);
      if (worker->has_slot)
        {
          worker->has_slot = FALSE;
          arip_limiter_release ();
        }
      worker_unref (worker);
    }
  g_queue_init (&self->idle);

  G_OBJECT_CLASS (arip_pool_parent_class)->dispose (object);
}

static void
arip_pool_finalize (GObject *object)
{
  AripPool *self = ARIP_POOL (object);

  g_clear_object (&self->launcher);
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
    {
      call->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (call->cancel_source, G_SOURCE_FUNC (on_call_cancelled), call, NULL);
      g_source_set_static_name (call->cancel_source, "[arip] pool call cancelled");
      g_source_attach (call->cancel_source, self->context);
    }

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
void
arip_pool_run_async (AripPool            *self,
                     const char          *function,
                     GVariant            *args,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  GTask *task;
  PoolCall *call;

  g_return_if_fail (ARIP_IS_POOL (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_pool_run_async);
  g_task_set_check_cancellable (task, FALSE);

  call = g_new0 (PoolCall, 1);
  call->pool = self;
  call->task = task;
  call->function = g_strdup (function);
  call->args = args != NULL ? g_variant_ref_sink (args) : arip_variant_unit ();
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
 * The pool's work happens in its main context. If no other thread is
 * running that context, this runs it while it waits (so a program without
 * a main loop can use the pool); otherwise it waits on a private context
 * while the thread that runs the pool's context does the work.
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
  GAsyncResult *result = NULL;
  GMainContext *context;
  gboolean own;
  GVariant *value;

  g_return_val_if_fail (ARIP_IS_POOL (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);

  own = g_main_context_acquire (self->context);
  context = own ? g_main_context_ref (self->context) : g_main_context_new ();

  g_main_context_push_thread_default (context);
  arip_pool_run_async (self, function, args, cancellable, on_sync_done, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  if (own)
    g_main_context_release (self->context);
  g_main_context_unref (context);

  value = arip_pool_run_finish (self, result, error);
  g_object_unref (result);
  return value;
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
