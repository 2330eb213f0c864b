/* arip-spawn.c: starting a program without copying the parent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * posix_spawn() in glibc creates the child with CLONE_VM|CLONE_VFORK: the
 * child borrows the parent's memory until it execs, so starting a worker
 * costs the same whether the parent holds 5 MiB or 5 GiB (a fork() copies
 * the page tables, which is what made GLib's fork path grow with the
 * parent). What a GLib child setup function would do in the child is done
 * with file actions and attributes instead:
 *
 *   - every descriptor to pass is first duplicated, in the parent, above
 *     every target number (close-on-exec), then dup2()ed onto its target,
 *     so sources and targets can never clobber each other;
 *   - everything else is closed with closefrom (close_range), so a
 *     descriptor the application forgot to mark close-on-exec never leaks;
 *   - the signal mask is emptied and commonly ignored signals get their
 *     default action back;
 *   - the child gets a process group of its own, so that the terminal's
 *     Ctrl-C reaches the parent only and a kill can reach the child's own
 *     children too.
 *
 * PR_SET_PDEATHSIG, which a worker sets, fires when the *thread* that
 * created it ends (prctl(2)). So spawns only ever happen on a thread that
 * lives as long as the process: the main thread when it is the caller,
 * otherwise a helper thread that arip starts once and never stops.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "arip-spawn-private.h"

#ifndef SYS_pidfd_open
# define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
# define SYS_pidfd_send_signal 424
#endif

gint
arip_pidfd_open (GPid pid)
{
  static gint unsupported;
  int fd;

  if (g_atomic_int_get (&unsupported))
    {
      errno = ENOSYS;
      return -1;
    }

  /* pidfd_open() descriptors are always close-on-exec. */
  fd = (int) syscall (SYS_pidfd_open, (pid_t) pid, 0);
  if (fd < 0 && errno == ENOSYS)
    g_atomic_int_set (&unsupported, 1);
  return fd;
}

gboolean
arip_pidfd_send_signal (gint pidfd,
                        GPid pid,
                        gint signum)
{
  if (pidfd >= 0)
    {
      if (syscall (SYS_pidfd_send_signal, pidfd, signum, NULL, 0) == 0)
        return TRUE;
      if (errno != ENOSYS)
        return FALSE;
    }
  return pid > 0 && kill (pid, signum) == 0;
}

static GSpawnError
spawn_error_from_errno (int err)
{
  switch (err)
    {
    case EACCES: return G_SPAWN_ERROR_ACCES;
    case EPERM: return G_SPAWN_ERROR_PERM;
    case E2BIG: return G_SPAWN_ERROR_TOO_BIG;
    case ENOEXEC: return G_SPAWN_ERROR_NOEXEC;
    case ENAMETOOLONG: return G_SPAWN_ERROR_NAMETOOLONG;
    case ENOENT: return G_SPAWN_ERROR_NOENT;
    case ENOMEM: return G_SPAWN_ERROR_NOMEM;
    case ENOTDIR: return G_SPAWN_ERROR_NOTDIR;
    case ELOOP: return G_SPAWN_ERROR_LOOP;
    case ETXTBSY: return G_SPAWN_ERROR_TXTBUSY;
    case EIO: return G_SPAWN_ERROR_IO;
    case ENFILE: return G_SPAWN_ERROR_NFILE;
    case EMFILE: return G_SPAWN_ERROR_MFILE;
    case EINVAL: return G_SPAWN_ERROR_INVAL;
    case EISDIR: return G_SPAWN_ERROR_ISDIR;
    case ELIBBAD: return G_SPAWN_ERROR_LIBBAD;
    case EAGAIN: return G_SPAWN_ERROR_FORK;
    default: return G_SPAWN_ERROR_FAILED;
    }
}

static const char *
envp_lookup (const char * const *envp,
             const char         *name)
{
  gsize len = strlen (name);

  for (gsize i = 0; envp != NULL && envp[i] != NULL; i++)
    if (strncmp (envp[i], name, len) == 0 && envp[i][len] == '=')
      return envp[i] + len + 1;
  return NULL;
}

