/* arip-pool-private.h: processes whose call runs on a pool's worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "arip-pool.h"
#include "arip-process.h"

G_BEGIN_DECLS

typedef struct _PoolCall AripPoolCall;

/* Queues the call of @process, created with arip_process_new_for_pool();
 * from the pool's main context. The pool tells the process how it goes
 * with the arip_process_pool_*() functions; the call is valid until
 * arip_process_pool_finish(). */
AripPoolCall *arip_pool_submit_process      (AripPool     *self,
                                             AripProcess  *process,
                                             const char   *function,
                                             GVariant     *args);
GMainContext *arip_pool_get_context         (AripPool     *self);
/* SIGINT interrupts the call (it never reaches the worker's next call);
 * any other signal goes to the worker that runs it. */
void          arip_pool_call_signal         (AripPoolCall *call,
                                             gint          signum);
/* Queued: ends at once, cancelled. Running: interrupt, terminate, kill,
 * with the pool launcher's stop timeouts. */
void          arip_pool_call_stop           (AripPoolCall *call);
/* Queued: ends at once, killed. Running: its worker is killed. */
void          arip_pool_call_kill           (AripPoolCall *call);
/* A message (a full or floating reference, taken) for the call; queued,
 * it follows the call. */
void          arip_pool_call_send           (AripPoolCall *call,
                                             GVariant     *message);
gsize         arip_pool_call_get_queued_bytes (AripPoolCall *call);

G_END_DECLS
