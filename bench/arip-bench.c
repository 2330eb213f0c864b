/* arip-bench.c: arip's costs beside the floors they are held to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One run on the current machine measures each figure and, in the same
 * run, the floor it is compared with, interleaving the two so that both
 * see the same machine (frequency, load, caches):
 *
 *   one-shot arip_run_in_process      spawning a minimal GIO program
 *   (median of >= 100)                (arip-bench-true) and reaping it
 *   pool warm call latency            one-byte ping-pong over a socketpair
 *   (median of >= 10,000)             between two processes
 *   pool throughput, 2 workers        the same ping-pong with 2 children,
 *                                     the parent polling both
 *   a 64 MiB ay result (warm pool)    memcpy of 64 MiB into fresh memory
 *   idle pool worker RSS              an idle arip-bench-true's RSS
 *
 * and prints each figure, its floor, their ratio and, where there is one,
 * the target. Not a test: tests never time anything.
 *
 *   arip-bench [--quick] [--strict] [--only NAME]
 *
 * --quick takes fewer samples (a smoke run, not a measurement); --strict
 * exits 1 when a target is missed; --only measures one figure (one-shot,
 * warm, throughput, rss or blob), e.g. under a profiler.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arip.h>

#include "bench-floor.h"

#define BLOB_SIZE ((gsize) 64 * 1024 * 1024)

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

static void
fn_noop (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, NULL);
}

static void
fn_getpid (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(i)", (gint32) getpid ()));
}

/* (t): answers (ay) of that many bytes. The worker builds it once and
 * keeps it: what is measured is handing it over, not making it. */
static void
fn_blob (AripCall *call, GVariant *args, gpointer user_data)
{
  static GVariant *blob;
  guint64 size;

  g_variant_get (args, "(t)", &size);
  if (blob == NULL || g_variant_get_size (blob) < size)
    {
      guint8 *data = g_malloc (size);
      GVariant *bytes;

      for (gsize i = 0; i < size; i++)
        data[i] = (guint8) (i * 31u + 7u);
      g_clear_pointer (&blob, g_variant_unref);
      bytes = g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, data, size, TRUE, g_free, data);
      blob = g_variant_ref_sink (g_variant_new_tuple (&bytes, 1));
    }
  arip_call_return_value (call, blob);
}

/* (ay): keeps its arguments (they arrived in a sealed memfd) for "give". */
static GVariant *kept;

static void
fn_keep (AripCall *call, GVariant *args, gpointer user_data)
{
  g_clear_pointer (&kept, g_variant_unref);
  kept = g_variant_ref (args);
  arip_call_return_value (call, NULL);
}

/* Answers what "keep" kept: a value that lives in a sealed memfd already. */
static void
fn_give (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, kept);
}

/* ---------------------------------------------------------------------- */
/* Time and statistics                                                     */

static gboolean quick;
static char *only;

/* Whether the figure called @name is to be measured (--only). */
static gboolean
wanted (const char *name)
{
  return only == NULL || g_str_equal (only, name);
}

static inline gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

typedef struct {
  GArray *ns;   /* gint64 */
} Samples;

static void
samples_init (Samples *s)
{
  s->ns = g_array_new (FALSE, FALSE, sizeof (gint64));
}

static void
samples_add (Samples *s, gint64 ns)
{
  g_array_append_val (s->ns, ns);
}

static int
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static double
samples_quantile (Samples *s, double q)
{
  guint n = s->ns->len;
  guint i;

  g_assert (n > 0);
  g_array_sort (s->ns, cmp_gint64);
  i = (guint) (q * (n - 1) + 0.5);
  return (double) g_array_index (s->ns, gint64, MIN (i, n - 1));
}

static double
samples_median (Samples *s)
{
  guint n = s->ns->len;

  g_assert (n > 0);
  g_array_sort (s->ns, cmp_gint64);
  if (n % 2 == 1)
    return (double) g_array_index (s->ns, gint64, n / 2);
  return (g_array_index (s->ns, gint64, n / 2 - 1) + g_array_index (s->ns, gint64, n / 2)) / 2.0;
}

static void
samples_clear (Samples *s)
{
  g_clear_pointer (&s->ns, g_array_unref);
}

static char *
format_ns (double ns)
{
  if (ns < 10e3)
    return g_strdup_printf ("%.2f us", ns / 1e3);
  if (ns < 1e6)
    return g_strdup_printf ("%.1f us", ns / 1e3);
  if (ns < 1e9)
    return g_strdup_printf ("%.2f ms", ns / 1e6);
  return g_strdup_printf ("%.3f s", ns / 1e9);
}

static char *
format_spread (Samples *s)
{
  g_autofree char *p10 = format_ns (samples_quantile (s, 0.10));
  g_autofree char *p90 = format_ns (samples_quantile (s, 0.90));

  return g_strdup_printf ("n=%u, p10 %s, p90 %s", s->ns->len, p10, p90);
}

/* ---------------------------------------------------------------------- */
/* The table                                                               */

typedef struct {
  char   *figure;
  char   *value;
  char   *floor;
  char   *floor_value;
  double  ratio;        /* how many times the floor's cost */
  double  target;       /* 0: none */
  char   *notes;
} Row;

static GPtrArray *rows;
static gboolean any_missed;

