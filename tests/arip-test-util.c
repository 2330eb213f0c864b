/* arip-test-util.c: helpers shared by the GTest programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "arip-test-util.h"

guint
arip_test_timeout_multiplier (void)
{
  static guint multiplier;

  if (multiplier == 0)
    {
      const char *env = g_getenv ("ARIP_TEST_TIMEOUT_MULTIPLIER");
      guint64 value = 1;

      if (env != NULL && *env != '\0' &&
          !g_ascii_string_to_unsigned (env, 10, 1, 1000, &value, NULL))
        g_error ("ARIP_TEST_TIMEOUT_MULTIPLIER=%s is not a whole number from 1 to 1000", env);
      multiplier = (guint) value;
    }
  return multiplier;
}

gboolean
arip_test_set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
arip_test_tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

void
arip_test_store_result (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  GAsyncResult **out = user_data;

  g_assert_null (*out);
  *out = g_object_ref (result);
}

void
arip_test_iterate_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, arip_test_set_flag, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

gboolean
arip_test_start (AripProcess  *process,
                 GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_process_start_async (process, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_process_start_finish (process, result, error);
}

GVariant *
arip_test_wait (AripProcess  *process,
                GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_process_wait_async (process, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_process_wait_finish (process, result, error);
}

GVariant *
arip_test_run_process (AripProcess  *process,
                       GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_process_start_async (process, NULL, NULL, NULL);
  arip_process_wait_async (process, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_process_wait_finish (process, result, error);
}

gboolean
arip_test_wait_for_state (AripProcess  *process,
                          AripState     state,
                          GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_process_wait_for_state_async (process, state, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_process_wait_for_state_finish (process, result, error);
}

gboolean
arip_test_stop (AripProcess  *process,
                GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_process_stop_async (process, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_process_stop_finish (process, result, error);
}

GVariant *
arip_test_run (const char    *function,
               GVariant      *args,
               GCancellable  *cancellable,
               GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_run_in_process_async (function, args, cancellable, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_run_in_process_finish (result, error);
}

GVariant *
arip_test_launcher_run (AripLauncher  *launcher,
                        const char    *function,
                        GVariant      *args,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_launcher_run_async (launcher, function, args, cancellable, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_launcher_run_finish (launcher, result, error);
}

gboolean
arip_test_pid_is_gone (GPid pid)
{
  g_assert_cmpint (pid, >, 0);
  return kill (pid, 0) == -1 && errno == ESRCH;
}

gboolean
arip_test_pid_is_dead (GPid pid)
{
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  const char *paren;

  if (arip_test_pid_is_gone (pid))
    return TRUE;

  /* /proc/PID/stat: "PID (COMM) STATE ...", COMM may contain ')' */
  path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return TRUE;
  paren = strrchr (contents, ')');
  if (paren == NULL || paren[1] == '\0')
    return FALSE;
  return paren[2] == 'Z' || paren[2] == 'X';
}

void
arip_test_assert_pid_gone (GPid pid)
{
  g_assert_cmpint (pid, >, 0);
  arip_test_wait_until (arip_test_pid_is_gone (pid));
}

guint
arip_test_count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  /* Do not count the descriptor GDir itself holds. */
  return n - 1;
}

char *
arip_test_list_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  GString *s = g_string_new (NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      g_string_append_printf (s, "  %s -> %s\n", name, target ? target : "?");
    }
  return g_string_free (s, FALSE);
}

void
arip_test_assert_variant_impl (const char *file,
                               int         line,
                               GVariant   *actual,
                               GVariant   *expected)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (expected);

  if (actual == NULL || !g_variant_equal (actual, owned))
    {
      g_autofree char *a = actual ? g_variant_print (actual, TRUE) : g_strdup ("NULL");
      g_autofree char *e = g_variant_print (owned, TRUE);
      g_autofree char *msg = g_strdup_printf ("variant %s is not the expected %s", a, e);

      g_assertion_message (G_LOG_DOMAIN, file, line, G_STRFUNC, msg);
    }
}

