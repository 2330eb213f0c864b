/* arip-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "arip-channel-private.h"
#include "arip-process.h"

G_BEGIN_DECLS

/* Starts @self, waits for it, and completes a task of @source_object with
 * the result (a GVariant). Cancelling @cancellable stops the process (with
 * escalation) and then fails the task with G_IO_ERROR_CANCELLED. */
void      arip_process_run_async (AripProcess         *self,
                                  gpointer             source_object,
                                  gpointer             source_tag,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data);
/* The same on a private main context; returns once the child is reaped. */
GVariant *arip_process_run_sync  (AripProcess         *self,
                                  GCancellable        *cancellable,
                                  GError             **error);

/* The result's descriptors of the process that arip_process_run_async()
 * ran for @task. Transfer none. */
GUnixFDList *arip_process_run_get_fd_list (GTask *task);

/* What the pool tells a process whose call runs on one of its workers:
 * a worker took the call; a message or progress frame came for it (FALSE:
 * it is invalid); the call ended (@value and @error consumed; how the
 * worker died, if it did). */
void      arip_process_pool_assigned (AripProcess      *self,
                                      GPid              pid,
                                      AripStartMethod   start_method,
                                      AripSandboxFlags  sandbox);
gboolean  arip_process_pool_frame    (AripProcess *self,
                                      AripFrame   *frame);
void      arip_process_pool_finish   (AripProcess *self,
                                      GVariant    *value,
                                      GError      *error,
                                      gboolean     worker_died,
                                      gint         wait_status);

G_END_DECLS
