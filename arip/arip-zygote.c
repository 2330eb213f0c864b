/* arip-zygote.c: the fork server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ARIP_START_METHOD_FORKSERVER. The fork server (the zygote) is the
 * program executed once more with ARIP_ZYGOTE in its environment: it runs
 * main() up to arip_init(), as a worker would, so the same functions are
 * registered and the libraries are loaded and relocated; it calls the
 * preload hook, says hello, and then only forks. A worker forked from it
 * costs a fork of a small, single-threaded process instead of a whole
 * program start.
 *
 * The parent and the server talk over a SOCK_SEQPACKET socketpair, one
 * GVariant per message:
 *
 *   parent -> server  (ayayai)   cwd, environment (its strings one after
 *                                the other, each with its zero byte;
 *                                bytes: neither need be UTF-8), target
 *                                of each descriptor (the descriptors go
 *                                along by SCM_RIGHTS)
 *   server -> parent  (uiis)   what, pid, value, text:
 *                                HELLO   the server's pid, its threads
 *                                FORKED  the worker's pid (its pidfd along)
 *                                FAILED  errno, why
 *                                EXITED  a worker's pid and wait status
 *
 * The server keeps one worker forked ahead (the spare), which waits on a
 * socket of its own for the request it will serve: a request is then
 * handed to it, and the next spare forked once the reply is out.
 *
 * The server reaps its workers (killing what is left of each one's process
 * group first) and reports their ends; the parent signals them through
 * pidfds. The server dies with the parent (PR_SET_PDEATHSIG, and the
 * socket's end), its workers with the server and with the parent. It
 * checks before every fork that it runs a single thread, and refuses to
 * fork otherwise; a program whose server would run threads (GJS does)
 * spawns its workers instead.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "arip-channel-private.h"
#include "arip-error.h"
#include "arip-fork-private.h"
#include "arip-spawn-private.h"
#include "arip-worker-private.h"
#include "arip-zygote-private.h"

#define ZYGOTE_VERSION      2
#define REQUEST_TYPE        "(ayayai)"
#define MAX_MESSAGE         (256 * 1024)
#define MAX_REQUEST_FDS     (ARIP_FRAME_MAX_FDS + 8)
#define START_TIMEOUT_MS    10000
/* A fork takes well under a millisecond, a few with a big heap; a server
 * that takes longer is stopped or stuck: it is replaced. */
#define REPLY_TIMEOUT_MS    2000
/* Exits heard before anyone follows the worker: no more than this many. */
#define MAX_EARLY           4096

typedef enum {
  REPLY_HELLO = 1,
  REPLY_FORKED,
  REPLY_FAILED,
  REPLY_EXITED,
} ReplyKind;

/* ---------------------------------------------------------------------- */
/* Messages                                                               */

