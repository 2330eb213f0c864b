/* arip-command.c: external commands, counted by the limiter
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * anyio's run_process() and open_process(), with a launcher's settings: a
 * command takes a slot of the limiter for as long as it runs, so a program
 * that starts many of them never runs more children than the limit allows,
 * and cancelling a run stops the command as a call is stopped (interrupt,
 * terminate, kill, with the launcher's stop timeouts).
 *
 * run_command() starts its command as arip starts a worker: without
 * copying the parent, in a process group of its own, which is killed when
 * the command ends. spawn_command() hands back a GSubprocess: it is started
 * with GLib's spawn, in the parent's process group.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>

#include "arip-error.h"
#include "arip-launcher.h"
#include "arip-launcher-private.h"
#include "arip-limiter-private.h"
#include "arip-signals-private.h"
#include "arip-spawn-private.h"

/* How much of a failed command's stderr its error quotes. */
#define STDERR_TAIL 2000

/* A run_command() is started like a worker (posix_spawn, a process group
 * of its own) and its pipes are ours: when it ends, whatever is left of
 * its group is killed, so a background child that holds its pipes cannot
 * keep the run from completing. */
typedef struct _Run {
  GPid           pid;
  gint           pidfd;
  GSource       *exit_source;
  GSource       *stdin_source;
  gint           stdin_fd;
  gsize          stdin_written;
  GOutputStream *out;        /* GMemoryOutputStream */
  GOutputStream *err;
  guint          pending;    /* the exit, and two streams to read */
  gint           wait_status;
} Run;

typedef struct {
  char         **argv;
  GBytes        *stdin_data;
  gboolean       capture;      /* run_command: pipes for all three streams */
  AripSlot      *slot;
  GSubprocess   *subprocess;
  GSource       *cancel_source;
  GSource       *stop_timer;
  AripStopStage  stop_stage;
  gboolean       cancelled;
  guint          interrupt_ms;
  guint          terminate_ms;
  void         (*start) (GTask *task);   /* once a slot is taken */
  Run           *run;          /* run_command */
  gboolean       subprocess_gone;
} Command;

static void run_free (Run *run);

static void
command_free (Command *command)
{
  if (command->run != NULL)
    run_free (command->run);
  g_strfreev (command->argv);
  g_clear_pointer (&command->stdin_data, g_bytes_unref);
  arip_slot_release (command->slot);
  g_clear_object (&command->subprocess);
  if (command->cancel_source != NULL)
    {
      g_source_destroy (command->cancel_source);
      g_source_unref (command->cancel_source);
    }
  if (command->stop_timer != NULL)
    {
      g_source_destroy (command->stop_timer);
      g_source_unref (command->stop_timer);
    }
  g_free (command);
}

static GSubprocess *
spawn (AripLauncher  *launcher,
       Command       *command,
       GError       **error)
{
  GSubprocessFlags flags = command->capture
    ? G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE
    : arip_launcher_get_flags (launcher);
  g_autoptr(GSubprocessLauncher) sub = g_subprocess_launcher_new (flags);
  g_auto(GStrv) envp = arip_launcher_dup_environ (launcher);
  g_autoptr(GError) local_error = NULL;
  GSubprocess *subprocess;

  g_subprocess_launcher_set_environ (sub, envp);
  g_subprocess_launcher_set_cwd (sub, arip_launcher_get_cwd (launcher));
  if (!arip_launcher_pass_fds (launcher, sub, &local_error) ||
      (subprocess = g_subprocess_launcher_spawnv (sub, (const char * const *) command->argv,
                                                  &local_error)) == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not start the command “%s”: %s"), command->argv[0],
                   local_error->message);
      return NULL;
    }
  return subprocess;
}

/* ---------------------------------------------------------------------- */
/* Stopping a command                                                     */

static gboolean on_stop_timer (gpointer user_data);

/* @signum to the command and what it started: its whole group, as a
 * terminal's Ctrl-C would. The dead leader still holds the group's id
 * until we reap it, so the id is never someone else's. */
