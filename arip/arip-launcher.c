/* arip-launcher.c: settings for starting worker processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib-unix.h>

#include "arip-channel-private.h"
#include "arip-enum-types.h"
#include "arip-error.h"
#include "arip-fork-private.h"
#include "arip-error-private.h"
#include "arip-isolation-private.h"
#include "arip-launcher.h"
#include "arip-launcher-private.h"
#include "arip-process.h"
#include "arip-process-private.h"
#include "arip-spawn-private.h"
#include "arip-worker-private.h"
#include "arip-zygote-private.h"

#define DEFAULT_STARTUP_TIMEOUT_MS 5000
#define DEFAULT_INTERRUPT_TIMEOUT_MS 2000
#define DEFAULT_TERMINATE_TIMEOUT_MS 2000

/**
 * AripLauncher:
 *
 * Settings for starting worker processes, in the spirit of
 * `GSubprocessLauncher`: the worker's argv, environment, working directory,
 * what happens to its standard streams, extra file descriptors, and the
 * timeouts that apply to its start and its stop.
 *
 * A launcher can be reused: each [class@Arip.Process] reads the settings
 * when it starts. Without a launcher, a process is started with the
 * defaults: the running program itself, the current environment,
 * stdout and stderr inherited and stdin from `/dev/null`.
 */

typedef struct {
  char     *value;       /* NULL: unset it */
  gboolean  overwrite;   /* FALSE: only if the worker would not have it */
} EnvChange;

struct _AripLauncher
{
  GObject           parent_instance;

  GSubprocessFlags  flags;
  char            **argv;      /* NULL: the program itself */
  /* The workers' environment: the parent's at the time a worker starts,
   * with @env_changes applied; or exactly @envp after set_environ(). */
  char            **envp;
  GHashTable       *env_changes;   /* name -> EnvChange, or NULL */
  char             *cwd;
  GArray           *source_fds;
  GArray           *target_fds;
  AripStartMethod   start_method;
  guint             startup_timeout_ms;
  guint             call_timeout_ms;
  AripIsolation    *isolation;       /* NULL: none asked for */
  guint             interrupt_timeout_ms;
  guint             terminate_timeout_ms;
};

enum {
  PROP_0,
  PROP_FLAGS,
  PROP_START_METHOD,
  PROP_STARTUP_TIMEOUT,
  PROP_CALL_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (AripLauncher, arip_launcher, G_TYPE_OBJECT)

static guint
default_startup_timeout (void)
{
  static gsize value = 0;

  if (g_once_init_enter (&value))
    {
      const char *env = g_getenv ("ARIP_STARTUP_TIMEOUT");
      gsize ms = DEFAULT_STARTUP_TIMEOUT_MS;

      if (env != NULL && *env != '\0')
        {
          char *end = NULL;
          double seconds = g_ascii_strtod (env, &end);

          if (end != NULL && *end == '\0' && seconds > 0 && seconds < G_MAXUINT / 1000.0)
            ms = MAX ((gsize) (seconds * 1000.0), 1);
          else
            g_warning ("ARIP_STARTUP_TIMEOUT=“%s” is not a positive number of seconds; "
                       "using the default of %d s", env, DEFAULT_STARTUP_TIMEOUT_MS / 1000);
        }
      g_once_init_leave (&value, ms);
    }
  return (guint) value;
}

static void
arip_launcher_finalize (GObject *object)
{
  AripLauncher *self = ARIP_LAUNCHER (object);

  for (guint i = 0; i < self->source_fds->len; i++)
    close (g_array_index (self->source_fds, gint, i));
  g_array_unref (self->source_fds);
  g_array_unref (self->target_fds);
  g_strfreev (self->argv);
  g_strfreev (self->envp);
  g_clear_pointer (&self->env_changes, g_hash_table_unref);
  g_free (self->cwd);
  arip_isolation_free (self->isolation);

  G_OBJECT_CLASS (arip_launcher_parent_class)->finalize (object);
}

static void
arip_launcher_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  AripLauncher *self = ARIP_LAUNCHER (object);

