/* test-hardening.c: what an adversarial tester did to the parent, and
 * what must happen instead (issue 8, one test per item)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Some workers here start grandchildren that misbehave on purpose. A
 * grandchild made with fork() finds the channel and the crash pipe turned
 * into /dev/null; one made with a raw clone() system call (which runs no
 * fork handler) really holds them, which is what a determined function can
 * always arrange. Every grandchild is in its worker's process group and
 * dies with it.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <arip.h>
#include "arip-channel-private.h"

#include "arip-test-util.h"

/* In a worker started with the default launcher, the channel is fd 3 and
 * the crash pipe fd 4. */
#define WORKER_CHANNEL_FD 3
#define WORKER_CRASH_FD   4

#define FAKE_ENV "ARIP_TEST_HARDENING_FAKE"

static gboolean
under_valgrind (void)
{
  return g_getenv ("ARIP_TEST_UNDER_VALGRIND") != NULL;
}

static gboolean
under_asan (void)
{
#if defined(__SANITIZE_ADDRESS__)
  return TRUE;
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
  return TRUE;
# else
  return FALSE;
# endif
#else
  return FALSE;
#endif
}

/* A child of a worker that runs no fork handler: it keeps the real
 * channel and crash pipe, as a function that means to can arrange. */
static pid_t
raw_fork (void)
{
  return (pid_t) syscall (SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

static void
write_all (int fd, const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          /* The worker's end of the channel does not block. */
          struct pollfd pfd = { .fd = fd, .events = POLLOUT };

          poll (&pfd, 1, -1);
          continue;
        }
      if (n <= 0)
        _exit (0);
      p += n;
      len -= (gsize) n;
    }
}

static gsize
vm_rss_kb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  line = strstr (status, "VmRSS:");
  return line != NULL ? (gsize) g_ascii_strtoull (line + 6, NULL, 10) : 0;
}

static gsize
vm_size_kb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  line = strstr (status, "VmSize:");
  return line != NULL ? (gsize) g_ascii_strtoull (line + 7, NULL, 10) : 0;
}

static void
touch (const char *path)
{
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents (path, "", 0, &error))
    g_error ("could not create %s: %s", path, error->message);
}

static char *
tmp_path (const char *name)
{
  static char *dir;

  if (dir == NULL)
    dir = g_dir_make_tmp ("arip-hardening-XXXXXX", NULL);
  return g_build_filename (dir, name, NULL);
}

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

static void
fn_whoami (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) getpid ()));
}

/* (s): creates the file, then answers. */
static void
fn_touch (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *path;

  g_variant_get (args, "(&s)", &path);
  touch (path);
  arip_call_return_value (call, NULL);
}

/* (s) or (ss): creates the second file if there is one, waits until the
 * first exists, then answers its pid. */
static void
fn_hold (AripCall *call, GVariant *args, gpointer user_data)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  const char *gate, *started = NULL;

  if (g_variant_is_of_type (args, G_VARIANT_TYPE ("(ss)")))
    {
      g_variant_get (args, "(&s&s)", &gate, &started);
      touch (started);
    }
  else
    g_variant_get (args, "(&s)", &gate);
  while (!g_file_test (gate, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (2000);
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) getpid ()));
}

/* (b): a grandchild writes valid message frames on the channel for a
 * minute (TRUE: one that really holds it); the worker answers at once. */
static void
fn_grandchild_floods (AripCall *call, GVariant *args, gpointer user_data)
{
  gboolean raw;
  pid_t pid;

  g_variant_get (args, "(b)", &raw);
  pid = raw ? raw_fork () : fork ();
  if (pid == 0)
    {
      g_autoptr(GBytes) frame = arip_frame_encode_value (ARIP_FRAME_MESSAGE,
                                                         g_variant_new_string ("from the grandchild"), 0);
      gsize len;
      const guint8 *data = g_bytes_get_data (frame, &len);
      gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

      while (g_get_monotonic_time () < end)
        write_all (WORKER_CHANNEL_FD, data, len);
      _exit (0);
    }
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) pid));
}

/* A grandchild that leaves the worker's group (out of reach of a kill),
 * says its pid on the channel and floods it with messages for 20 s, while
 * the worker hangs in the call. */
static void
fn_escaped_grandchild_floods (AripCall *call, GVariant *args, gpointer user_data)
{
  pid_t pid = raw_fork ();

  if (pid == 0)
    {
      g_autoptr(GBytes) hello = NULL;
      g_autoptr(GBytes) frame = arip_frame_encode_value (ARIP_FRAME_MESSAGE,
                                                         g_variant_new_string ("from the grandchild"), 0);
      gsize len;
      const guint8 *data;
      gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

      setsid ();
      hello = arip_frame_encode_value (ARIP_FRAME_MESSAGE, g_variant_new_int32 (getpid ()), 0);
      data = g_bytes_get_data (hello, &len);
      write_all (WORKER_CHANNEL_FD, data, len);
      data = g_bytes_get_data (frame, &len);
      while (g_get_monotonic_time () < end)
        write_all (WORKER_CHANNEL_FD, data, len);
      _exit (0);
    }
  for (;;)
    g_usleep (G_USEC_PER_SEC);
}

/* A grandchild that sleeps (in the worker's group), whose pid the parent
 * hears as a message; then the worker hangs until it is killed. */
static void
fn_grandchild_sleeps (AripCall *call, GVariant *args, gpointer user_data)
{
  pid_t pid = fork ();

  if (pid == 0)
    {
      for (int i = 0; i < 600; i++)
        g_usleep (100 * 1000);
      _exit (0);
    }
  arip_call_send_message (call, g_variant_new_int32 (pid));
  for (;;)
    g_usleep (100 * 1000);
}

