/* arip-condition.c: a condition variable shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-condition.h"
#include "arip-error.h"
#include "arip-shared-private.h"

/**
 * AripCondition:
 *
 * A condition variable (multiprocessing's `Condition`): a process that
 * holds the condition's lock waits, letting the lock go, until another
 * notifies it; it holds the lock again when its wait returns — also when
 * the wait was cancelled or timed out, or failed.
 *
 * A waiter whose process dies is simply gone; a notification is never
 * spent on it.
 */

struct _AripCondition {
  AripShared  parent_instance;
  AripLock   *lock;
};

G_DEFINE_FINAL_TYPE (AripCondition, arip_condition, ARIP_TYPE_SHARED)

typedef struct {
  AripSharedState  parent;
  AripLockState   *lock;      /* a reference */
  GQueue           waiters;   /* not notified yet */
} ConditionState;

static void
condition_run (AripSharedState *state,
               AripWaiter      *waiter)
{
  ConditionState *condition = (ConditionState *) state;

  switch (waiter->op)
    {
    case ARIP_CONDITION_OP_WAIT:
      if (condition->lock->owner == NULL ||
          !arip_holder_equal (condition->lock->owner, waiter->holder))
        {
          arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                                    _("Waiting on a condition needs its lock held"));
          return;
        }
      arip_lock_state_release (condition->lock);
      arip_waiter_park (waiter, &condition->waiters);
      return;

    case ARIP_CONDITION_OP_NOTIFY:
      {
        guint n;

        if (!arip_waiter_check_arg (waiter, "(u)"))
          return;
        g_variant_get (waiter->arg, "(u)", &n);
        for (guint i = 0; i < n && condition->waiters.head != NULL; i++)
          {
            AripWaiter *notified = condition->waiters.head->data;

            /* Still parked, as far as its holder is concerned. */
            g_queue_unlink (&condition->waiters, &notified->link);
            notified->parked_in = NULL;
            arip_lock_state_take_back (condition->lock, notified);
          }
        arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
        return;
      }

    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("A condition has no operation %u"), waiter->op);
    }
}

static gboolean
condition_withdraw (AripSharedState *state,
                    AripWaiter      *waiter,
                    gboolean         gone)
{
  ConditionState *condition = (ConditionState *) state;

  if (gone)
    {
      g_queue_unlink (waiter->parked_in, &waiter->link);
      waiter->parked_in = NULL;
      if (waiter->data != NULL)
        g_error_free (waiter->data);
      waiter->data = NULL;
      return TRUE;
    }

  /* Notified already: it gets the lock and its wait succeeds. */
  if (waiter->parked_in != &condition->waiters)
    return FALSE;

  g_queue_unlink (&condition->waiters, &waiter->link);
  waiter->parked_in = NULL;
  waiter->data = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      _("Operation was cancelled"));
  arip_lock_state_take_back (condition->lock, waiter);
  return FALSE;
}

static GVariant *
condition_describe (AripSharedState *state,
                    GUnixFDList     *fds)
{
  ConditionState *condition = (ConditionState *) state;

  return g_variant_new ("(stt)", "AripLock", condition->lock->parent.id,
                        condition->lock->parent.key);
}

static void
condition_finalize (AripSharedState *state)
{
  arip_shared_state_unref (&((ConditionState *) state)->lock->parent);
}

static gboolean
condition_opened (AripShared   *object,
                  GVariant     *info,
                  GUnixFDList  *fds,
                  GError      **error)
{
  AripShared *lock = arip_shared_from_variant (info, error);

  if (lock == NULL)
    return FALSE;
  if (!ARIP_IS_LOCK (lock))
    {
      g_object_unref (lock);
      g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                           _("The parent described the condition wrongly"));
      return FALSE;
    }
  ARIP_CONDITION (object)->lock = ARIP_LOCK (lock);
  return TRUE;
}

const AripSharedStateClass arip_condition_state_class = {
  .get_type = arip_condition_get_type,
  .run = condition_run,
  .withdraw = condition_withdraw,
  .describe = condition_describe,
  .finalize = condition_finalize,
  .opened = condition_opened,
};

static void
arip_condition_finalize (GObject *object)
{
  g_clear_object (&ARIP_CONDITION (object)->lock);

  G_OBJECT_CLASS (arip_condition_parent_class)->finalize (object);
}