  switch (prop_id)
    {
    case PROP_FLAGS:
      g_value_set_flags (value, self->flags);
      break;
    case PROP_START_METHOD:
      g_value_set_enum (value, self->start_method);
      break;
    case PROP_STARTUP_TIMEOUT:
      g_value_set_uint (value, self->startup_timeout_ms);
      break;
    case PROP_CALL_TIMEOUT:
      g_value_set_uint (value, self->call_timeout_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
arip_launcher_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  AripLauncher *self = ARIP_LAUNCHER (object);

  switch (prop_id)
    {
    case PROP_FLAGS:
      arip_launcher_set_flags (self, g_value_get_flags (value));
      break;
    case PROP_START_METHOD:
      arip_launcher_set_start_method (self, g_value_get_enum (value));
      break;
    case PROP_STARTUP_TIMEOUT:
      arip_launcher_set_startup_timeout (self, g_value_get_uint (value));
      break;
    case PROP_CALL_TIMEOUT:
      arip_launcher_set_call_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
arip_launcher_class_init (AripLauncherClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  _arip_i18n_init ();

  object_class->finalize = arip_launcher_finalize;
  object_class->get_property = arip_launcher_get_property;
  object_class->set_property = arip_launcher_set_property;

  /**
   * AripLauncher:flags:
   *
   * What happens to the worker's standard streams, and whether it inherits
   * the parent's descriptors, as for `GSubprocessLauncher`. By default
   * stdout and stderr are inherited (so printf debugging in a function
   * shows up) and stdin is `/dev/null`.
   */
  properties[PROP_FLAGS] =
    g_param_spec_flags ("flags", NULL, NULL,
                        G_TYPE_SUBPROCESS_FLAGS, G_SUBPROCESS_FLAGS_NONE,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS |
                        G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripLauncher:start-method:
   *
   * How workers are started: %ARIP_START_METHOD_FORKSERVER unless the
   * environment variable `ARIP_START_METHOD` says `spawn` or `fork`.
   */
  properties[PROP_START_METHOD] =
    g_param_spec_enum ("start-method", NULL, NULL,
                       ARIP_TYPE_START_METHOD, ARIP_START_METHOD_FORKSERVER,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripLauncher:startup-timeout:
   *
   * Milliseconds a worker may take from being spawned to executing the
   * function before it is killed with %ARIP_ERROR_TIMED_OUT. The default
   * comes from the `ARIP_STARTUP_TIMEOUT` environment variable (seconds),
   * or is 5 seconds.
   */
  properties[PROP_STARTUP_TIMEOUT] =
    g_param_spec_uint ("startup-timeout", NULL, NULL,
                       1, G_MAXUINT, DEFAULT_STARTUP_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AripLauncher:call-timeout:
   *
   * Milliseconds a call may run, from the moment its function starts
   * executing, before it is stopped (the stop escalation: interrupt, then
   * terminate, then kill, with the stop timeouts) and fails with
   * %ARIP_ERROR_TIMED_OUT; 0, the default, for no limit. It applies to
   * one-shots, processes and pool calls alike.
   */
  properties[PROP_CALL_TIMEOUT] =
    g_param_spec_uint ("call-timeout", NULL, NULL,
                       0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static AripStartMethod
default_start_method (void)
{
  static gsize value = 0;

  if (g_once_init_enter (&value))
    {
      const char *env = g_getenv ("ARIP_START_METHOD");
      gsize method = ARIP_START_METHOD_FORKSERVER + 1;

      if (env == NULL || *env == '\0')
        method = ARIP_START_METHOD_FORKSERVER + 1;
      else if (g_str_equal (env, "spawn"))
        method = ARIP_START_METHOD_SPAWN + 1;
      else if (g_str_equal (env, "forkserver"))
        method = ARIP_START_METHOD_FORKSERVER + 1;
      else if (g_str_equal (env, "fork"))
        method = ARIP_START_METHOD_FORK + 1;
      else
        g_warning ("ARIP_START_METHOD=“%s” is not one of spawn, forkserver or fork; "
                   "using forkserver", env);
      g_once_init_leave (&value, method);
    }
  return (AripStartMethod) (value - 1);
}

static void
arip_launcher_init (AripLauncher *self)
{
  self->source_fds = g_array_new (FALSE, FALSE, sizeof (gint));
  self->target_fds = g_array_new (FALSE, FALSE, sizeof (gint));
  self->start_method = default_start_method ();
  self->startup_timeout_ms = default_startup_timeout ();
  self->interrupt_timeout_ms = DEFAULT_INTERRUPT_TIMEOUT_MS;
  self->terminate_timeout_ms = DEFAULT_TERMINATE_TIMEOUT_MS;
}

/**
 * arip_launcher_new:
 * @flags: what happens to the worker's standard streams
 *
 * Creates a launcher with the current environment and the given flags.
 *
 * Returns: (transfer full): a new launcher
 */
AripLauncher *
arip_launcher_new (GSubprocessFlags flags)
{
  return g_object_new (ARIP_TYPE_LAUNCHER, "flags", flags, NULL);
}

/**
 * arip_launcher_set_worker_argv:
 * @self: a launcher
 * @argv: (array zero-terminated=1) (nullable): the worker's command line,
 *   or %NULL for the running program itself
 *
 * Sets the program started as a worker. It must call arip_init() with the
 * functions it serves registered, like the program itself does. By default
 * the worker is the running program (the file `/proc/self/exe` points to) started with its
 * original arguments; an interpreter needs its script, for example
 * `{ "python3", "worker.py", NULL }`. The program is looked up in `PATH`
 * when it has no slash.
 */
void
arip_launcher_set_worker_argv (AripLauncher       *self,
                               const char * const *argv)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (argv == NULL || argv[0] != NULL);

  g_strfreev (self->argv);
  self->argv = g_strdupv ((char **) argv);
}

/**
 * arip_launcher_get_worker_argv:
 * @self: a launcher
 *
 * Gets the command line set with [method@Arip.Launcher.set_worker_argv].
 *
 * Returns: (array zero-terminated=1) (nullable) (transfer none): the worker's
 *   command line, or %NULL when the worker is the running program
 */
const char * const *
arip_launcher_get_worker_argv (AripLauncher *self)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);

  return (const char * const *) self->argv;
}

static void
env_change_free (gpointer data)
{
  EnvChange *change = data;

  g_free (change->value);
  g_free (change);
}

static void
record_env_change (AripLauncher *self,
                   const char   *variable,
                   const char   *value,
                   gboolean      overwrite)
{
  EnvChange *change;

  if (self->envp != NULL)
    {
      /* A whole environment was given: change it in place. */
      self->envp = value != NULL ? g_environ_setenv (self->envp, variable, value, overwrite)
                                 : g_environ_unsetenv (self->envp, variable);
      return;
    }

  if (self->env_changes == NULL)
    self->env_changes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, env_change_free);

  change = g_hash_table_lookup (self->env_changes, variable);
  if (value != NULL && !overwrite && change != NULL)
    {
      /* Set by us before: that stands. Unset by us: now it is set. */
      if (change->value != NULL)
        return;
      overwrite = TRUE;
    }

  change = g_new0 (EnvChange, 1);
  change->value = g_strdup (value);
  change->overwrite = value == NULL || overwrite;
  g_hash_table_replace (self->env_changes, g_strdup (variable), change);
}

/**
 * arip_launcher_setenv:
 * @self: a launcher
 * @variable: (type filename): the variable's name, without `=`
 * @value: (type filename): its value
 * @overwrite: whether to replace a value the worker would have otherwise
 *
 * Sets an environment variable for the workers.
 *
 * Unless [method@Arip.Launcher.set_environ] gave a whole environment,
 * workers start with the parent's environment as it is when they start,
 * with the launcher's changes applied.
 */
void
arip_launcher_setenv (AripLauncher *self,
                      const char   *variable,
                      const char   *value,
                      gboolean      overwrite)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (variable != NULL && *variable != '\0' && strchr (variable, '=') == NULL);
  g_return_if_fail (value != NULL);

  record_env_change (self, variable, value, overwrite);
}

/**
 * arip_launcher_unsetenv:
 * @self: a launcher
 * @variable: (type filename): the variable's name
 *
 * Removes an environment variable from the workers' environment.
 */
void
arip_launcher_unsetenv (AripLauncher *self,
                        const char   *variable)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (variable != NULL && *variable != '\0' && strchr (variable, '=') == NULL);

  record_env_change (self, variable, NULL, TRUE);
}

/**
 * arip_launcher_getenv:
 * @self: a launcher
 * @variable: (type filename): the variable's name
 *
 * Gets the value an environment variable would have in a worker started
 * now.
 *
 * Returns: (type filename) (nullable): the value, or %NULL if unset
 */
const char *
arip_launcher_getenv (AripLauncher *self,
                      const char   *variable)
{
  EnvChange *change;
  const char *current;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);
  g_return_val_if_fail (variable != NULL, NULL);

  if (self->envp != NULL)
    return g_environ_getenv (self->envp, variable);

  current = g_getenv (variable);
  change = self->env_changes != NULL ? g_hash_table_lookup (self->env_changes, variable) : NULL;
  if (change == NULL || (!change->overwrite && current != NULL))
    return current;
  return change->value;
}

/**
 * arip_launcher_set_environ:
 * @self: a launcher
 * @env: (array zero-terminated=1) (element-type filename) (nullable): the
 *   whole environment, as `NAME=VALUE` strings; %NULL for an empty one
 *
 * Replaces the workers' environment: they get exactly @env (and what
 * [method@Arip.Launcher.setenv] changes afterwards), not the parent's.
 */
void
arip_launcher_set_environ (AripLauncher       *self,
                           const char * const *env)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  g_strfreev (self->envp);
  g_clear_pointer (&self->env_changes, g_hash_table_unref);
  self->envp = env != NULL ? g_strdupv ((char **) env) : g_new0 (char *, 1);
}

/**
 * arip_launcher_set_cwd:
 * @self: a launcher
 * @cwd: (type filename) (nullable): the workers' working directory, or
 *   %NULL for the parent's
 *
 * Sets the directory workers start in.
 */
void
arip_launcher_set_cwd (AripLauncher *self,
                       const char   *cwd)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  g_free (self->cwd);
  self->cwd = g_strdup (cwd);
}

