/* arip-fork-private.h: forking a process that may embed an interpreter
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The threads this process runs (at least 1). */
guint arip_fork_count_threads (void);

/* fork(), with an embedded CPython told before and after, as os.fork()
 * does; the caller checked that this process runs a single thread. */
GPid  arip_fork               (void);

G_END_DECLS
