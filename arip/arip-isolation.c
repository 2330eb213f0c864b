/* arip-isolation.c: a launcher's limits and sandbox, and how they reach the
 * worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The parent only records what the launcher asks for and hands it to the
 * worker in one environment variable; the worker applies it to itself
 * before it serves (arip-sandbox.c), the same way whether it was spawned,
 * forked by the fork server or is a pool's, and reports what it applied
 * in a SANDBOX frame before its hello. The environment is the one piece
 * the parent applies: it builds the worker's.
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <glib/gi18n-lib.h>

#include "arip-isolation-private.h"
#include "arip-sandbox-private.h"

typedef struct {
  gint    resource;
  guint64 soft;
  guint64 hard;
} Rlimit;

typedef struct {
  char     *path;
  gboolean  writable;
} AllowedPath;

struct _AripIsolation {
  GArray            *rlimits;      /* Rlimit, one per resource */
  guint              cpu_limit;
  AripSandboxFlags   flags;
  AripSandboxPolicy  policy;
  GArray            *paths;        /* AllowedPath */
};

static void
allowed_path_clear (gpointer data)
{
  g_free (((AllowedPath *) data)->path);
}

AripIsolation *
arip_isolation_new (void)
{
  AripIsolation *self = g_new0 (AripIsolation, 1);

  self->rlimits = g_array_new (FALSE, FALSE, sizeof (Rlimit));
  self->paths = g_array_new (FALSE, FALSE, sizeof (AllowedPath));
  g_array_set_clear_func (self->paths, allowed_path_clear);
  return self;
}

void
arip_isolation_free (AripIsolation *self)
{
  if (self == NULL)
    return;
  g_array_unref (self->rlimits);
  g_array_unref (self->paths);
  g_free (self);
}

static Rlimit *
find_rlimit (const AripIsolation *self,
             gint                 resource)
{
  for (guint i = 0; i < self->rlimits->len; i++)
    if (g_array_index (self->rlimits, Rlimit, i).resource == resource)
      return &g_array_index (self->rlimits, Rlimit, i);
  return NULL;
}

char *
arip_isolation_to_env (const AripIsolation *self)
{
  g_autoptr(GVariant) value = NULL;
  g_autofree char *text = NULL;
  GVariantBuilder limits, paths;

  if (self == NULL ||
      (self->rlimits->len == 0 && self->cpu_limit == 0 && self->flags == 0))
    return NULL;

  g_variant_builder_init (&limits, G_VARIANT_TYPE ("a(itt)"));
  for (guint i = 0; i < self->rlimits->len; i++)
    {
      const Rlimit *limit = &g_array_index (self->rlimits, Rlimit, i);

      g_variant_builder_add (&limits, "(itt)", limit->resource, limit->soft, limit->hard);
    }
  g_variant_builder_init (&paths, G_VARIANT_TYPE ("a(ayb)"));
  for (guint i = 0; i < self->paths->len; i++)
    {
      const AllowedPath *allowed = &g_array_index (self->paths, AllowedPath, i);

      g_variant_builder_add (&paths, "(^ayb)", allowed->path, allowed->writable);
    }
  value = g_variant_ref_sink (g_variant_new ("(" "a(itt)" "uuu" "a(ayb)" ")", &limits,
                                             self->cpu_limit, (guint32) self->flags,
                                             (guint32) self->policy, &paths));
  text = g_variant_print (value, FALSE);
  return g_strconcat (ARIP_ISOLATION_ENV "=", text, NULL);
}

void
arip_isolation_summarize (const AripIsolation  *self,
                          AripIsolationSummary *out)
{
  const Rlimit *as;

  memset (out, 0, sizeof *out);
  if (self == NULL)
    return;
  out->asked = self->rlimits->len > 0 || self->cpu_limit > 0 || self->flags != 0;
  as = find_rlimit (self, RLIMIT_AS);
  out->memory_limit = as != NULL && as->soft != G_MAXUINT64 ? as->soft : 0;
  out->cpu_limit = self->cpu_limit;
  out->flags = self->flags;
  out->policy = self->policy;
}

gboolean
arip_isolation_keeps_variable (const char *entry,
                               gsize       name_len)
{
  static const char * const kept[] = {
    "LD_LIBRARY_PATH", "LD_PRELOAD", "GI_TYPELIB_PATH", "PYTHONPATH", "PYTHONHOME",
    "GJS_PATH",
  };

  for (guint i = 0; i < G_N_ELEMENTS (kept); i++)
    if (strlen (kept[i]) == name_len && strncmp (entry, kept[i], name_len) == 0)
      return TRUE;
  return FALSE;
}

