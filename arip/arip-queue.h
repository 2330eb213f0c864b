/* arip-queue.h: a queue shared between processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "arip-shared.h"

G_BEGIN_DECLS

#define ARIP_TYPE_QUEUE (arip_queue_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripQueue, arip_queue, ARIP, QUEUE, AripShared)

ARIP_AVAILABLE_IN_ALL
AripQueue *arip_queue_new            (guint                max_size);
ARIP_AVAILABLE_IN_ALL
void       arip_queue_put_async      (AripQueue           *self,
                                      GVariant            *item,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_queue_put_finish     (AripQueue           *self,
                                      GAsyncResult        *result,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_queue_put_sync       (AripQueue           *self,
                                      GVariant            *item,
                                      gint                 timeout_ms,
                                      GCancellable        *cancellable,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_queue_put_with_fds_sync (AripQueue        *self,
                                      GVariant            *item,
                                      GUnixFDList         *fd_list,
                                      gint                 timeout_ms,
                                      GCancellable        *cancellable,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
void       arip_queue_get_async      (AripQueue           *self,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
GVariant  *arip_queue_get_finish     (AripQueue           *self,
                                      GAsyncResult        *result,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
GVariant  *arip_queue_get_with_fds_finish (AripQueue      *self,
                                      GAsyncResult        *result,
                                      GUnixFDList        **out_fd_list,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
GVariant  *arip_queue_get_sync       (AripQueue           *self,
                                      gint                 timeout_ms,
                                      GCancellable        *cancellable,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
GVariant  *arip_queue_get_with_fds_sync (AripQueue        *self,
                                      gint                 timeout_ms,
                                      GUnixFDList        **out_fd_list,
                                      GCancellable        *cancellable,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean   arip_queue_try_put        (AripQueue           *self,
                                      GVariant            *item,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
GVariant  *arip_queue_try_get        (AripQueue           *self,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
void       arip_queue_unget          (AripQueue           *self,
                                      GVariant            *item);
ARIP_AVAILABLE_IN_ALL
void       arip_queue_close          (AripQueue           *self);
ARIP_AVAILABLE_IN_ALL
guint      arip_queue_get_length     (AripQueue           *self);
ARIP_AVAILABLE_IN_ALL
guint      arip_queue_get_max_size   (AripQueue           *self);

G_END_DECLS
