/* arip-child.c: the parent's side of one worker process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An AripChild is one worker as the parent sees it: the process, its
 * channel, its crash pipe, its exit and its limiter slot. AripProcess (one
 * call) and AripPool (many calls) both keep theirs here and only add what
 * is theirs: a call and its states, or a queue and idle workers.
 *
 * What a worker (or anything it started) does must never hurt the parent:
 *
 *   - its exit is watched through a pidfd; when it is gone, whatever is
 *     left of its process group is killed while the dead worker still
 *     holds the group's id, then it is reaped;
 *   - after its death the channel is read for what the worker wrote before
 *     (the bytes queued at that moment, no more: a grandchild still
 *     holding the channel cannot keep us reading), and then it closes;
 *   - the crash pipe is read as the child lives, so nothing can fill it
 *     before the worker's own report comes; of what arrived, the report
 *     that names the worker's pid is what counts;
 *   - arip_child_kill() never waits for more than a moment.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib-unix.h>

#include "arip-child-private.h"
#include "arip-error.h"
#include "arip-isolation-private.h"
#include "arip-launcher-private.h"
#include "arip-shared-private.h"
#include "arip-spawn-private.h"
#include "arip-zygote-private.h"

#define MAX_LAST_WORDS     (16 * 1024)
/* How long a child may linger after it answered, or after it closed its
 * channel, before we kill it: at least this, or the stop timeouts. */
#define MIN_GRACE_MS       1000
/* How long arip_child_kill() waits to see the child dead. */
#define KILL_WAIT_MS       100

struct _AripChild
{
  gint                      ref_count;
  AripChildKind             kind;
  const AripChildCallbacks *callbacks;   /* NULL once detached */
  gpointer                  user_data;
  GMainContext             *context;
  char                     *function;      /* the call it runs, or NULL */

  GPid                      pid;
  gint                      pidfd;
  AripSlot                 *slot;
  AripChannel              *channel;
  gint                      crash_fd;
  gint                      stdio[3];      /* our ends of the pipes, or -1 */
  GSource                  *crash_source;
  GString                  *crash_text;    /* what came and is not sorted yet */
  GString                  *crash_other;   /* what came that is not the report */
  GString                  *last_words;
  volatile guint32         *control;       /* a pool worker's shared page */

  GSource                  *exit_source;
  GSource                  *startup_timer;
  GSource                  *grace_timer;

  guint                     interrupt_timeout_ms;
  guint                     terminate_timeout_ms;

  AripHolder               *shared;        /* its connection to shared objects */
  AripIsolationSummary      isolation;     /* its launcher's limits and sandbox */
  AripSandboxFlags          sandbox;       /* what it applied */

  GError                   *error;
  gint                      wait_status;
  guint                     drop_news : 1;   /* a kill came while draining */
  guint                     hello : 1;
  guint                     sandbox_reported : 1;
  guint                     expect_exit : 1;
  guint                     reaped : 1;
  guint                     dead : 1;      /* known to be gone or dying by our hand */
  guint                     concluded : 1;
  guint                     draining : 1;
  guint                     killed : 1;
  guint                     lingered : 1;
  guint                     via_zygote : 1;
  AripStartMethod           start_method;
};

static void begin_end    (AripChild *self);
static void watch_exit   (AripChild *self);
static void release_slot (AripChild *self);
static void on_drained  (AripChannel *channel,
                         gpointer     user_data);

/* ---------------------------------------------------------------------- */
/* Lifetime                                                               */

AripChild *
arip_child_ref (AripChild *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
close_crash_pipe (AripChild *self)
{
  clear_source (&self->crash_source);
  if (self->crash_fd >= 0)
    {
      close (self->crash_fd);
      self->crash_fd = -1;
    }
}

void
arip_child_unref (AripChild *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;

  g_assert (self->exit_source == NULL);
  if (self->shared != NULL)
    arip_holder_close (g_steal_pointer (&self->shared));
  clear_source (&self->startup_timer);
  clear_source (&self->grace_timer);
  close_crash_pipe (self);
  if (self->channel != NULL)
    {
      arip_channel_close (self->channel);
      arip_channel_unref (self->channel);
    }
  /* The slot goes before the pidfd: a reclaim may use it until then. */
  arip_slot_release (g_steal_pointer (&self->slot));
  if (self->pidfd >= 0)
    close (self->pidfd);
  for (guint i = 0; i < 3; i++)
    if (self->stdio[i] >= 0)
      close (self->stdio[i]);
  if (self->control != NULL)
    munmap ((gpointer) self->control, sizeof (guint32));
  if (self->crash_text != NULL)
    g_string_free (self->crash_text, TRUE);
  if (self->crash_other != NULL)
    g_string_free (self->crash_other, TRUE);
  if (self->last_words != NULL)
    g_string_free (self->last_words, TRUE);
  g_clear_error (&self->error);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->function);
  g_free (self);
}

