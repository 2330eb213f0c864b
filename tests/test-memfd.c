/* test-memfd.c: large values in sealed memfds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Values from 256 KiB up cross the channel as sealed memfds, mapped by the
 * receiver. Real workers send them intact, both ways, without a leaked
 * descriptor or mapping; fake workers send what a hostile child could (an
 * unsealed memfd, one of the wrong size, a pipe), and the parent answers
 * ARIP_ERROR_INVALID_DATA without crashing.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arip.h>
#include "arip-channel-private.h"
#include "arip-memfd-private.h"

#include "arip-test-util.h"

#define FAKE_ENV "ARIP_TEST_MEMFD_FAKE"

static guint8
pattern (gsize i)
{
  return (guint8) ((i * 2654435761u) >> 13);
}

static guint64
checksum (const guint8 *data, gsize size)
{
  guint64 sum = 1469598103934665603ull;

  for (gsize i = 0; i < size; i += 4096)
    sum = (sum ^ data[i]) * 1099511628211ull;
  if (size > 0)
    sum = (sum ^ data[size - 1]) * 1099511628211ull;
  return sum;
}

/* ---------------------------------------------------------------------- */
/* Real workers                                                            */

/* (t): that many bytes of the pattern. */
static void
fn_bytes (AripCall *call, GVariant *args, gpointer user_data)
{
  guint64 size;
  guint8 *data;

  g_variant_get (args, "(t)", &size);
  data = g_malloc (size);
  for (gsize i = 0; i < size; i++)
    data[i] = pattern (i);
  arip_call_return_value (call, g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, data, size, TRUE,
                                                         g_free, data));
}

/* (ay): its size and checksum. */
static void
fn_digest (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GVariant) bytes = g_variant_get_child_value (args, 0);
  gsize size;
  const guint8 *data = g_variant_get_fixed_array (bytes, &size, 1);

  arip_call_return_value (call, g_variant_new ("(tt)", (guint64) size, checksum (data, size)));
}

/* The memfd (device and inode) whose mapping holds @data, or "". */
static char *
memfd_of (gconstpointer data)
{
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;
  guintptr at = GPOINTER_TO_SIZE (data);

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      guint64 start, end;
      char device[32], inode[32];

      if (strstr (lines[i], "memfd:") != NULL &&
          sscanf (lines[i], "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %*s %*s %31s %31s",
                  &start, &end, device, inode) == 4 &&
          at >= start && at < end)
        return g_strdup_printf ("%s %s", device, inode);
    }
  return g_strdup ("");
}

/* (ay): says which memfd holds its arguments, and returns them as they
 * are. */
static void
fn_same (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autofree char *memfd = memfd_of (g_variant_get_data (args));

  arip_call_send_message (call, g_variant_new_string (memfd));
  arip_call_return_value (call, args);
}

/* ---------------------------------------------------------------------- */
/* Fake workers                                                            */

static int fake_fd = -1;

static void
fake_write (const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = write (fake_fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        _exit (100);
      p += n;
      len -= (gsize) n;
    }
}

static void
fake_bytes (GBytes *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  fake_write (data, len);
}

static void
fake_with_fd (GBytes *bytes, gint fd)
{
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  struct iovec iov = { (void *) data, len };
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
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof fd);
  if (sendmsg (fake_fd, &msg, 0) < 0)
    _exit (101);
}

static void
fake_start (guint version)
{
  struct { guint32 size; guint16 kind; guint16 n_fds; } header;
  g_autofree guint8 *call = NULL;

  {
    g_autoptr(GBytes) hello = arip_frame_encode_hello (version, getpid ());
    fake_bytes (hello);
  }
  if (read (fake_fd, &header, sizeof header) != sizeof header)
    _exit (102);
  call = g_malloc (header.size + 1);
  for (gsize got = 0; got < header.size; )
    {
      ssize_t n = read (fake_fd, call + got, header.size - got);
      if (n <= 0)
        _exit (103);
      got += (gsize) n;
    }
  for (AripState s = ARIP_STATE_BOOTING; s <= ARIP_STATE_EXECUTING; s++)
    {
      g_autoptr(GBytes) state = arip_frame_encode_u32 (ARIP_FRAME_STATE, s);
      fake_bytes (state);
    }
}

/* A memfd of @size bytes holding zeros (an "ay" of them), sealed with
 * @seals. */
static gint
make_memfd (gsize size, guint seals)
{
  gint fd = memfd_create ("fake", MFD_ALLOW_SEALING);

  if (fd < 0 || ftruncate (fd, (off_t) size) < 0)
    _exit (104);
  if (seals != 0 && fcntl (fd, F_ADD_SEALS, seals) < 0)
    _exit (105);
  return fd;
}

