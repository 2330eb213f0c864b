/* arip-event.h: an event shared between processes
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

#define ARIP_TYPE_EVENT (arip_event_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripEvent, arip_event, ARIP, EVENT, AripShared)

ARIP_AVAILABLE_IN_ALL
AripEvent *arip_event_new         (void);
ARIP_AVAILABLE_IN_ALL
void       arip_event_set         (AripEvent           *self);
ARIP_AVAILABLE_IN_ALL
void       arip_event_clear       (AripEvent           *self);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_event_is_set      (AripEvent           *self);
ARIP_AVAILABLE_IN_ALL
void       arip_event_wait_async  (AripEvent           *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_event_wait_finish (AripEvent           *self,
                                   GAsyncResult        *result,
                                   GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_event_wait_sync   (AripEvent           *self,
                                   gint                 timeout_ms,
                                   GCancellable        *cancellable,
                                   GError             **error);

G_END_DECLS