/* (t): returns that many bytes, after raising its own memory limit back
 * (the parent's is inherited). */
static void
fn_big_result (AripCall *call, GVariant *args, gpointer user_data)
{
  struct rlimit limit;
  guint64 size;
  guint8 *data;

  g_variant_get (args, "(t)", &size);
  if (getrlimit (RLIMIT_AS, &limit) == 0)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_AS, &limit);
    }
  data = g_malloc (size);
  memset (data, 0x5a, size);
  arip_call_return_value (call, g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, data, size,
                                                         TRUE, g_free, data));
}

/* Answers its pid, then crashes (from a thread, while the pool worker
 * waits for its next call). */
static gpointer
crash_soon (gpointer data)
{
  g_usleep (50 * 1000);
  raise (SIGSEGV);
  return NULL;
}

static void
fn_answer_then_crash (AripCall *call, GVariant *args, gpointer user_data)
{
  g_thread_unref (g_thread_new ("crash-soon", crash_soon, NULL));
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) getpid ()));
}

/* (s): fails with an error of that domain. */
static void
fn_error_domain (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *domain;

  g_variant_get (args, "(&s)", &domain);
  arip_call_return_error_literal (call, g_quark_from_string (domain), 7, "made up");
}

/* (u): an "aay" of that many one-byte elements, laid out by hand: the
 * elements, then one 4-byte framing offset each. */
static void
fn_deep_aay (AripCall *call, GVariant *args, gpointer user_data)
{
  guint32 n;
  gsize size;
  guint8 *data;
  guint32 *offsets;

  g_variant_get (args, "(u)", &n);
  size = (gsize) n * 5;
  data = g_malloc (size);
  memset (data, 'x', n);
  offsets = (guint32 *) (data + n);
  for (guint32 i = 0; i < n; i++)
    offsets[i] = GUINT32_TO_LE (i + 1);
  arip_call_return_value (call, g_variant_new_from_data (G_VARIANT_TYPE ("aay"), data, size,
                                                         FALSE, g_free, data));
}

/* (u): sends that many small messages, then answers. */
static void
fn_message_flood (AripCall *call, GVariant *args, gpointer user_data)
{
  guint32 n;

  g_variant_get (args, "(u)", &n);
  for (guint32 i = 0; i < n; i++)
    arip_call_send_message (call, g_variant_new_uint32 (i));
  arip_call_return_value (call, NULL);
}

/* (u): that many message frames, written straight on the channel in
 * writes of 1 MiB as a hostile child could, then an answer. */
static void
fn_batched_flood (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GBytes) frame = arip_frame_encode_value (ARIP_FRAME_MESSAGE, g_variant_new_uint32 (7), 0);
  const gsize block_size = 1024 * 1024;
  g_autofree guint8 *block = g_malloc (block_size);
  gsize frame_len, per_block;
  const guint8 *frame_data = g_bytes_get_data (frame, &frame_len);
  guint32 n;

  g_variant_get (args, "(u)", &n);
  per_block = block_size / frame_len;
  for (gsize i = 0; i < per_block; i++)
    memcpy (block + i * frame_len, frame_data, frame_len);
  for (guint32 sent = 0; sent < n; sent += per_block)
    write_all (WORKER_CHANNEL_FD, block, MIN (per_block, n - sent) * frame_len);
  arip_call_return_value (call, NULL);
}

/* (u): busy for that many milliseconds, reading nothing from the parent. */
static void
fn_busy (AripCall *call, GVariant *args, gpointer user_data)
{
  guint32 ms;
  gint64 end;

  g_variant_get (args, "(u)", &ms);
  end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end)
    g_usleep (1000);
  arip_call_return_value (call, NULL);
}

/* (s): the value of that variable, or "" if unset. */
static void
fn_getenv (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *name, *value;

  g_variant_get (args, "(&s)", &name);
  value = g_getenv (name);
  arip_call_return_value (call, g_variant_new ("(s)", value != NULL ? value : ""));
}

/* (b): a grandchild fills the crash pipe with "A" for two seconds (TRUE:
 * one that really holds it); the worker crashes after half a second. */
static void
fn_crash_drowned (AripCall *call, GVariant *args, gpointer user_data)
{
  gboolean raw;
  pid_t pid;

  g_variant_get (args, "(b)", &raw);
  pid = raw ? raw_fork () : fork ();
  if (pid == 0)
    {
      char junk[4096];
      gint64 end = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;

      memset (junk, 'A', sizeof junk);
      while (g_get_monotonic_time () < end)
        if (write (WORKER_CRASH_FD, junk, sizeof junk) < 0)
          g_usleep (100);
      _exit (0);
    }
  g_usleep (500 * 1000);
  raise (SIGSEGV);
}

/* ---------------------------------------------------------------------- */
/* A fake worker: descriptors with half a frame                           */