/**
 * arip_launcher_get_cwd:
 * @self: a launcher
 *
 * Gets the directory workers start in.
 *
 * Returns: (type filename) (nullable): the directory, or %NULL for the parent's
 */
const char *
arip_launcher_get_cwd (AripLauncher *self)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);

  return self->cwd;
}

/**
 * arip_launcher_set_flags:
 * @self: a launcher
 * @flags: what happens to the standard streams
 *
 * Sets what happens to the workers' standard streams, as for
 * `GSubprocessLauncher`. With %G_SUBPROCESS_FLAGS_STDOUT_PIPE (and the
 * stdin and stderr equivalents) the pipes are available from
 * [method@Arip.Process.get_stdout_pipe] and its siblings.
 */
void
arip_launcher_set_flags (AripLauncher     *self,
                         GSubprocessFlags  flags)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (!((flags & G_SUBPROCESS_FLAGS_STDIN_PIPE) && (flags & G_SUBPROCESS_FLAGS_STDIN_INHERIT)));
  g_return_if_fail (!((flags & G_SUBPROCESS_FLAGS_STDOUT_PIPE) && (flags & G_SUBPROCESS_FLAGS_STDOUT_SILENCE)));
  g_return_if_fail (__builtin_popcount (flags & (G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                                 G_SUBPROCESS_FLAGS_STDERR_SILENCE |
                                                 G_SUBPROCESS_FLAGS_STDERR_MERGE)) <= 1);

  if (self->flags == flags)
    return;
  self->flags = flags;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FLAGS]);
}

/**
 * arip_launcher_get_flags:
 * @self: a launcher
 *
 * Gets the flags set with [method@Arip.Launcher.set_flags].
 *
 * Returns: the flags
 */
GSubprocessFlags
arip_launcher_get_flags (AripLauncher *self)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), 0);

  return self->flags;
}

/**
 * arip_launcher_take_fd:
 * @self: a launcher
 * @source_fd: a descriptor of this process, which the launcher now owns
 * @target_fd: the number it gets in each worker
 *
 * Passes @source_fd to every worker as @target_fd. The launcher closes
 * @source_fd when it is finalized. The worker's channel takes the lowest
 * numbers from 3 up that no target uses.
 */