static void
signal_command (Command *command,
                gint     signum)
{
  if (command->run != NULL && !command->subprocess_gone)
    kill (-command->run->pid, signum);
}

static void
escalate (Command *command)
{
  guint wait_ms = 0;

  if (command->stop_timer != NULL)
    {
      g_source_destroy (command->stop_timer);
      g_clear_pointer (&command->stop_timer, g_source_unref);
    }
  if (command->run == NULL || command->subprocess_gone)
    return;

  switch (command->stop_stage)
    {
    case ARIP_STOP_NONE:
      command->stop_stage = ARIP_STOP_INTERRUPTED;
      signal_command (command, SIGINT);
      wait_ms = command->interrupt_ms;
      break;
    case ARIP_STOP_INTERRUPTED:
      command->stop_stage = ARIP_STOP_TERMINATED;
      signal_command (command, SIGTERM);
      wait_ms = command->terminate_ms;
      break;
    case ARIP_STOP_TERMINATED:
      command->stop_stage = ARIP_STOP_KILLED;
      signal_command (command, SIGKILL);
      return;
    case ARIP_STOP_KILLED:
    default:
      return;
    }

  if (wait_ms == 0)
    {
      escalate (command);
      return;
    }
  command->stop_timer = g_timeout_source_new (wait_ms);
  g_source_set_callback (command->stop_timer, on_stop_timer, command, NULL);
  g_source_set_static_name (command->stop_timer, "[arip] command stop");
  g_source_attach (command->stop_timer, g_main_context_get_thread_default ());
}

static gboolean
on_stop_timer (gpointer user_data)
{
  Command *command = user_data;

  g_clear_pointer (&command->stop_timer, g_source_unref);
  escalate (command);
  return G_SOURCE_REMOVE;
}

static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  Command *command = user_data;

  g_clear_pointer (&command->cancel_source, g_source_unref);
  command->cancelled = TRUE;
  escalate (command);
  return G_SOURCE_REMOVE;
}

static void
watch_cancellable (GTask   *task,
                   Command *command)
{
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (cancellable == NULL)
    return;
  command->cancel_source = g_cancellable_source_new (cancellable);
  g_source_set_callback (command->cancel_source, G_SOURCE_FUNC (on_cancelled), command, NULL);
  g_source_set_static_name (command->cancel_source, "[arip] command cancelled");
  g_source_attach (command->cancel_source, g_task_get_context (task));
}

/* ---------------------------------------------------------------------- */
/* run_command                                                            */

/* A run_command() is started like a worker (posix_spawn, a process group
 * of its own) and its pipes are ours: when it ends, whatever is left of
 * its group is killed, so a background child that holds its pipes cannot
 * keep the run from completing. */

static void
run_free (Run *run)
{
  if (run->exit_source != NULL)
    {
      g_source_destroy (run->exit_source);
      g_source_unref (run->exit_source);
    }
  if (run->stdin_source != NULL)
    {
      g_source_destroy (run->stdin_source);
      g_source_unref (run->stdin_source);
    }
  if (run->stdin_fd >= 0)
    close (run->stdin_fd);
  if (run->pidfd >= 0)
    close (run->pidfd);
  g_clear_object (&run->out);
  g_clear_object (&run->err);
  g_free (run);
}

/* ": the last lines of stderr", or "". */
static char *
describe_stderr (GBytes *err)
{
  gsize len = 0;
  const char *data = err != NULL ? g_bytes_get_data (err, &len) : NULL;
  g_autofree char *tail = NULL;
  gsize start;

  if (len == 0)
    return g_strdup ("");
  start = len > STDERR_TAIL ? len - STDERR_TAIL : 0;
  tail = g_utf8_make_valid (data + start, (gssize) (len - start));
  g_strstrip (tail);
  if (*tail == '\0')
    return g_strdup ("");
  return g_strdup_printf (start > 0 ? ": …%s" : ": %s", tail);
}