/* The file to execute: @file itself if it has a slash, else the first
 * executable regular file of that name in PATH, as execvp() looks. */
static char *
resolve_program (const AripSpawnRequest *request,
                 GError                **error)
{
  const char *path;
  g_auto(GStrv) dirs = NULL;

  if (strchr (request->file, '/') != NULL)
    {
      /* posix_spawn() says why exec failed, but not where CLONE_VM is not
       * honoured (valgrind): look first. A relative path is looked up
       * after the change of directory, as exec would. */
      g_autofree char *full = request->cwd != NULL && !g_path_is_absolute (request->file)
        ? g_build_filename (request->cwd, request->file, NULL) : g_strdup (request->file);
      struct stat st;
      int err = 0;

      if (request->cwd != NULL && (stat (request->cwd, &st) != 0 || !S_ISDIR (st.st_mode)))
        ;   /* the change of directory fails first: spawn_here() says so */
      else if (stat (full, &st) != 0)
        err = errno;
      else if (S_ISDIR (st.st_mode))
        err = EACCES;
      else if (access (full, X_OK) != 0)
        err = errno;
      if (err != 0)
        {
          g_set_error (error, G_SPAWN_ERROR, spawn_error_from_errno (err),
                       _("Failed to execute child process “%s” (%s)"), request->file,
                       g_strerror (err));
          return NULL;
        }
      return g_strdup (request->file);
    }

  path = request->path_from_envp ? envp_lookup (request->envp, "PATH") : g_getenv ("PATH");
  if (path == NULL)
    path = "/bin:/usr/bin";

  dirs = g_strsplit (path, ":", -1);
  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autofree char *candidate = g_build_filename (dirs[i][0] != '\0' ? dirs[i] : ".",
                                                     request->file, NULL);
      struct stat st;

      if (stat (candidate, &st) == 0 && S_ISREG (st.st_mode) && access (candidate, X_OK) == 0)
        return g_steal_pointer (&candidate);
    }

  g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT,
               _("Failed to execute child process “%s” (%s)"), request->file,
               g_strerror (ENOENT));
  return NULL;
}

static void
close_all (GArray *fds)
{
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, gint, i));
  g_array_set_size (fds, 0);
}

/* A close-on-exec copy of @fd numbered @base or above, remembered in
 * @temps; -1 with errno on failure. */
static gint
dup_above (gint    fd,
           gint    base,
           GArray *temps)
{
  gint copy = fcntl (fd, F_DUPFD_CLOEXEC, base);

  if (copy >= 0)
    g_array_append_val (temps, copy);
  return copy;
}

static gboolean
is_target (const AripSpawnRequest *request,
           gint                    fd)
{
  for (guint i = 0; i < request->n_fds; i++)
    if (request->targets[i] == fd)
      return TRUE;
  return FALSE;
}

