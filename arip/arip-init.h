/* arip-init.h: naming the functions a program offers, and serving them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <glib.h>

#include "arip-call.h"
#include "arip-version-macros.h"

G_BEGIN_DECLS

ARIP_AVAILABLE_IN_ALL
void     arip_register_function (const char     *name,
                                 AripFunc        func,
                                 gpointer        user_data,
                                 GDestroyNotify  notify);
ARIP_AVAILABLE_IN_ALL
void     arip_init              (int            *argc,
                                 char         ***argv);
ARIP_AVAILABLE_IN_ALL
gboolean arip_is_worker         (void);
ARIP_AVAILABLE_IN_ALL
void     arip_set_language_binding (const char *name);
ARIP_AVAILABLE_IN_ALL
void     arip_set_crash_notes_fd (int fd);
ARIP_AVAILABLE_IN_ALL
void     arip_exit_worker       (int            status);

/**
 * AripPreloadFunc:
 * @user_data: the data given to arip_set_preload_func()
 *
 * What the fork server runs once before it forks workers.
 */
typedef void (*AripPreloadFunc) (gpointer user_data);

ARIP_AVAILABLE_IN_ALL
void     arip_set_preload_func  (AripPreloadFunc func,
                                 gpointer        user_data);

G_END_DECLS