typedef struct {
  GBytes *out;
  GBytes *err;
  gint    exit_status;
} CommandOutcome;

static void
outcome_free (CommandOutcome *outcome)
{
  g_clear_pointer (&outcome->out, g_bytes_unref);
  g_clear_pointer (&outcome->err, g_bytes_unref);
  g_free (outcome);
}

static void
run_done (GTask *task)
{
  Command *command = g_task_get_task_data (task);
  Run *run = command->run;
  CommandOutcome *outcome = g_new0 (CommandOutcome, 1);
  g_autofree char *tail = NULL;
  gint status = run->wait_status;

  outcome->out = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (run->out));
  outcome->err = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (run->err));
  outcome->exit_status = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
  g_object_set_data_full (G_OBJECT (task), "arip-outcome", outcome, (GDestroyNotify) outcome_free);

  if (command->cancelled || g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             _("Running the command “%s” was cancelled"), command->argv[0]);
  else if (WIFSIGNALED (status))
    {
      g_autofree char *name = arip_signal_describe (WTERMSIG (status));

      tail = describe_stderr (outcome->err);
      g_task_return_new_error (task, ARIP_ERROR, ARIP_ERROR_SIGNALED,
                               _("The command “%s” was terminated by %s%s"), command->argv[0],
                               name, tail);
    }
  else if (outcome->exit_status != 0)
    {
      tail = describe_stderr (outcome->err);
      g_task_return_new_error (task, ARIP_ERROR, ARIP_ERROR_EXITED,
                               _("The command “%s” exited with status %d%s"), command->argv[0],
                               outcome->exit_status, tail);
    }
  else
    g_task_return_boolean (task, TRUE);
}

static void
run_step_done (GTask *task)
{
  Command *command = g_task_get_task_data (task);

  if (--command->run->pending == 0)
    {
      run_done (task);
      g_object_unref (task);
    }
}

static void
on_output_read (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;

  /* What could be read is what there is; an error ends the stream. */
  g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, NULL);
  run_step_done (task);
}

static gboolean
on_run_exited (gint     wait_status,
               gpointer user_data)
{
  GTask *task = user_data;
  Command *command = g_task_get_task_data (task);
  Run *run = command->run;

  run->wait_status = wait_status;
  g_clear_pointer (&run->exit_source, g_source_unref);
  /* Its group goes too: its pipes reach their end. */
  arip_spawn_reap (run->pid);
  arip_slot_release (g_steal_pointer (&command->slot));
  command->subprocess_gone = TRUE;
  run_step_done (task);
  return G_SOURCE_REMOVE;
}

/* write() without SIGPIPE for a reader that went away: the signal is
 * blocked in this thread around the call, and taken if it came. */
static gssize
write_no_sigpipe (gint        fd,
                  const void *data,
                  gsize       len)
{
  sigset_t pipe_set, old_set, pending;
  gboolean was_pending;
  gssize n;
  int saved_errno;

  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  sigpending (&pending);
  was_pending = sigismember (&pending, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_set, &old_set);
  do
    n = write (fd, data, len);
  while (n < 0 && errno == EINTR);
  saved_errno = errno;
  if (n < 0 && saved_errno == EPIPE && !was_pending)
    {
      struct timespec zero = { 0, 0 };
      sigtimedwait (&pipe_set, NULL, &zero);
    }
  pthread_sigmask (SIG_SETMASK, &old_set, NULL);
  errno = saved_errno;
  return n;
}

