/* arip-semaphore.c: a semaphore shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-semaphore.h"
#include "arip-shared-private.h"

/**
 * AripSemaphore:
 *
 * A counter of units that processes acquire and release
 * (multiprocessing's `Semaphore` and, with a `max_value`,
 * `BoundedSemaphore`). Waiters get units in the order they asked.
 *
 * The units a process acquired and did not release go back when it dies.
 * (A process may release units another acquired; what goes back is what
 * a process acquired beyond what it released.)
 */

struct _AripSemaphore {
  AripShared parent_instance;
};

G_DEFINE_FINAL_TYPE (AripSemaphore, arip_semaphore, ARIP_TYPE_SHARED)

typedef struct {
  AripSharedState parent;
  guint           value;
  guint           max_value;
  GQueue          waiters;
  GHashTable     *held;      /* AripHolder → units acquired, not released */
} SemaphoreState;

static void
count (SemaphoreState *sem,
       AripHolder     *holder,
       gint            delta)
{
  guint held = GPOINTER_TO_UINT (g_hash_table_lookup (sem->held, holder));

  if (delta < 0 && held == 0)
    return;
  held += delta;
  if (held == 0)
    g_hash_table_remove (sem->held, holder);
  else
    g_hash_table_insert (sem->held, holder, GUINT_TO_POINTER (held));
}

/* A unit is free: the first waiter gets it, or the count grows. */
static void
give_unit (SemaphoreState *sem)
{
  AripWaiter *next = g_queue_peek_head (&sem->waiters);

  if (next == NULL)
    {
      if (sem->max_value == 0 || sem->value < sem->max_value)
        sem->value++;
      return;
    }
  count (sem, next->holder, 1);
  arip_waiter_return (next, &sem->waiters, g_variant_new ("()"), NULL);
}

static void
semaphore_run (AripSharedState *state,
               AripWaiter      *waiter)
{
  SemaphoreState *sem = (SemaphoreState *) state;

  switch (waiter->op)
    {
    case ARIP_SEMAPHORE_OP_ACQUIRE:
    case ARIP_SEMAPHORE_OP_TRY_ACQUIRE:
      if (sem->value > 0)
        {
          sem->value--;
          count (sem, waiter->holder, 1);
          arip_waiter_return (waiter, NULL,
                              waiter->op == ARIP_SEMAPHORE_OP_ACQUIRE ? g_variant_new ("()")
                                                                      : g_variant_new ("(b)", TRUE),
                              NULL);
        }
      else if (waiter->op == ARIP_SEMAPHORE_OP_ACQUIRE)
        arip_waiter_park (waiter, &sem->waiters);
      else
        arip_waiter_return (waiter, NULL, g_variant_new ("(b)", FALSE), NULL);
      return;

    case ARIP_SEMAPHORE_OP_RELEASE:
      if (sem->max_value > 0 && sem->waiters.length == 0 && sem->value >= sem->max_value)
        {
          arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_STATE,
                                    _("The semaphore was released more often than acquired "
                                      "(its value would pass its maximum, %u)"),
                                    sem->max_value);
          return;
        }
      count (sem, waiter->holder, -1);
      give_unit (sem);
      arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      return;

    case ARIP_SEMAPHORE_OP_VALUE:
      arip_waiter_return (waiter, NULL, g_variant_new ("(u)", sem->value), NULL);
      return;

    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("A semaphore has no operation %u"), waiter->op);
    }
}

static void
semaphore_holder_gone (AripSharedState *state,
                       AripHolder      *holder)
{
  SemaphoreState *sem = (SemaphoreState *) state;
  guint held = GPOINTER_TO_UINT (g_hash_table_lookup (sem->held, holder));

  g_hash_table_remove (sem->held, holder);
  while (held-- > 0)
    give_unit (sem);
}

static GVariant *
semaphore_describe (AripSharedState *state,
                    GUnixFDList     *fds)
{
  return g_variant_new ("()");
}

static void
semaphore_finalize (AripSharedState *state)
{
  g_hash_table_unref (((SemaphoreState *) state)->held);
}

static gboolean
semaphore_opened (AripShared   *object,
                  GVariant     *info,
                  GUnixFDList  *fds,
                  GError      **error)
{
  return TRUE;
}

const AripSharedStateClass arip_semaphore_state_class = {
  .get_type = arip_semaphore_get_type,
  .run = semaphore_run,
  .withdraw = arip_waiter_withdraw_default,
  .holder_gone = semaphore_holder_gone,
  .describe = semaphore_describe,
  .finalize = semaphore_finalize,
  .opened = semaphore_opened,
};

