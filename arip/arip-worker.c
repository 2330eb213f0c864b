/* arip-worker.c: arip_init(), and the worker that serves one call
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A worker is the program started again with ARIP_WORKER in its
 * environment. arip_init() sees the variable, removes it, checks that the
 * descriptor it names is a Unix socket, arranges to die with its parent,
 * installs a crash handler that writes the signal's name and a backtrace to
 * the crash pipe, says hello, reads the call, runs the registered function
 * in a fresh main context and exits once the call is answered. It never
 * returns to the program's main().
 *
 * SIGINT is the parent's interrupt: its handler only writes a byte to a
 * pipe; a helper thread turns that into g_cancellable_cancel() on the call's
 * cancellable, so it works while the function is busy. The same thread
 * polls the channel for the parent hanging up and exits at once if it does.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib-unix.h>

#include "arip-call-private.h"
#include "arip-channel-private.h"
#include "arip-error.h"
#include "arip-error-private.h"
#include "arip-init.h"
#include "arip-registry-private.h"
#include "arip-sandbox-private.h"
#include "arip-shared-private.h"
#include "arip-signals-private.h"
#include "arip-worker-private.h"
#include "arip-zygote-private.h"

/* siginfo's si_code for a call a seccomp filter trapped. */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

/* Exit statuses of a worker that could not even start serving. */
#define EXIT_BAD_SETUP   125
#define EXIT_ORPHANED    126
#define EXIT_SANDBOX     124

static gboolean is_worker;
static gboolean init_ran;
/* Set by a language binding's override before arip_init(). */
static char *language_binding;
/* Why calls cannot be served here (an interpreter without its override). */
static char *binding_missing;
/* ARIP_WORKER was in the environment when the library was loaded. */
static gboolean started_as_worker;
static char **default_argv;
static char *own_executable;

static int crash_fd = -1;
/* What a language runtime's crash handler wrote (arip_set_crash_notes_fd()). */
static int crash_notes_fd = -1;
static gint unwinder_ready;
static int interrupt_pipe[2] = { -1, -1 };
static int channel_fd = -1;
static int devnull_fd = -1;
/* A pool worker's page shared with the parent: the call it began last. */
static volatile guint32 *control_page;
/* A fork of the parent (ARIP_START_METHOD_FORK), not of a fork server. */
static gboolean forked_from_parent;
/* arip_worker_become() made this process a worker. */
static gboolean became_worker;
static AripPreloadFunc preload_func;
static gpointer preload_data;

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS,
                                     SIGXCPU, SIGXFSZ };

/* ---------------------------------------------------------------------- */
/* The program's own argv                                                 */

static char **
read_cmdline (void)
{
  g_autofree char *contents = NULL;
  gsize len = 0;
  GPtrArray *args;

  if (!g_file_get_contents ("/proc/self/cmdline", &contents, &len, NULL) || len == 0)
    return NULL;

  args = g_ptr_array_new ();
  for (gsize i = 0; i < len; i += strlen (contents + i) + 1)
    g_ptr_array_add (args, g_strdup (contents + i));
  g_ptr_array_add (args, NULL);
  return (char **) g_ptr_array_free (args, FALSE);
}

static void
read_own_process (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      g_autofree char *path = g_file_read_link ("/proc/self/exe", NULL);

      default_argv = read_cmdline ();
      /* The path is what a tool such as valgrind reports as the program;
       * "/proc/self/exe" would be the tool itself there. A program replaced
       * or deleted since it started is still reachable through the link. */
      if (path != NULL && g_path_is_absolute (path) &&
          !g_str_has_suffix (path, " (deleted)") &&
          g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
        own_executable = g_steal_pointer (&path);
      else
        own_executable = g_strdup ("/proc/self/exe");
      g_once_init_leave (&done, 1);
    }
}

const char * const *
arip_worker_get_default_argv (void)
{
  read_own_process ();
  return (const char * const *) default_argv;
}

const char *
arip_worker_get_own_executable (void)
{
  read_own_process ();
  return own_executable;
}

/* ---------------------------------------------------------------------- */
/* Async-signal-safe crash reporting                                      */

static void
safe_write (int         fd,
            const char *s)
{
  size_t len = strlen (s);
  int waits = 0;

  while (len > 0)
    {
      ssize_t n = write (fd, s, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN && waits < 20)
        {
          /* The parent reads the pipe as we live: room comes soon. */
          struct pollfd pfd = { .fd = fd, .events = POLLOUT };
          waits++;
          poll (&pfd, 1, 50);
          continue;
        }
      if (n <= 0)
        return;
      s += n;
      len -= n;
    }
}

/* The crash pipe may be shared with processes the function started: each
 * line of the report is one write of at most PIPE_BUF bytes (never split
 * by another writer's), prefixed with "arip worker PID: ", so that the
 * parent can pick the report out of whatever else arrived. */
static char report_line[512];
static size_t report_prefix_len;

static void
report_begin (void)
{
  char pid[16];
  int i = sizeof pid - 1;
  unsigned int value = (unsigned int) getpid ();

  pid[i] = '\0';
  do
    {
      pid[--i] = '0' + value % 10;
      value /= 10;
    }
  while (value > 0 && i > 0);

  report_prefix_len = 0;
  report_line[0] = '\0';
  strcat (report_line, "arip worker ");
  strcat (report_line, pid + i);
  strcat (report_line, ": ");
  report_prefix_len = strlen (report_line);
}