static void
row_free (gpointer data)
{
  Row *row = data;

  g_free (row->figure);
  g_free (row->value);
  g_free (row->floor);
  g_free (row->floor_value);
  g_free (row->notes);
  g_free (row);
}

static void
add_row (const char *figure,
         char       *value,
         const char *floor,
         char       *floor_value,
         double      ratio,
         double      target,
         char       *notes)
{
  Row *row = g_new0 (Row, 1);

  row->figure = g_strdup (figure);
  row->value = value;
  row->floor = g_strdup (floor);
  row->floor_value = floor_value;
  row->ratio = ratio;
  row->target = target;
  row->notes = notes;
  g_ptr_array_add (rows, row);

  if (target > 0 && ratio > target)
    any_missed = TRUE;

  /* Progress, so a long run is not silent. */
  g_printerr ("  %s: %s (floor %s, %.2fx)\n", figure, value, floor_value, ratio);
}

/* Pads a UTF-8 string to @width characters. */
static void
print_cell (const char *s, int width)
{
  glong len = g_utf8_strlen (s, -1);

  fputs (s, stdout);
  for (glong i = len; i < width; i++)
    fputc (' ', stdout);
}

static void
print_table (void)
{
  int w[4] = { strlen ("figure"), strlen ("value"), strlen ("floor (same run)"), strlen ("value") };

  for (guint i = 0; i < rows->len; i++)
    {
      Row *row = rows->pdata[i];

      w[0] = MAX (w[0], g_utf8_strlen (row->figure, -1));
      w[1] = MAX (w[1], g_utf8_strlen (row->value, -1));
      w[2] = MAX (w[2], g_utf8_strlen (row->floor, -1));
      w[3] = MAX (w[3], g_utf8_strlen (row->floor_value, -1));
    }

  printf ("\n");
  print_cell ("figure", w[0] + 2);
  print_cell ("value", w[1] + 2);
  print_cell ("floor (same run)", w[2] + 2);
  print_cell ("value", w[3] + 2);
  printf ("ratio    target   result\n");
  for (int i = 0; i < w[0] + w[1] + w[2] + w[3] + 8 + 26; i++)
    fputs ("-", stdout);
  printf ("\n");

  for (guint i = 0; i < rows->len; i++)
    {
      Row *row = rows->pdata[i];
      g_autofree char *ratio = g_strdup_printf ("%.2fx", row->ratio);
      g_autofree char *target = row->target > 0 ? g_strdup_printf ("<= %.1fx", row->target)
                                                : g_strdup ("-");
      const char *verdict = row->target <= 0 ? "-" : row->ratio <= row->target ? "PASS" : "MISS";

      print_cell (row->figure, w[0] + 2);
      print_cell (row->value, w[1] + 2);
      print_cell (row->floor, w[2] + 2);
      print_cell (row->floor_value, w[3] + 2);
      print_cell (ratio, 9);
      print_cell (target, 9);
      printf ("%s\n", verdict);
    }

  printf ("\nratio: the figure's cost over the floor's (time / time, floor rate / rate,\n"
          "memory / memory); 1.00x is as cheap as the floor.\n\nNotes:\n");
  for (guint i = 0; i < rows->len; i++)
    {
      Row *row = rows->pdata[i];

      if (row->notes != NULL)
        printf ("  %s: %s\n", row->figure, row->notes);
    }
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

/* CPU time this thread has used, in ns. */
static gint64
thread_cpu_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* CPU time process @pid (all its threads) has used, in ns, from
 * /proc/PID/schedstat; 0 if unknown. */
static gint64
process_cpu_ns (GPid pid)
{
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autofree char *task_dir = g_strdup_printf ("/proc/%d/task", (int) pid);
  const char *tid;
  gint64 total = 0;

  dir = g_dir_open (task_dir, 0, NULL);
  if (dir == NULL)
    return 0;
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_free (path);
      g_free (contents);
      contents = NULL;
      path = g_strdup_printf ("%s/%s/schedstat", task_dir, tid);
      if (g_file_get_contents (path, &contents, NULL, NULL))
        total += g_ascii_strtoll (contents, NULL, 10);
    }
  return total;
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* A result and when its callback ran: latency is measured up to the
 * callback, as a caller sees it, not to the end of that main context
 * iteration. */
typedef struct {
  GAsyncResult *result;
  gint64        done_ns;
} Timed;

static void
store_timed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Timed *timed = user_data;

  timed->done_ns = now_ns ();
  timed->result = g_object_ref (result);
}

static void
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
}

static GVariant *
pool_call (AripPool *pool, const char *function, GVariant *args)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GVariant *value;

  arip_pool_run_async (pool, function, args, NULL, store_result, &result);
  wait_for (&result);
  value = arip_pool_run_finish (pool, result, &error);
  if (value == NULL)
    g_error ("pool call “%s” failed: %s", function, error->message);
  return value;
}

