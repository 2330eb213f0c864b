/* arip-semaphore.h: a semaphore shared between processes
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

#define ARIP_TYPE_SEMAPHORE (arip_semaphore_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripSemaphore, arip_semaphore, ARIP, SEMAPHORE, AripShared)

ARIP_AVAILABLE_IN_ALL
AripSemaphore *arip_semaphore_new            (guint                value,
                                              guint                max_value);
ARIP_AVAILABLE_IN_ALL
void           arip_semaphore_acquire_async  (AripSemaphore       *self,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_semaphore_acquire_finish (AripSemaphore       *self,
                                              GAsyncResult        *result,
                                              GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_semaphore_acquire_sync   (AripSemaphore       *self,
                                              gint                 timeout_ms,
                                              GCancellable        *cancellable,
                                              GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_semaphore_try_acquire    (AripSemaphore       *self);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_semaphore_release        (AripSemaphore       *self,
                                              GError             **error);
ARIP_AVAILABLE_IN_ALL
guint          arip_semaphore_get_value      (AripSemaphore       *self);

G_END_DECLS