G_GNUC_NORETURN static void
fake_worker (const char *mode)
{
  const char *env = g_getenv ("ARIP_WORKER");
  unsigned int version;
  int chan, crash, parent;
  g_autoptr(GBytes) hello = NULL;
  struct { guint32 size; guint16 kind; guint16 n_fds; } header;
  g_autofree guint8 *call = NULL;
  gint fds[ARIP_FRAME_MAX_FDS];
  g_autoptr(GBytes) message = NULL;
  gsize len;
  const guint8 *data;

  if (env == NULL || sscanf (env, "%u:%d:%d:%d", &version, &chan, &crash, &parent) != 4)
    _exit (104);
  fcntl (chan, F_SETFL, fcntl (chan, F_GETFL) & ~O_NONBLOCK);
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  hello = arip_frame_encode_hello (version, getpid ());
  data = g_bytes_get_data (hello, &len);
  write_all (chan, data, len);
  if (read (chan, &header, sizeof header) != sizeof header)
    _exit (105);
  call = g_malloc (header.size);
  for (gsize got = 0; got < header.size; )
    {
      ssize_t n = read (chan, call + got, header.size - got);
      if (n <= 0)
        _exit (106);
      got += (gsize) n;
    }
  for (AripState s = ARIP_STATE_BOOTING; s <= ARIP_STATE_EXECUTING; s++)
    {
      g_autoptr(GBytes) state = arip_frame_encode_u32 (ARIP_FRAME_STATE, s);
      data = g_bytes_get_data (state, &len);
      write_all (chan, data, len);
    }

  /* Half a message frame that announces 64 descriptors and brings them:
   * the parent has no use for them and must hold none. */
  g_assert_cmpstr (mode, ==, "partial-fds");
  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    fds[i] = open ("/dev/null", O_RDONLY);
  message = arip_frame_encode_value (ARIP_FRAME_MESSAGE, g_variant_new_string ("with descriptors"),
                                     G_N_ELEMENTS (fds));
  data = g_bytes_get_data (message, &len);
  {
    union {
      char buf[CMSG_SPACE (sizeof fds)];
      struct cmsghdr align;
    } control;
    struct iovec iov = { (void *) data, len / 2 };
    struct msghdr msg = { 0 };
    struct cmsghdr *c;

    memset (&control, 0, sizeof control);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    c = CMSG_FIRSTHDR (&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN (sizeof fds);
    memcpy (CMSG_DATA (c), fds, sizeof fds);
    if (sendmsg (chan, &msg, 0) < 0)
      _exit (107);
  }
  for (int i = 0; i < 300; i++)
    g_usleep (100 * 1000);
  _exit (108);
}

/* ---------------------------------------------------------------------- */
/* 1. Dropping a pool with a call in flight                               */

static void
on_run_store_value (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GVariant **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = arip_pool_run_finish (ARIP_POOL (source), result, &error);
  g_assert_no_error (error);
}

static void
test_unref_pool_in_flight (void)
{
  g_autoptr(GVariant) value = NULL;
  AripPool *pool = arip_pool_new (NULL, 1);

  /* Fire and forget: the last reference goes at once. */
  arip_pool_run_async (pool, "echo", g_variant_new ("(s)", "still here"), NULL,
                       on_run_store_value, &value);
  g_object_unref (pool);
  arip_test_wait_until (value != NULL);
  arip_test_assert_variant (value, g_variant_new ("(s)", "still here"));
  arip_test_wait_until (arip_get_running_processes () == 0);
}

static void
on_run_store_error (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError **out = user_data;
  g_autoptr(GVariant) value = arip_pool_run_finish (ARIP_POOL (source), result, out);

  g_assert_null (value);
  g_assert_nonnull (*out);
}

static void
test_dispose_busy_pool (void)
{
  g_autofree char *gate = tmp_path ("dispose-gate");
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(GError) running = NULL;
  g_autoptr(GError) queued = NULL;
  g_autoptr(GError) third = NULL;

  arip_pool_run_async (pool, "hold", g_variant_new ("(s)", gate), NULL, on_run_store_error, &running);
  arip_pool_run_async (pool, "hold", g_variant_new ("(s)", gate), NULL, on_run_store_error, &queued);
  arip_pool_run_async (pool, "hold", g_variant_new ("(s)", gate), NULL, on_run_store_error, &third);
  arip_test_wait_until (arip_get_running_processes () == 2);
  arip_test_iterate_for (200);

  g_object_run_dispose (G_OBJECT (pool));
  arip_test_wait_until (running != NULL && queued != NULL && third != NULL);
  g_assert_error (running, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_error (queued, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_error (third, G_IO_ERROR, G_IO_ERROR_CLOSED);
  arip_test_wait_until (arip_get_running_processes () == 0);
}

/* ---------------------------------------------------------------------- */
/* 2. A grandchild on the channel                                         */

typedef struct {
  guint   messages;
  gint64  last_message;
  gint32  grandchild;
} Flood;

static void
on_flood_message (AripProcess *process, GVariant *message, gpointer user_data)
{
  Flood *flood = user_data;

  /* A slow handler: 2 µs, as the tester's. */
  g_usleep (2);
  if (g_variant_is_of_type (message, G_VARIANT_TYPE_INT32))
    flood->grandchild = g_variant_get_int32 (message);
  flood->messages++;
  flood->last_message = g_get_monotonic_time ();
}

static void
test_grandchild_floods (gconstpointer data)
{
  gboolean raw = GPOINTER_TO_INT (data);
  g_autoptr(AripProcess) p = arip_process_new (NULL, "grandchild_floods", g_variant_new ("(b)", raw));
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  Flood flood = { 0 };
  gint32 grandchild;
  gint64 start = g_get_monotonic_time ();

  g_signal_connect (p, "message", G_CALLBACK (on_flood_message), &flood);
  value = arip_test_run_process (p, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i)", &grandchild);
  g_test_message ("%s grandchild %d: %u messages handed out, outcome after %" G_GINT64_FORMAT " ms",
                  raw ? "raw" : "forked", grandchild, flood.messages,
                  (g_get_monotonic_time () - start) / 1000);

  /* The outcome came although the grandchild writes on for a minute, and
   * nothing is handed out after it. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 15 * G_USEC_PER_SEC * arip_test_timeout_multiplier ());
  {
    guint before = flood.messages;

    arip_test_iterate_for (300);
    g_assert_cmpuint (flood.messages, ==, before);
  }
  /* A forked grandchild had only /dev/null to write to. */
  if (!raw)
    g_assert_cmpuint (flood.messages, ==, 0);

  /* The grandchild went with its worker's group. */
  arip_test_wait_until (arip_test_pid_is_dead (grandchild));
}

static void
on_grandchild_pid (AripProcess *process, GVariant *message, gpointer user_data)
{
  *(gint32 *) user_data = g_variant_get_int32 (message);
}

static void
test_kill_reaches_grandchildren (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "grandchild_sleeps", NULL);
  g_autoptr(GError) error = NULL;
  gint32 grandchild = 0;
  gint64 start;

  g_signal_connect (p, "message", G_CALLBACK (on_grandchild_pid), &grandchild);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  arip_test_wait_until (grandchild > 0);
  g_assert_false (arip_test_pid_is_dead (grandchild));

  start = g_get_monotonic_time ();
  arip_process_kill (p);
  /* The emergency brake does not wait. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC * arip_test_timeout_multiplier ());
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  g_assert_true (g_error_matches (arip_process_get_error (p), ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED));
  arip_test_wait_until (arip_test_pid_is_dead (grandchild));
}

static void
test_kill_while_grandchild_floods (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  Flood flood = { 0 };
  gint64 start;
  guint before;

  /* The worker hangs in its call while a grandchild that left its group
   * (no kill reaches it) keeps the channel full: the kill must end the
   * process at once all the same. */
  p = arip_process_new (launcher, "escaped_grandchild_floods", NULL);
  g_signal_connect (p, "message", G_CALLBACK (on_flood_message), &flood);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  arip_test_wait_until (flood.messages > 100 || arip_process_get_state (p) == ARIP_STATE_FINISHED);
  g_assert_cmpint (flood.grandchild, >, 0);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_EXECUTING);

  start = g_get_monotonic_time ();
  arip_process_kill (p);
  g_test_message ("kill returned after %" G_GINT64_FORMAT " µs, %u messages handed out",
                  g_get_monotonic_time () - start, flood.messages);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC * arip_test_timeout_multiplier ());
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  value = arip_test_wait (p, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);

  /* Nothing more is handed out. (The grandchild ends when it finds the
   * channel closed.) */
  before = flood.messages;
  arip_test_iterate_for (300);
  g_assert_cmpuint (flood.messages, ==, before);

  kill (flood.grandchild, SIGKILL);
  arip_test_wait_until (arip_test_pid_is_dead (flood.grandchild));
}