void
arip_launcher_take_fd (AripLauncher *self,
                       gint          source_fd,
                       gint          target_fd)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (source_fd >= 0);
  g_return_if_fail (target_fd > 2);

  for (guint i = 0; i < self->target_fds->len; i++)
    if (g_array_index (self->target_fds, gint, i) == target_fd)
      {
        g_critical ("%s: descriptor %d is already the target of another descriptor",
                    G_STRFUNC, target_fd);
        return;
      }

  g_array_append_val (self->source_fds, source_fd);
  g_array_append_val (self->target_fds, target_fd);
}

/**
 * arip_launcher_set_start_method:
 * @self: a launcher
 * @method: how to start workers
 *
 * Sets how workers are started; see #AripStartMethod. It applies to
 * workers started from then on.
 */
void
arip_launcher_set_start_method (AripLauncher    *self,
                                AripStartMethod  method)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (method <= ARIP_START_METHOD_FORK);

  if (self->start_method == method)
    return;
  self->start_method = method;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_START_METHOD]);
}

/**
 * arip_launcher_get_start_method:
 * @self: a launcher
 *
 * Gets how workers are started.
 *
 * Returns: the start method
 */
AripStartMethod
arip_launcher_get_start_method (AripLauncher *self)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), ARIP_START_METHOD_SPAWN);

  return self->start_method;
}

/**
 * arip_launcher_set_startup_timeout:
 * @self: a launcher
 * @timeout_ms: milliseconds, at least 1
 *
 * Sets how long a worker may take from being spawned to executing the
 * function; see [property@Arip.Launcher:startup-timeout].
 */
void
arip_launcher_set_startup_timeout (AripLauncher *self,
                                   guint         timeout_ms)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (timeout_ms > 0);

  if (self->startup_timeout_ms == timeout_ms)
    return;
  self->startup_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STARTUP_TIMEOUT]);
}

/**
 * arip_launcher_get_startup_timeout:
 * @self: a launcher
 *
 * Gets the startup timeout.
 *
 * Returns: milliseconds
 */
guint
arip_launcher_get_startup_timeout (AripLauncher *self)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), 0);

  return self->startup_timeout_ms;
}

/**
 * arip_launcher_set_call_timeout:
 * @self: a launcher
 * @timeout_ms: milliseconds, or 0 for no limit
 *
 * Sets how long a call may run; see [property@Arip.Launcher:call-timeout].
 * The error arrives at most the stop timeouts after @timeout_ms; with
 * [method@Arip.Launcher.set_stop_timeouts] at 0 and 0 the worker is killed
 * as soon as the time is up.
 */
void
arip_launcher_set_call_timeout (AripLauncher *self,
                                guint         timeout_ms)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  if (self->call_timeout_ms == timeout_ms)
    return;
  self->call_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CALL_TIMEOUT]);
}

/**
 * arip_launcher_get_call_timeout:
 * @self: a launcher
 *
 * Gets how long a call may run.
 *
 * Returns: milliseconds, or 0 for no limit
 */
guint
arip_launcher_get_call_timeout (AripLauncher *self)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), 0);

  return self->call_timeout_ms;
}

/**
 * arip_launcher_set_stop_timeouts:
 * @self: a launcher
 * @interrupt_ms: how long to wait after SIGINT before sending SIGTERM
 * @terminate_ms: how long to wait after SIGTERM before sending SIGKILL
 *
 * Sets the timeouts of a stop ([method@Arip.Process.stop_async], or a
 * cancelled run): the child is interrupted, then terminated, then killed.
 * Both default to 2000 ms.
 */
void
arip_launcher_set_stop_timeouts (AripLauncher *self,
                                 guint         interrupt_ms,
                                 guint         terminate_ms)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  self->interrupt_timeout_ms = interrupt_ms;
  self->terminate_timeout_ms = terminate_ms;
}

/**
 * arip_launcher_get_stop_timeouts:
 * @self: a launcher
 * @interrupt_ms: (out) (optional): how long a stop waits after SIGINT
 * @terminate_ms: (out) (optional): how long a stop waits after SIGTERM
 *
 * Gets the timeouts of a stop.
 */
void
arip_launcher_get_stop_timeouts (AripLauncher *self,
                                 guint        *interrupt_ms,
                                 guint        *terminate_ms)
{
  g_return_if_fail (ARIP_IS_LAUNCHER (self));

  if (interrupt_ms != NULL)
    *interrupt_ms = self->interrupt_timeout_ms;
  if (terminate_ms != NULL)
    *terminate_ms = self->terminate_timeout_ms;
}

/**
 * arip_launcher_run_async:
 * @self: a launcher
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @cancellable: (nullable): stops the call: interrupt, then terminate,
 *   then kill, with the launcher's stop timeouts
 * @callback: (scope async) (closure user_data): called when the call ended
 * @user_data: data for @callback
 *
 * Runs @function in a worker started with this launcher's settings, as
 * [func@Arip.run_in_process_async] does with the defaults.
 */
void
arip_launcher_run_async (AripLauncher        *self,
                         const char          *function,
                         GVariant            *args,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(AripProcess) process = NULL;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  process = arip_process_new (self, function, args);
  arip_process_run_async (process, self, arip_launcher_run_async,
                          cancellable, callback, user_data);
}

