/* test-security.c: what a worker will run, and what it is given
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   - only functions registered (before arip_init()) run, whatever name a
 *     caller sends;
 *   - a worker whose ARIP_WORKER variable points to anything but a channel
 *     from its parent refuses to serve: it exits with a failure status and
 *     runs nothing;
 *   - every descriptor arip opens in the parent is close-on-exec;
 *   - neither the parent's inheritable descriptors, nor the channel, nor
 *     the crash pipe, nor ARIP_WORKER reach a worker's own children.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <glib-unix.h>

#include <arip.h>

#include "arip-test-util.h"

#define REPORT_ENV "ARIP_TEST_SECURITY_REPORT"
#define MARK_ENV   "ARIP_TEST_SECURITY_MARK"

/* ---------------------------------------------------------------------- */
/* Functions the workers run                                              */

/* Creates the file named by ARIP_TEST_SECURITY_MARK: proof that it ran. */
static void
fn_mark (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *path = g_getenv (MARK_ENV);

  if (path != NULL)
    g_file_set_contents (path, "ran", -1, NULL);
  arip_call_return_value (call, NULL);
}

/* Waits until interrupted. */
static void
fn_wait (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);

  while (!g_cancellable_is_cancelled (cancellable))
    g_usleep (1000);
  arip_call_return_value (call, NULL);
}

/* The descriptors open here, one "fd -> target" a line. */
static char *
describe_fds (void)
{
  GString *s = g_string_new (NULL);

  for (int fd = 0; fd < 1024; fd++)
    {
      char path[64];
      char target[512];
      ssize_t n;

      if (fcntl (fd, F_GETFD) < 0)
        continue;
      g_snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
      n = readlink (path, target, sizeof target - 1);
      target[n > 0 ? n : 0] = '\0';
      g_string_append_printf (s, "%d -> %s\n", fd, target);
    }
  return g_string_free (s, FALSE);
}

/* (): the worker's own descriptors and environment, then those of a child
 * it starts the careless way (fork and exec, nothing closed). */
static void
fn_report (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autofree char *own = describe_fds ();
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr(GString) grandchild = g_string_new (NULL);
  int out[2];
  pid_t pid;
  int status;

  g_assert_nonnull (exe);
  g_assert_true (g_unix_open_pipe (out, FD_CLOEXEC, NULL));
  g_setenv (REPORT_ENV, "1", TRUE);

  pid = fork ();
  if (pid == 0)
    {
      char *argv[] = { exe, NULL };

      dup2 (out[1], STDOUT_FILENO);
      execv (exe, argv);
      _exit (127);
    }
  g_assert_cmpint (pid, >, 0);
  close (out[1]);
  for (;;)
    {
      char buf[1024];
      ssize_t n = read (out[0], buf, sizeof buf);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      g_string_append_len (grandchild, buf, n);
    }
  close (out[0]);
  waitpid (pid, &status, 0);

  arip_call_return_value (call, g_variant_new ("(sbs)", own,
                                               g_getenv ("ARIP_WORKER") != NULL,
                                               grandchild->str));
}

/* In the grandchild: what it inherited. */
G_GNUC_NORETURN static void
report_inherited (void)
{
  g_autofree char *fds = describe_fds ();
  const char *worker = g_getenv ("ARIP_WORKER");

  printf ("%sARIP_WORKER=%s\n", fds, worker != NULL ? worker : "(unset)");
  fflush (stdout);
  _exit (0);
}

/* ---------------------------------------------------------------------- */
/* Only registered names run                                              */

static void
test_only_registered (void)
{
  g_autofree char *dir = g_dir_make_tmp ("arip-security-XXXXXX", NULL);
  g_autofree char *mark = g_build_filename (dir, "mark", NULL);
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = NULL;
  g_autofree char *long_name = g_strnfill (64 * 1024, 'm');
  const char *names[] = {
    "", "Mark", "MARK", "mark ", " mark", "mark\n", "mark\t", "mar", "markk",
    "./mark", "../mark", "/mark", "mark;echo", "fn_mark", "main", "system", "abort", "exit",
    "g_main_loop_run", "arip_init", "late", "m\xc3\xa1rk", "\xd0\xbc\xd0\xb0rk", long_name,
  };

  /* Registered after arip_init(): the parent knows it, no worker does. */
  arip_register_function ("late", fn_mark, NULL, NULL);
  arip_launcher_setenv (launcher, MARK_ENV, mark, TRUE);
  pool = arip_pool_new (launcher, 1);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = arip_test_launcher_run (launcher, names[i], NULL, NULL, &error);

      g_assert_null (result);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
      if (strlen (names[i]) < 100)
        g_assert_nonnull (strstr (error->message, names[i]));
      g_clear_error (&error);

      result = arip_pool_run_sync (pool, names[i], NULL, NULL, &error);
      g_assert_null (result);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);

      g_assert_false (g_file_test (mark, G_FILE_TEST_EXISTS));
    }

  /* The registered name itself does run, on both paths. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) result = arip_test_launcher_run (launcher, "mark", NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (g_file_test (mark, G_FILE_TEST_EXISTS));
    g_unlink (mark);
    g_clear_pointer (&result, g_variant_unref);
    result = arip_pool_run_sync (pool, "mark", NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_file_test (mark, G_FILE_TEST_EXISTS));
    g_unlink (mark);
  }

  g_clear_object (&pool);
  g_rmdir (dir);
}

/* ---------------------------------------------------------------------- */
/* A worker refuses a channel that is not ours                            */