/* Writes the prefix and @text (its first @len bytes) as one line. */
static void
report_line_n (const char *text,
               size_t      len)
{
  size_t room = sizeof report_line - report_prefix_len - 2;

  if (len > room)
    len = room;
  memcpy (report_line + report_prefix_len, text, len);
  report_line[report_prefix_len + len] = '\n';
  report_line[report_prefix_len + len + 1] = '\0';
  safe_write (crash_fd, report_line);
}

/* What a report takes of a file at most (the parent keeps less). */
#define MAX_REPORTED_FILE (64 * 1024)

/* Copies what @fd holds, from its start, to the report a line at a time;
 * with @echo_fd >= 0, also as it is to @echo_fd. */
static void
report_file_lines (int fd,
                   int echo_fd)
{
  char buf[4096];
  size_t kept = 0;
  off_t offset = 0;

  while (offset < MAX_REPORTED_FILE)
    {
      ssize_t got = pread (fd, buf + kept, sizeof buf - kept, offset);
      size_t start = 0, total;

      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break;
      offset += got;
      if (echo_fd >= 0)
        {
          char *echo = buf + kept;
          size_t left = (size_t) got;

          while (left > 0)
            {
              ssize_t n = write (echo_fd, echo, left);
              if (n < 0 && errno == EINTR)
                continue;
              if (n <= 0)
                break;
              echo += n;
              left -= (size_t) n;
            }
        }
      total = kept + (size_t) got;
      for (size_t i = 0; i < total; i++)
        if (buf[i] == '\n')
          {
            report_line_n (buf + start, i - start);
            start = i + 1;
          }
      kept = total - start;
      if (kept == sizeof buf)
        kept = 0;   /* a line longer than the buffer: give it up */
      memmove (buf, buf + start, kept);
    }
  if (kept > 0)
    report_line_n (buf, kept);
}

static void
report_backtrace (void)
{
  void *frames[64];
  int n, scratch;

  /* backtrace_symbols_fd() writes a line per frame without a prefix: let
   * it write into a file of our own, then copy it out line by line. */
  scratch = memfd_create ("arip-backtrace", MFD_CLOEXEC);
  if (scratch < 0)
    return;
  n = backtrace (frames, G_N_ELEMENTS (frames));
  backtrace_symbols_fd (frames, n, scratch);
  report_file_lines (scratch, -1);
  close (scratch);
}

static void
on_crash (int        signum,
          siginfo_t *info,
          void      *context)
{
  int saved_errno = errno;

  if (crash_fd >= 0)
    {
      const char *name = arip_signal_name (signum);
      char what[64] = "fatal signal ";

      report_begin ();
      if (name != NULL)
        strcat (what, name);
      else
        {
          char num[16];
          int i = sizeof num - 1;
          unsigned int value = (unsigned int) signum;

          num[i] = '\0';
          do
            {
              num[--i] = '0' + value % 10;
              value /= 10;
            }
          while (value > 0 && i > 0);
          strcat (what, num + i);
        }
      report_line_n (what, strlen (what));
      if (signum == SIGSYS && info != NULL && info->si_code == SYS_SECCOMP)
        {
          const char *call = arip_sandbox_blocked_syscall_name (info->si_syscall);
          char line[160] = ARIP_SANDBOX_BLOCKED_LINE;

          if (call != NULL)
            strncat (line, call, sizeof line - strlen (line) - 1);
          else
            strcat (line, "(unknown)");
          report_line_n (line, strlen (line));
        }
      if (crash_notes_fd >= 0)
        report_file_lines (crash_notes_fd, STDERR_FILENO);
      if (g_atomic_int_get (&unwinder_ready))
        {
          report_line_n ("Backtrace:", strlen ("Backtrace:"));
          report_backtrace ();
        }
    }

  /* SA_RESETHAND put the default action back: die of the same signal, so
   * the parent sees what really happened. */
  errno = saved_errno;
  raise (signum);
}

static void
install_crash_handlers (void)
{
  static char alt_stack_storage[64 * 1024];
  stack_t alt_stack = { 0 };
  struct sigaction action = { 0 };

  /* Run the handler on its own stack so a stack overflow is reported too. */
  alt_stack.ss_sp = alt_stack_storage;
  alt_stack.ss_size = sizeof alt_stack_storage;
  sigaltstack (&alt_stack, NULL);

  action.sa_sigaction = on_crash;
  action.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK | SA_NODEFER;
  sigemptyset (&action.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS (crash_signals); i++)
    sigaction (crash_signals[i], &action, NULL);
}

/* ---------------------------------------------------------------------- */
/* Interrupts and the parent hanging up                                   */

/* Calls are numbered from 1 in the order the worker receives them. A
 * plain SIGINT (kill(), Ctrl-C) interrupts whatever call runs; a pool's
 * parent sends sigqueue(SIGINT) with the number of the call it means, so
 * an interrupt meant for a call that already ended never hits the next. */
static GMutex interrupt_lock;
static guint32 active_seq;             /* 0 between calls */
static GCancellable *active_cancellable;
static guint32 pending_seq;            /* interrupted before it started */
static gboolean pool_mode;

static void
on_sigint (int        signum,
           siginfo_t *info,
           void      *context)
{
  int saved_errno = errno;
  guint32 seq = 0;

  /* One this process sent one of its threads (the Python layer does, to
   * end a blocking system call once an interrupt was seen) is no new
   * interrupt. */
  if (info != NULL && info->si_code == SI_TKILL && info->si_pid == getpid ())
    return;
  if (info != NULL && info->si_code == SI_QUEUE)
    seq = (guint32) info->si_value.sival_int;

  /* Up to PIPE_BUF bytes are written atomically. */
  if (write (interrupt_pipe[1], &seq, sizeof seq) < 0)
    { /* the pipe is full: interrupts are pending anyway */ }
  errno = saved_errno;
}