static void
iterate_for (guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * 1000;

  while (g_get_monotonic_time () < end)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

/* The value of the "@field:" line of /proc/@pid/@file, in KiB, or 0. */
static guint64
read_proc_kib (GPid        pid,
               const char *file,
               const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/%s", (int) pid, file);
  g_autofree char *contents = NULL;
  g_autofree char *key = g_strdup_printf ("\n%s:", field);
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  line = strstr (contents, key);
  if (line == NULL)
    return 0;
  return g_ascii_strtoull (line + strlen (key), NULL, 10);
}

static guint64
read_rss_kib (GPid pid)
{
  return read_proc_kib (pid, "status", "VmRSS");
}

/* Memory only this process uses (USS), in KiB, or 0. */
static guint64
read_private_kib (GPid pid)
{
  return read_proc_kib (pid, "smaps_rollup", "Private_Clean") +
         read_proc_kib (pid, "smaps_rollup", "Private_Dirty");
}

static char *
true_path (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = NULL;
  char *path;

  if (self == NULL)
    g_error ("cannot read /proc/self/exe");
  dir = g_path_get_dirname (self);
  path = g_build_filename (dir, "arip-bench-true", NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
    g_error ("%s is missing: build the bench/ directory", path);
  return path;
}

/* ---------------------------------------------------------------------- */
/* One-shots vs their floors                                               */

/* posix_spawn of the smallest GIO program, and waitpid: what spawning a
 * worker cannot beat. */
static gint64
spawn_true_once (const char *path)
{
  char *argv[] = { (char *) path, NULL };
  gint64 start = now_ns ();
  int status, r;
  pid_t pid;

  r = posix_spawn (&pid, path, NULL, NULL, argv, environ);
  if (r != 0)
    g_error ("posix_spawn %s: %s", path, g_strerror (r));
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      g_error ("waitpid: %s", g_strerror (errno));
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("%s failed (wait status %d)", path, status);
  return now_ns () - start;
}

/* A resident fork server (arip-bench-true --fork-server): one request, a
 * fork, the child's byte, the server's byte once it reaped the child. */
typedef struct {
  GPid pid;
  int  in, out;
} ForkServer;

static ForkServer
fork_server_start (const char *path)
{
  const char * const argv[] = { path, "--fork-server", NULL };
  g_autoptr(GError) error = NULL;
  ForkServer server;

  if (!g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                 &server.pid, &server.in, &server.out, NULL, &error))
    g_error ("starting %s --fork-server: %s", path, error->message);
  return server;
}

static gint64
fork_server_once (ForkServer *server)
{
  char c = 'r', reply[2];
  gint64 start = now_ns ();
  gsize got = 0;

  if (write (server->in, &c, 1) != 1)
    g_error ("the fork server floor is gone");
  while (got < 2)
    {
      gssize n = read (server->out, reply + got, 2 - got);

      if (n <= 0)
        g_error ("the fork server floor is gone");
      got += n;
    }
  if (reply[0] != 'c' || reply[1] != 'x')
    g_error ("the fork server floor's child failed");
  return now_ns () - start;
}

static void
fork_server_stop (ForkServer *server)
{
  close (server->in);
  close (server->out);
  waitpid (server->pid, NULL, 0);
}

static gint64
one_shot_once (AripLauncher    *launcher,
               AripStartMethod *method)
{
  g_autoptr(AripProcess) p = arip_process_new (launcher, "noop", NULL);
  Timed timed = { NULL, 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint64 start = now_ns ();

  arip_process_start_async (p, NULL, NULL, NULL);
  arip_process_wait_async (p, NULL, store_timed, &timed);
  wait_for (&timed.result);
  value = arip_process_wait_finish (p, timed.result, &error);
  g_object_unref (timed.result);
  if (value == NULL)
    g_error ("one-shot run failed: %s", error->message);
  if (method != NULL)
    *method = arip_process_get_start_method (p);
  return timed.done_ns - start;
}

static guint64
own_rss_mib (void)
{
  return read_rss_kib (getpid ()) / 1024;
}

/* Spawn one-shots against posix_spawn, interleaved. */
static void
bench_spawn_one_shot (const char *true_exe,
                      const char *label)
{
  const guint n = quick ? 20 : 200;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  Samples runs, spawns;
  double run, spawn;
  g_autofree char *spread_a = NULL;
  g_autofree char *spread_b = NULL;
  g_autofree char *figure = NULL;
  guint64 rss = own_rss_mib ();

  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_SPAWN);
  samples_init (&runs);
  samples_init (&spawns);
  for (guint i = 0; i < 5; i++)
    {
      one_shot_once (launcher, NULL);
      spawn_true_once (true_exe);
    }
  for (guint i = 0; i < n; i++)
    {
      samples_add (&spawns, spawn_true_once (true_exe));
      samples_add (&runs, one_shot_once (launcher, NULL));
    }

  run = samples_median (&runs);
  spawn = samples_median (&spawns);
  spread_a = format_spread (&runs);
  spread_b = format_spread (&spawns);
  figure = g_strdup_printf ("one-shot, spawn, %s parent (%" G_GUINT64_FORMAT " MiB RSS), median",
                            label, rss);
  add_row (figure, format_ns (run),
           "posix_spawn arip-bench-true + waitpid, median", format_ns (spawn),
           run / spawn, 1.3,
           g_strdup_printf ("run %s; floor %s; a trivial function, from the call to its callback",
                            spread_a, spread_b));
  samples_clear (&runs);
  samples_clear (&spawns);
}

/* Fork server one-shots against a resident fork server's round trip. */
static void
bench_forkserver_one_shot (const char *true_exe)
{
  const guint n = quick ? 50 : 500;
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  ForkServer server = fork_server_start (true_exe);
  Samples runs, floors;
  double run, floor;
  g_autofree char *spread_a = NULL;
  g_autofree char *spread_b = NULL;
  guint spawned = 0;

  arip_launcher_set_start_method (launcher, ARIP_START_METHOD_FORKSERVER);
  samples_init (&runs);
  samples_init (&floors);

  /* Until the fork server has said hello, workers are spawned. */
  for (guint i = 0; i < 1000; i++)
    {
      AripStartMethod method;

      one_shot_once (launcher, &method);
      if (method == ARIP_START_METHOD_FORKSERVER)
        break;
      g_usleep (10 * 1000);
    }
  for (guint i = 0; i < 20; i++)
    {
      one_shot_once (launcher, NULL);
      fork_server_once (&server);
    }
  for (guint i = 0; i < n; i++)
    {
      AripStartMethod method;

      samples_add (&floors, fork_server_once (&server));
      samples_add (&runs, one_shot_once (launcher, &method));
      if (method != ARIP_START_METHOD_FORKSERVER)
        spawned++;
    }
  fork_server_stop (&server);
  if (spawned > 0)
    g_error ("%u of the fork server one-shots were spawned", spawned);

  run = samples_median (&runs);
  floor = samples_median (&floors);
  spread_a = format_spread (&runs);
  spread_b = format_spread (&floors);
  add_row ("one-shot, fork server, median", format_ns (run),
           "fork-server round trip (GIO server forks, child replies, reaped), median",
           format_ns (floor), run / floor, 1.5,
           g_strdup_printf ("run %s; floor %s; the floor: a byte to a resident arip-bench-true "
                            "--fork-server, which forks a child that writes a byte and exits, "
                            "reaps it and writes a byte", spread_a, spread_b));
  samples_clear (&runs);
  samples_clear (&floors);
}

/* A one-shot in the whole sandbox against the same without it,
 * interleaved. */
static void
bench_sandboxed_one_shot (AripStartMethod method)
{
  const guint n = quick ? 20 : 200;
  const AripSandboxFlags every = ARIP_SANDBOX_NO_NEW_PRIVS | ARIP_SANDBOX_NO_NETWORK |
                                 ARIP_SANDBOX_RESTRICT_FILESYSTEM | ARIP_SANDBOX_SECCOMP |
                                 ARIP_SANDBOX_CLEAR_ENV;
  g_autoptr(AripLauncher) plain = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) boxed = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripProcess) probe = NULL;
  g_autofree char *spread_a = NULL;
  g_autofree char *spread_b = NULL;
  g_autofree char *figure = NULL;
  g_autofree char *applied = NULL;
  Samples runs, floors;
  double run, floor;

  arip_launcher_set_start_method (plain, method);
  arip_launcher_set_start_method (boxed, method);
  arip_launcher_set_sandbox (boxed, every, ARIP_SANDBOX_POLICY_BEST_EFFORT);
  arip_launcher_set_memory_limit (boxed, (guint64) 1 << 30);
  arip_launcher_set_cpu_limit (boxed, 60);
  samples_init (&runs);
  samples_init (&floors);
  for (guint i = 0; i < 20; i++)
    {
      one_shot_once (plain, NULL);
      one_shot_once (boxed, NULL);
    }
  for (guint i = 0; i < n; i++)
    {
      samples_add (&floors, one_shot_once (plain, NULL));
      samples_add (&runs, one_shot_once (boxed, NULL));
    }

  /* What this machine let the worker have. */
  probe = arip_process_new (boxed, "noop", NULL);
  arip_process_start_async (probe, NULL, NULL, NULL);
  while (arip_process_get_state (probe) != ARIP_STATE_FINISHED)
    g_main_context_iteration (NULL, TRUE);
  applied = g_flags_to_string (ARIP_TYPE_SANDBOX_FLAGS, arip_process_get_sandbox (probe));

  run = samples_median (&runs);
  floor = samples_median (&floors);
  spread_a = format_spread (&runs);
  spread_b = format_spread (&floors);
  figure = g_strdup_printf ("one-shot, %s, whole sandbox and limits, median",
                            method == ARIP_START_METHOD_SPAWN ? "spawn" : "fork server");
  add_row (figure, format_ns (run), "the same one-shot without them, median", format_ns (floor),
           run / floor, 0,
           g_strdup_printf ("run %s; floor %s; applied: %s", spread_a, spread_b, applied));
  samples_clear (&runs);
  samples_clear (&floors);
}