/* Sends @message (sunk) with @fds; FALSE with errno set. */
static gboolean
send_message (gint        sock,
              GVariant   *message,
              const gint *fds,
              guint       n_fds)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (message);
  gsize size = g_variant_get_size (owned);
  g_autofree guint8 *data = g_malloc (MAX (size, 1));
  union {
    char buf[CMSG_SPACE (sizeof (int) * MAX_REQUEST_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = { data, size };
  struct msghdr msg = { 0 };
  gssize n;

  if (n_fds > MAX_REQUEST_FDS)
    {
      errno = E2BIG;
      return FALSE;
    }
  g_variant_store (owned, data);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (n_fds > 0)
    {
      struct cmsghdr *c;

      memset (&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (c), fds, sizeof (int) * n_fds);
    }

  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (gssize) size;
}

/* Replies are a few numbers and a message. */
#define MAX_REPLY           4096

/* Receives one message of type @type into @data (@size bytes at most); its
 * descriptors go to @fds (up to @max_fds, close-on-exec). NULL at the end
 * of the stream or on anything malformed (errno 0 for the end). Replies
 * are checked for normal form; a request need not be: it comes from the
 * program itself, and GVariant reads any bytes safely. */
static GVariant *
receive_message (gint                sock,
                 const GVariantType *type,
                 guint8             *data,
                 gsize               size,
                 gint               *fds,
                 guint               max_fds,
                 guint              *n_fds,
                 gboolean            wait,
                 gboolean            check_normal)
{
  union {
    char buf[CMSG_SPACE (sizeof (int) * MAX_REQUEST_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = { data, size };
  struct msghdr msg = { 0 };
  g_autoptr(GBytes) bytes = NULL;
  GVariant *message;
  guint received = 0;
  gssize n;

  *n_fds = 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE (sizeof (int) * MIN (max_fds, MAX_REQUEST_FDS));

  do
    n = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
  while (n < 0 && errno == EINTR);

  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); n >= 0 && c != NULL; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        guint count = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);

        for (guint i = 0; i < count; i++)
          {
            gint fd;

            memcpy (&fd, CMSG_DATA (c) + i * sizeof (int), sizeof fd);
            if (received < max_fds)
              fds[received++] = fd;
            else
              close (fd);
          }
      }
  *n_fds = received;

  /* Descriptors that did not fit (none left here: EMFILE) are lost, and
   * the message stands without them. */
  if (n <= 0 || (msg.msg_flags & MSG_TRUNC))
    {
      if (n == 0)
        errno = 0;
      else if (n > 0)
        errno = EMSGSIZE;
      goto bad;
    }

  bytes = g_bytes_new (data, (gsize) n);
  message = g_variant_ref_sink (g_variant_new_from_bytes (type, bytes, FALSE));
  if (check_normal && !g_variant_is_normal_form (message))
    {
      g_variant_unref (message);
      errno = EPROTO;
      goto bad;
    }
  return message;

bad:
  for (guint i = 0; i < received; i++)
    close (fds[i]);
  *n_fds = 0;
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* The parent's side                                                      */

/* One run of the server. Sources keep it until they are gone, so the
 * socket they poll is never closed under them. */
typedef struct {
  gint     ref_count;   /* atomic */
  GPid     pid;
  gint     sock;
  gboolean broken;      /* under the lock */
  gint     threads;     /* from its hello; -1 before it */
  gint     wait_status; /* once broken */
  gint64   hello_deadline;
} Conn;

typedef struct {
  GSource   source;
  GPid      pid;
  Conn     *conn;
  gpointer  tag;
  gboolean  reported;   /* under the lock */
  gint      wait_status;
} ExitSource;

typedef struct {
  ReplyKind kind;
  GPid      pid;
  gint      value;
  char     *text;
  gint      pidfd;
} Reply;

static GMutex lock;
static Conn *current;            /* the running server, or NULL */
static char *unavailable;        /* why this program's server cannot fork */
static GHashTable *followed;     /* pid -> ExitSource (a reference) */
static GHashTable *early;        /* pid -> wait status heard before anyone followed */
static GQueue replies = G_QUEUE_INIT;

static Conn *
conn_ref (Conn *conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
conn_unref (Conn *conn)
{
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  close (conn->sock);
  g_free (conn);
}

static void
reply_free (Reply *reply)
{
  if (reply->pidfd >= 0)
    close (reply->pidfd);
  g_free (reply->text);
  g_free (reply);
}

static void
ensure_tables_locked (void)
{
  if (followed == NULL)
    {
      followed = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_source_unref);
      early = g_hash_table_new (NULL, NULL);
    }
}

/* A worker's end is known: to its source, or kept until one follows it. */
static void
deliver_locked (GPid pid,
                gint wait_status)
{
  ExitSource *exit;

  ensure_tables_locked ();
  exit = g_hash_table_lookup (followed, GINT_TO_POINTER (pid));
  if (exit != NULL)
    {
      exit->reported = TRUE;
      exit->wait_status = wait_status;
      g_source_set_ready_time ((GSource *) exit, 0);
    }
  else if (g_hash_table_size (early) < MAX_EARLY)
    g_hash_table_insert (early, GINT_TO_POINTER (pid), GINT_TO_POINTER (wait_status));
}

/* Why this program's server can never fork: set once, for good. */
static void
set_unavailable_locked (char *why)
{
  if (unavailable == NULL)
    unavailable = why;
  else
    g_free (why);
}

/* The server is gone: its workers died with it (PR_SET_PDEATHSIG). The
 * connection stays allocated while sources or callers hold it. */
static void
break_locked (Conn *conn)
{
  GHashTableIter iter;
  gpointer key, value;

  if (conn->broken)
    return;
  conn->broken = TRUE;

  kill (conn->pid, SIGKILL);
  conn->wait_status = SIGKILL;
  while (waitpid (conn->pid, &conn->wait_status, 0) < 0 && errno == EINTR)
    ;
  if (conn->threads < 0 && !(WIFSIGNALED (conn->wait_status) &&
                             WTERMSIG (conn->wait_status) == SIGKILL))
    {
      /* It ended on its own before it reached arip_init(): it always will. */
      g_autofree char *how = WIFEXITED (conn->wait_status)
        ? g_strdup_printf (_("exited with status %d"), WEXITSTATUS (conn->wait_status))
        : g_strdup_printf (_("was killed by signal %d"), WTERMSIG (conn->wait_status));
      set_unavailable_locked (g_strdup_printf (_("the fork server %s before it was ready: "
                                                 "in main() before arip_init() (does main() "
                                                 "call it first?), or in the preload hook"), how));
    }

  ensure_tables_locked ();
  g_hash_table_iter_init (&iter, followed);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      ExitSource *exit = value;

      if (exit->conn == conn && !exit->reported)
        {
          exit->reported = TRUE;
          exit->wait_status = SIGKILL;
          g_source_set_ready_time ((GSource *) exit, 0);
        }
    }
  g_queue_clear_full (&replies, (GDestroyNotify) reply_free);

  if (current == conn)
    {
      current = NULL;
      conn_unref (conn);
    }
}

/* A reply's fields, read where a normal-form "(uiis)" keeps them: three
 * 4-byte numbers, then the string and its zero byte (the last member has
 * no offset). g_variant_get() takes 10,000 instructions for this. */
static gboolean
parse_reply (GVariant    *message,
             guint32     *kind,
             gint32      *pid,
             gint32      *value,
             const char **text)
{
  const guint8 *data = g_variant_get_data (message);
  gsize size = g_variant_get_size (message);

  /* receive_message() checked its normal form, which has this much. */
  if (size < 13 || data[size - 1] != '\0')
    return FALSE;
  memcpy (kind, data, 4);
  memcpy (pid, data + 4, 4);
  memcpy (value, data + 8, 4);
  *text = (const char *) data + 12;
  return TRUE;
}

/* Reads what the server says, waiting up to @timeout_ms for the first
 * message (0: only what is there). FALSE once the server is gone. */
static gboolean
pump_locked (Conn *conn,
             gint  timeout_ms)
{
  gboolean first = TRUE;

  while (!conn->broken)
    {
      g_autoptr(GVariant) message = NULL;
      struct pollfd pfd = { .fd = conn->sock, .events = POLLIN };
      guint8 buffer[MAX_REPLY];
      gint fds[1];
      guint n_fds = 0;
      guint32 kind;
      gint32 pid, value;
      const char *text;
      int r;

      do
        r = poll (&pfd, 1, first ? timeout_ms : 0);
      while (r < 0 && errno == EINTR);
      first = FALSE;
      if (r <= 0)
        return TRUE;

      message = receive_message (conn->sock, G_VARIANT_TYPE ("(uiis)"), buffer, sizeof buffer,
                                 fds, 1, &n_fds, FALSE, TRUE);
      if (message == NULL && errno == EAGAIN)
        return TRUE;
      if (message == NULL || !parse_reply (message, &kind, &pid, &value, &text))
        {
          for (guint i = 0; i < n_fds; i++)
            close (fds[i]);
          break_locked (conn);
          return FALSE;
        }

      if (kind == REPLY_EXITED && pid > 0)
        deliver_locked (pid, value);
      else if (kind == REPLY_HELLO && pid == conn->pid)
        conn->threads = value;
      else if ((kind == REPLY_FORKED && pid > 0) || kind == REPLY_FAILED)
        {
          Reply *reply = g_new0 (Reply, 1);

          reply->kind = kind;
          reply->pid = pid;
          reply->value = value;
          reply->text = g_strdup (text);
          reply->pidfd = n_fds == 1 ? fds[0] : -1;
          n_fds = 0;
          g_queue_push_tail (&replies, reply);
        }
      for (guint i = 0; i < n_fds; i++)
        close (fds[i]);
    }
  return FALSE;
}

/* The environment of the server: ours, with ARIP_ZYGOTE. The dynamic
 * linker binds every symbol as the server starts (LD_BIND_NOW): bound
 * lazily, each worker would look up again every function it is the first
 * to call, and fault in the symbol tables to do it (a third of a worker's
 * page faults). The last field says whether the variable is ours, for the
 * server to take it away again before main() runs. */
static char **
server_environ (gint sock_target)
{
  g_auto(GStrv) envp = g_get_environ ();
  gboolean bind_now = g_environ_getenv (envp, "LD_BIND_NOW") == NULL;
  g_autofree char *value = g_strdup_printf ("%d:%d:%d:%d", ZYGOTE_VERSION, sock_target,
                                            (int) getpid (), bind_now);

  envp = g_environ_unsetenv (envp, ARIP_WORKER_ENV);
  envp = g_environ_setenv (envp, ARIP_ZYGOTE_ENV, value, TRUE);
  if (bind_now)
    envp = g_environ_setenv (envp, "LD_BIND_NOW", "1", TRUE);
  return g_steal_pointer (&envp);
}

/* Starts a server; it is usable once it says hello. */
static gboolean
start_locked (GError **error)
{
  const char * const *argv = arip_worker_get_default_argv ();
  g_auto(GStrv) envp = NULL;
  g_autoptr(GError) local_error = NULL;
  AripSpawnRequest request = { 0 };
  const gint target = 3;
  gint sv[2];
  Conn *conn;
  GPid pid;
  gint pidfd;

  if (argv == NULL || argv[0] == NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not find out how this program was started, to start its fork server"));
      return FALSE;
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      int saved_errno = errno;
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not create the fork server’s socket: %s"), g_strerror (saved_errno));
      return FALSE;
    }

  envp = server_environ (target);
  request.file = arip_worker_get_own_executable ();
  request.argv = argv;
  request.envp = (const char * const *) envp;
  request.stdin_fd = -1;
  request.stdout_fd = ARIP_SPAWN_INHERIT;
  request.stderr_fd = ARIP_SPAWN_INHERIT;
  request.sources = &sv[1];
  request.targets = &target;
  request.n_fds = 1;
  request.new_process_group = TRUE;
  if (!arip_spawn (&request, &pid, &pidfd, &local_error))
    {
      close (sv[0]);
      close (sv[1]);
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not start the fork server: %s"), local_error->message);
      return FALSE;
    }
  close (sv[1]);
  if (pidfd >= 0)
    close (pidfd);

  conn = g_new0 (Conn, 1);
  conn->ref_count = 1;
  conn->pid = pid;
  conn->sock = sv[0];
  conn->threads = -1;
  conn->hello_deadline = g_get_monotonic_time () + START_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  current = conn;
  return TRUE;
}

/* The running server if it said hello (may start one, or find out that
 * there can be none). */
static AripZygoteOutcome
ready_locked (GError **error)
{
  Conn *conn = current != NULL ? conn_ref (current) : NULL;

  if (conn != NULL)
    {
      pump_locked (conn, 0);
      if (!conn->broken && conn->threads < 0 &&
          g_get_monotonic_time () > conn->hello_deadline)
        {
          set_unavailable_locked (g_strdup_printf (_("the fork server did not reach arip_init() "
                                                     "within %d ms"), START_TIMEOUT_MS));
          break_locked (conn);
        }
      else if (!conn->broken && conn->threads > 1)
        {
          set_unavailable_locked (g_strdup_printf (_("this program runs %d threads once it has "
                                                     "reached arip_init() and run the preload hook "
                                                     "(threads started by either, or an engine's "
                                                     "own), and forking it would not be safe"), conn->threads));
          break_locked (conn);
        }
      conn_unref (conn);
    }

  if (unavailable != NULL)
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_NOT_SUPPORTED,
                   _("The fork server cannot fork: %s"), unavailable);
      return ARIP_ZYGOTE_UNAVAILABLE;
    }
  if (current == NULL)
    return start_locked (error) ? ARIP_ZYGOTE_STARTING : ARIP_ZYGOTE_FAILED;
  if (current->threads < 0)
    return ARIP_ZYGOTE_STARTING;
  return ARIP_ZYGOTE_FORKED;
}

