/* arip-run.c: one-shot calls in a child process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "arip-process.h"
#include "arip-process-private.h"
#include "arip-run.h"

/**
 * arip_run_in_process_async:
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @cancellable: (nullable): stops the call: the child is interrupted, then
 *   terminated, then killed (2 seconds apart), and the call fails with
 *   %G_IO_ERROR_CANCELLED once the child is gone
 * @callback: (scope async) (closure user_data): called when the call ended
 * @user_data: data for @callback
 *
 * Runs @function in a new child process and hands back its result: the
 * one-shot way to use arip. The child is started from the running program
 * with the default settings (see [class@Arip.Launcher] for others) once the
 * global limiter has a free slot.
 *
 * The result is the GVariant the function returned. If it fails, the error
 * is its error (same domain, code and message), or one of [error@Arip.Error]
 * saying how the child ended: %ARIP_ERROR_SIGNALED for a crash,
 * %ARIP_ERROR_EXITED for an exit() without a result, and so on.
 */
void
arip_run_in_process_async (const char          *function,
                           GVariant            *args,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(AripProcess) process = NULL;

  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  process = arip_process_new (NULL, function, args);
  arip_process_run_async (process, NULL, arip_run_in_process_async,
                          cancellable, callback, user_data);
}

/**
 * arip_run_in_process_finish:
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [func@Arip.run_in_process_async].
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_run_in_process_finish (GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == arip_run_in_process_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * arip_run_in_process_sync:
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @cancellable: (nullable): stops the call
 * @error: return location for an error
 *
 * Runs @function in a new child process and blocks until it ended. The
 * wait runs a private main context, never the caller's; but a process of
 * the caller's context that holds a limiter slot cannot finish meanwhile,
 * so do not block the thread whose context runs other arip processes.
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_run_in_process_sync (const char    *function,
                          GVariant      *args,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autoptr(AripProcess) process = NULL;

  g_return_val_if_fail (function != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);

  process = arip_process_new (NULL, function, args);
  return arip_process_run_sync (process, cancellable, error);
}
