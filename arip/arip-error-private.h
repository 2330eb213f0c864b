/* arip-error-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Binds the library's gettext domain; cheap after the first call. */
void _arip_i18n_init (void);

G_END_DECLS