/* The environment as one "ay": its strings one after the other, each
 * with its zero byte (as an "aay", a GVariant per variable made and
 * serialized: more than half of the parent's own instructions for a
 * one-shot). */
static GVariant *
environ_block (const char * const *envp)
{
  g_autoptr(GByteArray) block = g_byte_array_sized_new (4096);

  for (guint i = 0; envp != NULL && envp[i] != NULL; i++)
    g_byte_array_append (block, (const guint8 *) envp[i], strlen (envp[i]) + 1);
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, block->data, block->len, 1);
}

/* Whether an environ_block() of @len bytes ends its last string. */
static gboolean
environ_block_is_ended (const char *block,
                        gsize       len)
{
  return len == 0 || block[len - 1] == '\0';
}

/* The strings of an environ_block(), borrowed from it (the array
 * newly allocated), or NULL if it does not end its last string. */
static const char **
environ_from_block (const char *block,
                    gsize       len)
{
  GPtrArray *envp;

  if (!environ_block_is_ended (block, len))
    return NULL;
  envp = g_ptr_array_new ();
  for (gsize at = 0; at < len; at += strlen (block + at) + 1)
    g_ptr_array_add (envp, (gpointer) (block + at));
  g_ptr_array_add (envp, NULL);
  return (const char **) g_ptr_array_free (envp, FALSE);
}