/* ---------------------------------------------------------------------- */
/* 3. A large result under a memory limit                                 */

static void
test_big_result_memory_limit (void)
{
  if (under_asan () || under_valgrind ())
    {
      g_test_skip ("a memory limit does not mix with the sanitizers' or valgrind's own memory");
      return;
    }

  if (g_test_subprocess ())
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;
      struct rlimit limit;

      /* The parent may use 200 MiB more than it does now; the result is
       * 256 MiB. */
      getrlimit (RLIMIT_AS, &limit);
      limit.rlim_cur = (rlim_t) (vm_size_kb () + 200 * 1024) * 1024;
      g_assert_cmpint (setrlimit (RLIMIT_AS, &limit), ==, 0);

      value = arip_test_run ("big_result", g_variant_new ("(t)", (guint64) 256 << 20), NULL, &error);
      g_assert_null (value);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_NO_MEMORY);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, "memory"));

      /* And the next call works. */
      g_clear_error (&error);
      value = arip_test_run ("whoami", NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (value);
      return;
    }

  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* ---------------------------------------------------------------------- */
/* 4. Workers started from threads that end                               */

typedef struct {
  AripPool *pool;
  guint     calls;
  guint     failures;
  GPid      pids[64];
  guint     n_pids;
} ThreadCalls;

static gpointer
call_from_thread (gpointer data)
{
  ThreadCalls *t = data;

  for (guint i = 0; i < t->calls; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_pool_run_sync (t->pool, "whoami", NULL, NULL, &error);

      if (value == NULL)
        {
          g_printerr ("call from a thread failed: %s\n", error->message);
          t->failures++;
          continue;
        }
      if (t->n_pids < G_N_ELEMENTS (t->pids))
        {
          gint32 pid;
          g_variant_get (value, "(i)", &pid);
          t->pids[t->n_pids++] = pid;
        }
    }
  return NULL;
}

static void
test_threads_that_end (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  ThreadCalls calls[4];
  GThread *threads[4];

  /* Nobody runs the pool's context: the threads do, while they call. */
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      calls[i] = (ThreadCalls) { pool, 25, 0, { 0 }, 0 };
      threads[i] = g_thread_new ("caller", call_from_thread, &calls[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_cmpuint (calls[i].failures, ==, 0);

  /* The threads are gone; the workers they started are not. */
  arip_test_iterate_for (300);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    for (guint j = 0; j < calls[i].n_pids; j++)
      g_assert_false (arip_test_pid_is_dead (calls[i].pids[j]));
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);

      g_assert_no_error (error);
    }
}

/* ---------------------------------------------------------------------- */
/* 5. A dead idle worker                                                  */

static gint32
pool_whoami (AripPool *pool)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  gint32 pid;

  g_assert_no_error (error);
  g_variant_get (value, "(i)", &pid);
  return pid;
}

