/* arip-normal-form-private.h: is a received value in GVariant's normal form?
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether the @size bytes at @data are a value of @type (a definite type
 * string) in normal form, as g_variant_is_normal_form() would say, but
 * without going through a large fixed-size array element by element:
 * 1 normal, 0 not normal, -1 not decided here (ask GLib). Never 1 where
 * GLib says no. It does a bounded amount of work (-1 beyond): it runs on
 * the main loop as frames arrive. */
int arip_normal_form_check      (const char    *type,
                                 gconstpointer  data,
                                 gsize          size);

/* The same with no bound on the work, for a thread. */
int arip_normal_form_check_full (const char    *type,
                                 gconstpointer  data,
                                 gsize          size);

G_END_DECLS
