/* test-hostile.c: fake workers that send the parent what a broken or
 * hostile child could; the parent must answer ARIP_ERROR_INVALID_DATA and
 * never crash or hang.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fake is this program itself: main() looks at ARIP_TEST_FAKE_WORKER
 * before arip_init(). The variable is set on a launcher, so only the
 * spawned worker sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <arip.h>
#include "arip-channel-private.h"

#include "arip-test-util.h"

#define FAKE_ENV "ARIP_TEST_FAKE_WORKER"

/* ---------------------------------------------------------------------- */
/* The fake worker                                                         */

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
fake_read (void *data, gsize len)
{
  guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = read (fake_fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        _exit (101);
      p += n;
      len -= (gsize) n;
    }
}

static void
fake_header (guint32 size, guint16 kind, guint16 n_fds)
{
  struct { guint32 size; guint16 kind; guint16 n_fds; } header = { size, kind, n_fds };

  G_STATIC_ASSERT (sizeof header == ARIP_FRAME_HEADER_SIZE);
  fake_write (&header, sizeof header);
}

static void
fake_frame (AripFrameKind kind, GVariant *payload)
{
  g_autoptr(GBytes) bytes = arip_frame_encode (kind, payload, 0);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  fake_write (data, len);
}

/* A frame whose payload is @payload whatever type the kind wants. */
static void
fake_frame_any (guint16 kind, GVariant *payload)
{
  g_autoptr(GVariant) value = g_variant_ref_sink (payload);
  gsize size = g_variant_get_size (value);
  g_autofree guint8 *data = g_malloc0 (size + 1);

  g_variant_store (value, data);
  fake_header ((guint32) size, kind, 0);
  fake_write (data, size);
}

static void
fake_hello (void)
{
  fake_frame (ARIP_FRAME_HELLO, g_variant_new ("(ui)", ARIP_PROTOCOL_VERSION, (gint32) getpid ()));
}

/* Reads the parent's CALL frame, as a real worker does. */
static void
fake_read_call (void)
{
  struct { guint32 size; guint16 kind; guint16 n_fds; } header;
  g_autofree guint8 *payload = NULL;

  fake_read (&header, sizeof header);
  if (header.kind != ARIP_FRAME_CALL || header.size > 1024 * 1024)
    _exit (102);
  payload = g_malloc (header.size + 1);
  fake_read (payload, header.size);
}

static void
fake_state (AripState state)
{
  fake_frame (ARIP_FRAME_STATE, g_variant_new ("(u)", (guint32) state));
}

static void
fake_start (void)
{
  fake_hello ();
  fake_read_call ();
  fake_state (ARIP_STATE_BOOTING);
  fake_state (ARIP_STATE_STARTED);
  fake_state (ARIP_STATE_EXECUTING);
}

static void
fake_result (void)
{
  fake_frame (ARIP_FRAME_RESULT, g_variant_new ("(v)", g_variant_new ("(s)", "fake")));
}

static void
fake_garbage (gsize len)
{
  g_autofree guint8 *data = g_malloc (len);
  guint32 x = 88172645u;

  for (gsize i = 0; i < len; i++)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      data[i] = (guint8) x;
    }
  fake_write (data, len);
}

G_GNUC_NORETURN static void
fake_linger (void)
{
  /* Wait to be killed; the parent must not wait for us. */
  for (int i = 0; i < 600; i++)
    g_usleep (100 * 1000);
  _exit (103);
}