AripZygoteOutcome
arip_zygote_fork (const char         *cwd,
                  const char * const *envp,
                  const gint         *fds,
                  const gint         *targets,
                  guint               n_fds,
                  GPid               *pid,
                  gint               *pidfd,
                  GError            **error)
{
  g_autoptr(GVariant) request = NULL;
  AripZygoteOutcome outcome;
  Reply *reply = NULL;
  gint64 deadline;
  Conn *conn;

  *pid = 0;
  *pidfd = -1;

  g_mutex_lock (&lock);

  outcome = ready_locked (error);
  if (outcome != ARIP_ZYGOTE_FORKED)
    goto out;

  conn = conn_ref (current);
  {
    /* Not g_variant_new(): its format string costs more than the rest. */
    GVariant *fields[3] = {
      g_variant_new_bytestring (cwd != NULL ? cwd : ""),
      environ_block (envp),
      g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, targets, n_fds, sizeof (gint)),
    };

    request = g_variant_ref_sink (g_variant_new_tuple (fields, G_N_ELEMENTS (fields)));
  }
  g_queue_clear_full (&replies, (GDestroyNotify) reply_free);
  if (send_message (conn->sock, request, fds, n_fds))
    {
      deadline = g_get_monotonic_time () + REPLY_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
      while (g_queue_is_empty (&replies) && !conn->broken && g_get_monotonic_time () < deadline)
        pump_locked (conn, (gint) ((deadline - g_get_monotonic_time ()) / 1000) + 1);
      reply = g_queue_pop_head (&replies);
    }
  else if (errno != EPIPE && errno != ECONNRESET && errno != ENOTCONN)
    {
      /* Ours, not the server's (no memory, no descriptor left). */
      int saved_errno = errno;
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("Could not ask the fork server for a worker: %s"), g_strerror (saved_errno));
      conn_unref (conn);
      outcome = ARIP_ZYGOTE_FAILED;
      goto out;
    }

  if (reply == NULL)
    {
      /* It died, or is stuck: the next call gets a new one, this one is
       * spawned. */
      break_locked (conn);
      outcome = ready_locked (error);
      if (outcome == ARIP_ZYGOTE_FORKED)
        outcome = ARIP_ZYGOTE_STARTING;
    }
  else if (reply->kind == REPLY_FORKED)
    {
      *pid = reply->pid;
      *pidfd = reply->pidfd;
      reply->pidfd = -1;
    }
  else if (reply->value == EBUSY)
    {
      /* It runs threads now (the preload hook started some). */
      set_unavailable_locked (g_strdup (reply->text));
      break_locked (conn);
      outcome = ready_locked (error);
    }
  else
    {
      g_set_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED,
                   _("The fork server could not start a worker: %s"), reply->text);
      outcome = ARIP_ZYGOTE_FAILED;
    }
  g_clear_pointer (&reply, reply_free);
  conn_unref (conn);