AripStartMethod
arip_child_get_start_method (AripChild *self)
{
  return self->start_method;
}

GPid
arip_child_get_pid (AripChild *self)
{
  return self->pid;
}

void
arip_child_set_function (AripChild  *self,
                         const char *function)
{
  /* Only a message puts it into words: not every call pays for that. */
  g_free (self->function);
  self->function = g_strdup (function);
}

/* "Child process 123 running “fib”", for messages. */
static char *
describe (AripChild *self)
{
  if (self->function != NULL)
    {
      g_autofree char *running = g_strdup_printf (_("running “%s”"), self->function);

      return g_strdup_printf (_("Child process %d %s"), (int) self->pid, running);
    }
  return g_strdup_printf (_("Child process %d"), (int) self->pid);
}

/* ---------------------------------------------------------------------- */
/* The crash pipe                                                         */

/* The crash pipe may be shared with what the function started (a
 * grandchild that holds it can write anything). The worker's own report
 * is made of lines "arip worker PID: ...", each one write (so never split
 * by another writer's): of what came, those lines are the last words.
 * Without any, the last words are the tail of what came (a Python
 * traceback, a library's message). */
static void
keep_other_text (AripChild  *self,
                 const char *data,
                 gsize       len)
{
  if (len == 0)
    return;
  if (self->crash_other == NULL)
    self->crash_other = g_string_new (NULL);
  g_string_append_len (self->crash_other, data, len);
  if (self->crash_other->len > 2 * MAX_LAST_WORDS)
    g_string_erase (self->crash_other, 0, self->crash_other->len - MAX_LAST_WORDS);
}

static void
keep_report_line (AripChild  *self,
                  const char *line,
                  gsize       len,
                  gsize       marker_len)
{
  if (self->last_words == NULL)
    self->last_words = g_string_new (NULL);
  else
    {
      /* Only the first line keeps its prefix. */
      line += marker_len;
      len -= marker_len;
    }
  if (self->last_words->len < MAX_LAST_WORDS)
    g_string_append_len (self->last_words, line, MIN (len, MAX_LAST_WORDS - self->last_words->len));
}

static void
take_crash_text (AripChild  *self,
                 const char *data,
                 gsize       len)
{
  g_autofree char *marker = g_strdup_printf ("arip worker %d: ", (int) self->pid);
  gsize marker_len = strlen (marker);
  GString *pending;

  if (self->crash_text == NULL)
    self->crash_text = g_string_new (NULL);
  pending = self->crash_text;
  g_string_append_len (pending, data, len);

  for (;;)
    {
      const char *found = memmem (pending->str, pending->len, marker, marker_len);
      const char *end;

      if (found == NULL)
        break;
      end = memchr (found, '\n', pending->len - (gsize) (found - pending->str));
      keep_other_text (self, pending->str, (gsize) (found - pending->str));
      if (end == NULL)
        {
          /* A line that is not complete yet: the rest comes later. */
          g_string_erase (pending, 0, found - pending->str);
          if (pending->len > MAX_LAST_WORDS)
            g_string_truncate (pending, 0);
          return;
        }
      keep_report_line (self, found, (gsize) (end - found) + 1, marker_len);
      g_string_erase (pending, 0, end + 1 - pending->str);
    }

  /* No report line: all of it is other text, but for what may be the
   * beginning of a marker cut off by a read. */
  if (pending->len >= marker_len)
    {
      gsize keep = marker_len - 1;

      keep_other_text (self, pending->str, pending->len - keep);
      g_string_erase (pending, 0, pending->len - keep);
    }
}

static void
read_crash_pipe (AripChild *self)
{
  char buf[4096];

  if (self->crash_fd < 0)
    return;

  for (;;)
    {
      gssize n = read (self->crash_fd, buf, sizeof buf);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      take_crash_text (self, buf, (gsize) n);
    }
}

