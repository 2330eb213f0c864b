/* arip-shared-memory.h: bytes mapped in several processes
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

#define ARIP_TYPE_SHARED_MEMORY (arip_shared_memory_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripSharedMemory, arip_shared_memory, ARIP, SHARED_MEMORY, AripShared)

ARIP_AVAILABLE_IN_ALL
AripSharedMemory *arip_shared_memory_new      (gsize              size,
                                               GError           **error);
ARIP_AVAILABLE_IN_ALL
gpointer          arip_shared_memory_get_data (AripSharedMemory  *self,
                                               gsize             *size);
ARIP_AVAILABLE_IN_ALL
gsize             arip_shared_memory_get_size (AripSharedMemory  *self);

G_END_DECLS