char *
arip_sandbox_flags_describe (AripSandboxFlags flags)
{
  static const struct {
    AripSandboxFlags  flag;
    const char       *name;
  } names[] = {
    { ARIP_SANDBOX_NO_NEW_PRIVS, N_("no new privileges") },
    { ARIP_SANDBOX_NO_NETWORK, N_("no network") },
    { ARIP_SANDBOX_RESTRICT_FILESYSTEM, N_("restricted file system") },
    { ARIP_SANDBOX_SECCOMP, N_("seccomp") },
    { ARIP_SANDBOX_CLEAR_ENV, N_("cleared environment") },
  };
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (flags & names[i].flag)
      {
        if (out->len > 0)
          g_string_append (out, ", ");
        g_string_append (out, _(names[i].name));
      }
  if (out->len == 0)
    g_string_append (out, _("none"));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The name the worker's crash report gives a system call its filter
 * blocked, or NULL. */
static char *
blocked_syscall (const GString *last_words)
{
  static const char marker[] = ARIP_SANDBOX_BLOCKED_LINE;
  const char *at, *end;

  if (last_words == NULL || (at = strstr (last_words->str, marker)) == NULL)
    return NULL;
  at += strlen (marker);
  for (end = at; *end != '\0' && *end != '\n' && *end != ' '; end++)
    ;
  return end > at ? g_strndup (at, end - at) : NULL;
}

void
arip_isolation_explain_death (const AripIsolationSummary *summary,
                              gint                        wait_status,
                              gboolean                    killed_by_us,
                              const GString              *last_words,
                              GString                    *message)
{
  gint signum;

  if (!WIFSIGNALED (wait_status))
    return;
  signum = WTERMSIG (wait_status);

  if (signum == SIGXCPU && summary->cpu_limit > 0)
    {
      g_string_append_printf (message,
                              _(": it exceeded its CPU time limit of %u s"), summary->cpu_limit);
      return;
    }

  if (signum == SIGSYS && (summary->flags & ARIP_SANDBOX_SECCOMP))
    {
      g_autofree char *name = blocked_syscall (last_words);

      if (name != NULL)
        g_string_append_printf (message, _(": its sandbox’s seccomp filter blocked the system "
                                           "call “%s”"), name);
      else
        g_string_append (message, _(": it made a system call its sandbox’s seccomp filter "
                                    "forbids"));
      return;
    }

  if (killed_by_us)
    return;

  /* How a failed allocation ends a program: abort() (C++, most C), a
   * breakpoint (GLib's g_error()), or the kernel's OOM killer. */
  if (summary->memory_limit > 0 &&
      (signum == SIGABRT || signum == SIGTRAP || signum == SIGKILL))
    {
      g_autofree char *size = g_format_size_full (summary->memory_limit, G_FORMAT_SIZE_IEC_UNITS);

      g_string_append_printf (message, _(": it ran under a memory limit of %s, and a program "
                                         "that cannot allocate memory most often ends this way"),
                              size);
      return;
    }

  if (signum == SIGKILL && summary->cpu_limit > 0)
    g_string_append_printf (message,
                            _(": it went on past its CPU time limit of %u s, where the kernel "
                              "kills it"), summary->cpu_limit);
}

/* ---------------------------------------------------------------------- */
/* The launcher's settings                                                */

/**
 * arip_launcher_set_rlimit:
 * @self: an #AripLauncher
 * @resource: a resource, as setrlimit() takes it (`RLIMIT_NOFILE`,
 *   `RLIMIT_NPROC`, `RLIMIT_FSIZE`…)
 * @soft: the soft limit; %G_MAXUINT64 for none (`RLIM_INFINITY`)
 * @hard: the hard limit, at least @soft; %G_MAXUINT64 for none
 *
 * Sets a resource limit the worker applies to itself before it serves a
 * call, under every start method and in pool workers. A limit the worker
 * cannot set (a hard limit above the one it inherited, without the
 * privilege to raise it) fails its start with %ARIP_ERROR_SPAWN_FAILED
 * naming the limit. Setting a resource again replaces its limits.
 *
 * See also arip_launcher_set_memory_limit() and
 * arip_launcher_set_cpu_limit(), which name the limit when a worker dies
 * of it.
 */
void
arip_launcher_set_rlimit (AripLauncher *self,
                          gint          resource,
                          guint64       soft,
                          guint64       hard)
{
  AripIsolation *isolation;
  Rlimit *limit;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (resource >= 0 && resource < RLIM_NLIMITS);
  g_return_if_fail (soft <= hard);

  isolation = arip_launcher_get_isolation (self, TRUE);
  limit = find_rlimit (isolation, resource);
  if (limit == NULL)
    {
      Rlimit added = { resource, soft, hard };

      g_array_append_val (isolation->rlimits, added);
      return;
    }
  limit->soft = soft;
  limit->hard = hard;
}

/**
 * arip_launcher_get_rlimit:
 * @self: an #AripLauncher
 * @resource: a resource, as setrlimit() takes it
 * @out_soft: (out) (optional): the soft limit
 * @out_hard: (out) (optional): the hard limit
 *
 * Gets a limit set with arip_launcher_set_rlimit() or
 * arip_launcher_set_memory_limit().
 *
 * Returns: %TRUE if the launcher sets a limit on @resource
 */
gboolean
arip_launcher_get_rlimit (AripLauncher *self,
                          gint          resource,
                          guint64      *out_soft,
                          guint64      *out_hard)
{
  AripIsolation *isolation;
  const Rlimit *limit;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), FALSE);

  isolation = arip_launcher_get_isolation (self, FALSE);
  limit = isolation != NULL ? find_rlimit (isolation, resource) : NULL;
  if (out_soft != NULL)
    *out_soft = limit != NULL ? limit->soft : G_MAXUINT64;
  if (out_hard != NULL)
    *out_hard = limit != NULL ? limit->hard : G_MAXUINT64;
  return limit != NULL;
}

