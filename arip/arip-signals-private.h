/* arip-signals-private.h: signal names, async-signal-safe
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* "SIGSEGV" for SIGSEGV; NULL for a number we have no name for. The
 * returned strings are static, so this is safe in a signal handler. */
const char *arip_signal_name (int signum);

/* Like arip_signal_name() but never NULL ("signal 42"); free the result. */
char       *arip_signal_describe (int signum);

G_END_DECLS
