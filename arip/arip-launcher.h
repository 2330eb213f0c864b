/* arip-launcher.h: settings for starting worker processes
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

#define ARIP_TYPE_LAUNCHER (arip_launcher_get_type ())

ARIP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (AripLauncher, arip_launcher, ARIP, LAUNCHER, GObject)

ARIP_AVAILABLE_IN_ALL
AripLauncher        *arip_launcher_new                 (GSubprocessFlags      flags);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_worker_argv     (AripLauncher         *self,
                                                        const char * const   *argv);
ARIP_AVAILABLE_IN_ALL
const char * const  *arip_launcher_get_worker_argv     (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_setenv              (AripLauncher         *self,
                                                        const char           *variable,
                                                        const char           *value,
                                                        gboolean              overwrite);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_unsetenv            (AripLauncher         *self,
                                                        const char           *variable);
ARIP_AVAILABLE_IN_ALL
const char          *arip_launcher_getenv              (AripLauncher         *self,
                                                        const char           *variable);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_environ         (AripLauncher         *self,
                                                        const char * const   *env);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_cwd             (AripLauncher         *self,
                                                        const char           *cwd);
ARIP_AVAILABLE_IN_ALL
const char          *arip_launcher_get_cwd             (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_flags           (AripLauncher         *self,
                                                        GSubprocessFlags      flags);
ARIP_AVAILABLE_IN_ALL
GSubprocessFlags     arip_launcher_get_flags           (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_take_fd             (AripLauncher         *self,
                                                        gint                  source_fd,
                                                        gint                  target_fd);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_start_method    (AripLauncher         *self,
                                                        AripStartMethod       method);
ARIP_AVAILABLE_IN_ALL
AripStartMethod      arip_launcher_get_start_method    (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_startup_timeout (AripLauncher         *self,
                                                        guint                 timeout_ms);
ARIP_AVAILABLE_IN_ALL
guint                arip_launcher_get_startup_timeout (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_call_timeout    (AripLauncher         *self,
                                                        guint                 timeout_ms);
ARIP_AVAILABLE_IN_ALL
guint                arip_launcher_get_call_timeout    (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_stop_timeouts   (AripLauncher         *self,
                                                        guint                 interrupt_ms,
                                                        guint                 terminate_ms);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_get_stop_timeouts   (AripLauncher         *self,
                                                        guint                *interrupt_ms,
                                                        guint                *terminate_ms);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_run_async           (AripLauncher         *self,
                                                        const char           *function,
                                                        GVariant             *args,
                                                        GCancellable         *cancellable,
                                                        GAsyncReadyCallback   callback,
                                                        gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GVariant            *arip_launcher_run_finish          (AripLauncher         *self,
                                                        GAsyncResult         *result,
                                                        GError              **error);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_run_with_fds_async  (AripLauncher         *self,
                                                        const char           *function,
                                                        GVariant             *args,
                                                        GUnixFDList          *fd_list,
                                                        GCancellable         *cancellable,
                                                        GAsyncReadyCallback   callback,
                                                        gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GVariant            *arip_launcher_run_with_fds_finish (AripLauncher         *self,
                                                        GAsyncResult         *result,
                                                        GUnixFDList         **out_fd_list,
                                                        GError              **error);
ARIP_AVAILABLE_IN_ALL
GVariant            *arip_launcher_run_sync            (AripLauncher         *self,
                                                        const char           *function,
                                                        GVariant             *args,
                                                        GCancellable         *cancellable,
                                                        GError              **error);

ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_rlimit          (AripLauncher         *self,
                                                        gint                  resource,
                                                        guint64               soft,
                                                        guint64               hard);
ARIP_AVAILABLE_IN_ALL
gboolean             arip_launcher_get_rlimit          (AripLauncher         *self,
                                                        gint                  resource,
                                                        guint64              *out_soft,
                                                        guint64              *out_hard);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_memory_limit    (AripLauncher         *self,
                                                        guint64               bytes);
ARIP_AVAILABLE_IN_ALL
guint64              arip_launcher_get_memory_limit    (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_cpu_limit       (AripLauncher         *self,
                                                        guint                 seconds);
ARIP_AVAILABLE_IN_ALL
guint                arip_launcher_get_cpu_limit       (AripLauncher         *self);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_set_sandbox         (AripLauncher         *self,
                                                        AripSandboxFlags      flags,
                                                        AripSandboxPolicy     policy);
ARIP_AVAILABLE_IN_ALL
AripSandboxFlags     arip_launcher_get_sandbox         (AripLauncher         *self,
                                                        AripSandboxPolicy    *out_policy);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_allow_path          (AripLauncher         *self,
                                                        const char           *path,
                                                        gboolean              writable);

ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_run_command_async   (AripLauncher         *self,
                                                        const char * const   *argv,
                                                        GBytes               *stdin_data,
                                                        GCancellable         *cancellable,
                                                        GAsyncReadyCallback   callback,
                                                        gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
gboolean             arip_launcher_run_command_finish  (AripLauncher         *self,
                                                        GAsyncResult         *result,
                                                        GBytes              **out_stdout,
                                                        GBytes              **out_stderr,
                                                        gint                 *out_exit_status,
                                                        GError              **error);
ARIP_AVAILABLE_IN_ALL
void                 arip_launcher_spawn_command_async (AripLauncher         *self,
                                                        const char * const   *argv,
                                                        GCancellable         *cancellable,
                                                        GAsyncReadyCallback   callback,
                                                        gpointer              user_data);
ARIP_AVAILABLE_IN_ALL
GSubprocess         *arip_launcher_spawn_command_finish (AripLauncher        *self,
                                                        GAsyncResult         *result,
                                                        GError              **error);

G_END_DECLS
