/* arip-memfd.h: values held in sealed memfds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <glib.h>

#include "arip-version-macros.h"

G_BEGIN_DECLS

ARIP_AVAILABLE_IN_ALL
GVariant *arip_variant_new_from_memfd (gint                 fd,
                                       const GVariantType  *type,
                                       GError             **error);
ARIP_AVAILABLE_IN_ALL
gint      arip_variant_dup_memfd      (GVariant            *value,
                                       guint64             *offset);

G_END_DECLS
