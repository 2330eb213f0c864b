/* arip-bench-shared.c: shared objects beside the floor they are held to
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * In one run, interleaved with the floor (a one-byte socketpair
 * ping-pong between two processes):
 *
 *   queue put→get round trip, parent → child → parent (two queues)
 *   event set→wake round trip, parent → child → parent (two events)
 *   items/s through a queue, a child producing and the parent consuming:
 *     small items and 1 MiB items
 *   uncontended lock acquire + release, in the parent and in a child
 *
 * each pinned to one CPU and unpinned. Not a test: tests never time.
 *
 *   arip-bench-shared [--quick]
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arip.h>

#include "bench-floor.h"

#define BIG_ITEM ((gsize) 1024 * 1024)

static gboolean quick;

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static int
compare_i64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static double
median (GArray *ns)
{
  g_array_sort (ns, compare_i64);
  return (double) g_array_index (ns, gint64, ns->len / 2);
}

/* ---------------------------------------------------------------------- */
/* In the worker                                                           */

static gpointer
open_handle (AripCall *call, GVariant *args, gsize index)
{
  g_autoptr(GVariant) handle = g_variant_get_child_value (args, index);
  g_autoptr(GError) error = NULL;
  AripShared *shared = arip_call_get_shared (call, handle, &error);

  if (shared == NULL)
    g_error ("opening a shared object: %s", error->message);
  return shared;
}

/* ((stt)(stt)): echoes items from the first queue to the second until
 * the first is closed. */
static void
fn_queue_echo (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(AripQueue) in = open_handle (call, args, 0);
  g_autoptr(AripQueue) out = open_handle (call, args, 1);

  arip_queue_put_sync (out, g_variant_new_boolean (TRUE), -1, NULL, NULL);
  for (;;)
    {
      g_autoptr(GVariant) item = arip_queue_get_sync (in, -1, NULL, NULL);

      if (item == NULL)
        break;
      arip_queue_put_sync (out, item, -1, NULL, NULL);
    }
  arip_call_return_value (call, NULL);
}

/* ((stt)(stt)u): waits for the first event, clears it, sets the second;
 * n times. */
static void
fn_event_echo (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(AripEvent) in = open_handle (call, args, 0);
  g_autoptr(AripEvent) out = open_handle (call, args, 1);
  guint32 n;

  g_variant_get_child (args, 2, "u", &n);
  arip_event_set (out);
  for (guint32 i = 0; i < n; i++)
    {
      arip_event_wait_sync (in, -1, NULL, NULL);
      arip_event_clear (in);
      arip_event_set (out);
    }
  arip_call_return_value (call, NULL);
}

/* ((stt)uu): puts n items of the given size (0: a small integer). */
static void
fn_produce (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(AripQueue) queue = open_handle (call, args, 0);
  g_autoptr(GVariant) big = NULL;
  guint32 n, size;

  g_variant_get_child (args, 1, "u", &n);
  g_variant_get_child (args, 2, "u", &size);
  if (size > 0)
    {
      g_autofree guint8 *bytes = g_malloc0 (size);

      big = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, size, 1));
    }
  for (guint32 i = 0; i < n; i++)
    arip_queue_put_sync (queue, big != NULL ? g_variant_ref (big) : g_variant_new_uint32 (i), -1,
                         NULL, NULL);
  arip_call_return_value (call, NULL);
}

/* ((stt)u): n uncontended acquire + release; answers the median ns. */
static void
fn_lock_loop (AripCall *call, GVariant *args, gpointer user_data)
{
  g_autoptr(AripLock) lock = open_handle (call, args, 0);
  g_autoptr(GArray) ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  guint32 n;

  g_variant_get_child (args, 1, "u", &n);
  for (guint32 i = 0; i < n; i++)
    {
      gint64 start = now_ns (), d;

      arip_lock_acquire_sync (lock, -1, NULL, NULL);
      arip_lock_release (lock);
      d = now_ns () - start;
      g_array_append_val (ns, d);
    }
  arip_call_return_value (call, g_variant_new ("(d)", median (ns)));
}

/* ---------------------------------------------------------------------- */
/* In the parent                                                           */

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

typedef struct {
  AripLauncher *launcher;
  GAsyncResult *result;
} Running;

static void
start (Running *run, const char *function, GVariant *args)
{
  run->launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  run->result = NULL;
  arip_launcher_run_async (run->launcher, function, args, NULL, store_result, &run->result);
}

