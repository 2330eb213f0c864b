/* test-isolation.c: resource limits and the workers' sandbox (issue 13)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each piece is proven by a worker that tries the forbidden thing, next to
 * a worker without it that succeeds. The meson setups run every case
 * under the fork server and under spawn.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <arip.h>
#include <glib/gstdio.h>

#include "arip-test-util.h"

#if defined(__SANITIZE_ADDRESS__)
# define UNDER_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define UNDER_ASAN 1
# endif
#endif

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

/* (q): connects to 127.0.0.1:port; (i) 0 or the errno. */
static void
fn_connect (AripCall *call, GVariant *args, gpointer user_data)
{
  struct sockaddr_in address = { .sin_family = AF_INET };
  guint16 port;
  int fd, result = 0;

  g_variant_get (args, "(q)", &port);
  address.sin_port = htons (port);
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &address, sizeof address) < 0)
    result = errno;
  if (fd >= 0)
    close (fd);
  arip_call_return_value (call, g_variant_new ("(i)", result));
}

/* (ay): writes a file there; (i) 0 or the errno. */
static void
fn_write (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *path;
  int fd, result = 0;

  g_variant_get (args, "(^&ay)", &path);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write (fd, "written", 7) != 7)
    result = errno;
  if (fd >= 0)
    close (fd);
  arip_call_return_value (call, g_variant_new ("(i)", result));
}

/* (ay): reads a file; (is) 0 and its text, or the errno. */
static void
fn_read (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  const char *path;

  g_variant_get (args, "(^&ay)", &path);
  if (!g_file_get_contents (path, &text, NULL, &error))
    arip_call_return_value (call, g_variant_new ("(is)", error->code == G_FILE_ERROR_ACCES
                                                        ? EACCES : EIO, error->message));
  else
    arip_call_return_value (call, g_variant_new ("(is)", 0, text));
}

/* (s): which forbidden thing to try; (x) what the call returned. */
static void
fn_syscall (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *what;
  long result = -1;

  g_variant_get (args, "(&s)", &what);
  if (g_str_equal (what, "ptrace"))
    result = ptrace (PTRACE_PEEKUSER, getppid (), NULL, NULL);
  else if (g_str_equal (what, "unshare"))
    result = unshare (CLONE_NEWUTS);
  arip_call_return_value (call, g_variant_new ("(x)", (gint64) result));
}

/* (t): allocates that many bytes and touches a page of each MiB. */
static void
fn_allocate (AripCall *call, GVariant *args, gpointer user_data)
{
  guint64 size;
  guint8 *block;

  g_variant_get (args, "(t)", &size);
  block = g_malloc (size);
  for (guint64 at = 0; at < size; at += 1 << 20)
    block[at] = 1;
  g_free (block);
  arip_call_return_value (call, g_variant_new ("(t)", size));
}

/* (u): spins for that many milliseconds of CPU time, deaf to interrupts;
 * G_MAXUINT32 spins for ever. */
static void
fn_spin (AripCall *call, GVariant *args, gpointer user_data)
{
  volatile guint64 sink = 0;
  guint32 ms;
  struct timespec start, now;

  g_variant_get (args, "(u)", &ms);
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &start);
  for (;;)
    {
      for (guint i = 0; i < 100000; i++)
        sink += i;
      clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &now);
      if (ms != G_MAXUINT32 &&
          (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= ms)
        break;
    }
  arip_call_return_value (call, g_variant_new ("(u)", ms));
}

/* (s): the variable's value, if it is set. */
static void
fn_getenv (AripCall *call, GVariant *args, gpointer user_data)
{
  const char *name;

  g_variant_get (args, "(&s)", &name);
  arip_call_return_value (call, g_variant_new ("(ms)", g_getenv (name)));
}