static void
interrupt_call (guint32 seq)
{
  GCancellable *to_cancel = NULL;

  g_mutex_lock (&interrupt_lock);
  if (seq == 0)
    {
      if (active_seq != 0)
        to_cancel = g_object_ref (active_cancellable);
      else if (!pool_mode)
        pending_seq = 1;   /* the one call, before it started */
    }
  else if (seq == active_seq)
    to_cancel = g_object_ref (active_cancellable);
  else if (seq > active_seq)
    pending_seq = MAX (pending_seq, seq);
  g_mutex_unlock (&interrupt_lock);

  if (to_cancel != NULL)
    {
      g_cancellable_cancel (to_cancel);
      g_object_unref (to_cancel);
    }
}

/* The last call's cancellable, reused when nothing cancelled it and
 * nobody else kept it: one object less to make per call in a pool. */
static GCancellable *spare_cancellable;

static GCancellable *
begin_call (guint32 seq)
{
  GCancellable *cancellable;
  gboolean interrupted;

  if (spare_cancellable != NULL &&
      !g_cancellable_is_cancelled (spare_cancellable) &&
      g_atomic_int_get (&G_OBJECT (spare_cancellable)->ref_count) == 1)
    cancellable = g_steal_pointer (&spare_cancellable);
  else
    {
      g_clear_object (&spare_cancellable);
      cancellable = g_cancellable_new ();
    }

  g_mutex_lock (&interrupt_lock);
  active_seq = seq;
  active_cancellable = g_object_ref (cancellable);
  interrupted = pending_seq == seq;
  g_mutex_unlock (&interrupt_lock);

  if (interrupted)
    g_cancellable_cancel (cancellable);
  return cancellable;
}

static void
end_call (void)
{
  GCancellable *old;

  g_mutex_lock (&interrupt_lock);
  active_seq = 0;
  old = g_steal_pointer (&active_cancellable);
  g_mutex_unlock (&interrupt_lock);

  g_clear_object (&spare_cancellable);
  spare_cancellable = old;
}

/* Applies the interrupts waiting in the pipe. */
static void
take_interrupts (void)
{
  guint32 seqs[16];
  gssize n;

  while ((n = read (interrupt_pipe[0], seqs, sizeof seqs)) > 0)
    for (gssize i = 0; i < n / (gssize) sizeof (guint32); i++)
      interrupt_call (seqs[i]);
}