static gboolean
on_crash_readable (gint         fd,
                   GIOCondition condition,
                   gpointer     user_data)
{
  AripChild *self = user_data;

  read_crash_pipe (self);
  if (condition & (G_IO_HUP | G_IO_ERR))
    {
      /* Every writer is gone; the last words are complete. */
      g_clear_pointer (&self->crash_source, g_source_unref);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
finish_last_words (AripChild *self)
{
  read_crash_pipe (self);
  close_crash_pipe (self);

  /* No report from the worker: the tail of what came. */
  if (self->last_words == NULL)
    {
      if (self->crash_text != NULL)
        keep_other_text (self, self->crash_text->str, self->crash_text->len);
      if (self->crash_other != NULL && self->crash_other->len > 0)
        {
          gsize len = self->crash_other->len;
          gsize keep = MIN (len, (gsize) MAX_LAST_WORDS);

          self->last_words = g_string_new_len (self->crash_other->str + len - keep, keep);
        }
    }
}

const GString *
arip_child_get_last_words (AripChild *self)
{
  return self->last_words;
}

/* ---------------------------------------------------------------------- */
/* The end                                                                */

/* The exited callback, once everything the child sent is handed out. */
static void
conclude (AripChild *self)
{
  const AripChildCallbacks *callbacks = self->callbacks;

  if (self->concluded)
    return;
  self->concluded = TRUE;
  self->draining = FALSE;

  clear_source (&self->startup_timer);
  clear_source (&self->grace_timer);
  if (self->channel != NULL)
    arip_channel_close (self->channel);
  finish_last_words (self);

  arip_child_ref (self);
  if (callbacks != NULL && callbacks->exited != NULL)
    callbacks->exited (self, self->user_data);
  /* Only now may the next process waiting for a slot start: the owner's
   * callbacks ran first, and a call they cancelled never starts. */
  if (self->reaped)
    release_slot (self);
  arip_child_unref (self);
}

static void
on_drained (AripChannel *channel,
            gpointer     user_data)
{
  AripChild *self = user_data;

  conclude (self);
  arip_child_unref (self);
}

/* The child is dead (reaped or dying by our hand): hand out what it sent
 * before, then conclude. */
static void
begin_end (AripChild *self)
{
  int queued = 0;

  if (self->dead)
    return;
  self->dead = TRUE;

  clear_source (&self->startup_timer);
  clear_source (&self->grace_timer);

  if (self->channel == NULL || self->killed || self->callbacks == NULL)
    {
      conclude (self);
      return;
    }

  /* Only what was queued at this moment: a process that still holds the
   * other end (a grandchild) cannot keep us reading. */
  if (ioctl (arip_channel_get_fd (self->channel), FIONREAD, &queued) < 0)
    queued = 0;
  self->draining = TRUE;
  arip_channel_drain (self->channel, (gsize) MAX (queued, 0), on_drained, arip_child_ref (self));
}

/* How the dead child ended, if it is dead; the fork server's report of
 * one of its workers may take up to @timeout_ms. */
static gboolean
peek_status (AripChild *self,
             gint       timeout_ms,
             gint      *wait_status)
{
  if (self->via_zygote)
    return arip_zygote_peek_status (self->pid, timeout_ms, wait_status);
  return arip_spawn_peek_status (self->pid, wait_status);
}

/* Gives the slot back; then nothing needs the pidfd (a reclaim could,
 * until the slot is released). */
static void
release_slot (AripChild *self)
{
  arip_slot_release (g_steal_pointer (&self->slot));
  if (self->pidfd >= 0)
    {
      close (self->pidfd);
      self->pidfd = -1;
    }
}

/* Kills what is left of the child's group, then reaps the child: in
 * that order, so that the group's id cannot have been reused. */
static void
reap (AripChild *self)
{
  if (self->reaped)
    return;
  self->reaped = TRUE;

  /* What it held of the shared objects goes back now: its connection's
   * end may live on in a process it forked. */
  if (self->shared != NULL)
    arip_holder_close (g_steal_pointer (&self->shared));

  /* The fork server reaps its own (and kills what is left of the group
   * first, as we do for ours). */
  if (self->via_zygote)
    arip_zygote_forget (self->pid);
  else
    arip_spawn_reap (self->pid);
  /* Its slot is free now, or once the owner has heard of the end. */
  if (self->concluded)
    release_slot (self);
}

static gboolean
on_child_dead (gint     wait_status,
               gpointer user_data)
{
  AripChild *self = user_data;

  if (!self->dead)
    self->wait_status = wait_status;
  clear_source (&self->exit_source);
  reap (self);
  begin_end (self);
  return G_SOURCE_REMOVE;
}

static void
watch_exit (AripChild *self)
{
  self->exit_source = self->via_zygote ? arip_zygote_exit_source_new (self->pid)
                                       : arip_spawn_exit_source_new (self->pid, self->pidfd);
  g_source_set_callback (self->exit_source, (GSourceFunc) (void (*) (void)) on_child_dead,
                         arip_child_ref (self), (GDestroyNotify) arip_child_unref);
  g_source_attach (self->exit_source, self->context);
}

gboolean
arip_child_has_exited (AripChild *self)
{
  return self->concluded;
}

gboolean
arip_child_is_reaped (AripChild *self)
{
  return self->reaped;
}

gint
arip_child_get_wait_status (AripChild *self)
{
  return self->wait_status;
}

gboolean
arip_child_get_killed (AripChild *self)
{
  return self->killed;
}

gboolean
arip_child_get_lingered (AripChild *self)
{
  return self->lingered;
}

AripSandboxFlags
arip_child_get_sandbox (AripChild *self)
{
  return self->sandbox;
}

/* What a worker applied of its sandbox, before its hello. One that could
 * not have what its launcher requires (or its limits) says so and goes
 * without serving: the error is ours, not its exit. */
static void
take_sandbox_report (AripChild *self,
                     GVariant  *payload)
{
  g_autofree const char **problems = NULL;
  g_autofree char *joined = NULL;
  guint32 wanted, applied;
  gboolean refused;

  if (!self->isolation.asked)
    {
      arip_child_protocol_violation (self, _("a sandbox report it was not asked for"));
      return;
    }
  if (self->hello || self->sandbox_reported)
    {
      arip_child_protocol_violation (self, _("a sandbox report out of turn"));
      return;
    }
  g_variant_get (payload, "(uub^a&s)", &wanted, &applied, &refused, &problems);
  if (wanted != (guint32) self->isolation.flags || (applied & ~wanted) != 0)
    {
      arip_child_protocol_violation (self, _("a sandbox report that does not match its launcher"));
      return;
    }
  self->sandbox_reported = TRUE;
  self->sandbox = (AripSandboxFlags) applied;
  joined = g_strjoinv ("; ", (char **) problems);

  if (refused)
    {
      GError *error;

      if (self->isolation.policy == ARIP_SANDBOX_POLICY_REQUIRED && wanted != applied)
        {
          g_autofree char *missing = arip_sandbox_flags_describe (wanted & ~applied);

          error = g_error_new (ARIP_ERROR, ARIP_ERROR_SANDBOX,
                               _("Worker %d could not be given the sandbox its launcher requires "
                                 "(missing: %s): %s"), (int) self->pid, missing, joined);
        }
      else if (self->isolation.policy == ARIP_SANDBOX_POLICY_REQUIRED)
        error = g_error_new (ARIP_ERROR, ARIP_ERROR_SANDBOX,
                             _("Worker %d could not be given the sandbox its launcher requires: "
                               "%s"), (int) self->pid, joined);
      else
        error = g_error_new (ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                             _("Worker %d could not be given its limits: %s"),
                             (int) self->pid, joined);
      arip_child_fail (self, error);
      return;
    }
  if (problems[0] != NULL)
    g_debug ("worker %d runs without part of its sandbox: %s", (int) self->pid, joined);
}

const GError *
arip_child_get_error (AripChild *self)
{
  return self->error;
}

GError *
arip_child_exit_error_new (AripChild  *self,
                           const char *function)
{
  gint wait_status = self->wait_status;
  g_autoptr(GString) message = g_string_new (NULL);
  gint code;

  if (WIFSIGNALED (wait_status))
    {
      g_autofree char *signame = arip_signal_describe (WTERMSIG (wait_status));

      code = ARIP_ERROR_SIGNALED;
      g_string_printf (message, _("Child process %d was terminated by %s while running “%s”"),
                       (int) self->pid, signame, function);
    }
  else if (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) != 0)
    {
      code = ARIP_ERROR_EXITED;
      g_string_printf (message, _("Child process %d exited with status %d while running “%s”"),
                       (int) self->pid, WEXITSTATUS (wait_status), function);
    }
  else
    {
      code = ARIP_ERROR_EXITED;
      g_string_printf (message, _("Child process %d exited with status %d before “%s” returned a result"),
                       (int) self->pid, WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : -1,
                       function);
    }

  arip_isolation_explain_death (&self->isolation, wait_status, self->killed, self->last_words,
                                message);

  /* Gone before its hello: most likely not a worker at all yet. */
  if (!self->hello && code == ARIP_ERROR_EXITED)
    g_string_append (message, _(", before it said hello (if the worker is this program started "
                                "again, check that main() calls arip_init() at the top)"));

  if (self->last_words != NULL && self->last_words->len > 0)
    {
      g_autofree char *valid = g_utf8_make_valid (self->last_words->str, self->last_words->len);

      g_string_append (message, _(". Its last words:"));
      g_string_append_c (message, '\n');
      g_string_append (message, g_strchomp (valid));
    }

  return g_error_new_literal (ARIP_ERROR, code, message->str);
}

/* ---------------------------------------------------------------------- */
/* Ending it                                                              */

/* @signum to the child and to what is left of its process group, once
 * each. */
static void
signal_group (AripChild *self,
              gint       signum)
{
  if (self->reaped)
    return;
  if (self->via_zygote)
    {
      /* The fork server reaps it the moment it dies, so its pid and group
       * id are only its own while it lives: the pidfd says whether it
       * does (the server kills the group before it reaps the leader). */
      if (arip_pidfd_send_signal (self->pidfd, self->pid, signum))
        kill (-self->pid, signum);
      return;
    }
  /* The child still leads its group: one signal reaches everyone. */
  if (getpgid (self->pid) != self->pid)
    arip_pidfd_send_signal (self->pidfd, self->pid, signum);
  kill (-self->pid, signum);
}

/* Hands out at once what a dead child sent that is not handed out yet
 * (without its news), and concludes. */
static void
end_now (AripChild *self)
{
  if (self->concluded)
    return;
  self->drop_news = TRUE;
  if (self->channel != NULL)
    arip_channel_drain_now (self->channel);
  conclude (self);
}

void
arip_child_kill (AripChild *self)
{
  gint wait_status;

  if (self->concluded)
    return;

  arip_child_ref (self);

  if (self->dead)
    {
      /* It ended on its own, and what it sent is still being handed out:
       * the rest goes now, and its outcome stands. */
    }
  else if (!self->reaped && peek_status (self, 0, &wait_status))
    {
      /* It ended on its own before we got to it: that is its outcome. */
      self->wait_status = wait_status;
      clear_source (&self->exit_source);
      reap (self);
    }
  else if (!self->reaped)
    {
      self->killed = TRUE;
      signal_group (self, SIGKILL);

      /* Dying takes microseconds; a child stuck in the kernel may take
       * longer, and we do not wait for that. */
      if (self->pidfd >= 0)
        {
          struct pollfd pfd = { .fd = self->pidfd, .events = POLLIN };
          while (poll (&pfd, 1, KILL_WAIT_MS) < 0 && errno == EINTR)
            ;
        }
      else
        for (guint i = 0; i < KILL_WAIT_MS * 5 && !peek_status (self, 0, &wait_status); i++)
          g_usleep (200);
      if (!peek_status (self, KILL_WAIT_MS, &self->wait_status))
        self->wait_status = SIGKILL;
      else
        {
          /* Dead: reap it now, so nothing is left for a main context that
           * may never run again (a sync call's). */
          clear_source (&self->exit_source);
          reap (self);
          /* It exited on its own just before the signal came. */
          if (!WIFSIGNALED (self->wait_status) || WTERMSIG (self->wait_status) != SIGKILL)
            self->killed = FALSE;
        }
    }

  begin_end (self);
  end_now (self);
  arip_child_unref (self);
}

void
arip_child_send_signal (AripChild *self,
                        gint       signum)
{
  if (!self->reaped && !self->dead)
    arip_pidfd_send_signal (self->pidfd, self->pid, signum);
}

gint
arip_child_stop_step (AripChild     *self,
                      guint32        call_seq,
                      AripStopStage *stage,
                      guint          interrupt_ms,
                      guint          terminate_ms)
{
  if (self->reaped || self->dead)
    return -1;

  switch (*stage)
    {
    case ARIP_STOP_NONE:
      /* The interrupt is cooperative and meant for the call: the worker
       * alone gets it. */
      return arip_stop_step (self->pid, call_seq, stage, interrupt_ms, terminate_ms);

    case ARIP_STOP_INTERRUPTED:
      *stage = ARIP_STOP_TERMINATED;
      signal_group (self, SIGTERM);
      return (gint) MIN (terminate_ms, (guint) G_MAXINT);

    case ARIP_STOP_TERMINATED:
      *stage = ARIP_STOP_KILLED;
      signal_group (self, SIGKILL);
      return -1;

    case ARIP_STOP_KILLED:
    default:
      return -1;
    }
}

void
arip_child_fail (AripChild *self,
                 GError    *error)
{
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);

  if (self->channel != NULL)
    arip_channel_close (self->channel);
  if (!self->dead)
    signal_group (self, SIGKILL);
}