/* (i): the soft and hard limits on that resource. */
static void
fn_getrlimit (AripCall *call, GVariant *args, gpointer user_data)
{
  struct rlimit limit;
  gint32 resource;

  g_variant_get (args, "(i)", &resource);
  getrlimit (resource, &limit);
  arip_call_return_value (call, g_variant_new ("(tt)", (guint64) limit.rlim_cur,
                                               (guint64) limit.rlim_max));
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

/* Runs @function on a process of @launcher; the process is returned for
 * its sandbox and exit, the value or error through the out arguments. */
static AripProcess *
run_on (AripLauncher  *launcher,
        const char    *function,
        GVariant      *args,
        GVariant     **out_value,
        GError       **error)
{
  AripProcess *process = arip_process_new (launcher, function, args);

  *out_value = arip_test_run_process (process, error);
  return process;
}

static gint
run_for_int (AripLauncher *launcher,
             const char   *function,
             GVariant     *args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_test_launcher_run (launcher, function, args, NULL, &error);
  gint32 result;

  g_assert_no_error (error);
  g_variant_get (value, "(i)", &result);
  return result;
}

/* The worker's value of @name, or NULL. */
static char *
getenv_in (AripLauncher *launcher,
           const char   *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_test_launcher_run (launcher, "getenv",
                                                      g_variant_new ("(s)", name), NULL, &error);
  char *result = NULL;

  g_assert_no_error (error);
  g_variant_get (value, "(ms)", &result);
  return result;
}

static AripLauncher *
sandboxed (AripSandboxFlags flags)
{
  AripLauncher *launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);

  arip_launcher_set_sandbox (launcher, flags, ARIP_SANDBOX_POLICY_REQUIRED);
  return launcher;
}

/* Whether this build of arip has seccomp (libseccomp is optional): a
 * best-effort worker says. */
static gboolean
have_seccomp (void)
{
  static gint have = -1;

  if (have < 0)
    {
      g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      g_autoptr(AripProcess) process = NULL;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;

      arip_launcher_set_sandbox (launcher, ARIP_SANDBOX_SECCOMP, ARIP_SANDBOX_POLICY_BEST_EFFORT);
      process = run_on (launcher, "getenv", g_variant_new ("(s)", "HOME"), &value, &error);
      g_assert_no_error (error);
      have = arip_process_get_sandbox (process) == ARIP_SANDBOX_SECCOMP;
    }
  return have;
}

/* TRUE, having marked the test skipped, in a build without seccomp. */
static gboolean
skipped_without_seccomp (void)
{
  if (have_seccomp ())
    return FALSE;
  g_test_skip ("this arip was built without libseccomp");
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* The network                                                            */

static void
test_no_network (void)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) cut = sandboxed (ARIP_SANDBOX_NO_NETWORK);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  struct sockaddr_in address = { .sin_family = AF_INET };
  socklen_t length = sizeof address;
  int listener;
  gint32 result;

  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (bind (listener, (struct sockaddr *) &address, sizeof address), ==, 0);
  g_assert_cmpint (listen (listener, 16), ==, 0);
  g_assert_cmpint (getsockname (listener, (struct sockaddr *) &address, &length), ==, 0);

  /* Without the flag the worker reaches the listener. */
  g_assert_cmpint (run_for_int (plain, "connect", g_variant_new ("(q)", ntohs (address.sin_port))),
                   ==, 0);

  process = run_on (cut, "connect", g_variant_new ("(q)", ntohs (address.sin_port)), &value, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i)", &result);
  g_test_message ("connect from a worker without a network: %s", g_strerror (result));
  g_assert_cmpint (result, !=, 0);
  g_assert_cmpint (arip_process_get_sandbox (process), ==, ARIP_SANDBOX_NO_NETWORK);
  close (listener);
}

/* ---------------------------------------------------------------------- */
/* The file system                                                        */

