/* arip-limiter.c: at most N children at once, process-wide
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The limit comes from ARIP_MAX_PROCS, read once, or 16. Requests beyond it
 * wait in a FIFO queue shared by every thread. A waiter is a GTask that
 * completes in its own main context; its cancellation is watched by a
 * cancellable source attached to that same context, so no callback ever
 * runs in the thread that happened to cancel.
 */
#include "config.h"

#include <stdlib.h>

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-limiter.h"
#include "arip-limiter-private.h"

#define DEFAULT_MAX_PROCESSES 16

typedef enum {
  SLOT_BUSY,
  SLOT_IDLE,
  SLOT_RECLAIMED,
} SlotState;

struct _AripSlot {
  SlotState            state;
  GMainContext        *context;    /* where the holder releases it */
  AripSlotReclaimFunc  reclaim;
  gpointer             reclaim_data;
  GList                held_link;  /* in held, unless reclaimed */
  GList                idle_link;  /* in idle while SLOT_IDLE */
};

typedef struct {
  GTask   *task;
  GSource *cancel_source;
  GList    link;   /* in waiters; link.data == this */
  gboolean queued;
  AripSlot *slot;  /* granted, not yet taken by finish() */
} Waiter;

static GMutex lock;
static guint max_processes;   /* 0 until read from the environment */
static guint running;
static GQueue waiters = G_QUEUE_INIT;
static GQueue held = G_QUEUE_INIT;   /* every slot not reclaimed */
static GQueue idle = G_QUEUE_INIT;   /* idle holders, longest idle first */

static guint
read_limit_locked (void)
{
  if (max_processes == 0)
    {
      const char *env = g_getenv ("ARIP_MAX_PROCS");
      guint64 value = 0;

      max_processes = DEFAULT_MAX_PROCESSES;
      if (env != NULL && *env != '\0')
        {
          if (g_ascii_string_to_unsigned (env, 10, 1, G_MAXINT, &value, NULL))
            max_processes = (guint) value;
          else
            g_warning ("ARIP_MAX_PROCS=“%s” is not a whole number of at least 1; "
                       "using the default of %u", env, DEFAULT_MAX_PROCESSES);
        }
    }
  return max_processes;
}

static AripSlot *
new_slot_locked (GMainContext *context)
{
  AripSlot *slot = g_new0 (AripSlot, 1);

  slot->state = SLOT_BUSY;
  slot->context = context != NULL ? g_main_context_ref (context) : NULL;
  slot->held_link.data = slot;
  g_queue_push_tail_link (&held, &slot->held_link);
  return slot;
}

/* Takes the slot of the holder idle the longest, which ends it; the
 * count of running children does not change: the slot changes hands. */
static gboolean
reclaim_one_locked (void)
{
  AripSlot *victim;

  if (idle.head == NULL)
    return FALSE;

  victim = idle.head->data;
  g_queue_unlink (&idle, &victim->idle_link);
  g_queue_unlink (&held, &victim->held_link);
  victim->state = SLOT_RECLAIMED;
  victim->reclaim (victim->reclaim_data);
  return TRUE;
}

/* A slot for a new holder, if there is room or an idle holder yields. */
static AripSlot *
take_locked (GMainContext *context)
{
  if (running < read_limit_locked ())
    running++;
  else if (!reclaim_one_locked ())
    return NULL;
  return new_slot_locked (context);
}

/* Grants slots to queued waiters; returns the waiters to complete, to be
 * completed once the lock is dropped. */
static GSList *
grant_locked (void)
{
  GSList *granted = NULL;

  while (waiters.head != NULL)
    {
      Waiter *waiter = waiters.head->data;
      AripSlot *slot = take_locked (g_task_get_context (waiter->task));

      if (slot == NULL)
        break;
      g_queue_unlink (&waiters, &waiter->link);
      waiter->queued = FALSE;
      waiter->slot = slot;
      granted = g_slist_prepend (granted, waiter);
    }
  return g_slist_reverse (granted);
}