/**
 * arip_launcher_set_memory_limit:
 * @self: an #AripLauncher
 * @bytes: the most address space a worker may have; 0 for no limit
 *
 * Limits the memory of each worker (`RLIMIT_AS`, soft and hard): past it an
 * allocation fails (a C program that uses g_malloc() aborts, Python raises
 * `MemoryError`), and the call's error names the limit. The limit covers
 * everything the worker has mapped, its program and libraries too, so
 * leave room for them: tens of MiB for a C worker, more for Python. GJS
 * reserves gigabytes of address space it does not use: a memory limit is
 * not useful there; nor under AddressSanitizer.
 */
void
arip_launcher_set_memory_limit (AripLauncher *self,
                                guint64       bytes)
{
  AripIsolation *isolation;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  if (bytes > 0)
    {
      arip_launcher_set_rlimit (self, RLIMIT_AS, bytes, bytes);
      return;
    }
  isolation = arip_launcher_get_isolation (self, FALSE);
  if (isolation == NULL)
    return;
  for (guint i = 0; i < isolation->rlimits->len; i++)
    if (g_array_index (isolation->rlimits, Rlimit, i).resource == RLIMIT_AS)
      {
        g_array_remove_index (isolation->rlimits, i);
        break;
      }
}

/**
 * arip_launcher_get_memory_limit:
 * @self: an #AripLauncher
 *
 * Gets the memory limit of the launcher's workers.
 *
 * Returns: the limit in bytes (the soft `RLIMIT_AS`), or 0 for none
 */
guint64
arip_launcher_get_memory_limit (AripLauncher *self)
{
  AripIsolationSummary summary;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), 0);

  arip_isolation_summarize (arip_launcher_get_isolation (self, FALSE), &summary);
  return summary.memory_limit;
}

/**
 * arip_launcher_set_cpu_limit:
 * @self: an #AripLauncher
 * @seconds: the CPU time each call may use; 0 for no limit
 *
 * Limits the CPU time of each call (`RLIMIT_CPU`, counted from the moment
 * the worker starts the call): a call that uses more is ended by `SIGXCPU`
 * and fails with %ARIP_ERROR_SIGNALED saying it "exceeded its CPU time
 * limit"; a one-shot worker that catches `SIGXCPU` is killed a second
 * later. CPU time is not wall-clock time: a call that sleeps or waits uses
 * none (see arip_launcher_set_call_timeout() for that). A pool worker's
 * limit moves forward at each call, so that every call gets the whole of
 * it.
 */