out:
  g_mutex_unlock (&lock);
  return outcome;
}

GPid
arip_zygote_get_pid (void)
{
  GPid pid;

  g_mutex_lock (&lock);
  pid = current != NULL && !current->broken ? current->pid : 0;
  g_mutex_unlock (&lock);
  return pid;
}

static gboolean
exit_source_prepare (GSource *source,
                     gint    *timeout)
{
  ExitSource *exit = (ExitSource *) source;
  gboolean ready;

  *timeout = -1;
  g_mutex_lock (&lock);
  ready = exit->reported;
  g_mutex_unlock (&lock);
  return ready;
}

static gboolean
exit_source_check (GSource *source)
{
  ExitSource *exit = (ExitSource *) source;
  gboolean ready;

  g_mutex_lock (&lock);
  if (!exit->reported && exit->tag != NULL &&
      (g_source_query_unix_fd (source, exit->tag) & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
    {
      if (!exit->conn->broken)
        pump_locked (exit->conn, 0);
      else
        {
          /* A new server may have been started; this one is gone. */
          exit->reported = TRUE;
          exit->wait_status = SIGKILL;
        }
    }
  ready = exit->reported;
  g_mutex_unlock (&lock);
  return ready;
}

static gboolean
exit_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  ExitSource *exit = (ExitSource *) source;
  gboolean reported;

  /* GLib dispatches a source whose descriptor is readable whatever its
   * check said: the server's news may have been about other workers. */
  g_mutex_lock (&lock);
  reported = exit->reported;
  g_mutex_unlock (&lock);
  if (!reported)
    return G_SOURCE_CONTINUE;
  if (callback == NULL)
    return G_SOURCE_REMOVE;
  return ((AripExitFunc) (void (*) (void)) callback) (exit->wait_status, user_data);
}

static void
exit_source_finalize (GSource *source)
{
  ExitSource *exit = (ExitSource *) source;

  if (exit->conn != NULL)
    conn_unref (exit->conn);
}

static GSourceFuncs exit_source_funcs = {
  exit_source_prepare,
  exit_source_check,
  exit_source_dispatch,
  exit_source_finalize,
  NULL, NULL,
};

GSource *
arip_zygote_exit_source_new (GPid pid)
{
  GSource *source = g_source_new (&exit_source_funcs, sizeof (ExitSource));
  ExitSource *exit = (ExitSource *) source;
  gpointer status;

  exit->pid = pid;
  g_source_set_static_name (source, "[arip] fork server worker exit");

  g_mutex_lock (&lock);
  ensure_tables_locked ();
  if (g_hash_table_lookup_extended (early, GINT_TO_POINTER (pid), NULL, &status))
    {
      exit->reported = TRUE;
      exit->wait_status = GPOINTER_TO_INT (status);
      g_hash_table_remove (early, GINT_TO_POINTER (pid));
    }
  else if (current == NULL || current->broken)
    {
      exit->reported = TRUE;
      exit->wait_status = SIGKILL;
    }
  else
    {
      exit->conn = conn_ref (current);
      exit->tag = g_source_add_unix_fd (source, current->sock, G_IO_IN | G_IO_HUP | G_IO_ERR);
      g_hash_table_insert (followed, GINT_TO_POINTER (pid), g_source_ref (source));
    }
  g_mutex_unlock (&lock);

  return source;
}

gboolean
arip_zygote_peek_status (GPid  pid,
                         gint  timeout_ms,
                         gint *wait_status)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gboolean known = FALSE;

  g_mutex_lock (&lock);
  ensure_tables_locked ();
  for (;;)
    {
      ExitSource *exit = g_hash_table_lookup (followed, GINT_TO_POINTER (pid));
      gpointer status;
      gint64 left;

      if (exit != NULL && exit->reported)
        {
          *wait_status = exit->wait_status;
          known = TRUE;
          break;
        }
      if (g_hash_table_lookup_extended (early, GINT_TO_POINTER (pid), NULL, &status))
        {
          *wait_status = GPOINTER_TO_INT (status);
          known = TRUE;
          break;
        }
      left = deadline - g_get_monotonic_time ();
      if (exit == NULL || exit->conn == NULL || left <= 0)
        break;
      if (exit->conn->broken)
        {
          *wait_status = SIGKILL;
          known = TRUE;
          break;
        }
      pump_locked (exit->conn, (gint) (left / 1000) + 1);
    }
  g_mutex_unlock (&lock);
  return known;
}

