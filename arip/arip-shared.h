/* arip-shared.h: objects shared between a process and its children
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>

#include "arip-call.h"
#include "arip-version-macros.h"

G_BEGIN_DECLS

#define ARIP_TYPE_SHARED (arip_shared_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (AripShared, arip_shared, ARIP, SHARED, GObject)

/**
 * AripSharedClass:
 *
 * The class of the shared objects; it cannot be derived from outside arip.
 */
struct _AripSharedClass
{
  /*< private >*/
  GObjectClass parent_class;
  gpointer padding[8];
};

/**
 * ARIP_SHARED_HANDLE_TYPE:
 *
 * The #GVariantType of a shared object's handle, `(stt)`: the object's
 * type name, its number and a key that only the processes it was handed
 * to know.
 */
#define ARIP_SHARED_HANDLE_TYPE ((const GVariantType *) "(stt)")

ARIP_AVAILABLE_IN_ALL
GVariant   *arip_shared_to_variant (AripShared  *self);
ARIP_AVAILABLE_IN_ALL
AripShared *arip_call_get_shared   (AripCall    *call,
                                    GVariant    *handle,
                                    GError     **error);
ARIP_AVAILABLE_IN_ALL
AripShared *arip_shared_from_variant (GVariant  *handle,
                                      GError   **error);
ARIP_AVAILABLE_IN_ALL
gboolean    arip_shared_is_owner   (AripShared  *self);

G_END_DECLS
