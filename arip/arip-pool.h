/* arip-pool.h: warm workers reused across calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "arip-launcher.h"
#include "arip-version-macros.h"

G_BEGIN_DECLS

#define ARIP_TYPE_POOL (arip_pool_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripPool, arip_pool, ARIP, POOL, GObject)

ARIP_AVAILABLE_IN_ALL
AripPool *arip_pool_new                      (AripLauncher         *launcher,
                                              guint                 max_workers);
ARIP_AVAILABLE_IN_ALL
void      arip_pool_run_async                (AripPool             *self,
                                              const char           *function,
                                              GVariant             *args,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_pool_run_finish               (AripPool             *self,
                                              GAsyncResult         *result,
                                              GError              **error);
ARIP_AVAILABLE_IN_ALL
void      arip_pool_run_with_fds_async       (AripPool             *self,
                                              const char           *function,
                                              GVariant             *args,
                                              GUnixFDList          *fd_list,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_pool_run_with_fds_finish      (AripPool             *self,
                                              GAsyncResult         *result,
                                              GUnixFDList         **out_fd_list,
                                              GError              **error);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_pool_run_sync                 (AripPool             *self,
                                              const char           *function,
                                              GVariant             *args,
                                              GCancellable         *cancellable,
                                              GError              **error);
ARIP_AVAILABLE_IN_ALL
void      arip_pool_map_async                (AripPool             *self,
                                              const char           *function,
                                              GVariant             *args_list,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_pool_map_finish               (AripPool             *self,
                                              GAsyncResult         *result,
                                              GError              **error);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_pool_map_sync                 (AripPool             *self,
                                              const char           *function,
                                              GVariant             *args_list,
                                              GCancellable         *cancellable,
                                              GError              **error);
ARIP_AVAILABLE_IN_ALL
void      arip_pool_close_async              (AripPool             *self,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
gboolean  arip_pool_close_finish             (AripPool             *self,
                                              GAsyncResult         *result,
                                              GError              **error);
ARIP_AVAILABLE_IN_ALL
guint     arip_pool_get_n_workers            (AripPool             *self);
ARIP_AVAILABLE_IN_ALL
guint     arip_pool_get_max_workers          (AripPool             *self);
ARIP_AVAILABLE_IN_ALL
AripLauncher *arip_pool_get_launcher         (AripPool             *self);
ARIP_AVAILABLE_IN_ALL
guint     arip_pool_get_idle_timeout         (AripPool             *self);
ARIP_AVAILABLE_IN_ALL
void      arip_pool_set_idle_timeout         (AripPool             *self,
                                              guint                 seconds);
ARIP_AVAILABLE_IN_ALL
guint     arip_pool_get_max_calls_per_worker (AripPool             *self);
ARIP_AVAILABLE_IN_ALL
void      arip_pool_set_max_calls_per_worker (AripPool             *self,
                                              guint                 max_calls);

G_END_DECLS