static void
test_restrict_filesystem (void)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) fenced = sandboxed (ARIP_SANDBOX_RESTRICT_FILESYSTEM);
  g_autoptr(AripLauncher) read_only = sandboxed (ARIP_SANDBOX_RESTRICT_FILESYSTEM);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *inside = g_dir_make_tmp ("arip-inside-XXXXXX", &error);
  g_autofree char *outside = g_dir_make_tmp ("arip-outside-XXXXXX", &error);
  g_autofree char *inside_file = g_build_filename (inside, "allowed", NULL);
  g_autofree char *inside_new = g_build_filename (inside, "new", NULL);
  g_autofree char *outside_file = g_build_filename (outside, "secret", NULL);
  g_autofree char *outside_new = g_build_filename (outside, "new", NULL);
  const char *text;
  gint32 result;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (inside_file, "inside", -1, NULL));
  g_assert_true (g_file_set_contents (outside_file, "secret", -1, NULL));
  arip_launcher_allow_path (fenced, inside, TRUE);
  arip_launcher_allow_path (read_only, inside, FALSE);

  /* Without the flag the worker writes anywhere it may. */
  g_assert_cmpint (run_for_int (plain, "write", g_variant_new ("(^ay)", outside_new)), ==, 0);
  g_assert_true (g_file_test (outside_new, G_FILE_TEST_EXISTS));
  g_assert_cmpint (g_unlink (outside_new), ==, 0);

  /* With it: the allowed directory, read and written... */
  value = arip_test_launcher_run (fenced, "read", g_variant_new ("(^ay)", inside_file), NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i&s)", &result, &text);
  g_assert_cmpint (result, ==, 0);
  g_assert_cmpstr (text, ==, "inside");
  g_clear_pointer (&value, g_variant_unref);
  g_assert_cmpint (run_for_int (fenced, "write", g_variant_new ("(^ay)", inside_new)), ==, 0);
  g_assert_true (g_file_test (inside_new, G_FILE_TEST_EXISTS));
  g_assert_cmpint (g_unlink (inside_new), ==, 0);

  /* ...nothing outside it, neither written nor read. */
  g_assert_cmpint (run_for_int (fenced, "write", g_variant_new ("(^ay)", outside_new)), ==, EACCES);
  g_assert_false (g_file_test (outside_new, G_FILE_TEST_EXISTS));
  value = arip_test_launcher_run (fenced, "read", g_variant_new ("(^ay)", outside_file), NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i&s)", &result, &text);
  g_test_message ("reading outside: %s", text);
  g_assert_cmpint (result, ==, EACCES);
  g_clear_pointer (&value, g_variant_unref);

  /* A read-only allowed path is read, not written. */
  value = arip_test_launcher_run (read_only, "read", g_variant_new ("(^ay)", inside_file), NULL, &error);
  g_assert_no_error (error);
  g_variant_get (value, "(i&s)", &result, &text);
  g_assert_cmpint (result, ==, 0);
  g_clear_pointer (&value, g_variant_unref);
  g_assert_cmpint (run_for_int (read_only, "write", g_variant_new ("(^ay)", inside_new)), ==, EACCES);

  g_unlink (inside_file);
  g_unlink (outside_file);
  g_rmdir (inside);
  g_rmdir (outside);
}

/* An allowed path that does not exist: named, and REQUIRED refuses. */
static void
test_missing_allowed_path (void)
{
  g_autoptr(AripLauncher) launcher = sandboxed (ARIP_SANDBOX_RESTRICT_FILESYSTEM);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  arip_launcher_allow_path (launcher, "/nonexistent/arip-test", TRUE);
  value = arip_test_launcher_run (launcher, "getenv", g_variant_new ("(s)", "HOME"), NULL, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SANDBOX);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "/nonexistent/arip-test"));
}

/* ---------------------------------------------------------------------- */
/* seccomp                                                                */

