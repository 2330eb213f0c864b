/* arip-process.h: one child process running one call
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
#include "arip-launcher.h"
#include "arip-pool.h"
#include "arip-version-macros.h"

G_BEGIN_DECLS

#define ARIP_TYPE_PROCESS (arip_process_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripProcess, arip_process, ARIP, PROCESS, GObject)

ARIP_AVAILABLE_IN_ALL
AripProcess   *arip_process_new                   (AripLauncher         *launcher,
                                                   const char           *function,
                                                   GVariant             *args);
ARIP_AVAILABLE_IN_ALL
AripProcess   *arip_process_new_with_fds          (AripLauncher         *launcher,
                                                   const char           *function,
                                                   GVariant             *args,
                                                   GUnixFDList          *fd_list);
ARIP_AVAILABLE_IN_ALL
GUnixFDList   *arip_process_get_result_fd_list    (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
AripProcess   *arip_process_new_for_pool          (AripPool             *pool,
                                                   const char           *function,
                                                   GVariant             *args);
ARIP_AVAILABLE_IN_ALL
AripPool      *arip_process_get_pool              (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
const char    *arip_process_get_function          (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
GVariant      *arip_process_get_args              (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
AripLauncher  *arip_process_get_launcher          (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
void           arip_process_start_async           (AripProcess          *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_process_start_finish          (AripProcess          *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
ARIP_AVAILABLE_IN_ALL
void           arip_process_wait_async            (AripProcess          *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GVariant      *arip_process_wait_finish           (AripProcess          *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
ARIP_AVAILABLE_IN_ALL
void           arip_process_wait_for_state_async  (AripProcess          *self,
                                                   AripState             state,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_process_wait_for_state_finish (AripProcess          *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
ARIP_AVAILABLE_IN_ALL
void           arip_process_stop_async            (AripProcess          *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_process_stop_finish           (AripProcess          *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
ARIP_AVAILABLE_IN_ALL
GVariant      *arip_process_get_result            (AripProcess          *self,
                                                   GError              **error);
ARIP_AVAILABLE_IN_ALL
const GError  *arip_process_get_error             (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
AripState      arip_process_get_state             (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
GPid           arip_process_get_pid               (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
AripStartMethod arip_process_get_start_method     (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
AripSandboxFlags arip_process_get_sandbox         (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_process_get_if_exited         (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
gint           arip_process_get_exit_status       (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
gboolean       arip_process_get_if_signaled       (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
gint           arip_process_get_term_sig          (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
gdouble        arip_process_get_progress          (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
void           arip_process_send_signal           (AripProcess          *self,
                                                   gint                  signum);
ARIP_AVAILABLE_IN_ALL
void           arip_process_interrupt             (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
void           arip_process_terminate             (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
void           arip_process_kill                  (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
void           arip_process_send_message          (AripProcess          *self,
                                                   GVariant             *message);
ARIP_AVAILABLE_IN_ALL
GInputStream  *arip_process_get_stdout_pipe       (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
GInputStream  *arip_process_get_stderr_pipe       (AripProcess          *self);
ARIP_AVAILABLE_IN_ALL
GOutputStream *arip_process_get_stdin_pipe        (AripProcess          *self);

G_END_DECLS