static void
bench_one_shot (const char *true_exe)
{
  const gsize big = (gsize) 1 << 30;
  guint8 *ballast;

  bench_forkserver_one_shot (true_exe);
  bench_spawn_one_shot (true_exe, "small");

  /* A parent of 1 GiB, every page touched: a spawn must not copy it. */
  ballast = g_malloc (big);
  memset (ballast, 1, big);
  bench_spawn_one_shot (true_exe, "1 GiB");
  if (ballast[big - 1] != 1)
    g_error ("the ballast changed");
  g_free (ballast);
}

/* ---------------------------------------------------------------------- */
/* Ping-pong floors                                                        */

/* The echo child and ping(): bench-floor.c. */

/* ---------------------------------------------------------------------- */
/* Pool warm call latency vs ping-pong                                     */

static gint64
warm_call_once (AripPool *pool)
{
  Timed timed = { NULL, 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint64 start = now_ns ();

  arip_pool_run_async (pool, "noop", NULL, NULL, store_timed, &timed);
  wait_for (&timed.result);
  value = arip_pool_run_finish (pool, timed.result, &error);
  g_object_unref (timed.result);
  if (value == NULL)
    g_error ("pool call failed: %s", error->message);
  return timed.done_ns - start;
}

typedef struct {
  double median_call, median_ping;
  double cpu_parent_call, cpu_worker, cpu_parent_ping, cpu_echoer;   /* us per round trip */
  char  *spread_call, *spread_ping;
} WarmRound;

/* One round: a fresh echo child and a fresh 1-worker pool, measured in
 * alternating blocks. */
static void
warm_round (guint      n,
            gboolean   pinned,
            WarmRound *out)
{
  const guint blocks = 10;
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GVariant) who = NULL;
  g_autoptr(GAsyncResult) closed = NULL;
  Samples calls, pings;
  Echoer echoer = bench_echoer_start ();
  gint64 cpu_parent_calls = 0, cpu_worker = 0, cpu_parent_pings = 0, cpu_echoer = 0;
  gint32 worker_pid;

  samples_init (&calls);
  samples_init (&pings);

  who = pool_call (pool, "getpid", NULL);
  g_variant_get (who, "(i)", &worker_pid);
  if (pinned)
    {
      /* The worker was forked by the fork server, which is not pinned;
       * the echo child inherits our CPU. */
      cpu_set_t one;

      CPU_ZERO (&one);
      CPU_SET (0, &one);
      if (sched_setaffinity (worker_pid, sizeof one, &one) < 0)
        g_error ("pinning the worker: %s", g_strerror (errno));
    }
  for (guint i = 0; i < 200; i++)
    {
      warm_call_once (pool);
      bench_ping (echoer.fd);
    }

  /* CPU time is counted too: it says where the time goes, and suffers
   * less than latency from a busy machine. */
  for (guint b = 0; b < blocks; b++)
    {
      gint64 cpu0 = thread_cpu_ns (), peer0 = process_cpu_ns (echoer.pid);

      for (guint i = 0; i < n / blocks; i++)
        {
          gint64 start = now_ns ();

          bench_ping (echoer.fd);
          samples_add (&pings, now_ns () - start);
        }
      cpu_parent_pings += thread_cpu_ns () - cpu0;
      cpu_echoer += process_cpu_ns (echoer.pid) - peer0;

      cpu0 = thread_cpu_ns ();
      peer0 = process_cpu_ns (worker_pid);
      for (guint i = 0; i < n / blocks; i++)
        samples_add (&calls, warm_call_once (pool));
      cpu_parent_calls += thread_cpu_ns () - cpu0;
      cpu_worker += process_cpu_ns (worker_pid) - peer0;
    }
  bench_echoer_stop (&echoer);

  out->median_call = samples_median (&calls);
  out->median_ping = samples_median (&pings);
  out->spread_call = format_spread (&calls);
  out->spread_ping = format_spread (&pings);
  out->cpu_parent_call = cpu_parent_calls / 1e3 / calls.ns->len;
  out->cpu_worker = cpu_worker / 1e3 / calls.ns->len;
  out->cpu_parent_ping = cpu_parent_pings / 1e3 / pings.ns->len;
  out->cpu_echoer = cpu_echoer / 1e3 / pings.ns->len;
  samples_clear (&calls);
  samples_clear (&pings);

  arip_pool_close_async (pool, NULL, store_result, &closed);
  wait_for (&closed);
}