static gboolean
spawn_here (const AripSpawnRequest *request,
            GPid                   *pid_out,
            gint                   *pidfd_out,
            GError                **error)
{
  static const int reset_signals[] = {
    SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD, SIGALRM,
    SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGTSTP, SIGXCPU, SIGXFSZ,
  };
  g_autofree char *program = NULL;
  g_autoptr(GArray) temps = g_array_new (FALSE, FALSE, sizeof (gint));
  const gint stdio[3] = { request->stdin_fd, request->stdout_fd, request->stderr_fd };
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t mask, defaults;
  gint max_target = 2, base;
  short flags;
  pid_t pid = 0;
  int r = 0;

  program = resolve_program (request, error);
  if (program == NULL)
    return FALSE;

  for (guint i = 0; i < request->n_fds; i++)
    max_target = MAX (max_target, request->targets[i]);
  base = max_target + 1;

  posix_spawn_file_actions_init (&actions);
  posix_spawnattr_init (&attr);

  for (gint target = 0; target < 3 && r == 0; target++)
    {
      if (stdio[target] == ARIP_SPAWN_INHERIT)
        continue;
      if (stdio[target] < 0)
        r = posix_spawn_file_actions_addopen (&actions, target, "/dev/null",
                                              target == 0 ? O_RDONLY : O_WRONLY, 0);
      else
        {
          gint copy = dup_above (stdio[target], base, temps);
          r = copy < 0 ? errno : posix_spawn_file_actions_adddup2 (&actions, copy, target);
        }
    }

  for (guint i = 0; i < request->n_fds && r == 0; i++)
    {
      gint copy = dup_above (request->sources[i], base, temps);
      r = copy < 0 ? errno : posix_spawn_file_actions_adddup2 (&actions, copy, request->targets[i]);
    }

  if (!request->inherit_fds && r == 0)
    {
      /* The gaps below the highest target, then everything above it: the
       * copies made above go too. Closing a descriptor that is not open is
       * no error for posix_spawn. */
      for (gint fd = 3; fd < base && r == 0; fd++)
        if (!is_target (request, fd))
          r = posix_spawn_file_actions_addclose (&actions, fd);
      if (r == 0)
        r = posix_spawn_file_actions_addclosefrom_np (&actions, base);
    }

  if (request->cwd != NULL && r == 0)
    r = posix_spawn_file_actions_addchdir_np (&actions, request->cwd);

  sigemptyset (&mask);
  sigemptyset (&defaults);
  for (guint i = 0; i < G_N_ELEMENTS (reset_signals); i++)
    sigaddset (&defaults, reset_signals[i]);
  flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (request->new_process_group)
    flags |= POSIX_SPAWN_SETPGROUP;
  if (r == 0)
    r = posix_spawnattr_setsigmask (&attr, &mask);
  if (r == 0)
    r = posix_spawnattr_setsigdefault (&attr, &defaults);
  if (r == 0)
    r = posix_spawnattr_setpgroup (&attr, 0);
  if (r == 0)
    r = posix_spawnattr_setflags (&attr, flags);

  if (r == 0)
    r = posix_spawn (&pid, program, &actions, &attr,
                     (char * const *) request->argv, (char * const *) request->envp);

  posix_spawn_file_actions_destroy (&actions);
  posix_spawnattr_destroy (&attr);
  close_all (temps);

  if (r != 0)
    {
      struct stat st;
      int cwd_errno = 0;

      /* posix_spawn() says only the errno: tell a bad directory apart. */
      if (request->cwd != NULL && stat (request->cwd, &st) != 0)
        cwd_errno = errno;
      else if (request->cwd != NULL && !S_ISDIR (st.st_mode))
        cwd_errno = ENOTDIR;

      if (cwd_errno != 0)
        g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_CHDIR,
                     _("Failed to change to directory “%s” (%s)"), request->cwd,
                     g_strerror (cwd_errno));
      else
        g_set_error (error, G_SPAWN_ERROR, spawn_error_from_errno (r),
                     _("Failed to execute child process “%s” (%s)"), request->file,
                     g_strerror (r));
      return FALSE;
    }

  *pid_out = pid;
  *pidfd_out = arip_pidfd_open (pid);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The spawning thread                                                    */

typedef struct {
  const AripSpawnRequest *request;
  GPid                    pid;
  gint                    pidfd;
  GError                 *error;
  gboolean                ok;
  gboolean                done;
} SpawnJob;

static GMutex spawn_lock;
static GCond spawn_done;
static GAsyncQueue *spawn_jobs;

static gpointer
spawner_thread (gpointer data)
{
  for (;;)
    {
      SpawnJob *job = g_async_queue_pop (spawn_jobs);
      gboolean ok = spawn_here (job->request, &job->pid, &job->pidfd, &job->error);

      g_mutex_lock (&spawn_lock);
      job->ok = ok;
      job->done = TRUE;
      g_cond_broadcast (&spawn_done);
      g_mutex_unlock (&spawn_lock);
    }
  return NULL;
}

static void
ensure_spawner (void)
{
  static gsize started = 0;

  if (g_once_init_enter (&started))
    {
      sigset_t all, old;

      spawn_jobs = g_async_queue_new ();
      /* The thread inherits a full signal mask: no signal meant for the
       * program is ever handled there. */
      sigfillset (&all);
      pthread_sigmask (SIG_SETMASK, &all, &old);
      g_thread_unref (g_thread_new ("arip-spawner", spawner_thread, NULL));
      pthread_sigmask (SIG_SETMASK, &old, NULL);
      g_once_init_leave (&started, 1);
    }
}

