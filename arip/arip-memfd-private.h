/* arip-memfd-private.h: large values in sealed memfds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Values of at least this many bytes travel in a memfd instead of through
 * the socket (see bench/: below it, the socket's copies cost less than
 * creating, mapping and faulting in a memfd). */
#define ARIP_MEMFD_MIN_SIZE (256 * 1024)

/* The seals a memfd must carry: nobody can change it any more. */
#define ARIP_MEMFD_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* A sealed memfd holding @value serialized, close-on-exec; -1 with @error
 * set. The value's bytes are copied once, into the memfd's pages, unless
 * they are a mapped memfd already: then it is that one, not copied. */
gint    arip_memfd_new_for_value (GVariant     *value,
                                  GError      **error);

/* Maps @fd (consumed), which must be a memfd of @size bytes carrying every
 * seal of ARIP_MEMFD_SEALS; NULL with ARIP_ERROR_INVALID_DATA (or
 * ARIP_ERROR_NO_MEMORY when it cannot be mapped) otherwise. The bytes are
 * the mapping itself: nothing is copied. The descriptor stays open while
 * they live (for the first values mapped at a time), so that they can be
 * sent on as they are. */
GBytes *arip_memfd_map           (gint          fd,
                                  guint64       size,
                                  GError      **error);

G_END_DECLS