void
arip_child_protocol_violation (AripChild  *self,
                               const char *what)
{
  g_autofree char *who = describe (self);

  arip_child_fail (self, g_error_new (ARIP_ERROR, ARIP_ERROR_INVALID_DATA,
                                      _("%s sent invalid data: %s; it was killed"), who, what));
}

static gboolean
on_grace_expired (gpointer user_data)
{
  AripChild *self = user_data;

  g_clear_pointer (&self->grace_timer, g_source_unref);
  if (self->expect_exit)
    {
      /* It answered, then did not exit: the answer stands. */
      self->lingered = TRUE;
      signal_group (self, SIGKILL);
    }
  else
    arip_child_protocol_violation (self, _("it closed its channel without answering and did not exit"));
  return G_SOURCE_REMOVE;
}

static void
arm_grace_timer (AripChild *self)
{
  if (self->grace_timer != NULL || self->dead)
    return;
  self->grace_timer = g_timeout_source_new (MAX (MIN_GRACE_MS, self->interrupt_timeout_ms +
                                                               self->terminate_timeout_ms));
  g_source_set_callback (self->grace_timer, on_grace_expired, self, NULL);
  g_source_set_static_name (self->grace_timer, "[arip] child exit grace");
  g_source_attach (self->grace_timer, self->context);
}

