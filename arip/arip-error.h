/* arip-error.h: the ARIP_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (ARIP_INSIDE) && !defined (ARIP_COMPILATION)
# error "Only <arip.h> can be included directly."
#endif

#include <glib.h>

#include "arip-version-macros.h"

G_BEGIN_DECLS

/**
 * ARIP_ERROR:
 *
 * The error domain of arip. Errors in it have codes from [enum@Arip.Error].
 */
#define ARIP_ERROR (arip_error_quark ())

/**
 * AripError:
 * @ARIP_ERROR_FAILED: a failure with no more specific code
 * @ARIP_ERROR_UNKNOWN_FUNCTION: the worker has no function registered under
 *   the name that was asked for
 * @ARIP_ERROR_EXITED: the child exited without returning a result (for
 *   example it called `exit (N)`); the exit status is available from
 *   arip_process_get_exit_status()
 * @ARIP_ERROR_SIGNALED: the child was terminated by a signal (a crash, an
 *   abort, SIGTERM); the message names the signal and carries what the
 *   child could write before dying
 * @ARIP_ERROR_PROCESS_KILLED: the child was killed with arip_process_kill()
 * @ARIP_ERROR_CHILD_CANCELLED: the function noticed that its call was
 *   interrupted and returned %G_IO_ERROR_CANCELLED
 * @ARIP_ERROR_INVALID_DATA: the child sent something that is not a valid
 *   frame of the arip protocol; it was killed
 * @ARIP_ERROR_TIMED_OUT: the child did not start executing the function
 *   within the startup timeout, or ran longer than the call timeout; it was
 *   stopped
 * @ARIP_ERROR_INVALID_STATE: the operation does not fit the state the
 *   process is in (starting it twice, waiting before starting it, asking
 *   for the result before it finished)
 * @ARIP_ERROR_SPAWN_FAILED: the worker program could not be started
 * @ARIP_ERROR_NOT_SUPPORTED: the requested feature is not available
 * @ARIP_ERROR_NO_MEMORY: this process could not allocate the memory a value
 *   from the child needs (under a memory limit, for example); the call failed
 *   and the child was killed
 * @ARIP_ERROR_UNKNOWN_DOMAIN: the function failed with an error of a domain
 *   this process does not know, and too many such domains arrived already to
 *   create one more (error domains are never freed); the message starts with
 *   the domain's name and the code
 * @ARIP_ERROR_WOULD_DEADLOCK: a blocking call would wait for ever: every
 *   process slot is held by processes whose main context cannot run while
 *   the call blocks
 * @ARIP_ERROR_CLOSED: the shared queue was closed (and, for a get, is
 *   empty)
 * @ARIP_ERROR_BROKEN: the shared barrier was aborted or reset, or a party
 *   died while waiting at it
 * @ARIP_ERROR_SANDBOX: the worker could not be given every piece of the
 *   sandbox its launcher requires (%ARIP_SANDBOX_POLICY_REQUIRED); the
 *   message names each piece and why
 *
 * Error codes in the %ARIP_ERROR domain. Codes are only ever appended.
 */
typedef enum {
  ARIP_ERROR_FAILED,
  ARIP_ERROR_UNKNOWN_FUNCTION,
  ARIP_ERROR_EXITED,
  ARIP_ERROR_SIGNALED,
  ARIP_ERROR_PROCESS_KILLED,
  ARIP_ERROR_CHILD_CANCELLED,
  ARIP_ERROR_INVALID_DATA,
  ARIP_ERROR_TIMED_OUT,
  ARIP_ERROR_INVALID_STATE,
  ARIP_ERROR_SPAWN_FAILED,
  ARIP_ERROR_NOT_SUPPORTED,
  ARIP_ERROR_NO_MEMORY,
  ARIP_ERROR_UNKNOWN_DOMAIN,
  ARIP_ERROR_WOULD_DEADLOCK,
  ARIP_ERROR_CLOSED,
  ARIP_ERROR_BROKEN,
  ARIP_ERROR_SANDBOX,
} AripError;

ARIP_AVAILABLE_IN_ALL
GQuark arip_error_quark (void);

G_END_DECLS