static void
test_dead_idle_worker (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  gint32 warm = pool_whoami (pool);

  /* As the OOM killer would, while the worker is idle; then calls come
   * before the pool had a chance to notice. */
  g_assert_cmpint (kill (warm, SIGKILL), ==, 0);
  while (!arip_test_pid_is_dead (warm))
    g_usleep (1000);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (pool_whoami (pool), !=, warm);
}

static void
test_crash_after_answer (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);

  /* A command-line loop: each call answers, then its worker crashes. The
   * next call never ran on the dying worker: it must not fail. */
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_pool_run_sync (pool, "answer_then_crash", NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (value);
      /* Give the worker the time to crash while idle. */
      g_usleep (100 * 1000);
    }
}

/* ---------------------------------------------------------------------- */
/* 6. A cancelled queued call never starts                                */

typedef struct {
  GCancellable *to_cancel;
  gboolean      done;
} CancelNext;

static void
on_first_done_cancel_next (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CancelNext *next = user_data;

  g_cancellable_cancel (next->to_cancel);
  next->done = TRUE;
}

static void
test_cancelled_queued_pool_call (void)
{
  g_autofree char *gate = tmp_path ("pool-cancel-gate");
  g_autofree char *marker = tmp_path ("pool-cancel-marker");
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  CancelNext next = { cancellable, FALSE };

  arip_pool_run_async (pool, "hold", g_variant_new ("(s)", gate), NULL, on_first_done_cancel_next, &next);
  arip_pool_run_async (pool, "touch", g_variant_new ("(s)", marker), cancellable,
                       arip_test_store_result, &second);
  arip_test_iterate_for (200);
  touch (gate);
  arip_test_wait_until (next.done && second != NULL);

  value = arip_pool_run_finish (pool, second, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  arip_test_iterate_for (300);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
}

static void
on_launcher_done_cancel_next (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CancelNext *next = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_launcher_run_finish (ARIP_LAUNCHER (source), result, &error);

  g_assert_no_error (error);
  g_cancellable_cancel (next->to_cancel);
  next->done = TRUE;
}

static void
test_cancelled_queued_oneshot (void)
{
  const guint saved = arip_get_max_processes ();
  g_autofree char *gate = tmp_path ("oneshot-cancel-gate");
  g_autofree char *marker = tmp_path ("oneshot-cancel-marker");
  g_autofree char *starts = tmp_path ("oneshot-cancel-starts");
  g_autofree char *program = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *log = NULL;
  const char *argv[] = { "/bin/sh", "-c", "echo started >> \"$0\" && exec \"$@\"", starts, program, NULL };
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GCancellable) while_queued = g_cancellable_new ();
  g_autoptr(GCancellable) from_callback = g_cancellable_new ();
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GAsyncResult) third = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error3 = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) value3 = NULL;
  CancelNext next = { from_callback, FALSE };

  /* Every worker this launcher starts writes a line first. One slot: the
   * first call holds it; the second is cancelled while it waits, the
   * third from the first's callback. */
  g_assert_nonnull (program);
  arip_launcher_set_worker_argv (launcher, argv);
  arip_set_max_processes (1);
  arip_launcher_run_async (launcher, "hold", g_variant_new ("(s)", gate), NULL,
                           on_launcher_done_cancel_next, &next);
  arip_launcher_run_async (launcher, "touch", g_variant_new ("(s)", marker), while_queued,
                           arip_test_store_result, &second);
  arip_launcher_run_async (launcher, "touch", g_variant_new ("(s)", marker), from_callback,
                           arip_test_store_result, &third);
  arip_test_iterate_for (200);
  g_cancellable_cancel (while_queued);
  /* A waiting call ends as soon as it is cancelled, as GIO's do. */
  arip_test_wait_until (second != NULL);
  g_assert_false (next.done);
  touch (gate);
  arip_test_wait_until (next.done && third != NULL);

  value = arip_launcher_run_finish (launcher, second, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  value3 = arip_launcher_run_finish (launcher, third, &error3);
  g_assert_null (value3);
  g_assert_error (error3, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  arip_test_iterate_for (300);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
  arip_test_wait_until (arip_get_running_processes () == 0);
  arip_set_max_processes (saved);

  /* Neither cancelled call's worker was ever started. */
  g_assert_true (g_file_get_contents (starts, &log, NULL, NULL));
  g_assert_cmpstr (log, ==, "started\n");
}

/* ---------------------------------------------------------------------- */
/* 7. Cancelled before the callback: cancelled                            */

static void
test_cancel_before_callback (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  guint cancelled = 0;

  pool_whoami (pool);
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;

      arip_pool_run_async (pool, "whoami", NULL, cancellable, arip_test_store_result, &result);
      /* Let the call go out, and its answer come back into the socket,
       * without reading it; then cancel, then read. */
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (50 * 1000);
      g_cancellable_cancel (cancellable);
      arip_test_wait_until (result != NULL);

      value = arip_pool_run_finish (pool, result, &error);
      g_assert_null (value);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      cancelled++;
    }
  g_assert_cmpuint (cancelled, ==, 20);
  /* The worker answered: it is still the same, warm one. */
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
}

/* ---------------------------------------------------------------------- */
/* 8. Error domains are not interned for ever                             */