static gboolean
on_stdin_writable (gint         fd,
                   GIOCondition condition,
                   gpointer     user_data)
{
  Command *command = user_data;
  Run *run = command->run;
  gsize len;
  const guint8 *data = g_bytes_get_data (command->stdin_data, &len);

  while (run->stdin_written < len)
    {
      gssize n = write_no_sigpipe (fd, data + run->stdin_written, len - run->stdin_written);

      if (n < 0 && errno == EAGAIN)
        return G_SOURCE_CONTINUE;
      if (n <= 0)
        break;   /* it stopped reading: the rest is not wanted */
      run->stdin_written += (gsize) n;
    }

  /* All of it (or as much as it wanted): end of its input. */
  close (run->stdin_fd);
  run->stdin_fd = -1;
  g_clear_pointer (&run->stdin_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

static gboolean
start_run (GTask   *task,
           Command *command,
           GError **error)
{
  AripLauncher *launcher = g_task_get_source_object (task);
  g_auto(GStrv) envp = arip_launcher_dup_environ (launcher);
  g_autoptr(GArray) sources = g_array_new (FALSE, FALSE, sizeof (gint));
  g_autoptr(GArray) targets = g_array_new (FALSE, FALSE, sizeof (gint));
  gint in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
  AripSpawnRequest request = { 0 };
  GSubprocessFlags flags = arip_launcher_get_flags (launcher);
  const gint *fd_sources, *fd_targets;
  guint n_fds = arip_launcher_get_fds (launcher, &fd_sources, &fd_targets);
  g_autoptr(GError) local_error = NULL;
  GInputStream *in;
  Run *run;
  gboolean ok;

  if (!g_unix_open_pipe (in_pipe, FD_CLOEXEC, &local_error) ||
      !g_unix_open_pipe (out_pipe, FD_CLOEXEC, &local_error) ||
      !g_unix_open_pipe (err_pipe, FD_CLOEXEC, &local_error) ||
      !g_unix_set_fd_nonblocking (in_pipe[1], TRUE, &local_error))
    goto fail;

  g_array_append_vals (sources, fd_sources, n_fds);
  g_array_append_vals (targets, fd_targets, n_fds);
  request.file = command->argv[0];
  request.argv = (const char * const *) command->argv;
  request.envp = (const char * const *) envp;
  request.cwd = arip_launcher_get_cwd (launcher);
  request.path_from_envp = (flags & G_SUBPROCESS_FLAGS_SEARCH_PATH_FROM_ENVP) != 0;
  request.stdin_fd = in_pipe[0];
  request.stdout_fd = out_pipe[1];
  request.stderr_fd = err_pipe[1];
  request.sources = (const gint *) sources->data;
  request.targets = (const gint *) targets->data;
  request.n_fds = n_fds;
  request.inherit_fds = (flags & G_SUBPROCESS_FLAGS_INHERIT_FDS) != 0;
  request.new_process_group = TRUE;

  run = g_new0 (Run, 1);
  run->stdin_fd = -1;
  run->pidfd = -1;
  ok = arip_spawn (&request, &run->pid, &run->pidfd, &local_error);
  close (in_pipe[0]);
  close (out_pipe[1]);
  close (err_pipe[1]);
  if (!ok)
    {
      close (in_pipe[1]);
      close (out_pipe[0]);
      close (err_pipe[0]);
      g_free (run);
      goto fail_spawn;
    }
  command->run = run;

  run->pending = 3;
  run->exit_source = arip_spawn_exit_source_new (run->pid, run->pidfd);
  g_source_set_callback (run->exit_source, (GSourceFunc) (void (*) (void)) on_run_exited, task, NULL);
  g_source_attach (run->exit_source, g_task_get_context (task));

  run->out = g_memory_output_stream_new_resizable ();
  run->err = g_memory_output_stream_new_resizable ();
  in = g_unix_input_stream_new (out_pipe[0], TRUE);
  g_output_stream_splice_async (run->out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                G_PRIORITY_DEFAULT,
                                NULL, on_output_read, task);
  g_object_unref (in);
  in = g_unix_input_stream_new (err_pipe[0], TRUE);
  g_output_stream_splice_async (run->err, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                G_PRIORITY_DEFAULT,
                                NULL, on_output_read, task);
  g_object_unref (in);

  run->stdin_fd = in_pipe[1];
  run->stdin_source = g_unix_fd_source_new (run->stdin_fd, G_IO_OUT | G_IO_ERR | G_IO_HUP);
  g_source_set_callback (run->stdin_source, G_SOURCE_FUNC (on_stdin_writable), command, NULL);
  g_source_set_static_name (run->stdin_source, "[arip] command stdin");
  g_source_attach (run->stdin_source, g_task_get_context (task));
  return TRUE;

fail:
  for (guint i = 0; i < 2; i++)
    {
      if (in_pipe[i] >= 0)
        close (in_pipe[i]);
      if (out_pipe[i] >= 0)
        close (out_pipe[i]);
      if (err_pipe[i] >= 0)
        close (err_pipe[i]);
    }
fail_spawn:
  g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
               _("Could not start the command “%s”: %s"), command->argv[0], local_error->message);
  return FALSE;
}

static void
run_command_start (GTask *task)
{
  Command *command = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Running the command “%s” was cancelled"), command->argv[0]);
      g_object_unref (task);
      return;
    }

  if (!start_run (task, command, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }

  watch_cancellable (task, command);
}

static void
on_command_slot (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Command *command = g_task_get_task_data (task);
  GError *error = NULL;

  command->slot = arip_limiter_acquire_finish (result, &error);
  if (command->slot == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  command->start (task);
}

static GTask *
command_task_new (AripLauncher        *self,
                  const char * const  *argv,
                  gpointer             source_tag,
                  GCancellable        *cancellable,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Command *command = g_new0 (Command, 1);

  g_task_set_source_tag (task, source_tag);
  g_task_set_check_cancellable (task, FALSE);
  command->argv = g_strdupv ((char **) argv);
  arip_launcher_get_stop_timeouts (self, &command->interrupt_ms, &command->terminate_ms);
  g_task_set_task_data (task, command, (GDestroyNotify) command_free);
  return task;
}

/* Takes a slot of the limiter, then calls @start with @task. */
static void
acquire_then (GTask  *task,
              void  (*start) (GTask *task))
{
  Command *command = g_task_get_task_data (task);

  command->start = start;
  command->slot = arip_limiter_try_acquire (g_task_get_context (task));
  if (command->slot != NULL)
    start (task);
  else
    arip_limiter_acquire_async (FALSE, g_task_get_cancellable (task), on_command_slot, task);
}

/**
 * arip_launcher_run_command_async:
 * @self: a launcher
 * @argv: (array zero-terminated=1): the command and its arguments; the
 *   program is looked up in `PATH` when it has no slash
 * @stdin_data: (nullable): what the command reads on its standard input,
 *   or %NULL for nothing
 * @cancellable: (nullable): stops the command: interrupt, terminate, kill,
 *   with the launcher's stop timeouts; the run then fails with
 *   %G_IO_ERROR_CANCELLED
 * @callback: (scope async) (closure user_data): called once the command
 *   exited
 * @user_data: data for @callback
 *
 * Runs an external program with the launcher's environment, working
 * directory and extra descriptors, and collects its standard output and
 * error: anyio's `run_process()`. The command takes a slot of the global
 * limiter ([func@Arip.get_max_processes]) for as long as it runs, waiting
 * for one first if none is free.
 *
 * A command that exits with a non-zero status fails with
 * %ARIP_ERROR_EXITED, one killed by a signal with %ARIP_ERROR_SIGNALED;
 * both messages end with the last lines of its standard error.
 */
void
arip_launcher_run_command_async (AripLauncher        *self,
                                 const char * const  *argv,
                                 GBytes              *stdin_data,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  GTask *task;
  Command *command;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (argv != NULL && argv[0] != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = command_task_new (self, argv, arip_launcher_run_command_async, cancellable,
                           callback, user_data);
  command = g_task_get_task_data (task);
  command->capture = TRUE;
  /* No input: its stdin is closed at once. */
  command->stdin_data = stdin_data != NULL ? g_bytes_ref (stdin_data) : g_bytes_new (NULL, 0);
  acquire_then (task, run_command_start);
}

/**
 * arip_launcher_run_command_finish:
 * @self: a launcher
 * @result: the result given to the callback
 * @out_stdout: (out) (optional) (nullable) (transfer full): what the
 *   command wrote to its standard output
 * @out_stderr: (out) (optional) (nullable) (transfer full): what it wrote
 *   to its standard error
 * @out_exit_status: (out) (optional): its exit status, or -1 if a signal
 *   killed it
 * @error: return location for an error
 *
 * Finishes [method@Arip.Launcher.run_command_async]. The outputs and the
 * exit status are also set when the command failed with
 * %ARIP_ERROR_EXITED or %ARIP_ERROR_SIGNALED, as the error of a Python
 * `check=True` run carries them.
 *
 * Returns: %TRUE if the command exited with status 0
 */
gboolean
arip_launcher_run_command_finish (AripLauncher  *self,
                                  GAsyncResult  *result,
                                  GBytes       **out_stdout,
                                  GBytes       **out_stderr,
                                  gint          *out_exit_status,
                                  GError       **error)
{
  CommandOutcome *outcome;

  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == arip_launcher_run_command_async,
                        FALSE);

  outcome = g_object_get_data (G_OBJECT (result), "arip-outcome");
  if (out_stdout != NULL)
    *out_stdout = outcome != NULL && outcome->out != NULL ? g_bytes_ref (outcome->out) : NULL;
  if (out_stderr != NULL)
    *out_stderr = outcome != NULL && outcome->err != NULL ? g_bytes_ref (outcome->err) : NULL;
  if (out_exit_status != NULL)
    *out_exit_status = outcome != NULL ? outcome->exit_status : -1;

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* spawn_command                                                          */

static void
on_spawned_exited (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  AripSlot *slot = user_data;

  /* The command is gone: its slot is free. */
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  arip_slot_release (slot);
}

static void
spawn_command_start (GTask *task)
{
  Command *command = g_task_get_task_data (task);
  AripLauncher *launcher = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  GSubprocess *subprocess;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("Starting the command “%s” was cancelled"), command->argv[0]);
      g_object_unref (task);
      return;
    }

  subprocess = spawn (launcher, command, &error);
  if (subprocess == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }

  /* The slot stays taken until the command exits, whoever waits for it. */
  g_subprocess_wait_async (subprocess, NULL, on_spawned_exited, g_steal_pointer (&command->slot));
  g_task_return_pointer (task, subprocess, g_object_unref);
  g_object_unref (task);
}

/**
 * arip_launcher_spawn_command_async:
 * @self: a launcher
 * @argv: (array zero-terminated=1): the command and its arguments
 * @cancellable: (nullable): stops waiting for a limiter slot
 * @callback: (scope async) (closure user_data): called once the command
 *   started (or could not)
 * @user_data: data for @callback
 *
 * Starts an external program with the launcher's flags (its standard
 * streams), environment, working directory and extra descriptors, and
 * hands back its `GSubprocess`: anyio's `open_process()`. The command
 * takes a slot of the global limiter for as long as it runs, waiting for
 * one first if none is free.
 */
void
arip_launcher_spawn_command_async (AripLauncher        *self,
                                   const char * const  *argv,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (ARIP_IS_LAUNCHER (self));
  g_return_if_fail (argv != NULL && argv[0] != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = command_task_new (self, argv, arip_launcher_spawn_command_async, cancellable,
                           callback, user_data);
  acquire_then (task, spawn_command_start);
}

/**
 * arip_launcher_spawn_command_finish:
 * @self: a launcher
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Finishes [method@Arip.Launcher.spawn_command_async].
 *
 * Returns: (transfer full): the running command, or %NULL with @error set
 */
GSubprocess *
arip_launcher_spawn_command_finish (AripLauncher  *self,
                                    GAsyncResult  *result,
                                    GError       **error)
{
  g_return_val_if_fail (ARIP_IS_LAUNCHER (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == arip_launcher_spawn_command_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
