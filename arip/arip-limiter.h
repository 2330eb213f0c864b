/* arip-limiter.h: how many children may run at once
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
guint arip_get_max_processes     (void);
ARIP_AVAILABLE_IN_ALL
void  arip_set_max_processes     (guint max);
ARIP_AVAILABLE_IN_ALL
guint arip_get_running_processes (void);

G_END_DECLS