static void
complete_granted (GSList *granted)
{
  for (GSList *l = granted; l != NULL; l = l->next)
    {
      Waiter *waiter = l->data;
      GTask *task = waiter->task;

      /* The task owns the waiter; the cancel source is destroyed when the
       * task data is freed. */
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
  g_slist_free (granted);
}

/**
 * arip_get_max_processes:
 *
 * Gets the largest number of child processes arip runs at once in this
 * program. Further processes wait in %ARIP_STATE_INITIALIZING, first come
 * first served, until a running one finishes.
 *
 * The limit starts as the value of the `ARIP_MAX_PROCS` environment
 * variable, read once, or 16.
 *
 * Returns: the limit
 */
guint
arip_get_max_processes (void)
{
  guint value;

  g_mutex_lock (&lock);
  value = read_limit_locked ();
  g_mutex_unlock (&lock);
  return value;
}

/**
 * arip_set_max_processes:
 * @max: the new limit, at least 1
 *
 * Sets the largest number of child processes arip runs at once in this
 * program. Raising it starts queued processes at once; lowering it never
 * stops running ones, it only holds back new ones.
 */
void
arip_set_max_processes (guint max)
{
  GSList *granted;

  g_return_if_fail (max > 0);

  g_mutex_lock (&lock);
  read_limit_locked ();
  max_processes = max;
  granted = grant_locked ();
  g_mutex_unlock (&lock);

  complete_granted (granted);
}

/**
 * arip_get_running_processes:
 *
 * Gets how many child processes hold a slot of the limiter right now:
 * those that are spawned, running or not yet reaped.
 *
 * Returns: the number of running processes
 */
guint
arip_get_running_processes (void)
{
  guint value;

  g_mutex_lock (&lock);
  value = running;
  g_mutex_unlock (&lock);
  return value;
}

AripSlot *
arip_limiter_try_acquire (GMainContext *context)
{
  AripSlot *slot = NULL;

  g_mutex_lock (&lock);
  if (waiters.head == NULL)
    slot = take_locked (context);
  g_mutex_unlock (&lock);
  return slot;
}

void
arip_slot_release (AripSlot *slot)
{
  GSList *granted = NULL;

  if (slot == NULL)
    return;

  g_mutex_lock (&lock);
  if (slot->state != SLOT_RECLAIMED)
    {
      if (slot->state == SLOT_IDLE)
        g_queue_unlink (&idle, &slot->idle_link);
      g_queue_unlink (&held, &slot->held_link);
      if (G_UNLIKELY (running == 0))
        g_critical ("%s: no slot is held", G_STRFUNC);
      else
        running--;
      granted = grant_locked ();
    }
  g_mutex_unlock (&lock);

  complete_granted (granted);
  g_clear_pointer (&slot->context, g_main_context_unref);
  g_free (slot);
}

void
arip_slot_set_idle (AripSlot            *slot,
                    AripSlotReclaimFunc  reclaim,
                    gpointer             user_data)
{
  GSList *granted = NULL;

  g_return_if_fail (reclaim != NULL);

  g_mutex_lock (&lock);
  if (slot->state == SLOT_BUSY)
    {
      slot->state = SLOT_IDLE;
      slot->reclaim = reclaim;
      slot->reclaim_data = user_data;
      slot->idle_link.data = slot;
      g_queue_push_tail_link (&idle, &slot->idle_link);
      /* Someone may be waiting for exactly this. */
      granted = grant_locked ();
    }
  g_mutex_unlock (&lock);

  complete_granted (granted);
}

gboolean
arip_slot_set_busy (AripSlot *slot)
{
  gboolean ok;

  g_mutex_lock (&lock);
  if (slot->state == SLOT_IDLE)
    {
      g_queue_unlink (&idle, &slot->idle_link);
      slot->state = SLOT_BUSY;
    }
  ok = slot->state == SLOT_BUSY;
  g_mutex_unlock (&lock);
  return ok;
}

gboolean
arip_slot_is_reclaimed (AripSlot *slot)
{
  gboolean reclaimed;

  g_mutex_lock (&lock);
  reclaimed = slot->state == SLOT_RECLAIMED;
  g_mutex_unlock (&lock);
  return reclaimed;
}

static void
waiter_free (gpointer data)
{
  Waiter *waiter = data;

  if (waiter->cancel_source != NULL)
    {
      g_source_destroy (waiter->cancel_source);
      g_source_unref (waiter->cancel_source);
    }
  /* Granted, but nobody called finish(): give it back. */
  arip_slot_release (waiter->slot);
  g_free (waiter);
}

static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  Waiter *waiter = user_data;
  gboolean was_queued;

  g_mutex_lock (&lock);
  was_queued = waiter->queued;
  if (was_queued)
    {
      g_queue_unlink (&waiters, &waiter->link);
      waiter->queued = FALSE;
    }
  g_mutex_unlock (&lock);

  if (was_queued)
    {
      GTask *task = waiter->task;

      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Waiting for a free process slot was cancelled"));
      g_object_unref (task);
    }

  return G_SOURCE_REMOVE;
}

