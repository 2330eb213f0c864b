/* arip-barrier.c: a barrier shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-barrier.h"
#include "arip-error.h"
#include "arip-shared-private.h"

/**
 * AripBarrier:
 *
 * A meeting point for a fixed number of parties (multiprocessing's
 * `Barrier`): each wait returns once that many are waiting, each with its
 * own index, from 0 for the first to arrive to `parties - 1`; then the
 * barrier can be used again.
 *
 * A barrier that is aborted, or at which a waiting party dies, breaks:
 * every wait fails with %ARIP_ERROR_BROKEN until arip_barrier_reset().
 * A cancelled or timed-out wait only leaves (unlike Python's, it does not
 * break the barrier for the others).
 */

struct _AripBarrier {
  AripShared parent_instance;
  guint      parties;
};

G_DEFINE_FINAL_TYPE (AripBarrier, arip_barrier, ARIP_TYPE_SHARED)

typedef struct {
  AripSharedState parent;
  guint           parties;
  gboolean        broken;
  GQueue          waiters;
} BarrierState;

static void
break_barrier (BarrierState *barrier,
               const char   *why)
{
  barrier->broken = TRUE;
  while (barrier->waiters.head != NULL)
    arip_waiter_return_error (barrier->waiters.head->data, &barrier->waiters, ARIP_ERROR,
                              ARIP_ERROR_BROKEN, "%s", why);
}

static void
barrier_run (AripSharedState *state,
             AripWaiter      *waiter)
{
  BarrierState *barrier = (BarrierState *) state;

  switch (waiter->op)
    {
    case ARIP_BARRIER_OP_WAIT:
      if (barrier->broken)
        {
          arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_BROKEN,
                                    _("The barrier is broken"));
          return;
        }
      arip_waiter_park (waiter, &barrier->waiters);
      if (barrier->waiters.length == barrier->parties)
        {
          /* All there: each leaves with the place it arrived in. */
          for (guint32 index = 0; barrier->waiters.head != NULL; index++)
            arip_waiter_return (barrier->waiters.head->data, &barrier->waiters,
                                g_variant_new ("(u)", index), NULL);
        }
      return;

    case ARIP_BARRIER_OP_ABORT:
      break_barrier (barrier, _("The barrier was aborted"));
      arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      return;

    case ARIP_BARRIER_OP_RESET:
      break_barrier (barrier, _("The barrier was reset"));
      barrier->broken = FALSE;
      arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      return;

    case ARIP_BARRIER_OP_N_WAITING:
      arip_waiter_return (waiter, NULL, g_variant_new ("(u)", barrier->waiters.length), NULL);
      return;

    case ARIP_BARRIER_OP_IS_BROKEN:
      arip_waiter_return (waiter, NULL, g_variant_new ("(b)", barrier->broken), NULL);
      return;

    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("A barrier has no operation %u"), waiter->op);
    }
}

static gboolean
barrier_withdraw (AripSharedState *state,
                  AripWaiter      *waiter,
                  gboolean         gone)
{
  BarrierState *barrier = (BarrierState *) state;

  arip_waiter_withdraw_default (state, waiter, gone);
  if (gone)
    break_barrier (barrier, _("A process died while waiting at the barrier"));
  return TRUE;
}

static GVariant *
barrier_describe (AripSharedState *state,
                  GUnixFDList     *fds)
{
  return g_variant_new ("(u)", ((BarrierState *) state)->parties);
}

static gboolean
barrier_opened (AripShared   *object,
                GVariant     *info,
                GUnixFDList  *fds,
                GError      **error)
{
  if (!g_variant_is_of_type (info, G_VARIANT_TYPE ("(u)")))
    {
      g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                           _("The parent described the barrier wrongly"));
      return FALSE;
    }
  g_variant_get (info, "(u)", &ARIP_BARRIER (object)->parties);
  return TRUE;
}

const AripSharedStateClass arip_barrier_state_class = {
  .get_type = arip_barrier_get_type,
  .run = barrier_run,
  .withdraw = barrier_withdraw,
  .describe = barrier_describe,
  .opened = barrier_opened,
};

static void
arip_barrier_class_init (AripBarrierClass *klass)
{
}

static void
arip_barrier_init (AripBarrier *self)
{
}

/**
 * arip_barrier_new:
 * @parties: how many waits meet at it, at least 1
 *
 * A new barrier.
 *
 * Returns: (transfer full): the barrier
 */
