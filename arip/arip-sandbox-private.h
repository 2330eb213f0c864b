/* arip-sandbox-private.h: a worker applying its limits and sandbox to itself
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "arip-types.h"

G_BEGIN_DECLS

typedef struct {
  gboolean          asked;      /* the launcher asked for anything */
  AripSandboxFlags  wanted;
  AripSandboxFlags  applied;
  AripSandboxPolicy policy;
  gboolean          refused;    /* the worker must not serve */
  GPtrArray        *problems;   /* char *, a line per piece not applied */
} AripSandboxReport;

/* In a worker, before it serves: applies ARIP_ISOLATION_ENV, if it is set,
 * and takes it out of the environment. @pool_worker: the CPU limit moves
 * forward at each call. The process should run a single thread: the
 * network namespace and Landlock only reach the calling thread and those
 * it starts later. */
void        arip_sandbox_apply        (gboolean           pool_worker,
                                       AripSandboxReport *report);
void        arip_sandbox_report_clear (AripSandboxReport *report);
/* The SANDBOX frame for @report. */
GBytes     *arip_sandbox_report_encode (const AripSandboxReport *report);

/* A pool worker starts a call: the CPU limit counts from now. */
void        arip_sandbox_begin_call   (void);

/* The name of the system call numbered @nr if the worker's seccomp
 * filter blocks it, else NULL. Async-signal-safe. */
const char *arip_sandbox_blocked_syscall_name (long nr);

/* In the fork server: compiles the seccomp filter once, for every worker
 * it forks. */
void        arip_sandbox_prepare      (void);

/* How a worker's crash report names a call its filter blocked; the
 * parent reads the name after it. */
#define ARIP_SANDBOX_BLOCKED_LINE "the sandbox's seccomp filter blocked the system call "

G_END_DECLS
