/* arip-barrier.h: a barrier shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>

#include "arip-shared.h"

G_BEGIN_DECLS

#define ARIP_TYPE_BARRIER (arip_barrier_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripBarrier, arip_barrier, ARIP, BARRIER, AripShared)

ARIP_AVAILABLE_IN_ALL
AripBarrier *arip_barrier_new         (guint                parties);
ARIP_AVAILABLE_IN_ALL
void         arip_barrier_wait_async  (AripBarrier         *self,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean     arip_barrier_wait_finish (AripBarrier         *self,
                                       GAsyncResult        *result,
                                       guint               *out_index,
                                       GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean     arip_barrier_wait_sync   (AripBarrier         *self,
                                       gint                 timeout_ms,
                                       guint               *out_index,
                                       GCancellable        *cancellable,
                                       GError             **error);
ARIP_AVAILABLE_IN_ALL
void         arip_barrier_abort       (AripBarrier         *self);
ARIP_AVAILABLE_IN_ALL
void         arip_barrier_reset       (AripBarrier         *self);
ARIP_AVAILABLE_IN_ALL
guint        arip_barrier_get_parties (AripBarrier         *self);
ARIP_AVAILABLE_IN_ALL
guint        arip_barrier_get_n_waiting (AripBarrier       *self);
ARIP_AVAILABLE_IN_ALL
gboolean     arip_barrier_is_broken   (AripBarrier         *self);

G_END_DECLS