G_GNUC_NORETURN static void
fake_worker (const char *mode)
{
  const char *env = g_getenv (ARIP_WORKER_ENV);
  unsigned int version;
  int channel_fd, crash_fd, parent;
  int flags;

  if (env == NULL || sscanf (env, "%u:%d:%d:%d", &version, &channel_fd, &crash_fd, &parent) != 4)
    _exit (104);
  fake_fd = channel_fd;
  flags = fcntl (fake_fd, F_GETFL);
  fcntl (fake_fd, F_SETFL, flags & ~O_NONBLOCK);
  prctl (PR_SET_PDEATHSIG, SIGKILL);

  if (g_str_equal (mode, "valid"))
    {
      fake_start ();
      fake_frame (ARIP_FRAME_MESSAGE, g_variant_new ("(v)", g_variant_new_string ("from fake")));
      fake_frame (ARIP_FRAME_PROGRESS, g_variant_new ("(d)", 0.25));
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "valid-error"))
    {
      fake_start ();
      fake_frame (ARIP_FRAME_ERROR, g_variant_new ("(sis)", "g-io-error-quark", G_IO_ERROR_NOT_FOUND, "fake error"));
      _exit (0);
    }
  else if (g_str_equal (mode, "garbage"))
    {
      fake_garbage (4096);
      _exit (0);
    }
  else if (g_str_equal (mode, "garbage-after-hello"))
    {
      fake_start ();
      fake_garbage (4096);
      _exit (0);
    }
  else if (g_str_equal (mode, "huge-header"))
    {
      fake_start ();
      fake_header (G_MAXUINT32, ARIP_FRAME_RESULT, 0);
      fake_linger ();
    }
  else if (g_str_equal (mode, "over-max-size"))
    {
      fake_start ();
      fake_header (ARIP_FRAME_MAX_SIZE + 1, ARIP_FRAME_RESULT, 0);
      fake_linger ();
    }
  else if (g_str_equal (mode, "huge-header-first"))
    {
      fake_header (G_MAXUINT32, ARIP_FRAME_HELLO, 0);
      fake_linger ();
    }
  else if (g_str_equal (mode, "unknown-kind"))
    {
      fake_start ();
      fake_frame_any (ARIP_FRAME_LAST_KIND + 42, g_variant_new ("(u)", 7));
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "kind-zero"))
    {
      fake_start ();
      fake_frame_any (0, g_variant_new ("(u)", 7));
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "call-from-child"))
    {
      /* A parent -> child kind sent the wrong way. */
      fake_start ();
      fake_frame (ARIP_FRAME_CALL, g_variant_new ("(sv)", "echo", g_variant_new ("()")));
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "wrong-type"))
    {
      fake_start ();
      fake_frame_any (ARIP_FRAME_STATE, g_variant_new ("(s)", "not a state"));
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "wrong-type-result"))
    {
      fake_start ();
      /* "(v)" with a body that is no variant at all */
      fake_header (4, ARIP_FRAME_RESULT, 0);
      fake_write ("abcd", 4);
      fake_linger ();
    }
  else if (g_str_equal (mode, "hello-wrong-type"))
    {
      fake_frame_any (ARIP_FRAME_HELLO, g_variant_new ("(u)", 1));
      fake_read_call ();
      fake_state (ARIP_STATE_BOOTING);
      fake_state (ARIP_STATE_STARTED);
      fake_state (ARIP_STATE_EXECUTING);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "sandbox-unasked"))
    {
      /* A sandbox report from a worker whose launcher asked for none. */
      fake_frame_any (ARIP_FRAME_SANDBOX, g_variant_new ("(uub@as)", 2, 2, FALSE,
                                                         g_variant_new_strv (NULL, 0)));
      fake_start ();
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "sandbox-after-hello"))
    {
      fake_start ();
      fake_frame_any (ARIP_FRAME_SANDBOX, g_variant_new ("(uub@as)", 0, 0, FALSE,
                                                         g_variant_new_strv (NULL, 0)));
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "state-backwards"))
    {
      fake_start ();
      fake_state (ARIP_STATE_BOOTING);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "state-out-of-range"))
    {
      fake_start ();
      fake_state ((AripState) 1000);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "two-results"))
    {
      fake_start ();
      fake_result ();
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "result-and-error"))
    {
      fake_start ();
      fake_result ();
      fake_frame (ARIP_FRAME_ERROR, g_variant_new ("(sis)", "g-io-error-quark", 1, "also an error"));
      _exit (0);
    }
  else if (g_str_equal (mode, "truncated"))
    {
      g_autoptr(GBytes) bytes = arip_frame_encode (ARIP_FRAME_RESULT,
                                                   g_variant_new ("(v)", g_variant_new_string ("a result that is cut short")),
                                                   0);
      gsize len;
      const guint8 *data = g_bytes_get_data (bytes, &len);

      fake_start ();
      fake_write (data, len / 2);
      close (fake_fd);
      _exit (0);
    }
  else if (g_str_equal (mode, "truncated-header"))
    {
      fake_start ();
      fake_write ("\x10\x00\x00", 3);
      close (fake_fd);
      _exit (0);
    }
  else if (g_str_equal (mode, "result-before-hello"))
    {
      fake_result ();
      fake_hello ();
      fake_read_call ();
      fake_state (ARIP_STATE_BOOTING);
      fake_state (ARIP_STATE_STARTED);
      fake_state (ARIP_STATE_EXECUTING);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "hello-wrong-pid"))
    {
      fake_frame (ARIP_FRAME_HELLO, g_variant_new ("(ui)", ARIP_PROTOCOL_VERSION, (gint32) getpid () + 1000));
      fake_read_call ();
      fake_state (ARIP_STATE_BOOTING);
      fake_state (ARIP_STATE_STARTED);
      fake_state (ARIP_STATE_EXECUTING);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "hello-wrong-version"))
    {
      fake_frame (ARIP_FRAME_HELLO, g_variant_new ("(ui)", ARIP_PROTOCOL_VERSION + 1, (gint32) getpid ()));
      fake_read_call ();
      fake_state (ARIP_STATE_BOOTING);
      fake_state (ARIP_STATE_STARTED);
      fake_state (ARIP_STATE_EXECUTING);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "hello-twice"))
    {
      fake_hello ();
      fake_hello ();
      fake_read_call ();
      fake_state (ARIP_STATE_BOOTING);
      fake_state (ARIP_STATE_STARTED);
      fake_state (ARIP_STATE_EXECUTING);
      fake_result ();
      _exit (0);
    }
  else if (g_str_equal (mode, "too-many-fds"))
    {
      fake_start ();
      fake_header (8, ARIP_FRAME_PROGRESS, 1000);
      fake_garbage (8);
      fake_linger ();
    }
  else if (g_str_equal (mode, "missing-fds"))
    {
      g_autoptr(GVariant) payload = g_variant_ref_sink (g_variant_new ("(v)", g_variant_new_handle (0)));
      gsize size = g_variant_get_size (payload);
      g_autofree guint8 *data = g_malloc (size);

      g_variant_store (payload, data);
      fake_start ();
      fake_header ((guint32) size, ARIP_FRAME_MESSAGE, 1);
      fake_write (data, size);
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "empty-error-domain"))
    {
      fake_start ();
      fake_frame (ARIP_FRAME_ERROR, g_variant_new ("(sis)", "", 1, "no domain"));
      _exit (0);
    }
  else if (g_str_equal (mode, "result-then-segv"))
    {
      fake_start ();
      fake_result ();
      signal (SIGSEGV, SIG_DFL);
      raise (SIGSEGV);
      _exit (105);
    }
  else if (g_str_equal (mode, "close-and-linger"))
    {
      /* Hangs up without answering, and stays. */
      fake_start ();
      close (fake_fd);
      fake_linger ();
    }
  else if (g_str_equal (mode, "result-then-linger"))
    {
      /* Answers, then does not exit. */
      fake_start ();
      fake_result ();
      fake_linger ();
    }
  else if (g_str_equal (mode, "silent"))
    {
      /* Never says hello. */
      fake_linger ();
    }
  else if (g_str_equal (mode, "exit-before-hello"))
    {
      _exit (3);
    }

  g_printerr ("unknown fake worker mode %s\n", mode);
  _exit (106);
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static AripProcess *
run_fake (const char  *mode,
          GVariant   **result,
          GError     **error)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) start_error = NULL;
  AripProcess *p;

  arip_test_use_fake_worker (launcher, FAKE_ENV, mode);
  /* Generous, but well below the test's own guard. */
  arip_launcher_set_startup_timeout (launcher, g_str_equal (mode, "silent") ? 500 : 10000);
  /* Short grace for a child that hangs around after its channel ended. */
  arip_launcher_set_stop_timeouts (launcher, 100, 100);
  p = arip_process_new (launcher, "echo", g_variant_new ("(s)", mode));

  arip_test_start (p, &start_error);
  *result = arip_test_wait (p, error);
  g_assert_cmpint (arip_process_get_state (p), ==, ARIP_STATE_FINISHED);
  if (*error != NULL)
    g_test_message ("%s: %s", mode, (*error)->message);
  if (arip_process_get_pid (p) > 0)
    arip_test_assert_pid_gone (arip_process_get_pid (p));
  return p;
}