typedef enum {
  CHANNEL_NONE,          /* nothing at the descriptor the variable names */
  CHANNEL_DEV_NULL,
  CHANNEL_PIPE,
  CHANNEL_TCP,
  CHANNEL_UDP,
  CHANNEL_UNIX_DGRAM,
  CHANNEL_UNIX_SEQPACKET,
  CHANNEL_UNIX_LISTENING,
  CHANNEL_UNIX_STREAM,   /* a real channel, for the cases about the rest */
} ChannelKind;

typedef struct {
  const char  *name;
  ChannelKind  channel;
  const char  *value;    /* "%d" stands for our pid */
  gint         status;   /* expected exit status */
} RefuseCase;

/* 125: the worker could not start serving; 126: it is not its parent's. */
static const RefuseCase refuse_cases[] = {
  { "empty", CHANNEL_UNIX_STREAM, "", 125 },
  { "garbage", CHANNEL_UNIX_STREAM, "not a channel", 125 },
  { "too-few-fields", CHANNEL_UNIX_STREAM, "2:3:4", 125 },
  { "not-numbers", CHANNEL_UNIX_STREAM, "2:three:4:%d", 125 },
  { "negative-fd", CHANNEL_UNIX_STREAM, "2:-3:4:%d", 125 },
  { "huge-fd", CHANNEL_UNIX_STREAM, "2:99999999999:4:%d", 125 },
  { "other-version", CHANNEL_UNIX_STREAM, "1:3:4:%d", 125 },
  { "pool-bad-control", CHANNEL_UNIX_STREAM, "2:3:4:%d:pool:x", 125 },
  { "too-many-fields", CHANNEL_UNIX_STREAM, "2:3:4:%d:pool:5:6", 125 },
  { "bad-mode", CHANNEL_UNIX_STREAM, "2:3:4:%d:forkserver", 125 },
  { "closed-fd", CHANNEL_NONE, "2:3:4:%d", 125 },
  { "stdin", CHANNEL_UNIX_STREAM, "2:0:4:%d", 125 },
  { "dev-null", CHANNEL_DEV_NULL, "2:3:4:%d", 125 },
  { "pipe", CHANNEL_PIPE, "2:3:4:%d", 125 },
  { "tcp-socket", CHANNEL_TCP, "2:3:4:%d", 125 },
  { "udp-socket", CHANNEL_UDP, "2:3:4:%d", 125 },
  { "unix-datagram", CHANNEL_UNIX_DGRAM, "2:3:4:%d", 125 },
  { "unix-seqpacket", CHANNEL_UNIX_SEQPACKET, "2:3:4:%d", 125 },
  { "unix-listening", CHANNEL_UNIX_LISTENING, "2:3:4:%d", 126 },
  { "not-our-parent", CHANNEL_UNIX_STREAM, "2:3:4:1", 126 },
};

static gint
make_channel (ChannelKind kind,
              gint       *peer)
{
  gint sv[2] = { -1, -1 };
  gint fd = -1;

  *peer = -1;
  switch (kind)
    {
    case CHANNEL_NONE:
      return -1;
    case CHANNEL_DEV_NULL:
      fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
      break;
    case CHANNEL_PIPE:
      g_assert_true (g_unix_open_pipe (sv, FD_CLOEXEC, NULL));
      fd = sv[0];
      *peer = sv[1];
      break;
    case CHANNEL_TCP:
      fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      break;
    case CHANNEL_UDP:
      fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      break;
    case CHANNEL_UNIX_DGRAM:
    case CHANNEL_UNIX_SEQPACKET:
    case CHANNEL_UNIX_STREAM:
      g_assert_cmpint (socketpair (AF_UNIX,
                                   (kind == CHANNEL_UNIX_DGRAM ? SOCK_DGRAM :
                                    kind == CHANNEL_UNIX_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM) |
                                   SOCK_CLOEXEC, 0, sv), ==, 0);
      fd = sv[0];
      *peer = sv[1];
      break;
    case CHANNEL_UNIX_LISTENING:
      {
        /* Bound to an abstract name: nothing on disk. */
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        int len = g_snprintf (addr.sun_path + 1, sizeof addr.sun_path - 1,
                              "arip-test-security-%d-%u", (int) getpid (), g_random_int ());

        fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint (bind (fd, (struct sockaddr *) &addr,
                               offsetof (struct sockaddr_un, sun_path) + 1 + len), ==, 0);
        g_assert_cmpint (listen (fd, 1), ==, 0);
      }
      break;
    default:
      g_assert_not_reached ();
    }
  g_assert_cmpint (fd, >=, 0);
  return fd;
}