void
arip_zygote_forget (GPid pid)
{
  g_mutex_lock (&lock);
  ensure_tables_locked ();
  g_hash_table_remove (followed, GINT_TO_POINTER (pid));
  g_hash_table_remove (early, GINT_TO_POINTER (pid));
  g_mutex_unlock (&lock);
}

/* ---------------------------------------------------------------------- */
/* The server's side                                                      */

static void
reply (gint        sock,
       ReplyKind   kind,
       GPid        pid,
       gint        value,
       const char *text,
       gint        fd)
{
  g_autofree char *shortened = NULL;

  /* A reply fits the parent's buffer of MAX_REPLY bytes. */
  if (text == NULL)
    text = "";
  else if (strlen (text) > MAX_REPLY / 2)
    text = shortened = g_utf8_make_valid (text, MAX_REPLY / 2);
  if (!send_message (sock, g_variant_new ("(uiis)", (guint32) kind, (gint32) pid, (gint32) value, text),
                     &fd, fd >= 0 ? 1 : 0))
    _exit (0);   /* the parent is gone */
}

/* The server's buffer for requests, made before its first fork. */
static guint8 *request_buffer;

/* In a forked child: becomes the worker @request describes. Never
 * returns. */
G_GNUC_NORETURN static void
become_from_request (GVariant *request,
                     gint     *fds,
                     guint     n_fds)
{
  g_autofree const char **envp = NULL;
  GVariant *cwd_v, *env_v, *targets_v;
  AripBecomeWorker how = { 0 };
  const char *cwd, *env;
  gsize n_targets, env_len;

  cwd_v = g_variant_get_child_value (request, 0);
  env_v = g_variant_get_child_value (request, 1);
  targets_v = g_variant_get_child_value (request, 2);
  cwd = g_variant_get_bytestring (cwd_v);
  how.targets = g_variant_get_fixed_array (targets_v, &n_targets, sizeof (gint32));
  env = g_variant_get_fixed_array (env_v, &env_len, 1);
  envp = environ_from_block (env, env_len);
  /* This never returns: no automatic cleanup would run. What they point
   * into stays, in @request. */
  g_variant_unref (cwd_v);
  g_variant_unref (env_v);
  g_variant_unref (targets_v);
  if (n_targets != n_fds || envp == NULL)
    _exit (125);   /* the server checked */
  how.fds = fds;
  how.n_fds = n_fds;
  how.envp = (char **) envp;
  how.cwd = *cwd != '\0' ? cwd : NULL;
  how.parent = getppid ();
  arip_worker_become (&how);
}

