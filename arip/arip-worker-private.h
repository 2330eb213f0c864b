/* arip-worker-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The argv a worker is started with by default: the program's own, as the
 * kernel started it (argv[0] first). Transfer none. */
const char * const *arip_worker_get_default_argv (void);

/* The file to execute to start the program again: the path the program
 * was started from, or "/proc/self/exe". Transfer none. */
const char         *arip_worker_get_own_executable (void);

/* In a process that was started as a worker but whose arip_init() never
 * ran: says why on stderr and on the crash pipe, and exits. Otherwise
 * returns at once. */
void                arip_worker_refuse_to_spawn_if_uninitialized (void);

/* FALSE with @error when this process runs an interpreter whose arip
 * override was not loaded: no call may run. */
gboolean            arip_worker_check_binding (GError **error);

G_END_DECLS