static void
bench_warm_call (gboolean pinned)
{
  const guint n = quick ? 1000 : 10000;
  const guint rounds = 3;
  WarmRound r[3];
  guint best_call = 0, best_ping = 0;
  g_autoptr(GString) per_round = g_string_new (NULL);

  /* Where the scheduler puts a pair of processes decides a round trip: on
   * one CPU it is a few microseconds, across CPUs of a virtual machine it
   * can be ten times that (waking an idle virtual CPU). Each round has
   * fresh processes; the best round of each is compared, and every
   * round is shown. */
  for (guint i = 0; i < rounds; i++)
    {
      g_autofree char *c = NULL;
      g_autofree char *p = NULL;

      warm_round (n, pinned, &r[i]);
      if (r[i].median_call < r[best_call].median_call)
        best_call = i;
      if (r[i].median_ping < r[best_ping].median_ping)
        best_ping = i;
      c = format_ns (r[i].median_call);
      p = format_ns (r[i].median_ping);
      g_string_append_printf (per_round, "%s%s/%s", i > 0 ? ", " : "", c, p);
    }

  add_row (pinned ? "pool warm call latency, both on one CPU, median"
                  : "pool warm call latency, unpinned, median",
           format_ns (r[best_call].median_call),
           pinned ? "1-byte socketpair ping-pong, one CPU, median"
                  : "1-byte socketpair ping-pong, unpinned, median",
           format_ns (r[best_ping].median_ping),
           r[best_call].median_call / r[best_ping].median_ping, pinned ? 1.3 : 0,
           g_strdup_printf ("best of %u rounds of %u, each with a fresh worker and echo child "
                            "(call/ping-pong medians by round: %s); best call round: %s; "
                            "best ping-pong round: %s; one noop call at a time on a 1-worker "
                            "pool, from arip_pool_run_async to its callback; CPU per round "
                            "trip: call %.2f us parent + %.2f us worker, ping-pong %.2f us + "
                            "%.2f us",
                            rounds, n, per_round->str,
                            r[best_call].spread_call, r[best_ping].spread_ping,
                            r[best_call].cpu_parent_call, r[best_call].cpu_worker,
                            r[best_ping].cpu_parent_ping, r[best_ping].cpu_echoer));
  for (guint i = 0; i < rounds; i++)
    {
      g_free (r[i].spread_call);
      g_free (r[i].spread_ping);
    }
}

