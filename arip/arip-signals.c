/* arip-signals.c: naming signals for people
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>

#include "arip-signals-private.h"

const char *
arip_signal_name (int signum)
{
  switch (signum)
    {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
#ifdef SIGSTKFLT
    case SIGSTKFLT: return "SIGSTKFLT";
#endif
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGSTOP: return "SIGSTOP";
    case SIGTSTP: return "SIGTSTP";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGURG: return "SIGURG";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGVTALRM: return "SIGVTALRM";
    case SIGPROF: return "SIGPROF";
    case SIGWINCH: return "SIGWINCH";
    case SIGIO: return "SIGIO";
#ifdef SIGPWR
    case SIGPWR: return "SIGPWR";
#endif
    case SIGSYS: return "SIGSYS";
    default: return NULL;
    }
}

gint
arip_stop_step (GPid           pid,
                guint32        call_seq,
                AripStopStage *stage,
                guint          interrupt_ms,
                guint          terminate_ms)
{
  switch (*stage)
    {
    case ARIP_STOP_NONE:
      *stage = ARIP_STOP_INTERRUPTED;
      if (call_seq != 0)
        {
          union sigval value = { .sival_int = (int) call_seq };
          sigqueue (pid, SIGINT, value);
        }
      else
        kill (pid, SIGINT);
      return (gint) MIN (interrupt_ms, (guint) G_MAXINT);

    case ARIP_STOP_INTERRUPTED:
      *stage = ARIP_STOP_TERMINATED;
      kill (pid, SIGTERM);
      return (gint) MIN (terminate_ms, (guint) G_MAXINT);

    case ARIP_STOP_TERMINATED:
      *stage = ARIP_STOP_KILLED;
      kill (pid, SIGKILL);
      return -1;

    case ARIP_STOP_KILLED:
    default:
      return -1;
    }
}

char *
arip_signal_describe (int signum)
{
  const char *name = arip_signal_name (signum);

  if (name != NULL)
    return g_strdup (name);
#ifdef SIGRTMIN
  if (signum >= SIGRTMIN && signum <= SIGRTMAX)
    return g_strdup_printf ("SIGRTMIN+%d", signum - SIGRTMIN);
#endif
  return g_strdup_printf ("signal %d", signum);
}