static void
arip_semaphore_class_init (AripSemaphoreClass *klass)
{
}

static void
arip_semaphore_init (AripSemaphore *self)
{
}

/**
 * arip_semaphore_new:
 * @value: the units it starts with
 * @max_value: the most units it may count, or 0 for no limit
 *
 * A new semaphore.
 *
 * Returns: (transfer full): the semaphore
 */
AripSemaphore *
arip_semaphore_new (guint value,
                    guint max_value)
{
  AripSemaphore *self;
  SemaphoreState *state;

  g_return_val_if_fail (max_value == 0 || value <= max_value, NULL);

  self = g_object_new (ARIP_TYPE_SEMAPHORE, NULL);
  state = arip_shared_state_new (&arip_semaphore_state_class, sizeof (SemaphoreState),
                                 ARIP_SHARED (self));
  state->value = value;
  state->max_value = max_value;
  state->held = g_hash_table_new (NULL, NULL);
  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

/**
 * arip_semaphore_acquire_async:
 * @self: a semaphore
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once a unit is this process's
 * @user_data: data for @callback
 *
 * Takes one unit, waiting while there is none.
 */
void
arip_semaphore_acquire_async (AripSemaphore       *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_SEMAPHORE (self));

  arip_shared_request_async (ARIP_SHARED (self), ARIP_SEMAPHORE_OP_ACQUIRE, NULL, NULL,
                             cancellable, callback, user_data, arip_semaphore_acquire_async);
}

/**
 * arip_semaphore_acquire_finish:
 * @self: a semaphore
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes arip_semaphore_acquire_async().
 *
 * Returns: %TRUE if a unit was taken; %FALSE with %G_IO_ERROR_CANCELLED
 *   (none was)
 */
gboolean
arip_semaphore_acquire_finish (AripSemaphore  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);

  return reply != NULL;
}

/**
 * arip_semaphore_acquire_sync:
 * @self: a semaphore
 * @timeout_ms: how long to wait, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Takes one unit, blocking while there is none.
 *
 * Returns: %TRUE if a unit was taken; %FALSE with %G_IO_ERROR_TIMED_OUT or
 *   %G_IO_ERROR_CANCELLED (none was)
 */
gboolean
arip_semaphore_acquire_sync (AripSemaphore  *self,
                             gint            timeout_ms,
                             GCancellable   *cancellable,
                             GError        **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (ARIP_IS_SEMAPHORE (self), FALSE);

  reply = arip_shared_request_sync (ARIP_SHARED (self), ARIP_SEMAPHORE_OP_ACQUIRE, NULL, NULL,
                                    timeout_ms, cancellable, NULL, error);
  return reply != NULL;
}

/**
 * arip_semaphore_try_acquire:
 * @self: a semaphore
 *
 * Takes one unit if there is one, without waiting.
 *
 * Returns: %TRUE if a unit was taken
 */
gboolean
arip_semaphore_try_acquire (AripSemaphore *self)
{
  g_return_val_if_fail (ARIP_IS_SEMAPHORE (self), FALSE);

  return arip_shared_request_boolean (ARIP_SHARED (self), ARIP_SEMAPHORE_OP_TRY_ACQUIRE);
}

/**
 * arip_semaphore_release:
 * @self: a semaphore
 * @error: return location for a #GError
 *
 * Gives one unit back; the first waiter, in any process, gets it.
 *
 * Returns: %TRUE; %FALSE with %ARIP_ERROR_INVALID_STATE if the value would
 *   pass the semaphore's maximum
 */
gboolean
arip_semaphore_release (AripSemaphore  *self,
                        GError        **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (ARIP_IS_SEMAPHORE (self), FALSE);

  reply = arip_shared_request_sync (ARIP_SHARED (self), ARIP_SEMAPHORE_OP_RELEASE, NULL, NULL, -1,
                                    NULL, NULL, error);
  return reply != NULL;
}

/**
 * arip_semaphore_get_value:
 * @self: a semaphore
 *
 * Reads how many units are free at this moment. Another process may
 * take or give some back at any time, so the figure is for reports, not
 * for deciding whether an acquire would block: use
 * [method@Arip.Semaphore.try_acquire] for that.
 *
 * Returns: the units free now
 */
guint
arip_semaphore_get_value (AripSemaphore *self)
{
  g_return_val_if_fail (ARIP_IS_SEMAPHORE (self), 0);

  return arip_shared_request_uint (ARIP_SHARED (self), ARIP_SEMAPHORE_OP_VALUE);
}