/* Why forking now would not be safe (newly allocated), or NULL. Never a
 * fork of a threaded process: a lock another thread held stays held in
 * the child for ever. */
static char *
fork_refusal (void)
{
  guint threads = arip_fork_count_threads ();

  if (threads <= 1)
    return NULL;
  return g_strdup_printf (_("the fork server runs %u threads (its preload hook started some?), "
                            "and forking it would not be safe"), threads);
}

/* A worker forked ahead of the request that will need it, waiting on a
 * socket of its own for that request: the fork is then off the path of a
 * call (on a machine with a CPU to spare, it happens while the last worker
 * runs). Named "arip-spare" until it becomes a worker. */
typedef struct {
  GPid pid;     /* 0: none */
  gint pidfd;
  gint sock;
} Spare;

static Spare spare = { 0, -1, -1 };

#define SPARE_NAME "arip-spare"

G_GNUC_NORETURN static void
spare_wait (gint spare_sock)
{
  g_autoptr(GVariant) request = NULL;
  char name[16] = "";
  gint fds[MAX_REQUEST_FDS];
  guint n_fds = 0;

  prctl (PR_GET_NAME, name);
  prctl (PR_SET_NAME, SPARE_NAME);
  request = receive_message (spare_sock, G_VARIANT_TYPE (REQUEST_TYPE), request_buffer, MAX_MESSAGE,
                             fds, MAX_REQUEST_FDS, &n_fds, TRUE, FALSE);
  if (request == NULL)
    _exit (0);   /* the server is gone */
  close (spare_sock);
  prctl (PR_SET_NAME, name);
  become_from_request (request, fds, n_fds);
}