/* ---------------------------------------------------------------------- */
/* Throughput with 2 workers vs ping-pong with 2 children                  */

typedef struct {
  AripPool *pool;
  guint     to_start;
  guint     in_flight;
  guint     failed;
} Flow;

static void
on_flow_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Flow *flow = user_data;
  g_autoptr(GVariant) value = NULL;

  value = arip_pool_run_finish (flow->pool, result, NULL);
  if (value == NULL)
    flow->failed++;
  flow->in_flight--;
  if (flow->to_start > 0)
    {
      flow->to_start--;
      flow->in_flight++;
      arip_pool_run_async (flow->pool, "noop", NULL, NULL, on_flow_done, flow);
    }
}

static double
pool_rate (AripPool *pool, guint n, guint depth)
{
  Flow flow = { pool, n, 0, 0 };
  gint64 start = now_ns ();

  while (flow.in_flight < depth && flow.to_start > 0)
    {
      flow.to_start--;
      flow.in_flight++;
      arip_pool_run_async (pool, "noop", NULL, NULL, on_flow_done, &flow);
    }
  while (flow.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);
  if (flow.failed > 0)
    g_error ("%u of %u pool calls failed", flow.failed, n);
  return n / ((now_ns () - start) / 1e9);
}

static double
pingpong_rate (guint n)
{
  Echoer e[2] = { bench_echoer_start (), bench_echoer_start () };
  guint sent = 0, done = 0;
  gint64 start;
  char c = 'p';

  start = now_ns ();
  for (guint i = 0; i < 2; i++)
    {
      if (write (e[i].fd, &c, 1) != 1)
        g_error ("write: %s", g_strerror (errno));
      sent++;
    }
  while (done < n)
    {
      struct pollfd fds[2] = { { e[0].fd, POLLIN, 0 }, { e[1].fd, POLLIN, 0 } };

      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          g_error ("poll: %s", g_strerror (errno));
        }
      for (guint i = 0; i < 2; i++)
        if (fds[i].revents & POLLIN)
          {
            if (read (e[i].fd, &c, 1) != 1)
              g_error ("read: %s", g_strerror (errno));
            done++;
            if (sent < n)
              {
                if (write (e[i].fd, &c, 1) != 1)
                  g_error ("write: %s", g_strerror (errno));
                sent++;
              }
          }
    }
  start = now_ns () - start;
  bench_echoer_stop (&e[0]);
  bench_echoer_stop (&e[1]);
  return n / (start / 1e9);
}

static double
pool_rate_fresh (guint n, guint depth)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(GAsyncResult) closed = NULL;
  double rate;

  /* Both workers up and warm. */
  pool_rate (pool, 500, depth);
  if (arip_pool_get_n_workers (pool) != 2)
    g_warning ("the throughput pool runs %u workers, not 2", arip_pool_get_n_workers (pool));
  rate = pool_rate (pool, n, depth);

  arip_pool_close_async (pool, NULL, store_result, &closed);
  wait_for (&closed);
  return rate;
}

static void
bench_throughput (void)
{
  const guint n = quick ? 2000 : 20000;
  const guint depth = 32;
  const guint rounds = 3;
  double pool_best = 0, floor_best = 0;

  /* Best of a few rounds each, alternating, with fresh processes each
   * round (see bench_warm_call() on placement). */
  for (guint r = 0; r < rounds; r++)
    {
      floor_best = MAX (floor_best, pingpong_rate (n / rounds));
      pool_best = MAX (pool_best, pool_rate_fresh (n / rounds, depth));
    }

  add_row ("pool throughput, 2 workers",
           g_strdup_printf ("%.0f calls/s", pool_best),
           "ping-pong, 2 children, parent polls",
           g_strdup_printf ("%.0f round trips/s", floor_best),
           floor_best / pool_best, 0,
           g_strdup_printf ("best of %u rounds of %u noop calls, %u in flight, fresh workers "
                            "each round; floor: one byte in flight per child", rounds, n / rounds, depth));
}

/* ---------------------------------------------------------------------- */
/* 64 MiB result vs memcpy                                                 */

/* CPU time this process (all its threads) has used, in ns. */
static gint64
own_cpu_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* A 64 MiB result from a warm pool worker, timed until the parent holds
 * the bytes; @function is "blob" (built by the worker, sent in a new
 * memfd) or "give" (already in a sealed memfd: sent on as it is). */