/**
 * arip_launcher_run_finish:
 * @self: a launcher
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Launcher.run_async].
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_launcher_run_finish (AripLauncher  *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == arip_launcher_run_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * arip_launcher_run_with_fds_async:
 * @self: a launcher
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @fd_list: (nullable): the descriptors that `h` handles in @args index
 * @cancellable: (nullable): stops the call
 * @callback: (scope async) (closure user_data): called when the call ended
 * @user_data: data for @callback
 *
 * As [method@Arip.Launcher.run_async], with copies of the descriptors of
 * @fd_list sent along, as GDBus sends them: the function finds them with
 * arip_call_get_fd_list().
 */
void
arip_launcher_run_with_fds_async (AripLauncher        *self,
                                  const char          *function,
                                  GVariant            *args,
                                  GUnixFDList         *fd_list,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(AripProcess) process = NULL;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  process = arip_process_new_with_fds (self, function, args, fd_list);
  arip_process_run_async (process, self, arip_launcher_run_with_fds_async,
                          cancellable, callback, user_data);
}

/**
 * arip_launcher_run_with_fds_finish:
 * @self: a launcher
 * @result: the result given to the callback
 * @out_fd_list: (out) (optional) (nullable) (transfer full): the
 *   descriptors that came with the result (what
 *   arip_call_return_value_with_fds() sent), or %NULL
 * @error: return location for an error
 *
 * Finishes [method@Arip.Launcher.run_with_fds_async].
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_launcher_run_with_fds_finish (AripLauncher  *self,
                                   GAsyncResult  *result,
                                   GUnixFDList  **out_fd_list,
                                   GError       **error)
{
  GVariant *value;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == arip_launcher_run_with_fds_async,
                        NULL);

  value = g_task_propagate_pointer (G_TASK (result), error);
  if (out_fd_list != NULL)
    {
      GUnixFDList *fds = value != NULL ? arip_process_run_get_fd_list (G_TASK (result)) : NULL;

      *out_fd_list = fds != NULL ? g_object_ref (fds) : NULL;
    }
  return value;
}

/**
 * arip_launcher_run_sync:
 * @self: a launcher
 * @function: the registered name of the function
 * @args: (nullable): its arguments, or %NULL for `()`; a floating
 *   reference is consumed
 * @cancellable: (nullable): stops the call
 * @error: return location for an error
 *
 * Runs @function in a worker and blocks until it ends. The wait runs a
 * private main context, never the caller's.
 *
 * Returns: (transfer full): the function's result, or %NULL with @error set
 */
GVariant *
arip_launcher_run_sync (AripLauncher  *self,
                        const char    *function,
                        GVariant      *args,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_autoptr(AripProcess) process = NULL;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);

  process = arip_process_new (self, function, args);
  return arip_process_run_sync (process, cancellable, error);
}

/* ---------------------------------------------------------------------- */
/* Spawning                                                               */

static gboolean
target_in_use (AripLauncher *self,
               gint          fd)
{
  for (guint i = 0; i < self->target_fds->len; i++)
    if (g_array_index (self->target_fds, gint, i) == fd)
      return TRUE;
  return FALSE;
}

static gint
next_free_target (AripLauncher *self,
                  gint          after)
{
  gint fd = MAX (after + 1, 3);

  while (target_in_use (self, fd))
    fd++;
  return fd;
}

static void
close_fd (gint *fd)
{
  if (*fd >= 0)
    {
      close (*fd);
      *fd = -1;
    }
}

/* The program to execute and the argv it gets. For the program itself:
 * the binary that runs now, whatever argv[0] says, with the program's own
 * argv. */
static gboolean
worker_command (AripLauncher        *self,
                const char         **file,
                const char * const **argv)
{
  const char * const *own;

  if (self->argv != NULL)
    {
      *file = self->argv[0];
      *argv = (const char * const *) self->argv;
      return TRUE;
    }

  own = arip_worker_get_default_argv ();
  if (own == NULL || own[0] == NULL)
    return FALSE;
  *file = arip_worker_get_own_executable ();
  *argv = own;
  return TRUE;
}

char *
arip_launcher_describe_argv (AripLauncher *self)
{
  const char * const *argv = self->argv != NULL ? (const char * const *) self->argv
                                                : arip_worker_get_default_argv ();

  if (argv == NULL)
    return g_strdup ("?");
  return g_strjoinv (" ", (char **) argv);
}

AripLauncher *
arip_launcher_get_default (void)
{
  static AripLauncher *launcher;

  if (g_once_init_enter (&launcher))
    g_once_init_leave (&launcher, arip_launcher_new (G_SUBPROCESS_FLAGS_NONE));
  return launcher;
}

/* The length of the name in "NAME=VALUE". */
static gsize
env_name_length (const char *entry)
{
  const char *eq = strchr (entry, '=');

  return eq != NULL ? (gsize) (eq - entry) : strlen (entry);
}

/* The environment a worker starts with, as borrowed pointers into the
 * parent's environment (or the launcher's) and into @owned: no copy of
 * the strings. @worker_var goes last. */