static GBytes *
memfd_result_frame (guint64 size, const char *type)
{
  return arip_frame_encode (ARIP_FRAME_RESULT_MEMFD, g_variant_new ("(ts)", size, type), 1);
}

G_GNUC_NORETURN static void
fake_worker (const char *mode)
{
  const char *env = g_getenv ("ARIP_WORKER");
  unsigned int version;
  int channel, crash, parent;
  const gsize size = 1024 * 1024;

  if (env == NULL || sscanf (env, "%u:%d:%d:%d", &version, &channel, &crash, &parent) != 4)
    _exit (106);
  fake_fd = channel;
  fcntl (fake_fd, F_SETFL, fcntl (fake_fd, F_GETFL) & ~O_NONBLOCK);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  fake_start (version);

  if (g_str_equal (mode, "unsealed"))
    {
      /* The sender could still change what the parent reads. */
      g_autoptr(GBytes) frame = memfd_result_frame (size, "ay");
      fake_with_fd (frame, make_memfd (size, 0));
    }
  else if (g_str_equal (mode, "half-sealed"))
    {
      g_autoptr(GBytes) frame = memfd_result_frame (size, "ay");
      fake_with_fd (frame, make_memfd (size, F_SEAL_SHRINK | F_SEAL_GROW));
    }
  else if (g_str_equal (mode, "shorter"))
    {
      /* Announces more than there is. */
      g_autoptr(GBytes) frame = memfd_result_frame (size, "ay");
      fake_with_fd (frame, make_memfd (size / 2, ARIP_MEMFD_SEALS));
    }
  else if (g_str_equal (mode, "pipe"))
    {
      int p[2];
      g_autoptr(GBytes) frame = memfd_result_frame (size, "ay");

      if (pipe (p) < 0)
        _exit (107);
      fake_with_fd (frame, p[0]);
    }
  else if (g_str_equal (mode, "no-fd"))
    {
      g_autoptr(GBytes) frame = arip_frame_encode (ARIP_FRAME_RESULT_MEMFD,
                                                   g_variant_new ("(ts)", (guint64) size, "ay"), 0);
      fake_bytes (frame);
    }
  else if (g_str_equal (mode, "bad-type"))
    {
      g_autoptr(GBytes) frame = memfd_result_frame (size, "a{");
      fake_with_fd (frame, make_memfd (size, ARIP_MEMFD_SEALS));
    }
  else if (g_str_equal (mode, "oversized"))
    {
      g_autoptr(GBytes) frame = memfd_result_frame ((guint64) ARIP_FRAME_MAX_SIZE + 1, "ay");
      fake_with_fd (frame, make_memfd (size, ARIP_MEMFD_SEALS));
    }
  else if (g_str_equal (mode, "not-normal"))
    {
      /* "ab" whose elements are not 0 or 1. */
      gint fd = memfd_create ("fake", MFD_ALLOW_SEALING);
      g_autofree guint8 *junk = g_malloc (size);
      g_autoptr(GBytes) frame = memfd_result_frame (size, "ab");

      memset (junk, 7, size);
      if (fd < 0 || write (fd, junk, size) != (ssize_t) size ||
          fcntl (fd, F_ADD_SEALS, ARIP_MEMFD_SEALS) < 0)
        _exit (108);
      fake_with_fd (frame, fd);
    }
  else if (g_str_has_prefix (mode, "variant-"))
    {
      /* A "(v)" (how Python's plain values travel): the bytes of the value
       * inside, a zero byte, its type. Inside: "ab" with a 7, an "ai" one
       * byte short, or a type that is no type. */
      const char *inner = g_str_equal (mode, "variant-booleans") ? "ab"
                        : g_str_equal (mode, "variant-short-ints") ? "ai" : "a{";
      gsize data_size = g_str_equal (mode, "variant-short-ints") ? size - 1 : size;
      gsize total = data_size + 1 + strlen (inner);
      gint fd = memfd_create ("fake", MFD_ALLOW_SEALING);
      g_autofree guint8 *bytes = g_malloc0 (total);
      g_autoptr(GBytes) frame = memfd_result_frame (total, "(v)");

      if (g_str_equal (inner, "ab"))
        bytes[data_size / 2] = 7;
      memcpy (bytes + data_size + 1, inner, strlen (inner));
      if (fd < 0 || write (fd, bytes, total) != (ssize_t) total ||
          fcntl (fd, F_ADD_SEALS, ARIP_MEMFD_SEALS) < 0)
        _exit (108);
      fake_with_fd (frame, fd);
    }
  else
    _exit (109);

  /* Wait to be killed; the parent must not wait for us. */
  for (int i = 0; i < 300; i++)
    g_usleep (100 * 1000);
  _exit (110);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void
test_hostile (gconstpointer data)
{
  const char *mode = data;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  guint fds;

  /* What GLib opens once (its wakeup descriptors) is open before we count. */
  value = arip_test_run ("bytes", g_variant_new ("(t)", (guint64) ARIP_MEMFD_MIN_SIZE), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&value, g_variant_unref);
  arip_test_wait_until (arip_get_running_processes () == 0);
  fds = arip_test_count_fds ();

  arip_test_use_fake_worker (launcher, FAKE_ENV, mode);
  value = arip_test_launcher_run (launcher, "bytes", g_variant_new ("(t)", (guint64) 0), NULL, &error);
  g_assert_null (value);
  g_test_message ("%s: %s", mode, error->message);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  arip_test_wait_until (arip_test_count_fds () == fds);
}

static void
test_large_result_intact (void)
{
  const guint64 size = 256ull << 20;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  const guint8 *data;
  gsize n;

  value = arip_test_run ("bytes", g_variant_new ("(t)", size), NULL, &error);
  g_assert_no_error (error);
  data = g_variant_get_fixed_array (value, &n, 1);
  g_assert_cmpuint (n, ==, size);
  for (gsize i = 0; i < n; i += 4093)
    if (data[i] != pattern (i))
      g_error ("byte %" G_GSIZE_FORMAT " is %u, not %u", i, data[i], pattern (i));
  g_assert_cmpuint (data[n - 1], ==, pattern (n - 1));
}

static void
test_large_args (void)
{
  const gsize size = 64u << 20;
  g_autofree guint8 *data = g_malloc (size);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  guint64 got_size, got_sum;

  for (gsize i = 0; i < size; i++)
    data[i] = pattern (i);
  value = arip_test_run ("digest",
                         g_variant_new ("(@ay)", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, size, 1)),
                         NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(tt)", &got_size, &got_sum);
  g_assert_cmpuint (got_size, ==, size);
  g_assert_cmpuint (got_sum, ==, checksum (data, size));
}

static void
on_memfd_message (AripProcess *process, GVariant *message, gpointer user_data)
{
  char **memfd = user_data;

  g_free (*memfd);
  *memfd = g_variant_dup_string (message, NULL);
}

/* Runs "same" with @args (which it returns) and gives its result; the
 * worker says which memfd its arguments came in (in *@worker_memfd). */
static GVariant *
run_same (GVariant  *args,
          char     **worker_memfd)
{
  g_autoptr(AripProcess) p = arip_process_new (NULL, "same", args);
  g_autoptr(GError) error = NULL;
  GVariant *result;

  g_clear_pointer (worker_memfd, g_free);
  g_signal_connect (p, "message", G_CALLBACK (on_memfd_message), worker_memfd);
  result = arip_test_run_process (p, &error);
  g_assert_no_error (error);
  return result;
}

/* A value that arrived in a memfd is sent on as that memfd: a worker
 * returning its arguments hands back the very memfd it was given. */
static void
test_sent_on_as_is (void)
{
  const gsize size = 4u << 20;
  g_autofree guint8 *data = g_malloc (size);
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) again = NULL;
  g_autofree char *worker_memfd = NULL;
  g_autofree char *ours = NULL;

  for (gsize i = 0; i < size; i++)
    data[i] = pattern (i);
  value = run_same (g_variant_new ("(@ay)", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                      data, size, 1)),
                    &worker_memfd);
  g_assert_cmpuint (g_variant_get_size (value), ==, size + 0);
  ours = memfd_of (g_variant_get_data (value));
  g_test_message ("the worker's arguments in memfd %s, our result in memfd %s", worker_memfd, ours);
  g_assert_cmpstr (worker_memfd, !=, "");
  g_assert_cmpstr (ours, ==, worker_memfd);

  /* And from here to another worker, and back: still that one. */
  again = run_same (value, &worker_memfd);
  g_assert_cmpstr (worker_memfd, ==, ours);
  g_free (ours);
  ours = memfd_of (g_variant_get_data (again));
  g_assert_cmpstr (ours, ==, worker_memfd);
  g_assert_true (g_variant_equal (again, value));
}