static void
check_blocked (const char *call,
               const char *name)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) filtered = sandboxed (ARIP_SANDBOX_SECCOMP);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *quoted = g_strdup_printf ("“%s”", name);

  if (skipped_without_seccomp ())
    return;

  /* Without the flag the call is made and returns. */
  value = arip_test_launcher_run (plain, "syscall", g_variant_new ("(s)", call), NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (value);
  g_clear_pointer (&value, g_variant_unref);

  process = run_on (filtered, "syscall", g_variant_new ("(s)", call), &value, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_test_message ("%s", error->message);
  g_assert_true (arip_process_get_if_signaled (process));
  g_assert_cmpint (arip_process_get_term_sig (process), ==, SIGSYS);
  g_assert_nonnull (strstr (error->message, "seccomp"));
  g_assert_nonnull (strstr (error->message, quoted));
  g_assert_cmpint (arip_process_get_sandbox (process), ==, ARIP_SANDBOX_SECCOMP);
}

static void
test_seccomp_ptrace (void)
{
  check_blocked ("ptrace", "ptrace");
}

static void
test_seccomp_unshare (void)
{
  check_blocked ("unshare", "unshare");
}

/* ---------------------------------------------------------------------- */
/* Limits                                                                 */

static void
test_memory_limit (void)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) limited = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  guint64 big = (guint64) 512 << 20;

#ifdef UNDER_ASAN
  g_test_skip ("AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply");
  return;
#endif

  arip_launcher_set_memory_limit (limited, (guint64) 256 << 20);
  g_assert_cmpuint (arip_launcher_get_memory_limit (limited), ==, (guint64) 256 << 20);

  value = arip_test_launcher_run (plain, "allocate", g_variant_new ("(t)", big), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&value, g_variant_unref);

  /* What fits under the limit works under it. */
  value = arip_test_launcher_run (limited, "allocate", g_variant_new ("(t)", (guint64) 16 << 20),
                                  NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&value, g_variant_unref);

  process = run_on (limited, "allocate", g_variant_new ("(t)", big), &value, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_test_message ("%s", error->message);
  /* (GLib puts a no-break space before the unit.) */
  g_assert_nonnull (strstr (error->message, "memory limit of 256.0"));
  g_assert_nonnull (strstr (error->message, "MiB"));
}

static void
test_cpu_limit (void)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) limited = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  arip_launcher_set_cpu_limit (limited, 1);
  g_assert_cmpuint (arip_launcher_get_cpu_limit (limited), ==, 1);

  value = arip_test_launcher_run (plain, "spin", g_variant_new ("(u)", 1500), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&value, g_variant_unref);

  process = run_on (limited, "spin", g_variant_new ("(u)", G_MAXUINT32), &value, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_test_message ("%s", error->message);
  g_assert_cmpint (arip_process_get_term_sig (process), ==, SIGXCPU);
  g_assert_nonnull (strstr (error->message, "exceeded its CPU time limit of 1 s"));
}

/* A pool worker's limit is per call: three calls of 0.6 s each pass on
 * one worker (1.8 s in all), one that spins for ever does not. */
static void
test_cpu_limit_pool (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  arip_launcher_set_cpu_limit (launcher, 1);
  pool = arip_pool_new (launcher, 1);
  for (guint i = 0; i < 3; i++)
    {
      value = arip_pool_run_sync (pool, "spin", g_variant_new ("(u)", 600), NULL, &error);
      g_assert_no_error (error);
      g_clear_pointer (&value, g_variant_unref);
    }
  value = arip_pool_run_sync (pool, "spin", g_variant_new ("(u)", G_MAXUINT32), NULL, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "exceeded its CPU time limit of 1 s"));
}