static gpointer
watch_thread (gpointer data)
{
  /* backtrace() loads libgcc on first use, which is not safe inside a
   * signal handler. Do it here, off the path to the first call (loading
   * it takes a few hundred microseconds). A crash before it is done still
   * names its signal; only the backtrace may be missing. A fork server
   * did it for its workers. */
  if (!g_atomic_int_get (&unwinder_ready))
    arip_worker_prepare_unwinder ();

  for (;;)
    {
      struct pollfd fds[2] = {
        { .fd = interrupt_pipe[0], .events = POLLIN },
        { .fd = channel_fd, .events = POLLRDHUP },
      };

      if (poll (fds, G_N_ELEMENTS (fds), -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }

      if (fds[0].revents & POLLIN)
        take_interrupts ();

      if (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        {
          /* The parent is gone or gave up on us: nobody wants the result. */
          _exit (EXIT_ORPHANED);
        }
    }

  return NULL;
}

static gsize watch_started;

void
arip_worker_start_watch (void)
{
  if (interrupt_pipe[0] < 0)
    return;
  if (g_once_init_enter (&watch_started))
    {
      /* An interrupt that came before is seen by whoever asked, now. */
      take_interrupts ();
      g_thread_unref (g_thread_new ("arip-worker-watch", watch_thread, NULL));
      g_once_init_leave (&watch_started, 1);
    }
}

/* A worker forked by a fork server starts its watch thread only when its
 * function asks for the call's cancellable (the one thing the thread is
 * for, with noticing a parent that hung up without killing it): making and
 * ending a thread is a sixth of such a worker's life. An interrupt that
 * came earlier waits in the pipe. Other workers start it now: it also
 * loads the unwinder, off the path to the first call. */
static void
install_interrupt_handler (void)
{
  struct sigaction action = { 0 };

  if (!g_unix_open_pipe (interrupt_pipe, FD_CLOEXEC, NULL))
    {
      interrupt_pipe[0] = interrupt_pipe[1] = -1;
      return;
    }
  fcntl (interrupt_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl (interrupt_pipe[1], F_SETFL, O_NONBLOCK);

  action.sa_sigaction = on_sigint;
  action.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, NULL);

  if (!became_worker || forked_from_parent)
    arip_worker_start_watch ();
}

G_GNUC_NORETURN static void worker_main (const char  *env_value,
                                         int         *argc,
                                         char      ***argv);
static gboolean parse_worker_env (const char *value,
                                  int        *out_channel_fd,
                                  int        *out_crash_fd,
                                  GPid       *out_parent,
                                  gboolean   *out_pool,
                                  int        *out_control_fd);

/* ---------------------------------------------------------------------- */
/* Children of the function                                               */

/* A function may fork (directly, through daemon(), through a library).
 * The child of such a fork must not hold the channel or the crash pipe:
 * it could talk to the parent in our name, or outlive us and keep them
 * open. In a forked child both descriptors become /dev/null at once. (A
 * child started with exec never has them: they are close-on-exec.) */
static void
after_fork_in_child (void)
{
  if (devnull_fd < 0)
    return;
  if (channel_fd >= 0)
    dup3 (devnull_fd, channel_fd, O_CLOEXEC);
  if (crash_fd >= 0)
    dup3 (devnull_fd, crash_fd, O_CLOEXEC);
  control_page = NULL;
}

static void
protect_from_forks (void)
{
  devnull_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull_fd >= 0)
    pthread_atfork (NULL, NULL, after_fork_in_child);
}

/* Runs when the library is loaded, before main(): a process started as a
 * worker dies with its parent from the start, even if its main() never
 * reaches arip_init(); one whose parent is already gone goes now. */
__attribute__ ((constructor)) static void
arip_worker_early_check (void)
{
  const char *env = getenv (ARIP_WORKER_ENV);
  const char *zygote = getenv (ARIP_ZYGOTE_ENV);
  const char *parent_field;
  long parent;
  int colons = 0, wanted = 3;

  if (env == NULL && zygote == NULL)
    return;
  if (env == NULL)
    {
      /* A fork server: "VERSION:FD:PARENT:BIND_NOW". The dynamic linker has
       * read LD_BIND_NOW; if it is ours, the program never sees it. */
      const char *last = strrchr (zygote, ':');

      if (last != NULL && strcmp (last, ":1") == 0)
        unsetenv ("LD_BIND_NOW");
      env = zygote;
      wanted = 2;
    }
  started_as_worker = TRUE;
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  /* The parent's pid is the fourth field (the third for a fork server). */
  for (parent_field = env; *parent_field != '\0' && colons < wanted; parent_field++)
    if (*parent_field == ':')
      colons++;
  parent = colons == wanted ? strtol (parent_field, NULL, 10) : 0;
  if (parent > 0 && getppid () != (pid_t) parent)
    _exit (EXIT_ORPHANED);
}

/* ---------------------------------------------------------------------- */
/* Forked workers                                                         */

static gboolean
is_target (const AripBecomeWorker *how,
           gint                    fd)
{
  for (guint i = 0; i < how->n_fds; i++)
    if (how->targets[i] == fd)
      return TRUE;
  return FALSE;
}

void
arip_worker_become (const AripBecomeWorker *how)
{
  const char *env;
  sigset_t none;
  gint max_target = 2;
  gint copies[96];

  /* A process group of its own, as a spawned worker has. */
  setpgid (0, 0);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  signal (SIGCHLD, SIG_DFL);
  signal (SIGPIPE, SIG_DFL);

  /* Die with whoever forked us; if it is gone already, go now. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != how->parent)
    _exit (EXIT_ORPHANED);

  /* The descriptors it gets, at their numbers: first all above every
   * target, then onto them; then nothing else stays open (no exec closes
   * what is close-on-exec here). */
  if (how->n_fds > G_N_ELEMENTS (copies))
    _exit (EXIT_BAD_SETUP);
  for (guint i = 0; i < how->n_fds; i++)
    max_target = MAX (max_target, how->targets[i]);
  for (guint i = 0; i < how->n_fds; i++)
    {
      copies[i] = fcntl (how->fds[i], F_DUPFD, max_target + 1);
      if (copies[i] < 0)
        _exit (EXIT_BAD_SETUP);
    }
  for (guint i = 0; i < how->n_fds; i++)
    if (dup2 (copies[i], how->targets[i]) < 0)
      _exit (EXIT_BAD_SETUP);
  if (!how->inherit_fds)
    {
      for (gint fd = 3; fd <= max_target; fd++)
        if (!is_target (how, fd))
          close (fd);
      close_range ((unsigned int) max_target + 1, ~0u, 0);
    }
  else
    for (guint i = 0; i < how->n_fds; i++)
      close (copies[i]);

  if (how->envp != NULL)
    environ = g_strdupv (how->envp);
  if (how->cwd != NULL && chdir (how->cwd) < 0)
    {
      g_printerr ("arip worker %d: could not change to the directory “%s”: %s\n",
                  (int) getpid (), how->cwd, g_strerror (errno));
      _exit (EXIT_BAD_SETUP);
    }

  forked_from_parent = how->from_parent;
  became_worker = TRUE;
  env = g_getenv (ARIP_WORKER_ENV);
  if (env == NULL)
    _exit (EXIT_BAD_SETUP);
  init_ran = TRUE;
  worker_main (env, NULL, NULL);
}

/**
 * arip_set_preload_func:
 * @func: (scope async) (closure user_data): what to run once in the fork
 *   server
 * @user_data: data for @func
 *
 * Sets what a worker runs before its first call: load what every call
 * needs (import heavy Python modules, read a model, warm a cache). The
 * fork server (%ARIP_START_METHOD_FORKSERVER) runs it once, when it
 * reaches arip_init(), and every worker it forks starts with the result
 * at the price of a fork; a spawned worker, or a fork of the parent, runs
 * it itself before it says hello (within the startup timeout). The
 * parent never runs it. Call it before arip_init().
 *
 * It must not start threads: a fork server that runs threads cannot fork,
 * and workers are spawned instead (with a message saying why).
 */
void
arip_set_preload_func (AripPreloadFunc func,
                       gpointer        user_data)
{
  preload_func = func;
  preload_data = user_data;
}

void
arip_worker_prepare_unwinder (void)
{
  void *warm_up[2];

  backtrace (warm_up, G_N_ELEMENTS (warm_up));
  g_atomic_int_set (&unwinder_ready, 1);
}

void
arip_worker_warm_up (void)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  /* Class initialisation (GObject's first of all) writes memory each forked
   * worker would otherwise copy and fill again. */
  g_type_class_unref (g_type_class_ref (ARIP_TYPE_CALL));
  arip_worker_prepare_unwinder ();
  arip_sandbox_prepare ();
}

