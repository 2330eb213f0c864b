/* arip-registry-private.h: the functions a program offers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "arip-call.h"

G_BEGIN_DECLS

/* Looks @name up; FALSE if it was never registered. */
gboolean arip_registry_lookup (const char  *name,
                               AripFunc    *func,
                               gpointer    *user_data);

G_END_DECLS
