/* arip-call-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "arip-call.h"
#include "arip-channel-private.h"

G_BEGIN_DECLS

AripCall *arip_call_new          (const char   *function,
                                  GVariant     *args,
                                  GUnixFDList  *fd_list,
                                  AripChannel  *channel,
                                  GCancellable *cancellable,
                                  GMainContext *context);
void      arip_call_emit_message (AripCall     *self,
                                  GVariant     *message);

G_END_DECLS