static void
test_error_domains_bounded (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  guint known = 0, unknown = 0;

  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *domain = g_strdup_printf ("arip-test-made-up-domain-%u", i);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_pool_run_sync (pool, "error_domain", g_variant_new ("(s)", domain),
                                                      NULL, &error);

      g_assert_null (value);
      g_assert_nonnull (error);
      if (error->domain == ARIP_ERROR)
        {
          g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_DOMAIN);
          g_assert_nonnull (strstr (error->message, domain));
          g_assert_nonnull (strstr (error->message, "made up"));
          unknown++;
        }
      else
        {
          g_assert_cmpstr (g_quark_to_string (error->domain), ==, domain);
          g_assert_cmpint (error->code, ==, 7);
          known++;
        }
    }
  g_test_message ("%u domains created, %u refused", known, unknown);
  g_assert_cmpuint (known, <=, 64);
  g_assert_cmpuint (unknown, >=, 136);
  g_assert_cmpuint (g_quark_try_string ("arip-test-made-up-domain-199"), ==, 0);

  /* A domain this process knows keeps working. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) value = arip_pool_run_sync (pool, "error_domain",
                                                    g_variant_new ("(s)", g_quark_to_string (G_IO_ERROR)),
                                                    NULL, &error);
    g_assert_error (error, G_IO_ERROR, 7);
  }
}

/* ---------------------------------------------------------------------- */
/* 9. The main loop stays free                                            */

typedef struct {
  gint64 last;
  gint64 max_gap;
  guint  ticks;
} Ticker;

static gboolean
on_tick (gpointer user_data)
{
  Ticker *t = user_data;
  gint64 now = g_get_monotonic_time ();

  if (t->last > 0)
    t->max_gap = MAX (t->max_gap, now - t->last);
  t->last = now;
  t->ticks++;
  return G_SOURCE_CONTINUE;
}

static void
test_deep_value_off_main_loop (void)
{
  /* 40 M one-byte elements: 200 MB, seconds of checking in GLib. */
  guint32 n = under_valgrind () ? 2 * 1000 * 1000 : 40 * 1000 * 1000;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  Ticker t = { 0 };
  guint id;

  arip_run_in_process_async ("deep_aay", g_variant_new ("(u)", n), NULL, arip_test_store_result, &result);
  id = g_timeout_add (10, on_tick, &t);
  arip_test_wait_until (result != NULL);
  g_source_remove (id);

  value = arip_run_in_process_finish (result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (value), ==, n);
  g_test_message ("10 ms timer: %u ticks, longest gap %" G_GINT64_FORMAT " ms", t.ticks, t.max_gap / 1000);
  g_assert_cmpint (t.max_gap, <, 500 * 1000 * arip_test_timeout_multiplier ());
}

/* A handler that takes 20 µs, busy (g_usleep (20) sleeps ~100 µs here). */
static void
on_slow_message (AripProcess *process, GVariant *message, gpointer user_data)
{
  gint64 end = g_get_monotonic_time () + 20;

  while (g_get_monotonic_time () < end)
    ;
}

/* The child sends far faster than the parent handles, for ~4 s. */
static void
test_flood_does_not_starve (gconstpointer data)
{
  const char *function = data;
  g_autoptr(AripProcess) p = arip_process_new (NULL, function,
                                               g_variant_new ("(u)", under_valgrind () ? 20000 : 200000));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  Ticker t = { 0 };
  guint id;

  g_signal_connect (p, "message", G_CALLBACK (on_slow_message), NULL);
  id = g_timeout_add (10, on_tick, &t);
  value = arip_test_run_process (p, &error);
  g_source_remove (id);
  g_assert_no_error (error);
  g_test_message ("10 ms timer: %u ticks, longest gap %" G_GINT64_FORMAT " ms", t.ticks, t.max_gap / 1000);
  g_assert_cmpint (t.max_gap, <, 300 * 1000 * arip_test_timeout_multiplier ());
}

/* ---------------------------------------------------------------------- */
/* 10. Descriptors a child sends are never held                           */

