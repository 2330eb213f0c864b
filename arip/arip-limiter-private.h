/* arip-limiter-private.h: slots for running children
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Takes a slot at once if one is free and nobody queues before us. */
gboolean arip_limiter_try_acquire    (void);
/* Queues for a slot, first come first served. Completes in the thread
 * default context of the caller; on success the caller owns a slot. */
void     arip_limiter_acquire_async  (GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
gboolean arip_limiter_acquire_finish (GAsyncResult        *result,
                                      GError             **error);
void     arip_limiter_release        (void);

G_END_DECLS
