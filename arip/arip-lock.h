/* arip-lock.h: a lock shared between processes
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

#define ARIP_TYPE_LOCK (arip_lock_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripLock, arip_lock, ARIP, LOCK, AripShared)

ARIP_AVAILABLE_IN_ALL
AripLock *arip_lock_new            (void);
ARIP_AVAILABLE_IN_ALL
void      arip_lock_acquire_async  (AripLock            *self,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean  arip_lock_acquire_finish (AripLock            *self,
                                    GAsyncResult        *result,
                                    GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean  arip_lock_acquire_sync   (AripLock            *self,
                                    gint                 timeout_ms,
                                    GCancellable        *cancellable,
                                    GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean  arip_lock_try_acquire    (AripLock            *self);
ARIP_AVAILABLE_IN_ALL
void      arip_lock_release        (AripLock            *self);
ARIP_AVAILABLE_IN_ALL
gboolean  arip_lock_get_abandoned  (AripLock            *self);

G_END_DECLS