void
arip_worker_run_preload (void)
{
  AripPreloadFunc func = g_steal_pointer (&preload_func);

  if (func != NULL)
    func (preload_data);
}

void
arip_worker_refuse_to_spawn_if_uninitialized (void)
{
  g_autofree char *message = NULL;
  const char *env;
  int chan = -1, crash = -1, control = -1;
  GPid parent = 0;
  gboolean pool = FALSE;

  if (!started_as_worker || init_ran)
    return;

  env = g_getenv (ARIP_WORKER_ENV);
  if (env != NULL)
    parse_worker_env (env, &chan, &crash, &parent, &pool, &control);

  /* Each worker would start another: a storm of processes. */
  message = g_strdup_printf ("arip worker %d: this process was started as a worker of process %d, "
                             "but arip_init() was not called at the top of main() before it "
                             "started workers of its own; it refuses to, and exits. Call "
                             "arip_init() first thing in main(), right after the "
                             "arip_register_function() calls.\n",
                             (int) getpid (), (int) parent);
  safe_write (STDERR_FILENO, message);
  if (crash >= 0)
    safe_write (crash, message);
  _exit (EXIT_BAD_SETUP);
}

/* ---------------------------------------------------------------------- */
/* Serving calls                                                          */

G_GNUC_NORETURN static void
worker_exit (int status)
{
  fflush (NULL);
  _exit (status);
}

G_GNUC_NORETURN G_GNUC_PRINTF (1, 2) static void
worker_fail (const char *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_printerr ("arip worker %d: %s\n", (int) getpid (), message);
  worker_exit (EXIT_BAD_SETUP);
}

typedef struct {
  AripChannel  *channel;
  GMainContext *context;
  AripCall     *call;          /* the call being served, or NULL */
  AripFrame    *next_call;     /* a call frame read while serving one */
  char        **argv;
} Worker;

/* The connection to the parent's shared objects, sent before the first
 * call or message that holds a handle. */
static void
take_shared_connection (Worker    *worker,
                        AripFrame *frame)
{
  gint n_fds = frame->fds != NULL ? g_unix_fd_list_get_length (frame->fds) : 0;
  gint fd, ack_fd = -1;

  /* The connection, and the page acknowledgements go in if the parent
   * could make one. */
  if (n_fds != 1 && n_fds != 2)
    worker_fail ("a shared objects' connection frame without its descriptor");
  fd = g_unix_fd_list_get (frame->fds, 0, NULL);
  if (n_fds == 2)
    ack_fd = g_unix_fd_list_get (frame->fds, 1, NULL);
  if (fd < 0 || (n_fds == 2 && ack_fd < 0))
    worker_fail ("out of file descriptors for the shared objects' connection");
  arip_shared_client_connect (fd, ack_fd, worker->context);
}

static void
on_worker_frame (AripChannel *channel,
                 AripFrame   *frame,
                 gpointer     user_data)
{
  Worker *worker = user_data;

  if (frame->kind == ARIP_FRAME_SHARED_CONNECT)
    take_shared_connection (worker, frame);
  else if (frame->kind == ARIP_FRAME_MESSAGE)
    {
      if (worker->call != NULL)
        arip_call_emit_message (worker->call, frame->value);
      /* Its memfd is ours no more: the parent may count it as gone. */
      if (frame->memfd_size > 0)
        {
          arip_channel_send_bytes (worker->channel, arip_frame_encode_consumed (frame->memfd_size),
                                   NULL, NULL);
          arip_channel_flush_sync (worker->channel, NULL);
        }
    }
  else if (frame->kind == ARIP_FRAME_CALL && pool_mode && worker->next_call == NULL)
    {
      /* The next call, read in the same main context iteration that sent
       * the answer to this one. */
      AripFrame *copy = g_new0 (AripFrame, 1);

      copy->kind = frame->kind;
      copy->value = g_variant_ref (frame->value);
      copy->function_owned = g_strdup (frame->function);
      copy->function = copy->function_owned;
      copy->fds = frame->fds != NULL ? g_object_ref (frame->fds) : NULL;
      worker->next_call = copy;
    }
  else
    worker_fail ("unexpected %s frame from the parent", arip_frame_kind_to_string (frame->kind));
}

static void
on_worker_channel_closed (AripChannel  *channel,
                          const GError *error,
                          gpointer      user_data)
{
  Worker *worker = user_data;

  if (worker->call == NULL || !arip_call_has_returned (worker->call))
    worker_exit (EXIT_ORPHANED);
}

static void
send_state (Worker    *worker,
            AripState  state)
{
  if (!pool_mode)
    arip_channel_send_bytes (worker->channel, arip_frame_encode_u32 (ARIP_FRAME_STATE, state),
                             NULL, NULL);
}

/* "VERSION:CHANNEL:CRASH:PARENT" for a one-shot worker, with ":pool" or
 * ":pool:CONTROL" after it for a pool worker. */
