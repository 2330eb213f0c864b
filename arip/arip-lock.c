/* arip-lock.c: a lock shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-lock.h"
#include "arip-shared-private.h"

/**
 * AripLock:
 *
 * A lock that one process holds at a time (multiprocessing's `Lock`). It
 * is held by a process, not a thread: any thread of the holder may release
 * it, and it is not recursive.
 *
 * A process that dies holding it frees it: the next process to acquire it
 * sees arip_lock_get_abandoned() return %TRUE, a hint that what the lock
 * guards may be half changed.
 */

struct _AripLock {
  AripShared parent_instance;
  gboolean   abandoned;
};

G_DEFINE_FINAL_TYPE (AripLock, arip_lock, ARIP_TYPE_SHARED)

/* @waiter has the lock now. */
static void
grant (AripLockState *lock,
       AripWaiter    *waiter)
{
  gboolean abandoned = lock->abandoned;

  lock->owner = waiter->holder;
  lock->abandoned = FALSE;

  switch (waiter->op)
    {
    case ARIP_LOCK_OP_ACQUIRE:
      arip_waiter_return (waiter, NULL, g_variant_new ("(b)", abandoned), NULL);
      break;
    case ARIP_LOCK_OP_TRY_ACQUIRE:
      arip_waiter_return (waiter, NULL, g_variant_new ("(bb)", TRUE, abandoned), NULL);
      break;
    default:
      /* A condition's waiter, back with its lock. */
      if (waiter->data != NULL)
        {
          GError *error = waiter->data;

          waiter->data = NULL;
          arip_waiter_return_error (waiter, NULL, error->domain, error->code, "%s", error->message);
          g_error_free (error);
        }
      else
        arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      break;
    }
}

void
arip_lock_state_release (AripLockState *lock)
{
  AripWaiter *next = g_queue_peek_head (&lock->waiters);

  lock->owner = NULL;
  /* Returning takes it out of the list. */
  if (next != NULL)
    grant (lock, next);
}

void
arip_lock_state_take_back (AripLockState *lock,
                           AripWaiter    *waiter)
{
  if (lock->owner == NULL)
    grant (lock, waiter);
  else
    arip_waiter_park (waiter, &lock->waiters);
}

static void
lock_run (AripSharedState *state,
          AripWaiter      *waiter)
{
  AripLockState *lock = (AripLockState *) state;

  switch (waiter->op)
    {
    case ARIP_LOCK_OP_ACQUIRE:
      if (lock->owner == NULL)
        grant (lock, waiter);
      else
        arip_waiter_park (waiter, &lock->waiters);
      return;

    case ARIP_LOCK_OP_TRY_ACQUIRE:
      if (lock->owner == NULL)
        grant (lock, waiter);
      else
        arip_waiter_return (waiter, NULL, g_variant_new ("(bb)", FALSE, FALSE), NULL);
      return;

    case ARIP_LOCK_OP_RELEASE:
      if (lock->owner == NULL)
        arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                                  _("The lock is not held"));
      else if (!arip_holder_equal (lock->owner, waiter->holder))
        arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                                  _("The lock is held by another process"));
      else
        {
          arip_lock_state_release (lock);
          arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
        }
      return;

    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("A lock has no operation %u"), waiter->op);
    }
}

static void
lock_holder_gone (AripSharedState *state,
                  AripHolder      *holder)
{
  AripLockState *lock = (AripLockState *) state;

  if (lock->owner != NULL && arip_holder_equal (lock->owner, holder))
    {
      lock->abandoned = TRUE;
      arip_lock_state_release (lock);
    }
}

static GVariant *
lock_describe (AripSharedState *state,
               GUnixFDList     *fds)
{
  return g_variant_new ("()");
}

static gboolean
lock_opened (AripShared   *object,
             GVariant     *info,
             GUnixFDList  *fds,
             GError      **error)
{
  return TRUE;
}