static void
test_refuses (gconstpointer data)
{
  const RefuseCase *c = data;
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GSubprocess) worker = NULL;
  g_autoptr(GAsyncResult) wait_result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", &error);
  g_autofree char *dir = g_dir_make_tmp ("arip-security-XXXXXX", NULL);
  g_autofree char *mark = g_build_filename (dir, "mark", NULL);
  g_autofree char *value = NULL;
  g_autofree char *err_text = NULL;
  gint peer = -1;
  gint channel, crash[2];

  g_assert_no_error (error);

  /* What arip itself would hand a worker, except for what the case
   * changes: the channel at 3, the crash pipe at 4. */
  channel = make_channel (c->channel, &peer);
  if (channel >= 0)
    g_subprocess_launcher_take_fd (launcher, channel, 3);
  g_assert_true (g_unix_open_pipe (crash, FD_CLOEXEC, NULL));
  g_subprocess_launcher_take_fd (launcher, crash[1], 4);

  {
    g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
    GString *v = g_string_new (c->value);

    g_string_replace (v, "%d", pid, 0);
    value = g_string_free (v, FALSE);
  }
  g_subprocess_launcher_setenv (launcher, "ARIP_WORKER", value, TRUE);
  g_subprocess_launcher_setenv (launcher, MARK_ENV, mark, TRUE);
  worker = g_subprocess_launcher_spawn (launcher, &error, exe, NULL);
  g_assert_no_error (error);

  /* A peer that asks, in the protocol, for the marking function: a worker
   * that served anyway would run it. */
  if (peer >= 0 && c->channel == CHANNEL_UNIX_STREAM)
    {
      g_autoptr(GVariant) call = g_variant_ref_sink (g_variant_new ("(sv)", "mark", g_variant_new ("()")));
      struct { guint32 size; guint16 kind; guint16 n_fds; } header = {
        (guint32) g_variant_get_size (call), 3 /* CALL */, 0
      };
      g_autofree guint8 *frame = g_malloc (sizeof header + header.size);

      memcpy (frame, &header, sizeof header);
      g_variant_store (call, frame + sizeof header);
      /* The peer may be gone already: ignore the outcome. */
      if (send (peer, frame, sizeof header + header.size, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        { }
    }

  g_subprocess_communicate_utf8 (worker, NULL, NULL, NULL, &err_text, &error);
  g_assert_no_error (error);
  g_subprocess_wait_async (worker, NULL, arip_test_store_result, &wait_result);
  arip_test_wait_until (wait_result != NULL);
  g_assert_true (g_subprocess_wait_finish (worker, wait_result, &error));
  g_assert_no_error (error);

  g_test_message ("ARIP_WORKER=“%s”: exit %d, %s", value,
                  g_subprocess_get_if_exited (worker) ? g_subprocess_get_exit_status (worker) : -1,
                  err_text != NULL ? g_strchomp (err_text) : "");
  g_assert_true (g_subprocess_get_if_exited (worker));
  g_assert_cmpint (g_subprocess_get_exit_status (worker), ==, c->status);
  g_assert_false (g_file_test (mark, G_FILE_TEST_EXISTS));
  if (c->status == 125)
    g_assert_nonnull (strstr (err_text, "arip worker"));

  if (peer >= 0)
    close (peer);
  close (crash[0]);
  g_rmdir (dir);
}

/* ---------------------------------------------------------------------- */
/* Descriptors                                                            */

static GArray *
open_fds (void)
{
  GArray *fds = g_array_new (FALSE, FALSE, sizeof (gint));

  for (gint fd = 0; fd < 1024; fd++)
    if (fcntl (fd, F_GETFD) >= 0)
      g_array_append_val (fds, fd);
  return fds;
}

static gboolean
fd_in (GArray *fds, gint fd)
{
  for (guint i = 0; i < fds->len; i++)
    if (g_array_index (fds, gint, i) == fd)
      return TRUE;
  return FALSE;
}

/* Every descriptor open now that was not in @before is close-on-exec. */
static guint
assert_new_fds_cloexec (GArray *before)
{
  g_autoptr(GArray) now = open_fds ();
  guint n_new = 0;

  for (guint i = 0; i < now->len; i++)
    {
      gint fd = g_array_index (now, gint, i);
      gint flags;

      if (fd_in (before, fd))
        continue;
      n_new++;
      flags = fcntl (fd, F_GETFD);
      if (!(flags & FD_CLOEXEC))
        {
          g_autofree char *list = arip_test_list_fds ();

          g_test_message ("descriptors:\n%s", list);
          g_error ("descriptor %d is not close-on-exec", fd);
        }
    }
  return n_new;
}

static void
test_parent_fds_cloexec (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GArray) before = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GAsyncResult) pool_result = NULL;
  g_autoptr(GAsyncResult) close_result = NULL;
  g_autoptr(GCancellable) pool_cancellable = g_cancellable_new ();
  guint n_new;

  /* What GLib opens once for good is open before we look. */
  result = arip_test_run ("echo", NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, g_variant_unref);
  arip_test_iterate_for (50);
  before = open_fds ();

  /* A one-shot process with every pipe, while it runs. */
  p = arip_process_new (launcher, "wait", NULL);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  n_new = assert_new_fds_cloexec (before);
  /* The channel, the crash pipe, and three standard stream pipes. */
  g_assert_cmpuint (n_new, >=, 5);

  /* A pool worker, busy. */
  pool = arip_pool_new (NULL, 1);
  arip_pool_run_async (pool, "wait", NULL, pool_cancellable, arip_test_store_result, &pool_result);
  arip_test_wait_until (arip_pool_get_n_workers (pool) == 1);
  arip_test_iterate_for (50);
  n_new = assert_new_fds_cloexec (before);
  g_assert_cmpuint (n_new, >=, 7);

  arip_process_interrupt (p);
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);

  g_cancellable_cancel (pool_cancellable);
  arip_test_wait_until (pool_result != NULL);
  g_clear_pointer (&result, g_variant_unref);
  result = arip_pool_run_finish (pool, pool_result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  arip_pool_close_async (pool, NULL, arip_test_store_result, &close_result);
  arip_test_wait_until (close_result != NULL);
}

