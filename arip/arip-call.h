/* arip-call.h: the running call, as the child sees it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "arip-types.h"
#include "arip-version-macros.h"

G_BEGIN_DECLS

#define ARIP_TYPE_CALL (arip_call_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripCall, arip_call, ARIP, CALL, GObject)

/**
 * AripFunc:
 * @call: the call being served; answer it with one of the
 *   `arip_call_return_*()` functions, now or later
 * @args: the arguments the parent passed
 * @user_data: the data given to arip_register_function()
 *
 * A function that can run in a worker process. It is called in the worker,
 * with a fresh main context pushed as the thread default; it may answer
 * before returning, or return and answer later from that main context.
 */
typedef void (*AripFunc) (AripCall *call,
                          GVariant *args,
                          gpointer  user_data);

ARIP_AVAILABLE_IN_ALL
const char   *arip_call_get_function_name   (AripCall     *self);
ARIP_AVAILABLE_IN_ALL
GVariant     *arip_call_get_args            (AripCall     *self);
ARIP_AVAILABLE_IN_ALL
GCancellable *arip_call_get_cancellable     (AripCall     *self);
ARIP_AVAILABLE_IN_ALL
void          arip_call_return_value        (AripCall     *self,
                                             GVariant     *value);
ARIP_AVAILABLE_IN_ALL
void          arip_call_return_value_with_fds (AripCall   *self,
                                               GVariant   *value,
                                               GUnixFDList *fd_list);
ARIP_AVAILABLE_IN_ALL
GUnixFDList  *arip_call_get_fd_list         (AripCall     *self);
ARIP_AVAILABLE_IN_ALL
void          arip_call_return_error        (AripCall     *self,
                                             GQuark        domain,
                                             gint          code,
                                             const char   *format,
                                             ...) G_GNUC_PRINTF (4, 5);
ARIP_AVAILABLE_IN_ALL
void          arip_call_return_error_literal (AripCall    *self,
                                              GQuark       domain,
                                              gint         code,
                                              const char  *message);
ARIP_AVAILABLE_IN_ALL
void          arip_call_return_gerror       (AripCall     *self,
                                             const GError *error);
ARIP_AVAILABLE_IN_ALL
gboolean      arip_call_has_returned        (AripCall     *self);
ARIP_AVAILABLE_IN_ALL
void          arip_call_send_message        (AripCall     *self,
                                             GVariant     *message);
ARIP_AVAILABLE_IN_ALL
void          arip_call_set_progress        (AripCall     *self,
                                             gdouble       progress);

G_END_DECLS