AripBarrier *
arip_barrier_new (guint parties)
{
  AripBarrier *self;
  BarrierState *state;

  g_return_val_if_fail (parties >= 1, NULL);

  self = g_object_new (ARIP_TYPE_BARRIER, NULL);
  self->parties = parties;
  state = arip_shared_state_new (&arip_barrier_state_class, sizeof (BarrierState),
                                 ARIP_SHARED (self));
  state->parties = parties;
  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

/**
 * arip_barrier_wait_async:
 * @self: a barrier
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once all parties are there
 * @user_data: data for @callback
 *
 * Waits at the barrier.
 */
void
arip_barrier_wait_async (AripBarrier         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_BARRIER (self));

  arip_shared_request_async (ARIP_SHARED (self), ARIP_BARRIER_OP_WAIT, NULL, NULL, cancellable,
                             callback, user_data, arip_barrier_wait_async);
}

static gboolean
passed (GVariant *reply,
        guint    *out_index)
{
  guint32 index;

  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(u)", &index);
  g_variant_unref (reply);
  if (out_index != NULL)
    *out_index = index;
  return TRUE;
}

/**
 * arip_barrier_wait_finish:
 * @self: a barrier
 * @result: the result given to the callback
 * @out_index: (out) (optional): the place this wait arrived in, from 0
 * @error: return location for a #GError
 *
 * Finishes [method@Arip.Barrier.wait_async].
 *
 * Returns: %TRUE once all parties met; %FALSE with %ARIP_ERROR_BROKEN or
 *   %G_IO_ERROR_CANCELLED
 */
gboolean
arip_barrier_wait_finish (AripBarrier   *self,
                          GAsyncResult  *result,
                          guint         *out_index,
                          GError       **error)
{
  return passed (arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error), out_index);
}

/**
 * arip_barrier_wait_sync:
 * @self: a barrier
 * @timeout_ms: how long to wait, or -1 for no limit
 * @out_index: (out) (optional): the place this wait arrived in, from 0
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocks at the barrier until all parties are there.
 *
 * Returns: %TRUE once all parties met; %FALSE with %ARIP_ERROR_BROKEN,
 *   %G_IO_ERROR_TIMED_OUT or %G_IO_ERROR_CANCELLED
 */
gboolean
arip_barrier_wait_sync (AripBarrier   *self,
                        gint           timeout_ms,
                        guint         *out_index,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_return_val_if_fail (ARIP_IS_BARRIER (self), FALSE);

  return passed (arip_shared_request_sync (ARIP_SHARED (self), ARIP_BARRIER_OP_WAIT, NULL, NULL,
                                           timeout_ms, cancellable, NULL, error),
                 out_index);
}

/**
 * arip_barrier_abort:
 * @self: a barrier
 *
 * Breaks the barrier: waits fail with %ARIP_ERROR_BROKEN, those under way
 * and those to come, until arip_barrier_reset().
 */
void
arip_barrier_abort (AripBarrier *self)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_if_fail (ARIP_IS_BARRIER (self));
  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_BARRIER_OP_ABORT, NULL);
}

/**
 * arip_barrier_reset:
 * @self: a barrier
 *
 * Makes the barrier usable again; waits under way fail with
 * %ARIP_ERROR_BROKEN.
 */
void
arip_barrier_reset (AripBarrier *self)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_if_fail (ARIP_IS_BARRIER (self));
  reply = arip_shared_request_now (ARIP_SHARED (self), ARIP_BARRIER_OP_RESET, NULL);
}

/**
 * arip_barrier_get_parties:
 * @self: a barrier
 *
 * How many waits meet at the barrier, set when it was made.
 *
 * Returns: how many waits meet at the barrier
 */
guint
arip_barrier_get_parties (AripBarrier *self)
{
  g_return_val_if_fail (ARIP_IS_BARRIER (self), 0);
  return self->parties;
}

/**
 * arip_barrier_get_n_waiting:
 * @self: a barrier
 *
 * How many waits are under way at the barrier, in every process.
 *
 * Returns: how many wait at the barrier now
 */
guint
arip_barrier_get_n_waiting (AripBarrier *self)
{
  g_return_val_if_fail (ARIP_IS_BARRIER (self), 0);

  return arip_shared_request_uint (ARIP_SHARED (self), ARIP_BARRIER_OP_N_WAITING);
}

/**
 * arip_barrier_is_broken:
 * @self: a barrier
 *
 * Whether the barrier is broken: aborted, or a process died waiting at
 * it. Waits fail with %ARIP_ERROR_BROKEN until arip_barrier_reset().
 *
 * Returns: %TRUE if the barrier is broken
 */
gboolean
arip_barrier_is_broken (AripBarrier *self)
{
  g_return_val_if_fail (ARIP_IS_BARRIER (self), FALSE);

  return arip_shared_request_boolean (ARIP_SHARED (self), ARIP_BARRIER_OP_IS_BROKEN);
}