/* Whether a thread that blocks now could never get a slot: every slot
 * is busy in a main context that this very thread owns (it is dispatching
 * it further up its stack), other than the one it will wait in. */
static gboolean
would_deadlock_locked (GMainContext *waiting_in)
{
  if (held.head == NULL)
    return FALSE;

  for (GList *l = held.head; l != NULL; l = l->next)
    {
      AripSlot *slot = l->data;

      if (slot->state != SLOT_BUSY || slot->context == NULL ||
          slot->context == waiting_in || !g_main_context_is_owner (slot->context))
        return FALSE;
    }
  return TRUE;
}

void
arip_limiter_acquire_async (gboolean             blocking,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;
  Waiter *waiter;
  GSList *granted;
  gboolean deadlock = FALSE;
  guint limit;

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, arip_limiter_acquire_async);
  /* A slot granted just as the cancellable fires belongs to the caller,
   * which must release it; so never turn success into an error. */
  g_task_set_check_cancellable (task, FALSE);

  waiter = g_new0 (Waiter, 1);
  waiter->task = task;
  waiter->link.data = waiter;
  g_task_set_task_data (task, waiter, waiter_free);

  if (cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (waiter->cancel_source, G_SOURCE_FUNC (on_cancelled),
                             waiter, NULL);
      g_source_set_static_name (waiter->cancel_source, "[arip] limiter wait cancelled");
      g_source_attach (waiter->cancel_source, g_task_get_context (task));
    }

  /* The queue holds the task's reference until a slot or the
   * cancellation completes it. */
  g_mutex_lock (&lock);
  waiter->queued = TRUE;
  g_queue_push_tail_link (&waiters, &waiter->link);
  granted = grant_locked ();
  if (waiter->queued && blocking && would_deadlock_locked (g_task_get_context (task)))
    {
      g_queue_unlink (&waiters, &waiter->link);
      waiter->queued = FALSE;
      deadlock = TRUE;
    }
  limit = read_limit_locked ();
  g_mutex_unlock (&lock);

  complete_granted (granted);

  if (deadlock)
    {
      g_task_return_new_error (task, ARIP_ERROR, ARIP_ERROR_WOULD_DEADLOCK,
                               _("All %u process slots are held by processes of a main context "
                                 "this thread is running, which cannot make progress while it "
                                 "blocks; wait asynchronously, or raise the limit with "
                                 "arip_set_max_processes()"), limit);
      g_object_unref (task);
      return;
    }

}

AripSlot *
arip_limiter_acquire_finish (GAsyncResult  *result,
                             GError       **error)
{
  Waiter *waiter;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  waiter = g_task_get_task_data (G_TASK (result));
  return g_steal_pointer (&waiter->slot);
}