void
arip_child_release (AripChild *self)
{
  /* A pool worker exits when its channel closes. */
  if (self->channel != NULL)
    arip_channel_close (self->channel);
  self->expect_exit = TRUE;
  arm_grace_timer (self);
}

void
arip_child_expect_exit (AripChild *self)
{
  self->expect_exit = TRUE;
  arm_grace_timer (self);
}

void
arip_child_detach (AripChild *self)
{
  self->callbacks = NULL;
  self->user_data = NULL;
  if (!self->dead && !self->reaped)
    arip_child_fail (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED, "detached"));
}

/* ---------------------------------------------------------------------- */
/* Frames                                                                 */

static void
on_frame (AripChannel *channel,
          AripFrame   *frame,
          gpointer     user_data)
{
  AripChild *self = user_data;
  const AripChildCallbacks *callbacks = self->callbacks;

  if (callbacks == NULL || self->error != NULL || self->concluded)
    return;

  /* A memfd's descriptor was taken by the decoder: only a result carries
   * others (arip_call_return_value_with_fds()). */
  if (frame->fds != NULL && frame->kind != ARIP_FRAME_RESULT)
    {
      g_autofree char *what = g_strdup_printf (_("file descriptors with a %s frame"),
                                               arip_frame_kind_to_string (frame->kind));
      arip_child_protocol_violation (self, what);
      return;
    }

  if (frame->kind == ARIP_FRAME_SANDBOX)
    {
      take_sandbox_report (self, arip_frame_get_payload (frame));
      return;
    }

  if (frame->kind == ARIP_FRAME_HELLO)
    {
      if (self->hello)
        arip_child_protocol_violation (self, _("a second hello"));
      else if (self->isolation.asked && !self->sandbox_reported)
        arip_child_protocol_violation (self, _("a hello without the report of its sandbox"));
      else if (frame->u32 != ARIP_PROTOCOL_VERSION)
        {
          g_autofree char *what =
            g_strdup_printf (_("it speaks protocol version %u, not %u (is the worker built "
                               "against another version of arip?)"),
                             frame->u32, ARIP_PROTOCOL_VERSION);
          arip_child_protocol_violation (self, what);
        }
      else if (frame->i32 != self->pid)
        {
          g_autofree char *what = g_strdup_printf (_("its hello names process %d"), (int) frame->i32);
          arip_child_protocol_violation (self, what);
        }
      else
        {
          self->hello = TRUE;
          if (callbacks->ready != NULL)
            callbacks->ready (self, self->user_data);
        }
      return;
    }

  if (frame->kind == ARIP_FRAME_CONSUMED)
    {
      if (!arip_channel_consumed (self->channel, frame->memfd_size))
        arip_child_protocol_violation (self, _("more bytes consumed than were sent"));
      return;
    }

  if (!self->hello)
    {
      g_autofree char *what = g_strdup_printf (_("a %s frame before its hello"),
                                               arip_frame_kind_to_string (frame->kind));
      arip_child_protocol_violation (self, what);
      return;
    }

  /* Killed while what it sent was still handed out: only the answer is
   * looked for in the rest. */
  if (self->drop_news && (frame->kind == ARIP_FRAME_MESSAGE || frame->kind == ARIP_FRAME_PROGRESS))
    return;

  if (callbacks->frame != NULL)
    callbacks->frame (self, frame, self->user_data);
}

