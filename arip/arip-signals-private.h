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

/* How far a stop has gone: interrupted, then terminated, then killed. */
typedef enum {
  ARIP_STOP_NONE,
  ARIP_STOP_INTERRUPTED,
  ARIP_STOP_TERMINATED,
  ARIP_STOP_KILLED,
} AripStopStage;

/* Takes the next step of stopping @pid, a child not yet reaped: SIGINT
 * (sent with sigqueue() carrying @call_seq when that is not 0), SIGTERM,
 * SIGKILL. Advances @stage and returns how many milliseconds to wait
 * before the next step, or -1 when there is none. */
gint        arip_stop_step (GPid           pid,
                            guint32        call_seq,
                            AripStopStage *stage,
                            guint          interrupt_ms,
                            guint          terminate_ms);

G_END_DECLS