static gboolean
parse_worker_env (const char *value,
                  int        *out_channel_fd,
                  int        *out_crash_fd,
                  GPid       *out_parent,
                  gboolean   *out_pool,
                  int        *out_control_fd)
{
  g_auto(GStrv) parts = g_strsplit (value, ":", -1);
  guint n_parts = g_strv_length (parts);
  guint64 version, chan, crash, parent, control = 0;

  if ((n_parts < 4 || n_parts > 6) ||
      !g_ascii_string_to_unsigned (parts[0], 10, 1, G_MAXUINT32, &version, NULL) ||
      !g_ascii_string_to_unsigned (parts[1], 10, 0, G_MAXINT, &chan, NULL) ||
      !g_ascii_string_to_unsigned (parts[2], 10, 0, G_MAXINT, &crash, NULL) ||
      !g_ascii_string_to_unsigned (parts[3], 10, 0, G_MAXINT, &parent, NULL))
    return FALSE;
  if (version != ARIP_PROTOCOL_VERSION)
    return FALSE;
  if (n_parts >= 5 && !g_str_equal (parts[4], "pool"))
    return FALSE;
  if (n_parts == 6 && !g_ascii_string_to_unsigned (parts[5], 10, 0, G_MAXINT, &control, NULL))
    return FALSE;

  *out_channel_fd = (int) chan;
  *out_crash_fd = (int) crash;
  *out_parent = (GPid) parent;
  *out_pool = n_parts >= 5;
  *out_control_fd = n_parts == 6 ? (int) control : -1;
  return TRUE;
}

static void
answer_unknown_function (Worker     *worker,
                         const char *function)
{
  const char * const *worker_argv = worker->argv != NULL
    ? (const char * const *) worker->argv : arip_worker_get_default_argv ();
  g_autofree char *argv_str = worker_argv != NULL ? g_strjoinv (" ", (char **) worker_argv)
                                                  : g_strdup ("?");
  g_autofree char *message = NULL;

  /* Read in the parent, in the language of the environment the worker
   * inherited. (Only now: it costs a tenth of a millisecond.) */
  setlocale (LC_MESSAGES, "");
  message =
    g_strdup_printf (_("No function named “%s” is registered in the worker “%s”; "
                       "register it with arip_register_function() before calling arip_init()"),
                     function, argv_str);

  arip_channel_send (worker->channel, ARIP_FRAME_ERROR,
                     g_variant_new ("(sis)", g_quark_to_string (ARIP_ERROR),
                                    ARIP_ERROR_UNKNOWN_FUNCTION, message),
                     NULL, NULL);
  if (!arip_channel_flush_sync (worker->channel, NULL))
    worker_exit (EXIT_ORPHANED);
}

/* Serves one call frame; returns once it is answered. */
static void
serve (Worker    *worker,
       AripFrame *frame,
       guint32    seq)
{
  g_autoptr(GCancellable) cancellable = NULL;
  g_autoptr(GError) error = NULL;
  GVariant *args;
  const char *function;
  AripFunc func;
  gpointer user_data;

  if (frame->kind != ARIP_FRAME_CALL)
    worker_fail ("expected a call from the parent, got a %s frame",
                 arip_frame_kind_to_string (frame->kind));

  function = frame->function;
  args = frame->value;

  /* The parent reads this if we die: a call we never began may go to
   * another worker. */
  if (control_page != NULL)
    g_atomic_int_set ((volatile gint *) control_page, (gint) seq);

  send_state (worker, ARIP_STATE_BOOTING);

  if (!arip_registry_lookup (function, &func, &user_data))
    {
      answer_unknown_function (worker, function);
      return;
    }

  if (binding_missing != NULL)
    {
      /* The function would run without the layer that answers for it. */
      arip_channel_send (worker->channel, ARIP_FRAME_ERROR,
                         g_variant_new ("(sis)", g_quark_to_string (ARIP_ERROR),
                                        ARIP_ERROR_NOT_SUPPORTED, binding_missing),
                         NULL, NULL);
      if (!arip_channel_flush_sync (worker->channel, NULL))
        worker_exit (EXIT_ORPHANED);
      return;
    }

  if (!arip_variant_check_handles (args, frame->fds, &error))
    {
      arip_channel_send (worker->channel, ARIP_FRAME_ERROR,
                         g_variant_new ("(sis)", g_quark_to_string (error->domain), error->code,
                                        error->message),
                         NULL, NULL);
      if (!arip_channel_flush_sync (worker->channel, NULL))
        worker_exit (EXIT_ORPHANED);
      return;
    }

  cancellable = begin_call (seq);
  worker->call = arip_call_new (function, args, frame->fds, worker->channel, cancellable,
                                worker->context);

  send_state (worker, ARIP_STATE_STARTED);
  send_state (worker, ARIP_STATE_EXECUTING);
  if (!arip_channel_flush_sync (worker->channel, NULL))
    worker_exit (EXIT_ORPHANED);

  func (worker->call, arip_call_get_args (worker->call), user_data);

  while (!arip_call_has_returned (worker->call))
    g_main_context_iteration (worker->context, TRUE);

  /* The answer was flushed when it was given. */
  end_call ();
  g_clear_object (&worker->call);
}

static gboolean
call_is_waiting (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  return !pool_mode && poll (&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) != 0;
}

