/* arip-event.c: an event shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "arip-error.h"
#include "arip-event.h"
#include "arip-shared-private.h"

/**
 * AripEvent:
 *
 * A flag that processes wait for (multiprocessing's `Event`): set, it
 * wakes every waiter and lets later waits through until it is cleared.
 */

struct _AripEvent {
  AripShared parent_instance;
};

G_DEFINE_FINAL_TYPE (AripEvent, arip_event, ARIP_TYPE_SHARED)

typedef struct {
  AripSharedState parent;
  gboolean        set;
  GQueue          waiters;
} EventState;

static void
event_run (AripSharedState *state,
           AripWaiter      *waiter)
{
  EventState *event = (EventState *) state;

  switch (waiter->op)
    {
    case ARIP_EVENT_OP_SET:
      event->set = TRUE;
      while (event->waiters.head != NULL)
        arip_waiter_return (event->waiters.head->data, &event->waiters, g_variant_new ("()"), NULL);
      arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      return;
    case ARIP_EVENT_OP_CLEAR:
      event->set = FALSE;
      arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      return;
    case ARIP_EVENT_OP_IS_SET:
      arip_waiter_return (waiter, NULL, g_variant_new ("(b)", event->set), NULL);
      return;
    case ARIP_EVENT_OP_WAIT:
      if (event->set)
        arip_waiter_return (waiter, NULL, g_variant_new ("()"), NULL);
      else
        arip_waiter_park (waiter, &event->waiters);
      return;
    default:
      arip_waiter_return_error (waiter, NULL, ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                _("An event has no operation %u"), waiter->op);
    }
}

static GVariant *
no_description (AripSharedState *state,
                GUnixFDList     *fds)
{
  return g_variant_new ("()");
}

static gboolean
nothing_to_open (AripShared   *object,
                 GVariant     *info,
                 GUnixFDList  *fds,
                 GError      **error)
{
  return TRUE;
}

const AripSharedStateClass arip_event_state_class = {
  .get_type = arip_event_get_type,
  .run = event_run,
  .withdraw = arip_waiter_withdraw_default,
  .describe = no_description,
  .opened = nothing_to_open,
};

static void
arip_event_class_init (AripEventClass *klass)
{
}

static void
arip_event_init (AripEvent *self)
{
}

/**
 * arip_event_new:
 *
 * A new event, not set.
 *
 * Returns: (transfer full): the event
 */
AripEvent *
arip_event_new (void)
{
  AripEvent *self = g_object_new (ARIP_TYPE_EVENT, NULL);
  EventState *state = arip_shared_state_new (&arip_event_state_class, sizeof (EventState),
                                             ARIP_SHARED (self));

  arip_shared_set_state (ARIP_SHARED (self), &state->parent);
  return self;
}

static void
simple (AripEvent *self,
        guint      op)
{
  g_autoptr(GVariant) reply = arip_shared_request_now (ARIP_SHARED (self), op, NULL);
}

/**
 * arip_event_set:
 * @self: an event
 *
 * Sets the event: every waiter, in every process, wakes.
 */
void
arip_event_set (AripEvent *self)
{
  g_return_if_fail (ARIP_IS_EVENT (self));
  simple (self, ARIP_EVENT_OP_SET);
}

/**
 * arip_event_clear:
 * @self: an event
 *
 * Clears the event: waits wait again.
 */
void
arip_event_clear (AripEvent *self)
{
  g_return_if_fail (ARIP_IS_EVENT (self));
  simple (self, ARIP_EVENT_OP_CLEAR);
}

/**
 * arip_event_is_set:
 * @self: an event
 *
 * Whether the event is set now, for every process.
 *
 * Returns: whether the event is set
 */
gboolean
arip_event_is_set (AripEvent *self)
{
  g_return_val_if_fail (ARIP_IS_EVENT (self), FALSE);

  return arip_shared_request_boolean (ARIP_SHARED (self), ARIP_EVENT_OP_IS_SET);
}

/**
 * arip_event_wait_async:
 * @self: an event
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the event is set
 * @user_data: data for @callback
 *
 * Waits until the event is set (at once if it is).
 */
void
arip_event_wait_async (AripEvent           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (ARIP_IS_EVENT (self));

  arip_shared_request_async (ARIP_SHARED (self), ARIP_EVENT_OP_WAIT, NULL, NULL, cancellable,
                             callback, user_data, arip_event_wait_async);
}

/**
 * arip_event_wait_finish:
 * @self: an event
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Arip.Event.wait_async].
 *
 * Returns: %TRUE once the event was set; %FALSE with %G_IO_ERROR_CANCELLED
 */
gboolean
arip_event_wait_finish (AripEvent     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_autoptr(GVariant) reply = arip_shared_request_finish (ARIP_SHARED (self), result, NULL, error);

  return reply != NULL;
}

/**
 * arip_event_wait_sync:
 * @self: an event
 * @timeout_ms: how long to wait, or -1 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocks until the event is set.
 *
 * Returns: %TRUE once the event was set; %FALSE with %G_IO_ERROR_TIMED_OUT
 *   or %G_IO_ERROR_CANCELLED
 */
gboolean
arip_event_wait_sync (AripEvent     *self,
                      gint           timeout_ms,
                      GCancellable  *cancellable,
                      GError       **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (ARIP_IS_EVENT (self), FALSE);

  reply = arip_shared_request_sync (ARIP_SHARED (self), ARIP_EVENT_OP_WAIT, NULL, NULL, timeout_ms,
                                    cancellable, NULL, error);
  return reply != NULL;
}
