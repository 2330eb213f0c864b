/* arip-shared-dict.h: a dictionary shared between processes
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

#define ARIP_TYPE_SHARED_DICT (arip_shared_dict_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripSharedDict, arip_shared_dict, ARIP, SHARED_DICT, AripShared)

ARIP_AVAILABLE_IN_ALL
AripSharedDict *arip_shared_dict_new            (void);
ARIP_AVAILABLE_IN_ALL
gboolean        arip_shared_dict_set            (AripSharedDict      *self,
                                                 const char          *key,
                                                 GVariant            *value,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
GVariant       *arip_shared_dict_lookup         (AripSharedDict      *self,
                                                 const char          *key,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean        arip_shared_dict_remove         (AripSharedDict      *self,
                                                 const char          *key,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
GStrv           arip_shared_dict_get_keys       (AripSharedDict      *self,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
gboolean        arip_shared_dict_replace        (AripSharedDict      *self,
                                                 const char          *key,
                                                 GVariant            *expected,
                                                 GVariant            *value,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
void            arip_shared_dict_set_async      (AripSharedDict      *self,
                                                 const char          *key,
                                                 GVariant            *value,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean        arip_shared_dict_set_finish     (AripSharedDict      *self,
                                                 GAsyncResult        *result,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
void            arip_shared_dict_lookup_async   (AripSharedDict      *self,
                                                 const char          *key,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
GVariant       *arip_shared_dict_lookup_finish  (AripSharedDict      *self,
                                                 GAsyncResult        *result,
                                                 GError             **error);
ARIP_AVAILABLE_IN_ALL
void            arip_shared_dict_replace_async  (AripSharedDict      *self,
                                                 const char          *key,
                                                 GVariant            *expected,
                                                 GVariant            *value,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
gboolean        arip_shared_dict_replace_finish (AripSharedDict      *self,
                                                 GAsyncResult        *result,
                                                 GError             **error);

G_END_DECLS