gboolean
arip_spawn (const AripSpawnRequest *request,
            GPid                   *pid,
            gint                   *pidfd,
            GError                **error)
{
  SpawnJob job = { request, 0, -1, NULL, FALSE, FALSE };

  g_return_val_if_fail (request != NULL && request->file != NULL && request->argv != NULL, FALSE);

  *pid = 0;
  *pidfd = -1;

  if (gettid () == getpid ())
    return spawn_here (request, pid, pidfd, error);

  ensure_spawner ();
  g_async_queue_push (spawn_jobs, &job);
  g_mutex_lock (&spawn_lock);
  while (!job.done)
    g_cond_wait (&spawn_done, &spawn_lock);
  g_mutex_unlock (&spawn_lock);

  if (!job.ok)
    {
      g_propagate_error (error, job.error);
      return FALSE;
    }
  *pid = job.pid;
  *pidfd = job.pidfd;
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The end of a child                                                     */

gboolean
arip_spawn_peek_status (GPid  pid,
                        gint *wait_status)
{
  siginfo_t info;
  int r;

  memset (&info, 0, sizeof info);
  do
    r = waitid (P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT);
  while (r < 0 && errno == EINTR);

  if (r < 0)
    {
      /* ECHILD: someone else reaped it (SIGCHLD ignored, a stray
       * waitpid(-1)). It is gone; how is unknown. */
      *wait_status = 0xff << 8;
      return TRUE;
    }
  if (info.si_pid == 0)
    return FALSE;

  if (info.si_code == CLD_EXITED)
    *wait_status = (info.si_status & 0xff) << 8;
  else
    *wait_status = info.si_status & 0x7f;
  return TRUE;
}

void
arip_spawn_reap (GPid pid)
{
  /* The dead leader still holds the group's id: it cannot be reused. */
  kill (-pid, SIGKILL);
  while (waitpid (pid, NULL, WNOHANG) < 0 && errno == EINTR)
    ;
}

typedef struct {
  GSource  source;
  GPid     pid;
  gpointer tag;           /* the pidfd's, or NULL: look now and then */
  guint    interval_ms;
  gint     wait_status;
} ExitSource;

static gboolean
exit_source_prepare (GSource *source,
                     gint    *timeout)
{
  ExitSource *exit = (ExitSource *) source;

  *timeout = exit->tag != NULL ? -1 : (gint) exit->interval_ms;
  return FALSE;
}

static gboolean
exit_source_check (GSource *source)
{
  ExitSource *exit = (ExitSource *) source;

  if (exit->tag != NULL && !(g_source_query_unix_fd (source, exit->tag) & G_IO_IN))
    return FALSE;
  if (arip_spawn_peek_status (exit->pid, &exit->wait_status))
    return TRUE;
  /* Without a pidfd: more and more rarely. */
  if (exit->tag == NULL)
    exit->interval_ms = MIN (exit->interval_ms * 2, 50);
  return FALSE;
}

static gboolean
exit_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  ExitSource *exit = (ExitSource *) source;

  if (callback == NULL)
    return G_SOURCE_REMOVE;
  return ((AripExitFunc) (void (*) (void)) callback) (exit->wait_status, user_data);
}

static GSourceFuncs exit_source_funcs = {
  exit_source_prepare,
  exit_source_check,
  exit_source_dispatch,
  NULL, NULL, NULL,
};

GSource *
arip_spawn_exit_source_new (GPid pid,
                            gint pidfd)
{
  GSource *source = g_source_new (&exit_source_funcs, sizeof (ExitSource));
  ExitSource *exit = (ExitSource *) source;

  exit->pid = pid;
  exit->interval_ms = 1;
  if (pidfd >= 0)
    exit->tag = g_source_add_unix_fd (source, pidfd, G_IO_IN);
  g_source_set_static_name (source, "[arip] child exit");
  return source;
}
