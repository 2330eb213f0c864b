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

#include "arip-limiter.h"
#include "arip-limiter-private.h"

#define DEFAULT_MAX_PROCESSES 16

typedef struct {
  GTask   *task;
  GSource *cancel_source;
  GList    link;   /* in waiters; link.data == this */
  gboolean queued;
} Waiter;

static GMutex lock;
static guint max_processes;   /* 0 until read from the environment */
static guint running;
static GQueue waiters = G_QUEUE_INIT;

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

/* Grants free slots to queued waiters; returns the tasks to complete, to be
 * completed once the lock is dropped. */
static GSList *
grant_locked (void)
{
  GSList *granted = NULL;

  while (running < read_limit_locked () && waiters.head != NULL)
    {
      Waiter *waiter = waiters.head->data;

      g_queue_unlink (&waiters, &waiter->link);
      waiter->queued = FALSE;
      running++;
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

gboolean
arip_limiter_try_acquire (void)
{
  gboolean ok = FALSE;

  g_mutex_lock (&lock);
  if (waiters.head == NULL && running < read_limit_locked ())
    {
      running++;
      ok = TRUE;
    }
  g_mutex_unlock (&lock);
  return ok;
}

void
arip_limiter_release (void)
{
  GSList *granted;

  g_mutex_lock (&lock);
  if (G_UNLIKELY (running == 0))
    {
      g_mutex_unlock (&lock);
      g_critical ("%s: no slot is held", G_STRFUNC);
      return;
    }
  running--;
  granted = grant_locked ();
  g_mutex_unlock (&lock);

  complete_granted (granted);
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

void
arip_limiter_acquire_async (GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;
  Waiter *waiter;
  GSList *granted;

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
  g_mutex_unlock (&lock);

  complete_granted (granted);
}

gboolean
arip_limiter_acquire_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
