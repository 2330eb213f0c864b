/* test-fds.c: file descriptors that travel with a call's arguments and
 * result
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include <arip.h>

#include "arip-test-util.h"

/* (h): writes "hello from PID" to the descriptor, and returns a pipe's
 * read end whose write end it filled with "back". */
static void
fn_write_and_return_pipe (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GUnixFDList) out = g_unix_fd_list_new ();
  GUnixFDList *in = arip_call_get_fd_list (call);
  g_autofree char *text = g_strdup_printf ("hello from %d", (int) getpid ());
  gint32 index;
  int fd, pipe_fds[2];

  g_variant_get (args, "(h)", &index);
  fd = in != NULL ? g_unix_fd_list_get (in, index, &error) : -1;
  if (fd < 0)
    {
      arip_call_return_error_literal (call, ARIP_ERROR, ARIP_ERROR_FAILED, "no descriptor");
      return;
    }
  g_assert_cmpint (write (fd, text, strlen (text)), ==, (gssize) strlen (text));
  close (fd);

  g_assert_cmpint (pipe (pipe_fds), ==, 0);
  g_assert_cmpint (write (pipe_fds[1], "back", 4), ==, 4);
  close (pipe_fds[1]);
  index = g_unix_fd_list_append (out, pipe_fds[0], &error);
  close (pipe_fds[0]);
  arip_call_return_value_with_fds (call, g_variant_new ("(h)", index), out);
}

/* (): returns a handle without any descriptor. */
static void
fn_bare_handle (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(h)", 0));
}

static GUnixFDList *
pipe_list (int *read_end)
{
  int fds[2];
  GUnixFDList *list;

  g_assert_cmpint (pipe (fds), ==, 0);
  *read_end = fds[0];
  list = g_unix_fd_list_new_from_array (&fds[1], 1);
  return list;
}

static void
check_exchange (GVariant    *reply,
                GUnixFDList *out,
                int          read_end)
{
  char buf[64] = { 0 };
  gint32 index;
  int fd;

  g_assert_cmpint (read (read_end, buf, sizeof buf - 1), >, 0);
  g_assert_true (g_str_has_prefix (buf, "hello from "));
  close (read_end);

  g_assert_nonnull (out);
  g_variant_get (reply, "(h)", &index);
  fd = g_unix_fd_list_get (out, index, NULL);
  g_assert_cmpint (fd, >=, 0);
  memset (buf, 0, sizeof buf);
  g_assert_cmpint (read (fd, buf, sizeof buf), ==, 4);
  g_assert_cmpstr (buf, ==, "back");
  close (fd);
}

static void
test_launcher (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  guint fds_before = 0;

  /* Counted after the first call: a start method may keep a descriptor
   * or two from its first use on. */
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GUnixFDList) out = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GVariant) reply = NULL;
      int read_end;
      g_autoptr(GUnixFDList) in = pipe_list (&read_end);

      arip_launcher_run_with_fds_async (launcher, "write_and_return_pipe", g_variant_new ("(h)", 0),
                                        in, NULL, arip_test_store_result, &result);
      g_clear_object (&in);   /* copies went; ours close */
      arip_test_wait_until (result != NULL);
      reply = arip_launcher_run_with_fds_finish (launcher, result, &out, &error);
      g_assert_no_error (error);
      check_exchange (reply, out, read_end);
      g_clear_object (&out);
      if (i == 0)
        {
          arip_test_iterate_for (200);
          fds_before = arip_test_count_fds ();
        }
    }
  /* Nothing of the calls stays open (the last child's may take a moment). */
  arip_test_wait_until (arip_test_count_fds () <= fds_before);
}

static void
test_process (void)
{
  g_autoptr(GError) error = NULL;
  int read_end;
  g_autoptr(GUnixFDList) in = pipe_list (&read_end);
  g_autoptr(AripProcess) process =
    arip_process_new_with_fds (NULL, "write_and_return_pipe", g_variant_new ("(h)", 0), in);
  g_autoptr(GVariant) reply = NULL;

  g_clear_object (&in);
  reply = arip_test_run_process (process, &error);
  g_assert_no_error (error);
  check_exchange (reply, arip_process_get_result_fd_list (process), read_end);
}

static void
test_pool (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = arip_pool_new (launcher, 1);

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GUnixFDList) out = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GVariant) reply = NULL;
      int read_end;
      g_autoptr(GUnixFDList) in = pipe_list (&read_end);

      arip_pool_run_with_fds_async (pool, "write_and_return_pipe", g_variant_new ("(h)", 0), in,
                                    NULL, arip_test_store_result, &result);
      g_clear_object (&in);
      arip_test_wait_until (result != NULL);
      reply = arip_pool_run_with_fds_finish (pool, result, &out, &error);
      g_assert_no_error (error);
      check_exchange (reply, out, read_end);
    }
}

/* A handle that indexes nothing: an error on the side that receives it. */
static void
test_bad_index (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  /* To the child: no list at all, and an index past the list. */
  reply = arip_test_run ("write_and_return_pipe", g_variant_new ("(h)", 0), NULL, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_clear_error (&error);
  {
    g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GAsyncResult) result = NULL;
    int read_end;
    g_autoptr(GUnixFDList) in = pipe_list (&read_end);

    arip_launcher_run_with_fds_async (launcher, "write_and_return_pipe", g_variant_new ("(h)", 1),
                                      in, NULL, arip_test_store_result, &result);
    arip_test_wait_until (result != NULL);
    g_assert_null (arip_launcher_run_with_fds_finish (launcher, result, NULL, &error));
    g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
    g_clear_error (&error);
    close (read_end);
  }

  /* From the child: a bare handle is no longer a silent integer. */
  reply = arip_test_run ("bare_handle", NULL, NULL, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_INVALID_DATA);
  g_assert_null (reply);
}

int
main (int argc, char **argv)
{
  arip_register_function ("write_and_return_pipe", fn_write_and_return_pipe, NULL, NULL);
  arip_register_function ("bare_handle", fn_bare_handle, NULL, NULL);
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  g_test_add_func ("/Arip/Fds/launcher", test_launcher);
  g_test_add_func ("/Arip/Fds/process", test_process);
  g_test_add_func ("/Arip/Fds/pool", test_pool);
  g_test_add_func ("/Arip/Fds/bad-index", test_bad_index);

  return g_test_run ();
}