static void
on_message_collect (AripProcess *process, GVariant *message, gpointer user_data)
{
  GPtrArray *messages = user_data;

  g_ptr_array_add (messages, g_variant_ref (message));
}

static void
test_valid (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* The fake speaks the protocol well enough to succeed, so the other
   * cases fail for the reason they are written for. */
  arip_test_use_fake_worker (launcher, FAKE_ENV, "valid");
  p = arip_process_new (launcher, "echo", NULL);
  g_signal_connect (p, "message", G_CALLBACK (on_message_collect), messages);
  g_assert_true (arip_test_start (p, &error));
  g_assert_no_error (error);
  result = arip_test_wait (p, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "fake"));
  g_assert_cmpuint (messages->len, ==, 1);
  arip_test_assert_variant (messages->pdata[0], g_variant_new_string ("from fake"));
  g_assert_cmpfloat_with_epsilon (arip_process_get_progress (p), 0.25, 1e-9);
  g_assert_true (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_exit_status (p), ==, 0);
}

static void
test_valid_error (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  p = run_fake ("valid-error", &result, &error);
  g_assert_null (result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "fake error");
}

static void
test_invalid (gconstpointer data)
{
  const char *mode = data;
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  p = run_fake (mode, &result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_assert_true (g_error_matches (arip_process_get_error (p), ARIP_ERROR, ARIP_ERROR_INVALID_DATA));
}

static void
test_result_then_segv (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  p = run_fake ("result-then-segv", &result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "SIGSEGV"));
  g_assert_true (arip_process_get_if_signaled (p));
  g_assert_cmpint (arip_process_get_term_sig (p), ==, SIGSEGV);
}