G_GNUC_NORETURN static void
worker_main (const char  *env_value,
             int         *argc,
             char      ***argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *env_copy = g_strdup (env_value);
  Worker worker = { NULL };
  AripSandboxReport sandbox;
  GPid parent;
  int chan, control_fd;

  is_worker = TRUE;

  /* Nothing below us (a grandchild) may see the channel or its variable. */
  g_unsetenv (ARIP_WORKER_ENV);

  if (!parse_worker_env (env_copy, &chan, &crash_fd, &parent, &pool_mode, &control_fd))
    worker_fail ("%s=“%s” is not what this version of arip writes (protocol %d)",
                 ARIP_WORKER_ENV, env_copy, ARIP_PROTOCOL_VERSION);
  /* worker_main() never returns, so nothing would free it. */
  g_clear_pointer (&env_copy, g_free);

  if (fcntl (crash_fd, F_SETFD, FD_CLOEXEC) < 0)
    crash_fd = -1;
  if (fcntl (chan, F_SETFD, FD_CLOEXEC) < 0)
    worker_fail ("the channel descriptor %d is not open", chan);
  if (control_fd >= 0)
    {
      gpointer page = mmap (NULL, sizeof (guint32), PROT_READ | PROT_WRITE, MAP_SHARED,
                            control_fd, 0);

      if (page != MAP_FAILED)
        control_page = page;
      close (control_fd);
    }

  /* Die with the parent; and if it died before we asked, go now. A worker
   * forked by a fork server checked its parent as it became one (the
   * server names itself 0: the parent does not know its pid). */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (parent == 0 ? !became_worker : getppid () != parent)
    worker_exit (parent == 0 ? EXIT_BAD_SETUP : EXIT_ORPHANED);

  install_crash_handlers ();

  /* Its limits and sandbox, while it runs one thread, before anything of
   * the caller's runs (the preload hook included). */
  arip_sandbox_apply (pool_mode, &sandbox);

  worker.channel = arip_channel_new (chan, &error);
  if (worker.channel == NULL)
    worker_fail ("refusing to serve: %s", error->message);
  arip_channel_set_sync_writes (worker.channel, TRUE);

  /* What it applied goes ahead of the hello; one that must not serve says
   * why and goes. */
  if (sandbox.asked)
    {
      if (!arip_channel_send_bytes (worker.channel, arip_sandbox_report_encode (&sandbox),
                                    NULL, &error))
        worker_exit (EXIT_ORPHANED);
      if (sandbox.refused)
        {
          arip_channel_flush_sync (worker.channel, NULL);
          worker_exit (EXIT_SANDBOX);
        }
      arip_sandbox_report_clear (&sandbox);
    }
  channel_fd = chan;
  protect_from_forks ();
  /* Bindings pass exactly argc strings, with no NULL after them. */
  if (argv != NULL && *argv != NULL)
    {
      int n = argc != NULL ? *argc : (int) g_strv_length (*argv);

      worker.argv = g_new0 (char *, n + 1);
      for (int i = 0; i < n && (*argv)[i] != NULL; i++)
        worker.argv[i] = g_strdup ((*argv)[i]);
    }

  install_interrupt_handler ();

  /* A fork server's workers have the preload done; the others do it
   * now, so that every call can count on it. */
  if (!became_worker || forked_from_parent)
    arip_worker_run_preload ();

  /* A one-shot's call was sent ahead of our hello: when it is already
   * here, the hello leaves with the first states, in one write. */
  if (!arip_channel_send_bytes (worker.channel,
                                arip_frame_encode_hello (ARIP_PROTOCOL_VERSION, getpid ()),
                                NULL, &error) ||
      (!call_is_waiting (chan) && !arip_channel_flush_sync (worker.channel, &error)))
    worker_exit (EXIT_ORPHANED);

  /* The program's default main context: in a worker nothing else uses it,
   * and g_idle_add(), g_timeout_add() and the bindings' timers attach to it.
   * A fork of the parent itself holds the parent's sources there: it gets a
   * context of its own. */
  worker.context = forked_from_parent ? g_main_context_new ()
                                      : g_main_context_ref (g_main_context_default ());
  g_main_context_push_thread_default (worker.context);

  for (guint32 seq = 1; ; seq++)
    {
      g_autoptr(AripFrame) frame = g_steal_pointer (&worker.next_call);

      while (frame == NULL || frame->kind == ARIP_FRAME_SHARED_CONNECT)
        {
          if (frame != NULL)
            take_shared_connection (&worker, frame);
          g_clear_pointer (&frame, arip_frame_free);
          frame = arip_channel_receive_sync (worker.channel, &error);
          if (frame == NULL)
            break;
        }
      if (frame == NULL)
        worker_exit (pool_mode && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
                     ? 0 : EXIT_ORPHANED);

      if (seq == 1)
        arip_channel_start_reading (worker.channel, worker.context,
                                    on_worker_frame, on_worker_channel_closed, &worker);

      if (pool_mode)
        arip_sandbox_begin_call ();
      serve (&worker, frame, seq);

      if (!pool_mode)
        worker_exit (0);
    }
}

const char *
arip_worker_get_language_binding (void)
{
  return language_binding;
}

/**
 * arip_set_language_binding:
 * @name: the binding's name, such as "python" or "gjs"
 *
 * For language bindings: says that the functions registered from this
 * language go through a layer that answers every call (an exception
 * becomes an error). Call it before arip_init().
 *
 * Without it, arip_init() in a Python or GJS process assumes that the
 * binding's override was not loaded: a function that throws would leave
 * its call unanswered for ever, so every call fails at once instead, with
 * an error that says where the override is. A C program that embeds an
 * interpreter and registers only C functions calls this with "c".
 */
void
arip_set_language_binding (const char *name)
{
  g_return_if_fail (name != NULL && *name != '\0');

  g_free (language_binding);
  language_binding = g_strdup (name);
  g_clear_pointer (&binding_missing, g_free);
}

