/* arip-limiter-private.h: slots for running children
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* One child's right to exist. Released (and freed) by whoever holds it,
 * in the main context it was acquired for. */
typedef struct _AripSlot AripSlot;

/* Ends the idle holder of a slot that a waiter needs. Called with the
 * limiter's lock held, from any thread: it must only do what is safe
 * anywhere and never blocks (send a signal). The slot then belongs to the
 * waiter, and the holder's arip_slot_release() only frees the struct. */
typedef void (*AripSlotReclaimFunc) (gpointer user_data);

/* A slot at once if one is free (or an idle holder yields one) and
 * nobody queues before us; NULL otherwise. @context is where it will be
 * released. */
AripSlot *arip_limiter_try_acquire    (GMainContext        *context);
/* Queues for a slot, first come first served. Completes in the thread
 * default context of the caller, which is where the slot is released.
 * @blocking says the caller blocks its thread until it completes: if every
 * slot is held by children of main contexts this very thread owns (which
 * cannot run while it blocks), it fails at once with
 * ARIP_ERROR_WOULD_DEADLOCK instead of waiting forever. */
void      arip_limiter_acquire_async  (gboolean             blocking,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
AripSlot *arip_limiter_acquire_finish (GAsyncResult        *result,
                                       GError             **error);
void      arip_slot_release           (AripSlot            *slot);

/* The holder (an idle pool worker) would give its slot up for a waiter:
 * @reclaim is how. */
void      arip_slot_set_idle          (AripSlot            *slot,
                                       AripSlotReclaimFunc  reclaim,
                                       gpointer             user_data);
/* The holder is busy again. FALSE if the slot was reclaimed meanwhile:
 * the holder is on its way out and must not take work. */
gboolean  arip_slot_set_busy          (AripSlot            *slot);
gboolean  arip_slot_is_reclaimed      (AripSlot            *slot);

G_END_DECLS