static void
test_descriptors_not_pinned (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  guint before, most;

  arip_test_use_fake_worker (launcher, FAKE_ENV, "partial-fds");
  p = arip_process_new (launcher, "whoami", NULL);
  before = arip_test_count_fds ();
  most = before;
  arip_process_start_async (p, NULL, NULL, NULL);
  arip_process_wait_async (p, NULL, arip_test_store_result, &result);
  while (result == NULL)
    {
      g_main_context_iteration (NULL, FALSE);
      most = MAX (most, arip_test_count_fds ());
      g_usleep (1000);
    }

  value = arip_process_wait_finish (p, result, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_test_message ("%s; descriptors: %u before, at most %u", error->message, before, most);
  /* The channel, the crash pipe and the pidfd: never the 64 it sent. */
  g_assert_cmpuint (most, <=, before + 4);
}

/* ---------------------------------------------------------------------- */
/* 11. Slots held by idle pool workers, and a blocking call that could    */
/*     never get one                                                      */

static void
test_idle_workers_yield (void)
{
  const guint saved = arip_get_max_processes ();
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GAsyncResult *warm[2] = { NULL, NULL };
  gint32 pids[2];
  g_autofree char *gate = tmp_path ("yield-gate");
  g_autofree char *started0 = tmp_path ("yield-started-0");
  g_autofree char *started1 = tmp_path ("yield-started-1");

  arip_set_max_processes (2);
  pool = arip_pool_new (NULL, 2);
  /* Two warm workers, idle now, holding both slots. */
  arip_pool_run_async (pool, "hold", g_variant_new ("(ss)", gate, started0), NULL,
                       arip_test_store_result, &warm[0]);
  arip_pool_run_async (pool, "hold", g_variant_new ("(ss)", gate, started1), NULL,
                       arip_test_store_result, &warm[1]);
  arip_test_wait_until (g_file_test (started0, G_FILE_TEST_EXISTS) &&
                        g_file_test (started1, G_FILE_TEST_EXISTS));
  touch (gate);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GVariant) v = NULL;

      arip_test_wait_until (warm[i] != NULL);
      v = arip_pool_run_finish (pool, warm[i], &error);
      g_assert_no_error (error);
      g_variant_get (v, "(i)", &pids[i]);
      g_object_unref (warm[i]);
    }
  g_assert_cmpint (pids[0], !=, pids[1]);
  g_assert_cmpuint (arip_get_running_processes (), ==, 2);

  /* A one-shot gets a slot from an idle worker at once, not after the
   * pool's idle timeout of 300 s. */
  arip_run_in_process_async ("whoami", NULL, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  value = arip_run_in_process_finish (result, &error);
  g_assert_no_error (error);
  g_assert_true (arip_test_pid_is_dead (pids[0]) || arip_test_pid_is_dead (pids[1]) ||
                 arip_pool_get_n_workers (pool) < 2);

  /* A sync one-shot from a thread that does not run the pool's context
   * gets one too. */
  g_clear_pointer (&value, g_variant_unref);
  pool_whoami (pool);
  pool_whoami (pool);
  value = arip_run_in_process_sync ("whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (value);

  g_clear_object (&pool);
  arip_test_wait_until (arip_get_running_processes () == 0);
  arip_set_max_processes (saved);
}

typedef struct {
  GError  *error;
  gboolean ran;
} SyncInside;

static gboolean
sync_call_inside_dispatch (gpointer user_data)
{
  SyncInside *inside = user_data;
  g_autoptr(GVariant) value = NULL;

  /* This thread runs the default context right now: the process that
   * holds the only slot belongs to it and cannot end while we block. */
  value = arip_run_in_process_sync ("whoami", NULL, NULL, &inside->error);
  g_assert_null (value);
  inside->ran = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_sync_deadlock_detected (void)
{
  const guint saved = arip_get_max_processes ();
  g_autofree char *gate = tmp_path ("deadlock-gate");
  g_autoptr(AripProcess) holder = arip_process_new (NULL, "hold", g_variant_new ("(s)", gate));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  SyncInside inside = { NULL, FALSE };

  arip_set_max_processes (1);
  g_assert_true (arip_test_start (holder, &error));
  g_assert_no_error (error);

  g_idle_add (sync_call_inside_dispatch, &inside);
  arip_test_wait_until (inside.ran);
  g_assert_error (inside.error, ARIP_ERROR, ARIP_ERROR_WOULD_DEADLOCK);
  g_test_message ("%s", inside.error->message);
  g_clear_error (&inside.error);

  touch (gate);
  value = arip_test_wait (holder, &error);
  g_assert_no_error (error);
  arip_set_max_processes (saved);
}

/* ---------------------------------------------------------------------- */
/* 12. No new worker: the queue waits for the live ones                   */

static void
run_calls_on_warm_worker (AripPool *pool,
                          gint32    warm)
{
  GAsyncResult *results[6] = { NULL, };

  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &results[i]);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    arip_test_wait_until (results[i] != NULL);

  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_pool_run_finish (pool, results[i], &error);
      gint32 pid;

      g_assert_no_error (error);
      g_variant_get (value, "(i)", &pid);
      g_assert_cmpint (pid, ==, warm);
      g_object_unref (results[i]);
    }
}

static void
test_start_failure_with_live_workers (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = arip_pool_new (launcher, 4);
  const char * const missing[] = { "/nonexistent/arip-worker", NULL };
  gint32 warm = pool_whoami (pool);

  /* No new worker can start (its program is gone): the queued calls wait
   * for the one that lives, and none fails. */
  arip_launcher_set_worker_argv (launcher, missing);
  run_calls_on_warm_worker (pool, warm);
  arip_launcher_set_worker_argv (launcher, NULL);

  /* The same when the process runs out of descriptors (not under
   * valgrind, which keeps descriptors of its own). */
  if (!under_valgrind ())
    {
      struct rlimit saved, limited;

      g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
      limited = saved;
      limited.rlim_cur = arip_test_count_fds () + 1;
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limited), ==, 0);
      run_calls_on_warm_worker (pool, warm);
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
    }
}

/* ---------------------------------------------------------------------- */
/* 13. Messages to a child that does not read                             */

/* The library logs structured, which g_test_expect_message() cannot see:
 * this writer counts the warning the test expects and lets the rest
 * through. */
static guint dropping_warnings;

static GLogWriterOutput
count_dropping_warnings (GLogLevelFlags   log_level,
                         const GLogField *fields,
                         gsize            n_fields,
                         gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE") && fields[i].length < 0 &&
        g_str_has_prefix (fields[i].value, "Dropping messages for "))
      {
        dropping_warnings++;
        return G_LOG_WRITER_HANDLED;
      }
  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

static void
test_message_queue_bounded (void)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "busy", g_variant_new ("(u)", 3000));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) big = NULL;
  g_autofree guint8 *data = g_malloc0 (1024 * 1024);
  gsize rss_before;

  big = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, 1024 * 1024, 1));
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  rss_before = vm_rss_kb ();

  dropping_warnings = 0;
  for (guint i = 0; i < 200; i++)
    arip_process_send_message (p, big);
  /* Said once, not 140 times. */
  g_assert_cmpuint (dropping_warnings, ==, 1);
  g_test_message ("RSS grew by %" G_GSIZE_FORMAT " kB for 200 MiB sent", vm_rss_kb () - rss_before);
  g_assert_cmpuint (vm_rss_kb () - rss_before, <, 100 * 1024);

  value = arip_test_wait (p, &error);
  g_assert_no_error (error);
}

/* ---------------------------------------------------------------------- */
/* 14. A pool takes the environment when it starts a worker               */