/* A sealed memfd holding @size bytes of @data. */
static gint
sealed_memfd (gconstpointer data,
              gsize         size,
              gboolean      seal)
{
  gint fd = memfd_create ("arip-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, data, size), ==, (gssize) size);
  if (seal)
    g_assert_cmpint (fcntl (fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     ==, 0);
  return fd;
}

/* A value made from a memfd of our own is that memfd: not copied here,
 * sent to the worker as it is, and found again by arip_variant_dup_memfd().
 * What is not a sealed memfd holding a normal-form value is refused. */
static void
test_value_from_memfd (void)
{
  const gsize size = 4u << 20;
  g_autofree guint8 *data = g_malloc (size);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *ours = NULL;
  g_autofree char *worker_memfd = NULL;
  guint64 offset = 1;
  struct stat a, b;
  gint fd, dup;

  for (gsize i = 0; i < size; i++)
    data[i] = pattern (i);
  fd = sealed_memfd (data, size, TRUE);
  value = arip_variant_new_from_memfd (fd, G_VARIANT_TYPE ("(ay)"), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_size (value), ==, size);
  g_assert_true (memcmp (g_variant_get_data (value), data, size) == 0);
  ours = memfd_of (g_variant_get_data (value));
  g_assert_cmpstr (ours, !=, "");
  dup = arip_variant_dup_memfd (value, &offset);
  g_assert_cmpint (dup, >=, 0);
  g_assert_cmpuint (offset, ==, 0);
  g_assert_cmpint (fstat (fd, &a), ==, 0);
  g_assert_cmpint (fstat (dup, &b), ==, 0);
  g_assert_cmpuint (a.st_ino, ==, b.st_ino);
  close (dup);
  close (fd);   /* ours to close; the value keeps its own */

  result = run_same (value, &worker_memfd);
  g_assert_cmpstr (worker_memfd, ==, ours);
  g_assert_true (g_variant_equal (result, value));

  /* A value that is not a memfd's, or is small: no memfd to give. */
  {
    g_autoptr(GVariant) small = g_variant_ref_sink (g_variant_new_string ("small"));

    g_assert_cmpint (arip_variant_dup_memfd (small, NULL), ==, -1);
  }

  /* Not sealed. */
  fd = sealed_memfd (data, 4096, FALSE);
  g_assert_null (arip_variant_new_from_memfd (fd, G_VARIANT_TYPE ("ay"), &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_clear_error (&error);
  close (fd);

  /* Sealed, but not a string in normal form (no terminating zero). */
  fd = sealed_memfd ("abc", 3, TRUE);
  g_assert_null (arip_variant_new_from_memfd (fd, G_VARIANT_TYPE_STRING, &error));
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_clear_error (&error);
  close (fd);

  /* Not a memfd at all. */
  {
    int pipe_fds[2];

    g_assert_cmpint (pipe (pipe_fds), ==, 0);
    g_assert_null (arip_variant_new_from_memfd (pipe_fds[0], G_VARIANT_TYPE ("ay"), &error));
    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
    g_clear_error (&error);
    close (pipe_fds[0]);
    close (pipe_fds[1]);
  }
}

static guint
count_mappings (void)
{
  g_autofree char *maps = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  for (const char *p = maps; (p = strstr (p, "memfd:")) != NULL; p++)
    n++;
  return n;
}

static void
test_no_leak_over_many (void)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GVariant) warm = NULL;
  guint fds, maps;

  /* Warm up, then 300 values just above the threshold. */
  warm = arip_pool_run_sync (pool, "bytes", g_variant_new ("(t)", (guint64) ARIP_MEMFD_MIN_SIZE),
                             NULL, NULL);
  g_clear_pointer (&warm, g_variant_unref);
  fds = arip_test_count_fds ();
  maps = count_mappings ();
  for (guint i = 0; i < 300; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_pool_run_sync (pool, "bytes",
                                                      g_variant_new ("(t)", (guint64) ARIP_MEMFD_MIN_SIZE + i),
                                                      NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_get_size (value), ==, ARIP_MEMFD_MIN_SIZE + i);
    }
  g_assert_cmpuint (arip_test_count_fds (), ==, fds);
  g_assert_cmpuint (count_mappings (), ==, maps);
}

int
main (int argc, char **argv)
{
  static const char *modes[] = {
    "unsealed", "half-sealed", "shorter", "pipe", "no-fd", "bad-type", "oversized", "not-normal",
    "variant-booleans", "variant-short-ints", "variant-bad-type",
  };
  const char *fake = g_getenv (FAKE_ENV);

  if (fake != NULL && g_getenv ("ARIP_WORKER") != NULL)
    fake_worker (fake);

  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("bytes", fn_bytes, NULL, NULL);
  arip_register_function ("digest", fn_digest, NULL, NULL);
  arip_register_function ("same", fn_same, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/Arip/Memfd/hostile/%s", modes[i]);
      g_test_add_data_func (path, modes[i], test_hostile);
    }
  g_test_add_func ("/Arip/Memfd/large-result-intact", test_large_result_intact);
  g_test_add_func ("/Arip/Memfd/large-args", test_large_args);
  g_test_add_func ("/Arip/Memfd/sent-on-as-is", test_sent_on_as_is);
  g_test_add_func ("/Arip/Memfd/value-from-memfd", test_value_from_memfd);
  g_test_add_func ("/Arip/Memfd/no-leak-over-many", test_no_leak_over_many);

  return g_test_run ();
}