static GPtrArray *
build_environ (AripLauncher *self,
               const char   *worker_var,
               GPtrArray    *owned)
{
  const char * const *base = self->envp != NULL ? (const char * const *) self->envp
                                                : (const char * const *) environ;
  g_autoptr(GHashTable) present = NULL;
  AripIsolationSummary isolation;
  char *isolation_var = NULL;
  gboolean clear;
  GPtrArray *out;
  guint n = 0;

  /* A sandbox's cleared environment keeps only what the launcher sets (a
   * whole environment given to it counts) and what a worker needs to
   * start at all. */
  arip_isolation_summarize (self->isolation, &isolation);
  clear = worker_var != NULL && self->envp == NULL &&
          (isolation.flags & ARIP_SANDBOX_CLEAR_ENV) != 0;

  while (base != NULL && base[n] != NULL)
    n++;
  out = g_ptr_array_sized_new (n + 2 + (self->env_changes != NULL ?
                                        g_hash_table_size (self->env_changes) : 0));

  for (guint i = 0; i < n; i++)
    {
      const char *entry = base[i];
      gsize len = env_name_length (entry);

      if (len == strlen (ARIP_WORKER_ENV) && strncmp (entry, ARIP_WORKER_ENV, len) == 0)
        continue;
      if (len == strlen (ARIP_ISOLATION_ENV) && strncmp (entry, ARIP_ISOLATION_ENV, len) == 0)
        continue;
      if (clear && !arip_isolation_keeps_variable (entry, len))
        continue;

      if (self->env_changes != NULL)
        {
          g_autofree char *name = g_strndup (entry, len);
          EnvChange *change = g_hash_table_lookup (self->env_changes, name);

          if (change != NULL && change->overwrite)
            continue;
          if (change != NULL)
            {
              if (present == NULL)
                present = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
              g_hash_table_add (present, g_steal_pointer (&name));
            }
        }
      g_ptr_array_add (out, (gpointer) entry);
    }

  if (self->env_changes != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, self->env_changes);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          EnvChange *change = value;
          char *entry;

          if (change->value == NULL ||
              (!change->overwrite && present != NULL && g_hash_table_contains (present, key)))
            continue;
          entry = g_strconcat (key, "=", change->value, NULL);
          g_ptr_array_add (owned, entry);
          g_ptr_array_add (out, entry);
        }
    }

  if (worker_var != NULL)
    {
      g_ptr_array_add (out, (gpointer) worker_var);
      isolation_var = arip_isolation_to_env (self->isolation);
      if (isolation_var != NULL)
        {
          g_ptr_array_add (owned, isolation_var);
          g_ptr_array_add (out, isolation_var);
        }
    }
  g_ptr_array_add (out, NULL);
  return out;
}

AripIsolation *
arip_launcher_get_isolation (AripLauncher *self,
                             gboolean      create)
{
  if (self->isolation == NULL && create)
    self->isolation = arip_isolation_new ();
  return self->isolation;
}

char **
arip_launcher_dup_environ (AripLauncher *self)
{
  g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) envp = build_environ (self, NULL, owned);

  return g_strdupv ((char **) envp->pdata);
}

guint
arip_launcher_get_fds (AripLauncher  *self,
                       const gint   **sources,
                       const gint   **targets)
{
  *sources = (const gint *) self->source_fds->data;
  *targets = (const gint *) self->target_fds->data;
  return self->source_fds->len;
}

gboolean
arip_launcher_pass_fds (AripLauncher         *self,
                        GSubprocessLauncher  *launcher,
                        GError              **error)
{
  for (guint i = 0; i < self->source_fds->len; i++)
    {
      gint copy = fcntl (g_array_index (self->source_fds, gint, i), F_DUPFD_CLOEXEC, 3);

      if (copy < 0)
        {
          int saved_errno = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "%s", g_strerror (saved_errno));
          return FALSE;
        }
      g_subprocess_launcher_take_fd (launcher, copy, g_array_index (self->target_fds, gint, i));
    }
  return TRUE;
}

/* A page the parent reads and a pool worker writes: the number of the
 * call it began last. */
static gint
create_control_page (void)
{
  gint fd = memfd_create ("arip-control", MFD_CLOEXEC);

  if (fd < 0)
    return -1;
  if (ftruncate (fd, sizeof (guint32)) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* The start method a worker of @self really gets: a fork can only make
 * the running program (not another worker argv), and a fork server cannot
 * pass the parent's descriptors on (INHERIT_FDS): those are spawned. -1
 * with @error when the method cannot be used at all. */
static gint
effective_start_method (AripLauncher  *self,
                        GError       **error)
{
  guint threads;

  if (self->start_method == ARIP_START_METHOD_SPAWN || self->argv != NULL)
    return ARIP_START_METHOD_SPAWN;
  /* GJS runs its engine's helper threads before arip_init(): its fork
   * server could never fork. */
  if (self->start_method == ARIP_START_METHOD_FORKSERVER)
    return (self->flags & G_SUBPROCESS_FLAGS_INHERIT_FDS) ||
           g_strcmp0 (arip_worker_get_language_binding (), "gjs") == 0
             ? ARIP_START_METHOD_SPAWN : ARIP_START_METHOD_FORKSERVER;

  /* A fork of a threaded process inherits the locks its other threads
   * held, held for ever. */
  threads = arip_fork_count_threads ();
  if (threads > 1)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_NOT_SUPPORTED,
                   _("The fork start method needs a single-threaded program, and this one runs "
                     "%u threads; use ARIP_START_METHOD_FORKSERVER (as fast, and safe with "
                     "threads) or ARIP_START_METHOD_SPAWN"), threads);
      return -1;
    }
  return ARIP_START_METHOD_FORK;
}

/* The descriptor a forked worker gets as standard stream @target, from
 * what the spawn request says: ours, one of the pipes, or /dev/null. */
static gint
stdio_source (gint  requested,
              gint  target,
              gint *devnull)
{
  if (requested == ARIP_SPAWN_INHERIT)
    return target;
  if (requested >= 0)
    return requested;
  if (*devnull < 0)
    *devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  return *devnull;
}