static void
on_channel_closed (AripChannel  *channel,
                   const GError *error,
                   gpointer      user_data)
{
  AripChild *self = user_data;

  if (self->callbacks == NULL || self->error != NULL || self->concluded)
    return;

  if (error != NULL && g_error_matches (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY))
    {
      g_autofree char *who = describe (self);

      arip_child_fail (self, g_error_new (ARIP_ERROR, ARIP_ERROR_NO_MEMORY,
                                          _("%s sent more than this process has memory for: %s; "
                                            "it was killed"), who, error->message));
      return;
    }
  if (error != NULL && error->domain == ARIP_ERROR)
    {
      arip_child_protocol_violation (self, error->message);
      return;
    }

  /* The child closed its end (it is probably dying; its exit tells how).
   * One that hangs on without its channel is of no use. */
  if (!self->dead)
    arm_grace_timer (self);
}

gboolean
arip_child_send (AripChild    *self,
                 GBytes       *frame,
                 GUnixFDList  *fds,
                 GError      **error)
{
  if (self->channel == NULL || self->dead || self->error != NULL)
    {
      if (frame != NULL)
        g_bytes_unref (frame);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The channel is closed"));
      return FALSE;
    }
  return arip_channel_send_bytes (self->channel, frame, fds, error);
}