static void
blob_calls (AripPool   *pool,
            const char *function,
            guint       n,
            Samples    *calls,
            Samples    *copies,
            gint64     *parent_cpu)
{
  guint8 *source = g_malloc (BLOB_SIZE);
  volatile guint touched = 0;

  memset (source, 0x5a, BLOB_SIZE);
  *parent_cpu = 0;
  for (guint i = 0; i < n; i++)
    {
      gint64 start, cpu0;
      guint8 *dest;
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GVariant) bytes = NULL;
      const guint8 *data;
      gsize len;

      /* Fresh memory each time, as a result needs. */
      start = now_ns ();
      dest = g_malloc (BLOB_SIZE);
      memcpy (dest, source, BLOB_SIZE);
      samples_add (copies, now_ns () - start);
      if (dest[BLOB_SIZE - 1] != 0x5a)
        g_error ("memcpy went wrong");
      g_free (dest);

      cpu0 = own_cpu_ns ();
      start = now_ns ();
      arip_pool_run_async (pool, function, g_variant_new ("(t)", (guint64) BLOB_SIZE), NULL,
                           store_result, &result);
      wait_for (&result);
      value = arip_pool_run_finish (pool, result, &error);
      if (value == NULL)
        g_error ("%s call failed: %s", function, error->message);
      bytes = g_variant_get_child_value (value, 0);
      data = g_variant_get_fixed_array (bytes, &len, 1);
      /* Every page read once, as the memcpy writes every page. */
      for (gsize at = 0; at < len; at += 4096)
        touched += data[at];
      samples_add (calls, now_ns () - start);
      *parent_cpu += own_cpu_ns () - cpu0;

      if (len != BLOB_SIZE || data[1] != 38 || data[BLOB_SIZE - 1] != (guint8) ((BLOB_SIZE - 1) * 31u + 7u))
        g_error ("the blob came back wrong (%" G_GSIZE_FORMAT " bytes)", len);
    }
  g_free (source);
}

static void
bench_blob (AripPool *pool)
{
  const guint n = quick ? 3 : 15;
  Samples calls, copies, gives, copies2;
  double call, copy, give, copy2;
  gint64 cpu_calls, cpu_gives;
  g_autofree char *spread_a = NULL;
  g_autofree char *spread_b = NULL;
  g_autofree char *spread_c = NULL;

  samples_init (&calls);
  samples_init (&copies);
  samples_init (&gives);
  samples_init (&copies2);

  /* The worker builds its blob once; then it is given it back once, in a
   * memfd, to keep. */
  {
    g_autoptr(GVariant) blob = pool_call (pool, "blob", g_variant_new ("(t)", (guint64) BLOB_SIZE));

    g_variant_unref (pool_call (pool, "keep", blob));
  }

  blob_calls (pool, "blob", n, &calls, &copies, &cpu_calls);
  blob_calls (pool, "give", n, &gives, &copies2, &cpu_gives);

  call = samples_median (&calls);
  copy = samples_median (&copies);
  give = samples_median (&gives);
  copy2 = samples_median (&copies2);
  spread_a = format_spread (&calls);
  spread_b = format_spread (&copies);
  spread_c = format_spread (&gives);
  add_row ("64 MiB ay result (warm pool), median",
           format_ns (call),
           "memcpy 64 MiB into fresh memory, median",
           format_ns (copy),
           call / copy, 1.3,
           g_strdup_printf ("call %s (%.0f MiB/s); memcpy %s (%.0f MiB/s); the worker built the "
                            "blob beforehand and writes it into a sealed memfd; timed until "
                            "the parent has read every page of it",
                            spread_a, 64 / (call / 1e9),
                            spread_b, 64 / (copy / 1e9)));
  add_row ("parent CPU for that 64 MiB result, mean",
           format_ns (cpu_calls / (double) n),
           "memcpy 64 MiB into fresh memory, median",
           format_ns (copy),
           cpu_calls / (double) n / copy, 0.1,
           g_strdup ("all the parent's threads (CLOCK_PROCESS_CPUTIME_ID) from the call to "
                     "having read every page"));
  add_row ("64 MiB result already in a sealed memfd, median",
           format_ns (give),
           "memcpy 64 MiB into fresh memory, median",
           format_ns (copy2),
           give / copy2, 0.4,
           g_strdup_printf ("call %s; the worker answers a value that arrived in a memfd, which "
                            "goes back as that memfd: nothing is copied; parent CPU %.2f ms per "
                            "call", spread_c, cpu_gives / 1e6 / n));
  samples_clear (&calls);
  samples_clear (&copies);
  samples_clear (&gives);
  samples_clear (&copies2);
}

/* ---------------------------------------------------------------------- */
/* Idle worker RSS                                                         */

static guint64
true_rss_kib (const char *true_exe,
              guint64    *private_kib)
{
  const char * const argv[] = { true_exe, "--wait", NULL };
  g_autoptr(GError) error = NULL;
  int in_fd = -1, out_fd = -1;
  guint64 rss;
  char c;
  int status;
  GPid pid;

  if (!g_spawn_async_with_pipes_and_fds (NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                         NULL, NULL, -1, -1, -1, NULL, NULL, 0,
                                         &pid, &in_fd, &out_fd, NULL, &error))
    g_error ("spawning %s: %s", true_exe, error->message);
  if (read (out_fd, &c, 1) != 1)
    g_error ("%s did not say it was ready", true_exe);
  g_usleep (100 * 1000);
  rss = read_rss_kib (pid);
  *private_kib = read_private_kib (pid);
  close (in_fd);
  close (out_fd);
  waitpid (pid, &status, 0);
  return rss;
}

