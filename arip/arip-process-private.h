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

/* Reads what a dying child wrote to its crash pipe (at most 16 KiB),
 * without blocking; NULL if nothing. */
GString  *arip_read_last_words   (gint                 fd);
/* The error for a child that ended with @wait_status without answering:
 * ARIP_ERROR_SIGNALED (naming the signal, with @last_words) or
 * ARIP_ERROR_EXITED. */
GError   *arip_exit_error_new    (GPid                 pid,
                                  const char          *function,
                                  gint                 wait_status,
                                  const GString       *last_words);

G_END_DECLS