static void
test_rlimit (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  guint64 soft, hard;

  g_assert_false (arip_launcher_get_rlimit (launcher, RLIMIT_NOFILE, NULL, NULL));
  arip_launcher_set_rlimit (launcher, RLIMIT_NOFILE, 64, 128);
  g_assert_true (arip_launcher_get_rlimit (launcher, RLIMIT_NOFILE, &soft, &hard));
  g_assert_cmpuint (soft, ==, 64);
  g_assert_cmpuint (hard, ==, 128);

  value = arip_test_launcher_run (launcher, "getrlimit", g_variant_new ("(i)", RLIMIT_NOFILE),
                                  NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(tt)", (guint64) 64, (guint64) 128));
}

/* A hard limit above what the worker may have: it does not serve. */
static void
test_rlimit_refused (void)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  struct rlimit limit;

  if (getuid () != 0)
    {
      /* Raising a hard limit needs the privilege this user lacks. */
      getrlimit (RLIMIT_NOFILE, &limit);
      if (limit.rlim_max == RLIM_INFINITY)
        {
          g_test_skip ("no hard limit to go beyond");
          return;
        }
      arip_launcher_set_rlimit (launcher, RLIMIT_NOFILE, limit.rlim_max, (guint64) limit.rlim_max + 1);
    }
  else
    /* Root may raise limits, but not past the kernel's ceiling. */
    arip_launcher_set_rlimit (launcher, RLIMIT_NOFILE, (guint64) 1 << 40, (guint64) 1 << 40);

  value = arip_test_launcher_run (launcher, "getenv", g_variant_new ("(s)", "HOME"), NULL, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "RLIMIT_NOFILE"));
}

/* ---------------------------------------------------------------------- */
/* The environment                                                        */

static void
test_clear_env (void)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) cleared = sandboxed (ARIP_SANDBOX_CLEAR_ENV);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *seen = NULL;

  /* The test's environment has ARIP_TEST_PARENT_VAR=parent (meson sets
   * it): a secret of the parent's. */
  arip_launcher_setenv (cleared, "ARIP_TEST_GIVEN", "given", TRUE);

  seen = getenv_in (plain, "ARIP_TEST_PARENT_VAR");
  g_assert_cmpstr (seen, ==, "parent");
  g_clear_pointer (&seen, g_free);

  process = run_on (cleared, "getenv", g_variant_new ("(s)", "ARIP_TEST_PARENT_VAR"), &value, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(ms)", NULL));
  g_assert_cmpint (arip_process_get_sandbox (process), ==, ARIP_SANDBOX_CLEAR_ENV);

  seen = getenv_in (cleared, "ARIP_TEST_GIVEN");
  g_assert_cmpstr (seen, ==, "given");
  g_clear_pointer (&seen, g_free);
  /* Nor does the function see how its limits came. */
  seen = getenv_in (cleared, "ARIP_ISOLATION");
  g_assert_null (seen);
}

/* ---------------------------------------------------------------------- */
/* Everything at once, policies, pools                                    */

#define ALL_FLAGS (ARIP_SANDBOX_NO_NEW_PRIVS | ARIP_SANDBOX_NO_NETWORK | \
                   ARIP_SANDBOX_RESTRICT_FILESYSTEM | ARIP_SANDBOX_SECCOMP | \
                   ARIP_SANDBOX_CLEAR_ENV)