static void
test_grandchild (void)
{
  g_autofree char *dir = g_dir_make_tmp ("arip-security-XXXXXX", NULL);
  g_autofree char *secret_path = g_build_filename (dir, "secret", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  const char *own, *grandchild;
  gboolean worker_env;
  g_auto(GStrv) lines = NULL;
  gint secret;

  /* A descriptor the parent left inheritable, by mistake or for a child of
   * its own: no worker may get it. */
  g_assert_true (g_file_set_contents (secret_path, "secret", -1, NULL));
  secret = open (secret_path, O_RDONLY);   /* no O_CLOEXEC, on purpose */
  g_assert_cmpint (secret, >=, 0);

  result = arip_test_run ("report", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (result, "(&sb&s)", &own, &worker_env, &grandchild);
  g_test_message ("worker's descriptors:\n%s", own);
  g_test_message ("its child's:\n%s", grandchild);

  /* The worker has its channel and crash pipe, not the parent's secret,
   * and ARIP_WORKER is gone from its environment. */
  g_assert_null (strstr (own, secret_path));
  g_assert_false (worker_env);

  /* Its child has the standard streams and nothing else: no channel (a
   * socket), no crash pipe, no secret, no ARIP_WORKER. */
  lines = g_strsplit (grandchild, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), >=, 4);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      if (g_str_has_prefix (lines[i], "ARIP_WORKER="))
        {
          g_assert_cmpstr (lines[i], ==, "ARIP_WORKER=(unset)");
          continue;
        }
      g_assert_true (g_str_has_prefix (lines[i], "0 -> ") ||
                     g_str_has_prefix (lines[i], "1 -> ") ||
                     g_str_has_prefix (lines[i], "2 -> "));
    }
  g_assert_null (strstr (grandchild, secret_path));
  g_assert_null (strstr (grandchild, "socket:"));
  g_assert_nonnull (strstr (grandchild, "ARIP_WORKER=(unset)"));

  close (secret);
  g_unlink (secret_path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  if (g_getenv (REPORT_ENV) != NULL)
    report_inherited ();

  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("mark", fn_mark, NULL, NULL);
  arip_register_function ("wait", fn_wait, NULL, NULL);
  arip_register_function ("report", fn_report, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Security/only-registered", test_only_registered);
  for (guint i = 0; i < G_N_ELEMENTS (refuse_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/Arip/Security/worker-refuses/%s", refuse_cases[i].name);
      g_test_add_data_func (path, &refuse_cases[i], test_refuses);
    }
  g_test_add_func ("/Arip/Security/parent-fds-cloexec", test_parent_fds_cloexec);
  g_test_add_func ("/Arip/Security/no-leak-to-grandchild", test_grandchild);

  return g_test_run ();
}
