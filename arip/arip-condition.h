/* arip-condition.h: a condition variable shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>

#include "arip-shared.h"
#include "arip-lock.h"

G_BEGIN_DECLS

#define ARIP_TYPE_CONDITION (arip_condition_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripCondition, arip_condition, ARIP, CONDITION, AripShared)



ARIP_AVAILABLE_IN_ALL
AripCondition *arip_condition_new         (AripLock            *lock);
ARIP_AVAILABLE_IN_ALL
AripLock      *arip_condition_get_lock    (AripCondition       *self);
ARIP_AVAILABLE_IN_ALL
void           arip_condition_wait_async  (AripCondition       *self,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_condition_wait_finish (AripCondition       *self,
                                           GAsyncResult        *result,
                                           GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_condition_wait_sync   (AripCondition       *self,
                                           gint                 timeout_ms,
                                           GCancellable        *cancellable,
                                           GError             **error);
ARIP_AVAILABLE_IN_ALL
void           arip_condition_notify      (AripCondition       *self,
                                           guint                n);
ARIP_AVAILABLE_IN_ALL
void           arip_condition_notify_all  (AripCondition       *self);

G_END_DECLS