const AripSharedStateClass arip_lock_state_class = {
  .get_type = arip_lock_get_type,
  .run = lock_run,
  .withdraw = arip_waiter_withdraw_default,
  .holder_gone = lock_holder_gone,
  .describe = lock_describe,
  .opened = lock_opened,
};

static void
arip_lock_class_init (AripLockClass *klass)
{
}

static void
arip_lock_init (AripLock *self)
{
}

/**
 * arip_lock_new:
 *
 * A new lock, free.
 *
 * Returns: (transfer full): the lock
 */
AripLock *
arip_lock_new (void)
{
  AripLock *self = g_object_new (ARIP_TYPE_LOCK, NULL);
  AripLockState *state = arip_shared_state_new (&arip_lock_state_class, sizeof (AripLockState),
                                                ARIP_SHARED (self));

  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

/**
 * arip_lock_acquire_async:
 * @self: a lock
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once this process holds the lock
 * @user_data: data for @callback
 *
 * Acquires the lock, waiting while another process holds it. Waiters get
 * it in the order they asked.
 */
void
arip_lock_acquire_async (AripLock            *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_LOCK (self));

  arip_shared_request_async (ARIP_SHARED (self), ARIP_LOCK_OP_ACQUIRE, NULL, NULL, cancellable,
                             callback, user_data, arip_lock_acquire_async);
}

static gboolean
took (AripLock *self,
      GVariant *reply)
{
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(b)", &self->abandoned);
  g_variant_unref (reply);
  return TRUE;
}

/**
 * arip_lock_acquire_finish:
 * @self: a lock
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Arip.Lock.acquire_async].
 *
 * Returns: %TRUE if this process holds the lock now; %FALSE with
 *   %G_IO_ERROR_CANCELLED (it does not)
 */
gboolean
arip_lock_acquire_finish (AripLock      *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  return took (self, arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error));
}

/**
 * arip_lock_acquire_sync:
 * @self: a lock
 * @timeout_ms: how long to wait, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Acquires the lock, blocking while another process holds it.
 *
 * Returns: %TRUE if this process holds the lock now; %FALSE with
 *   %G_IO_ERROR_TIMED_OUT or %G_IO_ERROR_CANCELLED (it does not)
 */
gboolean
arip_lock_acquire_sync (AripLock      *self,
                        gint           timeout_ms,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_return_val_if_fail (ARIP_IS_LOCK (self), FALSE);

  return took (self, arip_shared_request_sync (ARIP_SHARED (self), ARIP_LOCK_OP_ACQUIRE, NULL,
                                               NULL, timeout_ms, cancellable, NULL, error));
}

/**
 * arip_lock_try_acquire:
 * @self: a lock
 *
 * Acquires the lock if it is free, without waiting.
 *
 * Returns: %TRUE if this process holds the lock now
 */
gboolean
arip_lock_try_acquire (AripLock *self)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean acquired = FALSE;

  g_return_val_if_fail (ARIP_IS_LOCK (self), FALSE);

  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_LOCK_OP_TRY_ACQUIRE, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(bb)", &acquired, &self->abandoned);
  return acquired;
}

/**
 * arip_lock_release:
 * @self: a lock this process holds
 *
 * Releases the lock; the next waiter, in any process, gets it. Releasing
 * a lock that this process does not hold is a programming error.
 */
void
arip_lock_release (AripLock *self)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_if_fail (ARIP_IS_LOCK (self));

  self->abandoned = FALSE;
  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_LOCK_OP_RELEASE, NULL);
}

/**
 * arip_lock_get_abandoned:
 * @self: a lock
 *
 * Whether this process, when it last acquired the lock, got it from a
 * process that had died holding it.
 *
 * Returns: %TRUE if the previous holder died holding the lock
 */
gboolean
arip_lock_get_abandoned (AripLock *self)
{
  g_return_val_if_fail (ARIP_IS_LOCK (self), FALSE);

  return self->abandoned;
}