/* A value that holds a shared object's handle needs the connection to
 * them there first. */
static gboolean
connect_shared (AripChild  *self,
                GVariant   *value,
                GError    **error)
{
  g_autoptr(GUnixFDList) fds = NULL;
  gint fd[2];

  if (self->shared != NULL || !arip_shared_value_has_handles (value))
    return TRUE;
  self->shared = arip_broker_connect (&fd[0], &fd[1], error);
  if (self->shared == NULL)
    return FALSE;
  /* The list takes both: ours close once they are sent. */
  fds = g_unix_fd_list_new_from_array (fd, fd[1] >= 0 ? 2 : 1);
  return arip_channel_send (self->channel, ARIP_FRAME_SHARED_CONNECT,
                            g_variant_new ("(u)", ARIP_SHARED_PROTOCOL_VERSION), fds, error);
}

gboolean
arip_child_send_call (AripChild   *self,
                      const char  *function,
                      GVariant    *args,
                      GUnixFDList *fds,
                      GError     **error)
{
  if (self->channel == NULL || self->dead || self->error != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The channel is closed"));
      return FALSE;
    }
  if (!connect_shared (self, args, error))
    return FALSE;
  return arip_channel_send_call_with_fds (self->channel, function, args, fds, error);
}

gboolean
arip_child_send_message (AripChild  *self,
                         GVariant   *message,
                         GError    **error)
{
  g_autoptr(GVariant) owned = g_variant_take_ref (message);

  if (self->channel == NULL || self->dead || self->error != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("The channel is closed"));
      return FALSE;
    }
  if (!connect_shared (self, owned, error))
    return FALSE;
  return arip_channel_send_value (self->channel, ARIP_FRAME_MESSAGE, owned, error);
}

gsize
arip_child_get_queued_bytes (AripChild *self)
{
  return self->channel != NULL ? arip_channel_get_queued_bytes (self->channel) : 0;
}

/* ---------------------------------------------------------------------- */
/* Starting                                                               */

static gboolean
on_startup_timeout (gpointer user_data)
{
  AripChild *self = user_data;
  const AripChildCallbacks *callbacks = self->callbacks;
  GError *error = NULL;

  g_clear_pointer (&self->startup_timer, g_source_unref);
  if (callbacks != NULL && callbacks->startup_timeout != NULL)
    error = callbacks->startup_timeout (self, self->user_data);
  if (error == NULL)
    {
      g_autofree char *who = describe (self);

      error = g_error_new (ARIP_ERROR, ARIP_ERROR_TIMED_OUT,
                           _("%s did not start within the startup timeout; it was killed"), who);
    }
  arip_child_fail (self, error);
  return G_SOURCE_REMOVE;
}

