/* arip-run.h: one-shot calls in a child process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>

#include "arip-version-macros.h"

G_BEGIN_DECLS

ARIP_AVAILABLE_IN_ALL
void      arip_run_in_process_async  (const char          *function,
                                      GVariant            *args,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_run_in_process_finish (GAsyncResult        *result,
                                      GError             **error);
ARIP_AVAILABLE_IN_ALL
GVariant *arip_run_in_process_sync   (const char          *function,
                                      GVariant            *args,
                                      GCancellable        *cancellable,
                                      GError             **error);

G_END_DECLS