static void
make_spare (gint sock,
            gint sfd)
{
  g_autofree char *refusal = NULL;
  gint pair[2];
  GPid pid;

  if (spare.pid > 0 || (refusal = fork_refusal ()) != NULL ||
      socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
    return;

  pid = arip_fork ();
  if (pid == 0)
    {
      /* Nothing of the server's (the parent's socket, the descriptors of
       * requests: a pipe held open here would never see its end), only its
       * own end; a worker gets the rest with its request. */
      gint own = fcntl (pair[1], F_DUPFD_CLOEXEC, 3);

      if (own < 0 || (own != 3 && dup3 (own, 3, O_CLOEXEC) < 0))
        _exit (125);
      close_range (4, ~0u, 0);
      spare_wait (3);
    }
  close (pair[1]);
  if (pid < 0)
    {
      close (pair[0]);
      return;
    }
  spare.pid = pid;
  spare.sock = pair[0];
  spare.pidfd = arip_pidfd_open (pid);
}

/* Forgets the spare; one that never became a worker is killed and reaped
 * here, so that the parent never hears of it. */
static void
drop_spare (gboolean kill_it)
{
  if (spare.pid <= 0)
    return;
  if (kill_it)
    {
      kill (spare.pid, SIGKILL);
      while (waitpid (spare.pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
  close (spare.sock);
  if (spare.pidfd >= 0)
    close (spare.pidfd);
  spare = (Spare) { 0, -1, -1 };
}

static void
serve_fork (gint      sock,
            gint      sfd,
            GVariant *request,
            gint     *fds,
            guint     n_fds)
{
  g_autoptr(GVariant) targets_v = NULL;
  g_autoptr(GVariant) env_v = NULL;
  g_autofree char *refusal = NULL;
  const char *env;
  gsize n_targets, env_len;
  GPid pid;
  gint pidfd;

  g_variant_get_child (request, 2, "@ai", &targets_v);
  g_variant_get_fixed_array (targets_v, &n_targets, sizeof (gint32));
  if (n_targets != n_fds)
    {
      reply (sock, REPLY_FAILED, 0, EINVAL, "the request's descriptors do not match its targets", -1);
      return;
    }
  env_v = g_variant_get_child_value (request, 1);
  env = g_variant_get_fixed_array (env_v, &env_len, 1);
  if (!environ_block_is_ended (env, env_len))
    {
      reply (sock, REPLY_FAILED, 0, EINVAL, "the request's environment does not end its last string", -1);
      return;
    }

  /* The spare takes it: it needs only the request. */
  if (spare.pid > 0)
    {
      if (send_message (spare.sock, request, fds, n_fds))
        {
          reply (sock, REPLY_FORKED, spare.pid, 0, "", spare.pidfd);
          drop_spare (FALSE);
          return;
        }
      drop_spare (TRUE);
    }

  if ((refusal = fork_refusal ()) != NULL)
    {
      reply (sock, REPLY_FAILED, 0, EBUSY, refusal, -1);
      return;
    }

  pid = arip_fork ();
  if (pid == 0)
    {
      close (sfd);
      become_from_request (request, fds, n_fds);
    }

  if (pid < 0)
    {
      int saved_errno = errno;
      reply (sock, REPLY_FAILED, 0, saved_errno, g_strerror (saved_errno), -1);
      return;
    }

  /* A pidfd of a child not reaped yet always names it. */
  pidfd = arip_pidfd_open (pid);
  reply (sock, REPLY_FORKED, pid, 0, "", pidfd);
  if (pidfd >= 0)
    close (pidfd);
}

static void
reap_workers (gint sock)
{
  for (;;)
    {
      siginfo_t info;
      gint wait_status;

      memset (&info, 0, sizeof info);
      if (waitid (P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0)
        return;
      if (info.si_code == CLD_EXITED)
        wait_status = (info.si_status & 0xff) << 8;
      else
        wait_status = info.si_status & 0x7f;
      arip_spawn_reap (info.si_pid);
      /* A spare that died before it became a worker: nobody knows of it. */
      if (info.si_pid == spare.pid)
        {
          drop_spare (FALSE);
          continue;
        }
      reply (sock, REPLY_EXITED, info.si_pid, wait_status, "", -1);
    }
}

void
arip_zygote_main (const char *env_value)
{
  char **parts = g_strsplit (env_value, ":", -1);
  guint64 version = 0, sock64 = 0, parent64 = 0, bind_now = 0;
  sigset_t chld;
  gint sock, sfd;
  gboolean valid;

  /* Freed now: this never returns, and its workers must not inherit it. */
  valid = g_strv_length (parts) == 4 &&
          g_ascii_string_to_unsigned (parts[0], 10, 1, G_MAXUINT32, &version, NULL) &&
          g_ascii_string_to_unsigned (parts[1], 10, 0, G_MAXINT, &sock64, NULL) &&
          g_ascii_string_to_unsigned (parts[2], 10, 1, G_MAXINT, &parent64, NULL) &&
          g_ascii_string_to_unsigned (parts[3], 10, 0, 1, &bind_now, NULL) &&
          version == ZYGOTE_VERSION;
  g_strfreev (parts);
  if (!valid)
    {
      g_printerr ("arip fork server %d: %s=“%s” is not what this version of arip writes\n",
                  (int) getpid (), ARIP_ZYGOTE_ENV, env_value);
      _exit (125);
    }
  sock = (gint) sock64;
  g_unsetenv (ARIP_ZYGOTE_ENV);
  /* One buffer for every request, made before the first fork. */
  request_buffer = g_malloc (MAX_MESSAGE);

  /* Die with the parent; and if it died before we asked, go now. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != (GPid) parent64 || fcntl (sock, F_SETFD, FD_CLOEXEC) < 0)
    _exit (126);

  arip_worker_run_preload ();
  arip_worker_warm_up ();
  /* What is buffered would be printed again by every worker. */
  fflush (NULL);
  reply (sock, REPLY_HELLO, getpid (), (gint) arip_fork_count_threads (), "", -1);

  /* Workers' ends come as a readable descriptor, not as a handler that
   * could run anywhere. */
  sigemptyset (&chld);
  sigaddset (&chld, SIGCHLD);
  sigprocmask (SIG_BLOCK, &chld, NULL);
  sfd = signalfd (-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    _exit (125);
  make_spare (sock, sfd);

  for (;;)
    {
      struct pollfd pfds[2] = {
        { .fd = sock, .events = POLLIN },
        { .fd = sfd, .events = POLLIN },
      };

      if (poll (pfds, G_N_ELEMENTS (pfds), -1) < 0)
        {
          if (errno == EINTR)
            continue;
          _exit (125);
        }

      if (pfds[1].revents & POLLIN)
        {
          struct signalfd_siginfo info;

          while (read (sfd, &info, sizeof info) > 0)
            ;
          reap_workers (sock);
        }

      if (pfds[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          g_autoptr(GVariant) request = NULL;
          gint fds[MAX_REQUEST_FDS];
          guint n_fds = 0;

          request = receive_message (sock, G_VARIANT_TYPE (REQUEST_TYPE), request_buffer, MAX_MESSAGE,
                                     fds, MAX_REQUEST_FDS, &n_fds, TRUE, FALSE);
          if (request == NULL)
            {
              /* The parent is gone (or speaks nonsense): so are we, and
               * our workers with us. */
              _exit (0);
            }
          serve_fork (sock, sfd, request, fds, n_fds);
          for (guint i = 0; i < n_fds; i++)
            close (fds[i]);
          /* A worker may have ended while we forked. */
          reap_workers (sock);
          /* The next request's worker, forked now. */
          make_spare (sock, sfd);
        }
    }
}