/**
 * arip_set_crash_notes_fd:
 * @fd: a file descriptor of a regular file or memfd, or -1
 *
 * For language bindings, in a worker: names a file that the language
 * runtime's own crash handler writes to, such as Python's faulthandler.
 * When the worker dies of a fatal signal, what the file holds becomes part
 * of its last words (after the signal's name, before the native
 * backtrace), so the parent's %ARIP_ERROR_SIGNALED error shows where the
 * script was; it is also copied to standard error.
 *
 * The runtime's handler must run first and then hand the signal on (as
 * faulthandler does): install it after arip_init(). arip neither closes
 * @fd nor writes to it; -1 forgets it. Does nothing outside a worker.
 */
void
arip_set_crash_notes_fd (int fd)
{
  g_return_if_fail (fd >= -1);

  if (!is_worker)
    return;
  crash_notes_fd = fd;
}

/**
 * arip_exit_worker:
 * @status: the exit status, 0 to 255
 *
 * For language bindings, in a worker: ends the worker process now, with
 * exit status @status (the parent's call fails with %ARIP_ERROR_EXITED and
 * that status, as for exit() in a C function), once standard output and
 * error are flushed. What the call sent before has reached the channel
 * already.
 *
 * For a runtime whose own exit cannot end the process from where the
 * function runs: GJS's System.exit() in a promise's continuation only
 * asks the JS engine's main loop to end, which a worker does not run, and
 * the call would never end. Does nothing outside a worker.
 */
void
arip_exit_worker (int status)
{
  g_return_if_fail (status >= 0 && status <= 255);

  if (!is_worker)
    return;
  worker_exit (status);
}

/* The interpreter this process runs, if it is one arip has a binding for:
 * their entry points are in the program's own symbol table. */
static const char *
running_interpreter (void)
{
  int (*py_is_initialized) (void) = (int (*) (void)) dlsym (RTLD_DEFAULT, "Py_IsInitialized");
  void *(*gjs_current) (void) = (void *(*) (void)) dlsym (RTLD_DEFAULT, "gjs_context_get_current");

  if (py_is_initialized != NULL && py_is_initialized ())
    return "python";
  if (gjs_current != NULL && gjs_current () != NULL)
    return "gjs";
  return NULL;
}

static void
check_language_binding (void)
{
  const char *interpreter = running_interpreter ();

  if (interpreter == NULL || language_binding != NULL || binding_missing != NULL)
    return;

  if (g_str_equal (interpreter, "python"))
    binding_missing =
      g_strdup_printf (_("This program runs in Python, but the PyGObject override of Arip "
                         "(gi/overrides/Arip.py) was not loaded: without it a function that "
                         "raises would leave its call unanswered for ever, so no call runs. "
                         "It is installed in %s: run the program with PYTHONPATH=%s"),
                       ARIP_PYTHON_OVERRIDES_DIR, ARIP_PYTHON_SITE_DIR);
  else
    binding_missing =
      g_strdup_printf (_("This program runs in GJS, but the GJS override of Arip (Arip.js) "
                         "was not loaded: without it a function that throws would leave its "
                         "call unanswered for ever, so no call runs. It is installed in %s: "
                         "add %s to XDG_DATA_DIRS, or run gjs with GJS_PATH=%s"),
                       ARIP_GJS_OVERRIDES_DIR, ARIP_DATADIR, ARIP_GJS_DIR);
  g_warning ("%s", binding_missing);
}

gboolean
arip_worker_check_binding (GError **error)
{
  if (binding_missing == NULL)
    return TRUE;
  g_set_error_literal (error, ARIP_ERROR, ARIP_ERROR_NOT_SUPPORTED, binding_missing);
  return FALSE;
}

/**
 * arip_init:
 * @argc: (inout) (optional) (nullable): the program's argument count
 * @argv: (array length=argc) (inout) (optional) (nullable) (transfer none):
 *   the program's arguments
 *
 * Call this first thing in main(), after registering functions with
 * arip_register_function().
 *
 * In the program itself, it remembers the command line workers are started
 * with and returns at once. Like gtk_init(), it sets the locale from the
 * environment (`setlocale (LC_ALL, "")`) unless the program set one, so
 * that messages are printed in the user's language and charset.
 *
 * In a worker (the same program started again by arip), it serves the one
 * call it was started for and exits: it never returns. So everything
 * main() does before arip_init() happens again in every worker; registering
 * functions is the only thing that belongs there.
 */
void
arip_init (int    *argc,
           char ***argv)
{
  const char *env;

  _arip_i18n_init ();
  init_ran = TRUE;
  check_language_binding ();

  env = g_getenv (ARIP_WORKER_ENV);
  if (env != NULL)
    worker_main (env, argc, argv);

  env = g_getenv (ARIP_ZYGOTE_ENV);
  if (env != NULL)
    {
      is_worker = TRUE;
      arip_zygote_main (env);
    }

  /* As gtk_init() does: messages are printed in the user's language and
   * charset (GLib prints “quotes” as ? in the C locale). A program that set
   * a locale of its own keeps it. */
  if (g_strcmp0 (setlocale (LC_ALL, NULL), "C") == 0)
    setlocale (LC_ALL, "");

  arip_worker_get_default_argv ();
}

/**
 * arip_is_worker:
 *
 * Checks whether this process is an arip worker serving a call (that is,
 * whether arip_init() found itself in a worker).
 *
 * Returns: %TRUE in a worker
 */
gboolean
arip_is_worker (void)
{
  return is_worker;
}