static void
test_pool_environment_at_spawn (void)
{
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  g_setenv ("ARIP_TEST_SECRET", "do not tell", TRUE);
  pool = arip_pool_new (NULL, 1);
  g_unsetenv ("ARIP_TEST_SECRET");

  value = arip_pool_run_sync (pool, "getenv", g_variant_new ("(s)", "ARIP_TEST_SECRET"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(s)", ""));
}

/* ---------------------------------------------------------------------- */
/* 15. A grandchild cannot drown the worker's crash report                */

static void
test_crash_report_not_drowned (gconstpointer data)
{
  gboolean raw = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(AripProcess) p = arip_process_new (NULL, "crash_drowned", g_variant_new ("(b)", raw));

  value = arip_test_run_process (p, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  expected = g_strdup_printf ("arip worker %d: fatal signal SIGSEGV", (int) arip_process_get_pid (p));
  g_assert_nonnull (strstr (error->message, expected));
  /* The report, not the grandchild's noise, is what the message carries. */
  g_assert_null (strstr (error->message, "AAAAAAAA"));
}

/* ---------------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  const char *fake = g_getenv (FAKE_ENV);

  if (fake != NULL && g_getenv ("ARIP_WORKER") != NULL)
    fake_worker (fake);

  g_log_set_writer_func (count_dropping_warnings, NULL, NULL);
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("whoami", fn_whoami, NULL, NULL);
  arip_register_function ("touch", fn_touch, NULL, NULL);
  arip_register_function ("hold", fn_hold, NULL, NULL);
  arip_register_function ("grandchild_floods", fn_grandchild_floods, NULL, NULL);
  arip_register_function ("grandchild_sleeps", fn_grandchild_sleeps, NULL, NULL);
  arip_register_function ("big_result", fn_big_result, NULL, NULL);
  arip_register_function ("answer_then_crash", fn_answer_then_crash, NULL, NULL);
  arip_register_function ("error_domain", fn_error_domain, NULL, NULL);
  arip_register_function ("deep_aay", fn_deep_aay, NULL, NULL);
  arip_register_function ("message_flood", fn_message_flood, NULL, NULL);
  arip_register_function ("escaped_grandchild_floods", fn_escaped_grandchild_floods, NULL, NULL);
  arip_register_function ("batched_flood", fn_batched_flood, NULL, NULL);
  arip_register_function ("busy", fn_busy, NULL, NULL);
  arip_register_function ("getenv", fn_getenv, NULL, NULL);
  arip_register_function ("crash_drowned", fn_crash_drowned, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  g_test_add_func ("/Arip/Hardening/1/unref-pool-in-flight", test_unref_pool_in_flight);
  g_test_add_func ("/Arip/Hardening/1/dispose-busy-pool", test_dispose_busy_pool);
  g_test_add_data_func ("/Arip/Hardening/2/forked-grandchild-floods", GINT_TO_POINTER (FALSE),
                        test_grandchild_floods);
  g_test_add_data_func ("/Arip/Hardening/2/raw-grandchild-floods", GINT_TO_POINTER (TRUE),
                        test_grandchild_floods);
  g_test_add_func ("/Arip/Hardening/2/kill-while-flooded", test_kill_while_grandchild_floods);
  g_test_add_func ("/Arip/Hardening/2/kill-reaches-grandchildren", test_kill_reaches_grandchildren);
  g_test_add_func ("/Arip/Hardening/3/big-result-memory-limit", test_big_result_memory_limit);
  g_test_add_func ("/Arip/Hardening/4/threads-that-end", test_threads_that_end);
  g_test_add_func ("/Arip/Hardening/5/dead-idle-worker", test_dead_idle_worker);
  g_test_add_func ("/Arip/Hardening/5/crash-after-answer", test_crash_after_answer);
  g_test_add_func ("/Arip/Hardening/6/cancelled-queued-pool-call", test_cancelled_queued_pool_call);
  g_test_add_func ("/Arip/Hardening/6/cancelled-queued-oneshot", test_cancelled_queued_oneshot);
  g_test_add_func ("/Arip/Hardening/7/cancel-before-callback", test_cancel_before_callback);
  g_test_add_func ("/Arip/Hardening/8/error-domains-bounded", test_error_domains_bounded);
  g_test_add_func ("/Arip/Hardening/9/deep-value-off-main-loop", test_deep_value_off_main_loop);
  g_test_add_data_func ("/Arip/Hardening/9/flood-does-not-starve", "message_flood",
                        test_flood_does_not_starve);
  g_test_add_data_func ("/Arip/Hardening/9/batched-flood-does-not-starve", "batched_flood",
                        test_flood_does_not_starve);
  g_test_add_func ("/Arip/Hardening/10/descriptors-not-pinned", test_descriptors_not_pinned);
  g_test_add_func ("/Arip/Hardening/11/idle-workers-yield", test_idle_workers_yield);
  g_test_add_func ("/Arip/Hardening/11/sync-deadlock-detected", test_sync_deadlock_detected);
  g_test_add_func ("/Arip/Hardening/12/start-failure-with-live-workers", test_start_failure_with_live_workers);
  g_test_add_func ("/Arip/Hardening/13/message-queue-bounded", test_message_queue_bounded);
  g_test_add_func ("/Arip/Hardening/14/pool-environment-at-spawn", test_pool_environment_at_spawn);
  g_test_add_data_func ("/Arip/Hardening/15/forked-grandchild-drowns-report", GINT_TO_POINTER (FALSE),
                        test_crash_report_not_drowned);
  g_test_add_data_func ("/Arip/Hardening/15/raw-grandchild-drowns-report", GINT_TO_POINTER (TRUE),
                        test_crash_report_not_drowned);

  return g_test_run ();
}