static void
test_everything (void)
{
  g_autoptr(AripLauncher) launcher = sandboxed (ALL_FLAGS);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  AripSandboxPolicy policy;
  AripSandboxFlags flags;

  if (skipped_without_seccomp ())
    return;
  g_assert_cmpint (arip_launcher_get_sandbox (launcher, &policy), ==, ALL_FLAGS);
  g_assert_cmpint (policy, ==, ARIP_SANDBOX_POLICY_REQUIRED);

  process = run_on (launcher, "getenv", g_variant_new ("(s)", "HOME"), &value, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(ms)", NULL));
  g_object_get (process, "sandbox", &flags, NULL);
  g_assert_cmpint (flags, ==, ALL_FLAGS);
  g_assert_cmpint (arip_process_get_sandbox (process), ==, ALL_FLAGS);
}

static void
test_pool_sandboxed (void)
{
  g_autoptr(AripLauncher) launcher = sandboxed (ARIP_SANDBOX_NO_NETWORK | ARIP_SANDBOX_SECCOMP);
  g_autoptr(AripPool) pool = arip_pool_new (launcher, 2);
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint32 result;

  if (skipped_without_seccomp ())
    return;

  for (guint i = 0; i < 4; i++)
    {
      value = arip_pool_run_sync (pool, "connect", g_variant_new ("(q)", 9), NULL, &error);
      g_assert_no_error (error);
      g_variant_get (value, "(i)", &result);
      g_assert_cmpint (result, !=, 0);
      g_assert_cmpint (result, !=, ECONNREFUSED);   /* there is no loopback at all */
      g_clear_pointer (&value, g_variant_unref);
    }

  process = arip_process_new_for_pool (pool, "connect", g_variant_new ("(q)", 9));
  value = arip_test_run_process (process, &error);
  g_assert_no_error (error);
  g_assert_cmpint (arip_process_get_sandbox (process), ==,
                   ARIP_SANDBOX_NO_NETWORK | ARIP_SANDBOX_SECCOMP);
  g_clear_pointer (&value, g_variant_unref);

  /* A pool worker the filter ends is replaced. */
  value = arip_pool_run_sync (pool, "syscall", g_variant_new ("(s)", "ptrace"), NULL, &error);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "“ptrace”"));
  g_clear_error (&error);
  value = arip_pool_run_sync (pool, "getenv", g_variant_new ("(s)", "HOME"), NULL, &error);
  g_assert_no_error (error);
}

/* (): whether the kernel says the worker can never gain privileges. */
static void
fn_no_new_privs (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(b)", prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1));
}

static void
test_no_new_privs (void)
{
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) locked = sandboxed (ARIP_SANDBOX_NO_NEW_PRIVS);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = arip_test_launcher_run (plain, "no_new_privs", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(b)", FALSE));
  g_clear_pointer (&value, g_variant_unref);
  value = arip_test_launcher_run (locked, "no_new_privs", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (value, g_variant_new ("(b)", TRUE));
}

/* Without the privilege to make a network namespace (CAP_SYS_ADMIN gone
 * from this process and from all it starts), the worker makes one inside
 * a user namespace of its own. */
static void
test_no_network_unprivileged (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(AripLauncher) cut = sandboxed (ARIP_SANDBOX_NO_NETWORK);
      g_autoptr(AripProcess) process = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;
      gint32 result;

      /* The bounding set acts at exec: the fork server and spawned
       * workers (exec'd from here) are without it. */
      g_assert_cmpint (prctl (PR_CAPBSET_DROP, 21 /* CAP_SYS_ADMIN */, 0, 0, 0), ==, 0);
      g_autofree char *max_namespaces = NULL;

      process = run_on (cut, "connect", g_variant_new ("(q)", 9), &value, &error);
      g_file_get_contents ("/proc/sys/user/max_user_namespaces", &max_namespaces, NULL, NULL);
      if (max_namespaces == NULL || g_ascii_strtoull (max_namespaces, NULL, 10) == 0)
        {
          /* A kernel that allows no user namespaces: the answer must be
           * this clear one. */
          g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SANDBOX);
          g_assert_nonnull (strstr (error->message, "user namespace"));
          return;
        }
      g_assert_no_error (error);
      g_variant_get (value, "(i)", &result);
      g_assert_cmpint (result, ==, ENETUNREACH);
      g_assert_cmpint (arip_process_get_sandbox (process), ==, ARIP_SANDBOX_NO_NETWORK);
      return;
    }

  if (getuid () != 0)
    {
      g_test_skip ("without root, every case here is unprivileged already");
      return;
    }
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* A filter that makes this process (and what it starts) look like a
 * container that forbids namespaces and has no Landlock: unshare() fails
 * with EPERM, the Landlock calls with ENOSYS. */
static void
forbid_namespaces_and_landlock (void)
{
  struct sock_filter code[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 1),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_landlock_create_ruleset, 0, 1),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = { G_N_ELEMENTS (code), code };

  g_assert_cmpint (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), ==, 0);
  g_assert_cmpint (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program), ==, 0);
}