static void
bench_idle_rss (const char *true_exe)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GVariant) value = NULL;
  guint64 worker_rss, floor_rss, worker_private, floor_private;
  gint32 pid;

  /* A worker that served a few small calls, then idles. */
  for (guint i = 0; i < 10; i++)
    g_variant_unref (pool_call (pool, "noop", NULL));
  value = pool_call (pool, "getpid", NULL);
  g_variant_get (value, "(i)", &pid);
  iterate_for (200);

  worker_rss = read_rss_kib (pid);
  worker_private = read_private_kib (pid);
  floor_rss = true_rss_kib (true_exe, &floor_private);
  if (worker_rss == 0 || floor_rss == 0)
    g_error ("could not read VmRSS from /proc");

  add_row ("idle pool worker RSS",
           g_strdup_printf ("%.1f MiB", worker_rss / 1024.0),
           "idle arip-bench-true RSS",
           g_strdup_printf ("%.1f MiB", floor_rss / 1024.0),
           (double) worker_rss / floor_rss, 0,
           g_strdup_printf ("VmRSS of worker %d (this program, re-run) after 11 calls; "
                            "floor: arip-bench-true --wait (GIO linked, types ready); "
                            "private (USS): worker %.1f MiB, floor %.1f MiB, the rest is "
                            "shared library pages", (int) pid,
                            worker_private / 1024.0, floor_private / 1024.0));
}

/* ---------------------------------------------------------------------- */

static void
print_machine (void)
{
  struct utsname u;
  g_autofree char *model = NULL;
  g_autofree char *cpuinfo = NULL;
  g_autofree char *loadavg = NULL;
  g_autofree char *shmem = NULL;

  if (g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    {
      const char *line = strstr (cpuinfo, "model name");
      const char *colon = line != NULL ? strchr (line, ':') : NULL;

      if (colon != NULL)
        model = g_strndup (colon + 2, strcspn (colon + 2, "\n"));
    }
  if (!g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL))
    loadavg = g_strdup ("?");
  else
    loadavg[strcspn (loadavg, " ")] = '\0';   /* the 1-minute figure */
  uname (&u);
  printf ("arip %d.%d.%d benchmark%s\n", ARIP_MAJOR_VERSION, ARIP_MINOR_VERSION, ARIP_MICRO_VERSION,
          quick ? " (--quick: few samples, not a measurement)" : "");
  printf ("machine: %u CPUs%s%s, %s %s, GLib %u.%u.%u, load average %s at the start\n",
          g_get_num_processors (), model ? ", " : "", model ? model : "",
          u.sysname, u.release, glib_major_version, glib_minor_version, glib_micro_version,
          loadavg);
  /* Large values move in huge pages only where the kernel gives memfds
   * some ("advise", "within_size", "always"): the 64 MiB figures depend on
   * it several times over. */
  if (g_file_get_contents ("/sys/kernel/mm/transparent_hugepage/shmem_enabled", &shmem, NULL, NULL))
    printf ("shared memory huge pages (transparent_hugepage/shmem_enabled): %s", shmem);
}

int
main (int argc, char **argv)
{
  gboolean strict = FALSE;
  const GOptionEntry entries[] = {
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "Take few samples (a smoke run)", NULL },
    { "strict", 0, 0, G_OPTION_ARG_NONE, &strict, "Exit with status 1 when a target is missed", NULL },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only,
      "Measure one figure only (for profiling): one-shot, sandbox, warm, throughput, rss or blob",
      "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AripPool) pool = NULL;
  g_autofree char *true_exe = NULL;

  arip_register_function ("noop", fn_noop, NULL, NULL);
  arip_register_function ("getpid", fn_getpid, NULL, NULL);
  arip_register_function ("blob", fn_blob, NULL, NULL);
  arip_register_function ("keep", fn_keep, NULL, NULL);
  arip_register_function ("give", fn_give, NULL, NULL);
  arip_init (&argc, &argv);

  options = g_option_context_new (NULL);
  g_option_context_set_summary (options, "Times arip against floors measured in the same run.");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  if (only != NULL && !wanted ("one-shot") && !wanted ("warm") && !wanted ("throughput") &&
      !wanted ("rss") && !wanted ("blob") && !wanted ("sandbox"))
    {
      g_printerr ("--only: no figure is called \"%s\"\n", only);
      return 2;
    }

  true_exe = true_path ();
  rows = g_ptr_array_new_with_free_func (row_free);
  print_machine ();
  fflush (stdout);

  pool = arip_pool_new (NULL, 1);
  if (wanted ("one-shot"))
    bench_one_shot (true_exe);
  if (wanted ("warm"))
    {
      cpu_set_t all, one;

      /* Placement across virtual CPUs moves a round trip several times
       * over, for the floor too: both ways are shown. */
      bench_warm_call (FALSE);
      sched_getaffinity (0, sizeof all, &all);
      CPU_ZERO (&one);
      CPU_SET (0, &one);
      sched_setaffinity (0, sizeof one, &one);
      bench_warm_call (TRUE);
      sched_setaffinity (0, sizeof all, &all);
    }
  if (wanted ("sandbox"))
    {
      bench_sandboxed_one_shot (ARIP_START_METHOD_FORKSERVER);
      bench_sandboxed_one_shot (ARIP_START_METHOD_SPAWN);
    }
  if (wanted ("throughput"))
    bench_throughput ();
  if (wanted ("rss"))
    bench_idle_rss (true_exe);
  if (wanted ("blob"))
    bench_blob (pool);

  print_table ();
  g_ptr_array_unref (rows);

  {
    g_autoptr(GAsyncResult) closed = NULL;

    arip_pool_close_async (pool, NULL, store_result, &closed);
    wait_for (&closed);
  }

  g_free (only);
  return strict && any_missed ? 1 : 0;
}
