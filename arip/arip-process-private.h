/* arip-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

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

G_END_DECLS
