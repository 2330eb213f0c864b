/* arip-result-queue.h: calls whose results wait for another thread's loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>

#include "arip-pool.h"
#include "arip-queue.h"
#include "arip-version-macros.h"

G_BEGIN_DECLS

#define ARIP_TYPE_RESULT_QUEUE (arip_result_queue_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripResultQueue, arip_result_queue, ARIP, RESULT_QUEUE, GObject)

ARIP_AVAILABLE_IN_ALL
AripResultQueue *arip_result_queue_new     (void);
ARIP_AVAILABLE_IN_ALL
gint             arip_result_queue_get_fd  (AripResultQueue *self);
ARIP_AVAILABLE_IN_ALL
GAsyncResult    *arip_result_queue_pop     (AripResultQueue *self,
                                            guint64         *out_tag);

ARIP_AVAILABLE_IN_ALL
void             arip_pool_run_to_queue    (AripPool        *self,
                                            const char      *function,
                                            GVariant        *args,
                                            AripResultQueue *queue,
                                            guint64          tag,
                                            GCancellable    *cancellable);
ARIP_AVAILABLE_IN_ALL
void             arip_queue_get_to_queue   (AripQueue       *self,
                                            AripResultQueue *queue,
                                            guint64          tag,
                                            GCancellable    *cancellable);

G_END_DECLS