void
arip_test_fn_echo (AripCall *call,
                   GVariant *args,
                   gpointer  user_data)
{
  arip_call_return_value (call, args);
}

void
arip_test_exit_now (int status)
{
#ifdef __SANITIZE_ADDRESS__
  fflush (NULL);
  _exit (status);
#else
  exit (status);
#endif
}

GPid
arip_test_read_ppid (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  const char *paren;
  char state;
  int ppid = 0;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  paren = strrchr (contents, ')');
  if (paren == NULL || sscanf (paren + 1, " %c %d", &state, &ppid) != 2)
    return 0;
  return ppid;
}

/* The parent pid and state in /proc/PID/stat ("PID (COMM) STATE PPID"). */
static gboolean
read_stat (const char *pid,
           char       *state,
           int        *ppid)
{
  g_autofree char *path = g_build_filename ("/proc", pid, "stat", NULL);
  g_autofree char *contents = NULL;
  const char *paren;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  paren = strrchr (contents, ')');
  return paren != NULL && sscanf (paren + 1, " %c %d", state, ppid) == 2;
}

/* Whether the process started with ARIP_ZYGOTE in its environment (the
 * fork server removes it from environ, not from the block it started with). */
static gboolean
is_fork_server (const char *pid)
{
  g_autofree char *path = g_build_filename ("/proc", pid, "environ", NULL);
  g_autofree char *contents = NULL;
  gsize length = 0;

  if (!g_file_get_contents (path, &contents, &length, NULL))
    return FALSE;
  for (gsize at = 0; at < length; at += strlen (contents + at) + 1)
    if (g_str_has_prefix (contents + at, "ARIP_ZYGOTE="))
      return TRUE;
  return FALSE;
}

/* Whether the process is the fork server's spare: a worker forked ahead
 * of its call, which is not one yet. */
static gboolean
is_spare (const char *pid)
{
  g_autofree char *path = g_build_filename ("/proc", pid, "comm", NULL);
  g_autofree char *comm = NULL;

  return g_file_get_contents (path, &comm, NULL, NULL) && g_str_equal (g_strchomp (comm), "arip-spare");
}

GPid
arip_test_fork_server_pid (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      char state;
      int ppid;

      if (g_ascii_isdigit (name[0]) && read_stat (name, &state, &ppid) &&
          ppid == (int) getpid () && state != 'Z' && is_fork_server (name))
        return (GPid) atoi (name);
    }
  return 0;
}

void
arip_test_wait_for_fork_server (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  gint64 deadline = g_get_monotonic_time () + ARIP_TEST_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  if (arip_launcher_get_start_method (launcher) != ARIP_START_METHOD_FORKSERVER)
    return;
  for (;;)
    {
      g_autoptr(AripProcess) p = arip_process_new (launcher, "echo", g_variant_new ("(i)", 1));
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = arip_test_run_process (p, &error);

      g_assert_no_error (error);
      if (arip_process_get_start_method (p) == ARIP_START_METHOD_FORKSERVER)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("the fork server did not fork a worker within %d s", ARIP_TEST_TIMEOUT_SECONDS);
      g_usleep (10 * 1000);
    }
}

guint
arip_test_count_workers (GString *list)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  GPid server = arip_test_fork_server_pid ();
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      char state;
      int ppid;

      if (!g_ascii_isdigit (name[0]) || !read_stat (name, &state, &ppid) ||
          atoi (name) == (int) server || is_spare (name))
        continue;
      if (ppid == (int) getpid () || (server > 0 && ppid == (int) server))
        {
          n++;
          if (list != NULL)
            g_string_append_printf (list, " %s(%c)", name, state);
        }
    }
  return n;
}

void
arip_test_use_fake_worker (AripLauncher *launcher,
                           const char   *variable,
                           const char   *mode)
{
  arip_launcher_setenv (launcher, variable, mode, TRUE);
  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_SPAWN);
}