static void
test_exit_before_hello (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  p = run_fake ("exit-before-hello", &result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
  g_assert_true (arip_process_get_if_exited (p));
  g_assert_cmpint (arip_process_get_exit_status (p), ==, 3);
}

static void
test_result_then_linger (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* The answer stands; the lingering child is put down. */
  p = run_fake ("result-then-linger", &result, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "fake"));
}

static void
test_silent (void)
{
  g_autoptr(AripProcess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  p = run_fake ("silent", &result, &error);
  g_assert_null (result);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_TIMED_OUT);
}

static void
test_real_worker_still_works (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = arip_test_run ("echo", g_variant_new ("(s)", "real"), NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (result, g_variant_new ("(s)", "real"));
}

static const char * const invalid_modes[] = {
  "garbage",
  "garbage-after-hello",
  "huge-header",
  "huge-header-first",
  "over-max-size",
  "unknown-kind",
  "kind-zero",
  "call-from-child",
  "wrong-type",
  "wrong-type-result",
  "hello-wrong-type",
  "hello-wrong-pid",
  "hello-wrong-version",
  "hello-twice",
  "result-before-hello",
  "state-backwards",
  "state-out-of-range",
  "two-results",
  "result-and-error",
  "truncated",
  "truncated-header",
  "too-many-fds",
  "missing-fds",
  "empty-error-domain",
  "close-and-linger",
  "sandbox-unasked",
  "sandbox-after-hello",
};

int
main (int argc, char **argv)
{
  const char *fake = g_getenv (FAKE_ENV);

  if (fake != NULL && g_getenv (ARIP_WORKER_ENV) != NULL)
    fake_worker (fake);

  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Hostile/valid", test_valid);
  g_test_add_func ("/Arip/Hostile/valid-error", test_valid_error);
  for (guint i = 0; i < G_N_ELEMENTS (invalid_modes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/Arip/Hostile/invalid/%s", invalid_modes[i]);
      g_test_add_data_func (path, invalid_modes[i], test_invalid);
    }
  g_test_add_func ("/Arip/Hostile/result-then-segv", test_result_then_segv);
  g_test_add_func ("/Arip/Hostile/exit-before-hello", test_exit_before_hello);
  g_test_add_func ("/Arip/Hostile/silent", test_silent);
  g_test_add_func ("/Arip/Hostile/real-worker-still-works", test_real_worker_still_works);
  g_test_add_func ("/Arip/Hostile/result-then-linger", test_result_then_linger);

  return g_test_run ();
}