/* Forks a worker: here (FORK) or in the fork server (FORKSERVER). */
static AripZygoteOutcome
fork_worker (AripLauncher            *self,
             gint                     method,
             const AripSpawnRequest  *request,
             GPid                    *pid,
             gint                    *pidfd,
             GError                 **error)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (gint));
  g_autoptr(GArray) targets = g_array_new (FALSE, FALSE, sizeof (gint));
  const gint stdio[3] = { request->stdin_fd, request->stdout_fd, request->stderr_fd };
  g_autofree char *here = NULL;
  gint devnull = -1;
  AripZygoteOutcome outcome;

  if (request->cwd != NULL && !g_file_test (request->cwd, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_CHDIR,
                   _("Failed to change to directory “%s” (%s)"), request->cwd, g_strerror (ENOENT));
      return ARIP_ZYGOTE_FAILED;
    }

  for (gint target = 0; target < 3; target++)
    {
      gint source = stdio_source (stdio[target], target, &devnull);

      if (source < 0)
        {
          int saved_errno = errno;
          g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                       _("Could not open /dev/null (%s)"), g_strerror (saved_errno));
          return ARIP_ZYGOTE_FAILED;
        }

      g_array_append_val (fds, source);
      g_array_append_val (targets, target);
    }
  g_array_append_vals (fds, request->sources, request->n_fds);
  g_array_append_vals (targets, request->targets, request->n_fds);

  if (method == ARIP_START_METHOD_FORKSERVER)
    {
      /* The server started where we were then: a worker starts where we
       * are now, as a spawned one would. */
      if (request->cwd == NULL)
        here = g_get_current_dir ();
      outcome = arip_zygote_fork (request->cwd != NULL ? request->cwd : here, request->envp,
                                  (const gint *) fds->data, (const gint *) targets->data,
                                  fds->len, pid, pidfd, error);
    }
  else
    {
      GPid parent = getpid ();
      GPid child = arip_fork ();

      if (child == 0)
        {
          AripBecomeWorker how = { 0 };

          how.fds = (const gint *) fds->data;
          how.targets = (const gint *) targets->data;
          how.n_fds = fds->len;
          how.inherit_fds = request->inherit_fds;
          how.envp = (char **) request->envp;
          how.cwd = request->cwd;
          how.parent = parent;
          how.from_parent = TRUE;
          arip_worker_become (&how);
        }
      outcome = child > 0 ? ARIP_ZYGOTE_FORKED : ARIP_ZYGOTE_FAILED;
      if (child > 0)
        {
          *pid = child;
          *pidfd = arip_pidfd_open (child);
        }
      else
        {
          int saved_errno = errno;
          g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FORK,
                       _("Failed to fork (%s)"), g_strerror (saved_errno));
        }
    }

  if (devnull >= 0)
    close (devnull);
  return outcome;
}