static GVariant *
finish (Running *run)
{
  g_autoptr(GError) error = NULL;
  GVariant *value;

  while (run->result == NULL)
    g_main_context_iteration (NULL, TRUE);
  value = arip_launcher_run_finish (run->launcher, run->result, &error);
  if (value == NULL)
    g_error ("the benchmark's child failed: %s", error->message);
  g_clear_object (&run->result);
  g_clear_object (&run->launcher);
  return value;
}

/* Runs the main context until @queue holds an item (the child is up),
 * and takes it. */
static void
await_ready (AripQueue *queue)
{
  g_autoptr(GVariant) item = NULL;

  while (arip_queue_get_length (queue) == 0)
    g_main_context_iteration (NULL, FALSE);
  item = arip_queue_try_get (queue, NULL);
}

static void
pin_to_cpu0 (GPid pid)
{
  cpu_set_t one;

  CPU_ZERO (&one);
  CPU_SET (0, &one);
  sched_setaffinity (pid, sizeof one, &one);
}

/* Pins the newest worker (a child of the fork server, which is not
 * pinned) by finding it through /proc: the one whose comm is ours. */
static void
pin_workers (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  g_autofree char *own = NULL;

  g_file_get_contents ("/proc/self/comm", &own, NULL, NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/%s/comm", name);
      g_autofree char *comm = NULL;
      GPid pid = (GPid) g_ascii_strtoll (name, NULL, 10);

      if (pid > 0 && pid != getpid () && g_file_get_contents (path, &comm, NULL, NULL) &&
          own != NULL && g_str_equal (comm, own))
        pin_to_cpu0 (pid);
    }
}

static double
floor_round_trip (guint n)
{
  Echoer echoer = bench_echoer_start ();
  g_autoptr(GArray) ns = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < 200; i++)
    bench_ping (echoer.fd);
  for (guint i = 0; i < n; i++)
    {
      gint64 t = now_ns (), d;

      bench_ping (echoer.fd);
      d = now_ns () - t;
      g_array_append_val (ns, d);
    }
  bench_echoer_stop (&echoer);
  return median (ns);
}

static void
row (const char *figure, double value_ns, double floor_ns, double target)
{
  double ratio = value_ns / floor_ns;

  printf ("  %-58s %9.1f µs   floor %7.1f µs   %5.2fx%s\n", figure, value_ns / 1e3,
          floor_ns / 1e3, ratio,
          target > 0 ? (ratio <= target ? g_strdup_printf ("  (target ≤ %.1fx: PASS)", target)
                                        : g_strdup_printf ("  (target ≤ %.1fx: MISS)", target))
                     : "");
}

static void
bench_round_trips (gboolean pinned)
{
  const guint n = quick ? 500 : 5000;
  g_autoptr(AripQueue) to_child = arip_queue_new (0);
  g_autoptr(AripQueue) to_parent = arip_queue_new (0);
  g_autoptr(AripEvent) ping_event = arip_event_new ();
  g_autoptr(AripEvent) pong_event = arip_event_new ();
  g_autoptr(GArray) queue_ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) event_ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GVariant) done = NULL;
  Running run;
  double floor_ns;

  /* The queue's round trip. */
  start (&run, "queue_echo", g_variant_new ("(@(stt)@(stt))",
                                            arip_shared_to_variant (ARIP_SHARED (to_child)),
                                            arip_shared_to_variant (ARIP_SHARED (to_parent))));
  await_ready (to_parent);
  if (pinned)
    pin_workers ();
  for (guint i = 0; i < n + 200; i++)
    {
      gint64 t = now_ns (), d;
      g_autoptr(GVariant) item = NULL;

      arip_queue_put_sync (to_child, g_variant_new_uint32 (i), -1, NULL, NULL);
      item = arip_queue_get_sync (to_parent, -1, NULL, NULL);
      d = now_ns () - t;
      if (i >= 200)
        g_array_append_val (queue_ns, d);
    }
  arip_queue_close (to_child);
  g_variant_unref (finish (&run));

  /* The events'. */
  start (&run, "event_echo", g_variant_new ("(@(stt)@(stt)u)",
                                            arip_shared_to_variant (ARIP_SHARED (ping_event)),
                                            arip_shared_to_variant (ARIP_SHARED (pong_event)), n));
  while (!arip_event_is_set (pong_event))
    g_main_context_iteration (NULL, FALSE);
  arip_event_clear (pong_event);
  if (pinned)
    pin_workers ();
  for (guint i = 0; i < n; i++)
    {
      gint64 t = now_ns (), d;

      arip_event_set (ping_event);
      arip_event_wait_sync (pong_event, -1, NULL, NULL);
      arip_event_clear (pong_event);
      d = now_ns () - t;
      g_array_append_val (event_ns, d);
    }
  done = finish (&run);

  floor_ns = floor_round_trip (n);
  printf ("%s:\n", pinned ? "pinned to one CPU" : "unpinned");
  row ("queue put→get, parent→child→parent, median", median (queue_ns), floor_ns, 2.0);
  row ("event set→wake, parent→child→parent, median", median (event_ns), floor_ns, 0);
}