void
arip_child_stop_startup_timer (AripChild *self)
{
  clear_source (&self->startup_timer);
}

static void
reclaim (gpointer user_data)
{
  AripChild *self = user_data;

  /* Any thread, the limiter's lock held: only a signal. The child is not
   * reaped before its slot is released, so its pid is still its own. */
  if (arip_pidfd_send_signal (self->pidfd, self->pid, SIGKILL) || !self->via_zygote)
    kill (-self->pid, SIGKILL);
}

void
arip_child_set_idle (AripChild *self)
{
  if (self->slot != NULL)
    arip_slot_set_idle (self->slot, reclaim, self);
}

gboolean
arip_child_set_busy (AripChild *self)
{
  return self->slot == NULL || arip_slot_set_busy (self->slot);
}

gint
arip_child_steal_stdio (AripChild *self,
                        gint       which)
{
  gint fd = self->stdio[which];

  self->stdio[which] = -1;
  return fd;
}

guint32
arip_child_get_started_call (AripChild *self)
{
  if (self->control == NULL)
    return G_MAXUINT32;
  return g_atomic_int_get ((volatile gint *) self->control);
}

AripChild *
arip_child_new (AripLauncher              *launcher,
                AripChildKind              kind,
                AripSlot                  *slot,
                GMainContext              *context,
                const AripChildCallbacks  *callbacks,
                gpointer                   user_data,
                GError                   **error)
{
  g_autoptr(GError) local_error = NULL;
  AripChild *self;
  AripSpawnResult spawned;

  if (!arip_launcher_spawn (launcher, kind == ARIP_CHILD_POOL, &spawned, error))
    {
      arip_slot_release (slot);
      return NULL;
    }

  self = g_new0 (AripChild, 1);
  self->ref_count = 1;
  self->kind = kind;
  self->callbacks = callbacks;
  self->user_data = user_data;
  self->context = g_main_context_ref (context);
  self->slot = slot;
  self->pid = spawned.pid;
  self->pidfd = spawned.pidfd;
  self->via_zygote = spawned.via_zygote;
  self->start_method = spawned.start_method;
  self->crash_fd = spawned.crash_fd;
  self->stdio[0] = spawned.stdin_fd;
  self->stdio[1] = spawned.stdout_fd;
  self->stdio[2] = spawned.stderr_fd;
  arip_launcher_get_stop_timeouts (launcher, &self->interrupt_timeout_ms,
                                   &self->terminate_timeout_ms);
  arip_isolation_summarize (arip_launcher_get_isolation (launcher, FALSE), &self->isolation);

  if (spawned.control_fd >= 0)
    {
      gpointer page = mmap (NULL, sizeof (guint32), PROT_READ, MAP_SHARED, spawned.control_fd, 0);

      if (page != MAP_FAILED)
        self->control = page;
      close (spawned.control_fd);
    }

  watch_exit (self);

  self->startup_timer = g_timeout_source_new (arip_launcher_get_startup_timeout (launcher));
  g_source_set_callback (self->startup_timer, on_startup_timeout, self, NULL);
  g_source_set_static_name (self->startup_timer, "[arip] startup timeout");
  g_source_attach (self->startup_timer, self->context);

  if (self->crash_fd >= 0)
    {
      self->crash_source = g_unix_fd_source_new (self->crash_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
      g_source_set_callback (self->crash_source, G_SOURCE_FUNC (on_crash_readable), self, NULL);
      g_source_set_static_name (self->crash_source, "[arip] crash pipe");
      g_source_attach (self->crash_source, self->context);
    }

  self->channel = arip_channel_new (spawned.channel_fd, &local_error);
  if (self->channel == NULL)
    {
      /* Only a broken socketpair gets here: the child has nobody to talk
       * to and goes. */
      arip_child_fail (self, g_steal_pointer (&local_error));
      return self;
    }
  /* A frame from a child carries at most what a result may (a memfd
   * holding a large value among them): the kernel discards any beyond.
   * Other frames carry none but a memfd, which the header tells before the
   * rest comes: only a result's descriptors are ever held for long. */
  arip_channel_set_max_fds (self->channel, ARIP_FRAME_MAX_FDS, 0);
  arip_channel_start_reading (self->channel, self->context, on_frame, on_channel_closed, self);

  return self;
}