gboolean
arip_launcher_spawn (AripLauncher     *self,
                     gboolean          pool_worker,
                     AripSpawnResult  *result,
                     GError          **error)
{
  g_autofree char *worker_var = NULL;
  g_autofree char *control = NULL;
  g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) envp = NULL;
  g_autoptr(GArray) sources = NULL;
  g_autoptr(GArray) targets = NULL;
  g_autoptr(GError) local_error = NULL;
  AripSpawnRequest request = { 0 };
  gint sv[2] = { -1, -1 };
  gint crash[2] = { -1, -1 };
  gint in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
  gint control_fd = -1;
  gint channel_target, crash_target, control_target = -1;
  GSubprocessFlags flags = self->flags;
  const char *file;
  const char * const *argv;
  gboolean ok;
  GPid pid = 0;
  gint pidfd = -1;
  gint method;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), FALSE);

  result->pid = 0;
  result->via_zygote = FALSE;
  result->start_method = ARIP_START_METHOD_SPAWN;
  result->pidfd = -1;
  result->channel_fd = result->crash_fd = result->control_fd = -1;
  result->stdin_fd = result->stdout_fd = result->stderr_fd = -1;

  /* A worker whose main() forgot arip_init() must not start workers: each
   * would do the same. This does not return there. */
  arip_worker_refuse_to_spawn_if_uninitialized ();
  if (!arip_worker_check_binding (error))
    return FALSE;

  method = effective_start_method (self, error);
  if (method < 0)
    return FALSE;

  if (!worker_command (self, &file, &argv))
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not find out how this program was started (reading "
                     "/proc/self/cmdline failed); set a worker argv on an AripLauncher"));
      return FALSE;
    }

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not create the channel to a worker: %s"), g_strerror (saved_errno));
      return FALSE;
    }

  if (!g_unix_open_pipe (crash, FD_CLOEXEC, &local_error) ||
      !g_unix_set_fd_nonblocking (crash[0], TRUE, &local_error) ||
      !g_unix_set_fd_nonblocking (crash[1], TRUE, &local_error))
    goto fail_local;

  /* A pool's workers outlive any one call: nobody would read their pipes,
   * so they inherit the parent's streams instead. */
  if (pool_worker)
    flags &= ~(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
               G_SUBPROCESS_FLAGS_STDERR_PIPE);

  request.stdin_fd = -1;
  if (flags & G_SUBPROCESS_FLAGS_STDIN_PIPE)
    {
      if (!g_unix_open_pipe (in_pipe, FD_CLOEXEC, &local_error))
        goto fail_local;
      request.stdin_fd = in_pipe[0];
    }
  else if (flags & G_SUBPROCESS_FLAGS_STDIN_INHERIT)
    request.stdin_fd = ARIP_SPAWN_INHERIT;

  request.stdout_fd = ARIP_SPAWN_INHERIT;
  if (flags & G_SUBPROCESS_FLAGS_STDOUT_PIPE)
    {
      if (!g_unix_open_pipe (out_pipe, FD_CLOEXEC, &local_error))
        goto fail_local;
      request.stdout_fd = out_pipe[1];
    }
  else if (flags & G_SUBPROCESS_FLAGS_STDOUT_SILENCE)
    request.stdout_fd = -1;

  request.stderr_fd = ARIP_SPAWN_INHERIT;
  if (flags & G_SUBPROCESS_FLAGS_STDERR_PIPE)
    {
      if (!g_unix_open_pipe (err_pipe, FD_CLOEXEC, &local_error))
        goto fail_local;
      request.stderr_fd = err_pipe[1];
    }
  else if (flags & G_SUBPROCESS_FLAGS_STDERR_SILENCE)
    request.stderr_fd = -1;
  else if (flags & G_SUBPROCESS_FLAGS_STDERR_MERGE)
    request.stderr_fd = request.stdout_fd == ARIP_SPAWN_INHERIT ? STDOUT_FILENO : request.stdout_fd;

  if (pool_worker)
    control_fd = create_control_page ();

  channel_target = next_free_target (self, 2);
  crash_target = next_free_target (self, channel_target);
  if (control_fd >= 0)
    control_target = next_free_target (self, crash_target);

  sources = g_array_new (FALSE, FALSE, sizeof (gint));
  targets = g_array_new (FALSE, FALSE, sizeof (gint));
  g_array_append_val (sources, sv[1]);
  g_array_append_val (targets, channel_target);
  g_array_append_val (sources, crash[1]);
  g_array_append_val (targets, crash_target);
  if (control_fd >= 0)
    {
      g_array_append_val (sources, control_fd);
      g_array_append_val (targets, control_target);
    }
  g_array_append_vals (sources, self->source_fds->data, self->source_fds->len);
  g_array_append_vals (targets, self->target_fds->data, self->target_fds->len);

  request.file = file;
  request.argv = argv;
  request.cwd = self->cwd;
  request.path_from_envp = (flags & G_SUBPROCESS_FLAGS_SEARCH_PATH_FROM_ENVP) != 0;
  request.sources = (const gint *) sources->data;
  request.targets = (const gint *) targets->data;
  request.n_fds = sources->len;
  request.inherit_fds = (flags & G_SUBPROCESS_FLAGS_INHERIT_FDS) != 0;
  /* Its own group: the terminal's Ctrl-C is the parent's to handle, and
   * ending the worker can end what it started. */
  request.new_process_group = TRUE;

  control = control_fd >= 0 ? g_strdup_printf (":%d", control_target) : NULL;
  for (;;)
    {
      AripZygoteOutcome outcome;

      /* The worker checks that its parent is the process named here; a
       * fork server's workers name none (0): the server checks as it
       * forks. */
      g_free (worker_var);
      worker_var = g_strdup_printf ("%s=%d:%d:%d:%d%s%s", ARIP_WORKER_ENV, ARIP_PROTOCOL_VERSION,
                                    channel_target, crash_target,
                                    method == ARIP_START_METHOD_FORKSERVER ? 0 : (int) getpid (),
                                    pool_worker ? ":pool" : "",
                                    control != NULL ? control : "");
      g_clear_pointer (&envp, g_ptr_array_unref);
      envp = build_environ (self, worker_var, owned);
      request.envp = (const char * const *) envp->pdata;

      result->start_method = method;
      if (method == ARIP_START_METHOD_SPAWN)
        {
          ok = arip_spawn (&request, &pid, &pidfd, &local_error);
          break;
        }

      outcome = fork_worker (self, method, &request, &pid, &pidfd, &local_error);
      ok = outcome == ARIP_ZYGOTE_FORKED;
      result->via_zygote = ok && method == ARIP_START_METHOD_FORKSERVER;
      if (outcome == ARIP_ZYGOTE_FORKED || outcome == ARIP_ZYGOTE_FAILED)
        break;

      /* The fork server is starting (this one is spawned, not kept
       * waiting), or cannot fork in this program: say why, once. */
      if (outcome == ARIP_ZYGOTE_UNAVAILABLE)
        {
          static gsize said = 0;

          if (g_once_init_enter (&said))
            {
              g_message ("arip: spawning workers instead: %s", local_error->message);
              g_once_init_leave (&said, 1);
            }
          g_clear_error (&local_error);
        }
      method = ARIP_START_METHOD_SPAWN;
    }

  /* The child's ends belong to the child now, or to nobody. */
  close_fd (&sv[1]);
  close_fd (&crash[1]);
  close_fd (&in_pipe[0]);
  close_fd (&out_pipe[1]);
  close_fd (&err_pipe[1]);

  if (!ok)
    goto fail_local;

  result->pid = pid;
  result->pidfd = pidfd;
  result->channel_fd = sv[0];
  result->crash_fd = crash[0];
  result->control_fd = control_fd;
  result->stdin_fd = in_pipe[1];
  result->stdout_fd = out_pipe[0];
  result->stderr_fd = err_pipe[0];
  return TRUE;

fail_local:
  {
    g_autofree char *described = arip_launcher_describe_argv (self);

    g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                 _("Could not start the worker “%s”: %s"), described, local_error->message);
  }
  close_fd (&sv[0]);
  close_fd (&sv[1]);
  close_fd (&crash[0]);
  close_fd (&crash[1]);
  close_fd (&in_pipe[0]);
  close_fd (&in_pipe[1]);
  close_fd (&out_pipe[0]);
  close_fd (&out_pipe[1]);
  close_fd (&err_pipe[0]);
  close_fd (&err_pipe[1]);
  close_fd (&control_fd);
  return FALSE;
}