static void
bench_throughput (guint32 size)
{
  const guint32 n = size > 0 ? (quick ? 50 : 300) : (quick ? 5000 : 50000);
  g_autoptr(AripQueue) queue = arip_queue_new (64);
  Running run;
  gint64 t;
  double per_item, floor_ns = floor_round_trip (quick ? 500 : 5000);

  start (&run, "produce", g_variant_new ("(@(stt)uu)", arip_shared_to_variant (ARIP_SHARED (queue)),
                                         n, size));
  t = 0;
  for (guint32 i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = NULL;

      while (t == 0 && arip_queue_get_length (queue) == 0)
        g_main_context_iteration (NULL, FALSE);
      if (t == 0)
        t = now_ns ();
      item = arip_queue_get_sync (queue, -1, NULL, NULL);
    }
  per_item = (double) (now_ns () - t) / n;
  g_variant_unref (finish (&run));
  printf ("  %-58s %9.0f items/s (%.1f µs each; floor round trip %.1f µs)\n",
          size > 0 ? "items/s, 1 MiB items, child → parent" : "items/s, small items, child → parent",
          1e9 / per_item, per_item / 1e3, floor_ns / 1e3);
}

static void
bench_lock (void)
{
  const guint32 n = quick ? 2000 : 20000;
  g_autoptr(AripLock) lock = arip_lock_new ();
  g_autoptr(GArray) ns = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GVariant) child = NULL;
  double child_ns, floor_ns;
  Running run;

  for (guint32 i = 0; i < n; i++)
    {
      gint64 t = now_ns (), d;

      arip_lock_acquire_sync (lock, -1, NULL, NULL);
      arip_lock_release (lock);
      d = now_ns () - t;
      g_array_append_val (ns, d);
    }
  start (&run, "lock_loop", g_variant_new ("(@(stt)u)", arip_shared_to_variant (ARIP_SHARED (lock)),
                                           n / 4));
  child = finish (&run);
  g_variant_get (child, "(d)", &child_ns);
  floor_ns = floor_round_trip (quick ? 500 : 5000);
  printf ("  %-58s %9.2f µs (in-process: no floor)\n",
          "lock acquire + release, uncontended, in the parent", median (ns) / 1e3);
  /* Two requests to the parent, each one round trip. */
  row ("lock acquire + release, uncontended, in a child", child_ns, 2 * floor_ns, 0);
}

int
main (int argc, char **argv)
{
  arip_register_function ("queue_echo", fn_queue_echo, NULL, NULL);
  arip_register_function ("event_echo", fn_event_echo, NULL, NULL);
  arip_register_function ("produce", fn_produce, NULL, NULL);
  arip_register_function ("lock_loop", fn_lock_loop, NULL, NULL);
  arip_init (&argc, &argv);

  quick = argc > 1 && g_str_equal (argv[1], "--quick");

  printf ("arip shared objects, %s\n", quick ? "quick (a smoke run, not a measurement)" : "full");
  bench_round_trips (FALSE);
  {
    cpu_set_t one;

    CPU_ZERO (&one);
    CPU_SET (0, &one);
    sched_setaffinity (0, sizeof one, &one);
    /* The broker's thread was started unpinned: pin every thread. */
    {
      g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
      const char *name;

      while ((name = g_dir_read_name (dir)) != NULL)
        sched_setaffinity ((pid_t) g_ascii_strtoll (name, NULL, 10), sizeof one, &one);
    }
    bench_round_trips (TRUE);
  }
  printf ("throughput and locks (pinned):\n");
  bench_throughput (0);
  bench_throughput ((guint32) BIG_ITEM);
  bench_lock ();
  return 0;
}