static void
test_required_where_forbidden (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(AripLauncher) required = sandboxed (ARIP_SANDBOX_NO_NETWORK |
                                                    ARIP_SANDBOX_RESTRICT_FILESYSTEM |
                                                    ARIP_SANDBOX_NO_NEW_PRIVS);
      g_autoptr(AripLauncher) best = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      g_autoptr(AripProcess) process = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;

      forbid_namespaces_and_landlock ();

      process = run_on (required, "getenv", g_variant_new ("(s)", "HOME"), &value, &error);
      g_assert_null (value);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SANDBOX);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, "no network"));
      g_assert_nonnull (strstr (error->message, "restricted file system"));
      g_assert_nonnull (strstr (error->message, "Landlock"));
      g_assert_cmpint (arip_process_get_state (process), ==, ARIP_STATE_FINISHED);
      g_clear_object (&process);
      g_clear_error (&error);

      /* The same under BEST_EFFORT: it runs with what could be had. */
      arip_launcher_set_sandbox (best, ARIP_SANDBOX_NO_NETWORK | ARIP_SANDBOX_RESTRICT_FILESYSTEM |
                                 ARIP_SANDBOX_NO_NEW_PRIVS, ARIP_SANDBOX_POLICY_BEST_EFFORT);
      process = run_on (best, "getenv", g_variant_new ("(s)", "ARIP_TEST_PARENT_VAR"), &value, &error);
      g_assert_no_error (error);
      arip_test_assert_variant (value, g_variant_new ("(ms)", "parent"));
      g_assert_cmpint (arip_process_get_sandbox (process), ==, ARIP_SANDBOX_NO_NEW_PRIVS);
      return;
    }

  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  arip_register_function ("connect", fn_connect, NULL, NULL);
  arip_register_function ("write", fn_write, NULL, NULL);
  arip_register_function ("read", fn_read, NULL, NULL);
  arip_register_function ("syscall", fn_syscall, NULL, NULL);
  arip_register_function ("allocate", fn_allocate, NULL, NULL);
  arip_register_function ("spin", fn_spin, NULL, NULL);
  arip_register_function ("getenv", fn_getenv, NULL, NULL);
  arip_register_function ("getrlimit", fn_getrlimit, NULL, NULL);
  arip_register_function ("no_new_privs", fn_no_new_privs, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/Arip/Isolation/no-network", test_no_network);
  g_test_add_func ("/Arip/Isolation/no-network-unprivileged", test_no_network_unprivileged);
  g_test_add_func ("/Arip/Isolation/no-new-privs", test_no_new_privs);
  g_test_add_func ("/Arip/Isolation/restrict-filesystem", test_restrict_filesystem);
  g_test_add_func ("/Arip/Isolation/missing-allowed-path", test_missing_allowed_path);
  g_test_add_func ("/Arip/Isolation/seccomp/ptrace", test_seccomp_ptrace);
  g_test_add_func ("/Arip/Isolation/seccomp/unshare", test_seccomp_unshare);
  g_test_add_func ("/Arip/Isolation/memory-limit", test_memory_limit);
  g_test_add_func ("/Arip/Isolation/cpu-limit", test_cpu_limit);
  g_test_add_func ("/Arip/Isolation/cpu-limit-pool", test_cpu_limit_pool);
  g_test_add_func ("/Arip/Isolation/rlimit", test_rlimit);
  g_test_add_func ("/Arip/Isolation/rlimit-refused", test_rlimit_refused);
  g_test_add_func ("/Arip/Isolation/clear-env", test_clear_env);
  g_test_add_func ("/Arip/Isolation/everything", test_everything);
  g_test_add_func ("/Arip/Isolation/pool", test_pool_sandboxed);
  g_test_add_func ("/Arip/Isolation/required-where-forbidden", test_required_where_forbidden);

  return g_test_run ();
}