static void
arip_condition_class_init (AripConditionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = arip_condition_finalize;
}

static void
arip_condition_init (AripCondition *self)
{
}

/**
 * arip_condition_new:
 * @lock: (nullable): the lock that guards what the condition is about, made
 *   by this process; %NULL for a new one
 *
 * A new condition variable.
 *
 * Returns: (transfer full): the condition
 */
AripCondition *
arip_condition_new (AripLock *lock)
{
  AripCondition *self;
  ConditionState *state;
  AripLockState *lock_state;

  g_return_val_if_fail (lock == NULL || ARIP_IS_LOCK (lock), NULL);
  g_return_val_if_fail (lock == NULL || arip_shared_is_owner (ARIP_SHARED (lock)), NULL);

  self = g_object_new (ARIP_TYPE_CONDITION, NULL);
  self->lock = lock != NULL ? g_object_ref (lock) : arip_lock_new ();
  state = arip_shared_state_new (&arip_condition_state_class, sizeof (ConditionState),
                                 ARIP_SHARED (self));
  lock_state = (AripLockState *) arip_shared_get_state (ARIP_SHARED (self->lock));
  arip_broker_lock ();
  arip_shared_state_ref (&lock_state->parent);
  state->lock = lock_state;
  arip_broker_unlock ();
  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

/**
 * arip_condition_get_lock:
 * @self: a condition
 *
 * The lock the condition's waits let go and take back.
 *
 * Returns: (transfer none): the condition's lock
 */
AripLock *
arip_condition_get_lock (AripCondition *self)
{
  g_return_val_if_fail (ARIP_IS_CONDITION (self), NULL);

  return self->lock;
}

/**
 * arip_condition_wait_async:
 * @self: a condition whose lock this process holds
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once notified, with the lock held again
 * @user_data: data for @callback
 *
 * Lets the lock go and waits to be notified, then takes the lock back.
 * A cancelled wait takes the lock back too before it fails.
 */
void
arip_condition_wait_async (AripCondition       *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_CONDITION (self));

  arip_shared_request_async (ARIP_SHARED (self), ARIP_CONDITION_OP_WAIT, NULL, NULL, cancellable,
                             callback, user_data, arip_condition_wait_async);
}

/**
 * arip_condition_wait_finish:
 * @self: a condition
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Arip.Condition.wait_async].
 *
 * Returns: %TRUE if notified; %FALSE with %G_IO_ERROR_CANCELLED, or
 *   %ARIP_ERROR_INVALID_STATE if the lock was not held. Either way the
 *   lock is held (but in the last case)
 */
gboolean
arip_condition_wait_finish (AripCondition  *self,
                            GAsyncResult   *result,
                            GError        **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);

  return reply != NULL;
}

/**
 * arip_condition_wait_sync:
 * @self: a condition whose lock this process holds
 * @timeout_ms: how long to wait for a notification, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Lets the lock go and blocks until notified, then takes the lock back.
 *
 * Returns: %TRUE if notified; %FALSE with %G_IO_ERROR_TIMED_OUT or
 *   %G_IO_ERROR_CANCELLED (the lock is held again all the same), or
 *   %ARIP_ERROR_INVALID_STATE if the lock was not held
 */
gboolean
arip_condition_wait_sync (AripCondition  *self,
                          gint            timeout_ms,
                          GCancellable   *cancellable,
                          GError        **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (ARIP_IS_CONDITION (self), FALSE);

  reply = arip_shared_request_sync (ARIP_SHARED (self), ARIP_CONDITION_OP_WAIT, NULL, NULL,
                                    timeout_ms, cancellable, NULL, error);
  return reply != NULL;
}

/**
 * arip_condition_notify:
 * @self: a condition
 * @n: how many waiters to wake
 *
 * Wakes up to @n waiters, the longest waiting first; each takes the lock
 * in turn.
 */
void
arip_condition_notify (AripCondition *self,
                       guint          n)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_if_fail (ARIP_IS_CONDITION (self));

  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_CONDITION_OP_NOTIFY,
                                   g_variant_new ("(u)", n));
}

/**
 * arip_condition_notify_all:
 * @self: a condition
 *
 * Wakes every waiter.
 */
void
arip_condition_notify_all (AripCondition *self)
{
  arip_condition_notify (self, G_MAXUINT32);
}
