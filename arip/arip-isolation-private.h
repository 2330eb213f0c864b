/* arip-isolation-private.h: a launcher's limits and sandbox, and how they
 * reach the worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "arip-launcher.h"
#include "arip-types.h"

G_BEGIN_DECLS

/* The variable that carries a launcher's isolation to its worker, which
 * takes it out of its environment at once. Its value is the text form of
 * an ARIP_ISOLATION_TYPE GVariant. */
#define ARIP_ISOLATION_ENV   "ARIP_ISOLATION"
/* rlimits (resource, soft, hard); the CPU seconds per call (0: none);
 * flags; policy; allowed paths (path, writable). */
#define ARIP_ISOLATION_TYPE  "(a(itt)uuua(ayb))"

typedef struct _AripIsolation AripIsolation;

AripIsolation *arip_isolation_new  (void);
void           arip_isolation_free (AripIsolation *self);

/* NULL when the launcher asks for nothing: the variable is then not set. */
char          *arip_isolation_to_env (const AripIsolation *self);

/* What a worker's death by a limit needs to be named. */
typedef struct {
  gboolean          asked;          /* anything at all: the worker reports */
  guint64           memory_limit;   /* RLIMIT_AS's soft limit; 0: none */
  guint             cpu_limit;      /* seconds; 0: none */
  AripSandboxFlags  flags;          /* asked for */
  AripSandboxPolicy policy;
} AripIsolationSummary;

void     arip_isolation_summarize (const AripIsolation  *self,
                                   AripIsolationSummary *out);

/* The launcher's, created on first use when @create. */
AripIsolation *arip_launcher_get_isolation (AripLauncher *launcher,
                                            gboolean      create);

/* Under CLEAR_ENV: whether the variable @entry ("NAME=value", @name_len
 * bytes of name) is one a worker needs to start and keeps. */
gboolean arip_isolation_keeps_variable (const char *entry,
                                        gsize       name_len);

/* Adds to @message (the error for a worker that died of @wait_status)
 * what a limit had to do with it, if anything. */
void     arip_isolation_explain_death (const AripIsolationSummary *summary,
                                       gint                        wait_status,
                                       gboolean                    killed_by_us,
                                       const GString              *last_words,
                                       GString                    *message);

/* A flags value as a person reads it: "no network, seccomp". */
char    *arip_sandbox_flags_describe (AripSandboxFlags flags);

G_END_DECLS