void
arip_launcher_set_cpu_limit (AripLauncher *self,
                             guint         seconds)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  if (seconds == 0 && arip_launcher_get_isolation (self, FALSE) == NULL)
    return;
  arip_launcher_get_isolation (self, TRUE)->cpu_limit = seconds;
}

/**
 * arip_launcher_get_cpu_limit:
 * @self: an #AripLauncher
 *
 * Gets the CPU time limit of each call.
 *
 * Returns: the limit in seconds, or 0 for none
 */
guint
arip_launcher_get_cpu_limit (AripLauncher *self)
{
  AripIsolation *isolation;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), 0);

  isolation = arip_launcher_get_isolation (self, FALSE);
  return isolation != NULL ? isolation->cpu_limit : 0;
}

/**
 * arip_launcher_set_sandbox:
 * @self: an #AripLauncher
 * @flags: the pieces of the sandbox; %ARIP_SANDBOX_NONE for none
 * @policy: what to do with a piece this kernel or this environment does
 *   not allow
 *
 * Puts every worker of the launcher in a sandbox, which it applies to
 * itself before it serves a call (spawned, forked by the fork server, or a
 * pool's). Under %ARIP_SANDBOX_POLICY_BEST_EFFORT a worker gets what can
 * be had, and arip_process_get_sandbox() says what it got; under
 * %ARIP_SANDBOX_POLICY_REQUIRED a worker that cannot have it all runs
 * nothing, and the call fails with %ARIP_ERROR_SANDBOX.
 *
 * A sandbox restricts the worker and what it starts, never the parent.
 * See the isolation guide for what each piece protects from.
 */
void
arip_launcher_set_sandbox (AripLauncher      *self,
                           AripSandboxFlags   flags,
                           AripSandboxPolicy  policy)
{
  AripIsolation *isolation;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail ((flags & ~(ARIP_SANDBOX_NO_NEW_PRIVS | ARIP_SANDBOX_NO_NETWORK |
                               ARIP_SANDBOX_RESTRICT_FILESYSTEM | ARIP_SANDBOX_SECCOMP |
                               ARIP_SANDBOX_CLEAR_ENV)) == 0);
  g_return_if_fail (policy <= ARIP_SANDBOX_POLICY_REQUIRED);

  isolation = arip_launcher_get_isolation (self, flags != 0);
  if (isolation == NULL)
    return;
  isolation->flags = flags;
  isolation->policy = policy;
}

/**
 * arip_launcher_get_sandbox:
 * @self: an #AripLauncher
 * @out_policy: (out) (optional): the policy
 *
 * Gets what arip_launcher_set_sandbox() set.
 *
 * Returns: the pieces of the sandbox the launcher asks for
 */
AripSandboxFlags
arip_launcher_get_sandbox (AripLauncher      *self,
                           AripSandboxPolicy *out_policy)
{
  AripIsolationSummary summary;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), ARIP_SANDBOX_NONE);

  arip_isolation_summarize (arip_launcher_get_isolation (self, FALSE), &summary);
  if (out_policy != NULL)
    *out_policy = summary.policy;
  return summary.flags;
}

/**
 * arip_launcher_allow_path:
 * @self: an #AripLauncher
 * @path: (type filename): a file or a directory (with everything below it)
 * @writable: whether the worker may change it (write, create, remove,
 *   rename), or only read it (and execute what is in it)
 *
 * Lets the workers of a launcher with %ARIP_SANDBOX_RESTRICT_FILESYSTEM
 * reach @path. A path that does not exist when a worker starts is left out
 * (it is named in the sandbox's report, and under
 * %ARIP_SANDBOX_POLICY_REQUIRED the start fails).
 */
void
arip_launcher_allow_path (AripLauncher *self,
                          const char   *path,
                          gboolean      writable)
{
  AripIsolation *isolation;
  AllowedPath allowed;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (path != NULL && *path != '\0');

  isolation = arip_launcher_get_isolation (self, TRUE);
  for (guint i = 0; i < isolation->paths->len; i++)
    {
      AllowedPath *known = &g_array_index (isolation->paths, AllowedPath, i);

      if (g_str_equal (known->path, path))
        {
          known->writable = writable;
          return;
        }
    }
  allowed.path = g_strdup (path);
  allowed.writable = writable;
  g_array_append_val (isolation->paths, allowed);
}
