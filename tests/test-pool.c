/* test-pool.c: AripPool, warm workers reused across calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <arip.h>

#include "arip-test-util.h"

/* ---------------------------------------------------------------------- */
/* Functions that run in the worker                                        */

/* How many calls this worker process has begun: a pool worker keeps it
 * across calls, a fresh worker starts again from 0. */
static gint32 calls_here;

/* Every function that answers "who ran me" answers (pid, nth call here). */
static GVariant *
whoami (void)
{
  return g_variant_new ("(ii)", (gint32) getpid (), calls_here);
}

static void
touch (const char *path)
{
  g_autoptr(GError) error = NULL;

  if (path[0] == '\0')
    return;
  if (!g_file_set_contents (path, "", 0, &error))
    g_error ("could not create %s: %s", path, error->message);
}

static void
fn_whoami (AripCall *call, GVariant *args, gpointer user_data)
{
  calls_here++;
  arip_call_return_value (call, whoami ());
}

static void
fn_echo (AripCall *call, GVariant *args, gpointer user_data)
{
  calls_here++;
  arip_call_return_value (call, args);
}

/* (ss): creates the first path (unless empty), then waits until the second
 * one exists; answers whoami. */
static void
fn_hold (AripCall *call, GVariant *args, gpointer user_data)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  const char *started, *gate;

  calls_here++;
  g_variant_get (args, "(&s&s)", &started, &gate);
  if (started[0] != '\0')
    touch (started);
  while (!g_file_test (gate, G_FILE_TEST_EXISTS))
    {
      if (g_get_monotonic_time () > deadline)
        {
          arip_call_return_error (call, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s never appeared", gate);
          return;
        }
      g_usleep (2000);
    }
  arip_call_return_value (call, whoami ());
}

static void
fn_crash (AripCall *call, GVariant *args, gpointer user_data)
{
  calls_here++;
  raise (SIGSEGV);
}

static void
fn_exit (AripCall *call, GVariant *args, gpointer user_data)
{
  gint32 status;

  calls_here++;
  g_variant_get (args, "(i)", &status);
  exit (status);
}

static void
fn_fail (AripCall *call, GVariant *args, gpointer user_data)
{
  calls_here++;
  arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "the thing is not there");
}

/* (ss): mode, started path. Busy synchronously until interrupted; then
 * returns a value ("value") or G_IO_ERROR_CANCELLED ("error"). */
static void
fn_busy_until_interrupted (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  const char *mode, *started;

  calls_here++;
  g_variant_get (args, "(&s&s)", &mode, &started);
  touch (started);

  while (!g_cancellable_is_cancelled (cancellable))
    {
      if (g_get_monotonic_time () > deadline)
        {
          arip_call_return_value (call, g_variant_new ("(s)", "never interrupted"));
          return;
        }
      g_usleep (1000);
    }

  if (g_str_equal (mode, "error"))
    arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Interrupted");
  else
    arip_call_return_value (call, g_variant_new ("(s)", "interrupted"));
}

/* (sb): started path, whether to ignore SIGTERM too. Pays no attention to
 * its cancellable. */
static void
fn_ignore_interrupt (AripCall *call, GVariant *args, gpointer user_data)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  const char *started;
  gboolean ignore_term;

  calls_here++;
  g_variant_get (args, "(&sb)", &started, &ignore_term);
  if (ignore_term)
    signal (SIGTERM, SIG_IGN);
  touch (started);

  while (g_get_monotonic_time () < deadline)
    g_usleep (1000);
  arip_call_return_value (call, g_variant_new ("(s)", "never stopped"));
}

/* Waits a little (an interrupt meant for an earlier call would arrive
 * meanwhile), then answers (pid, nth call, whether its cancellable is
 * cancelled). */
static void
fn_check_cancellable (AripCall *call, GVariant *args, gpointer user_data)
{
  calls_here++;
  g_usleep (200 * 1000);
  arip_call_return_value (call, g_variant_new ("(iib)", (gint32) getpid (), calls_here,
                                               g_cancellable_is_cancelled (arip_call_get_cancellable (call))));
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("arip-test-pool-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr(GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);

  /* Whatever a test started is gone: the pool's workers gave their slots
   * back. */
  arip_test_wait_until (arip_get_running_processes () == 0);
}

static char *
fixture_path (Fixture *f, const char *name)
{
  return g_build_filename (f->dir, name, NULL);
}

static GVariant *
pool_run (AripPool      *pool,
          const char    *function,
          GVariant      *args,
          GCancellable  *cancellable,
          GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  arip_pool_run_async (pool, function, args, cancellable, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  return arip_pool_run_finish (pool, result, error);
}

static void
pool_close (AripPool *pool)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  arip_pool_close_async (pool, NULL, arip_test_store_result, &result);
  arip_test_wait_until (result != NULL);
  g_assert_true (arip_pool_close_finish (pool, result, &error));
  g_assert_no_error (error);
}

/* Runs whoami and returns its (pid, nth call). */
static GPid
pool_whoami (AripPool *pool,
             gint32   *out_nth)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  gint32 pid, nth;

  result = pool_run (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_variant_get (result, "(ii)", &pid, &nth);
  g_assert_cmpint (pid, >, 0);
  g_assert_cmpint (pid, !=, getpid ());
  if (out_nth != NULL)
    *out_nth = nth;
  return pid;
}

/* Finishes a call that answered whoami and returns its pid. */
static GPid
finish_whoami (AripPool     *pool,
               GAsyncResult *result,
               gint32       *out_nth)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint32 pid, nth;

  g_assert_nonnull (result);
  value = arip_pool_run_finish (pool, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (value);
  g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE ("(ii)")));
  g_variant_get (value, "(ii)", &pid, &nth);
  if (out_nth != NULL)
    *out_nth = nth;
  return pid;
}

static GVariant *
hold_args (const char *started, const char *gate)
{
  return g_variant_new ("(ss)", started != NULL ? started : "", gate);
}

static gboolean
pid_is_alive (GPid pid)
{
  return !arip_test_pid_is_dead (pid);
}

/* Records the most n-workers ever seen. */
static void
on_n_workers (AripPool *pool, GParamSpec *pspec, gpointer user_data)
{
  guint *max_seen = user_data;

  *max_seen = MAX (*max_seen, arip_pool_get_n_workers (pool));
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static void
test_new (Fixture *f, gconstpointer data)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = arip_pool_new (launcher, 3);
  g_autoptr(AripPool) plain = arip_pool_new (NULL, 0);
  g_autoptr(AripLauncher) prop_launcher = NULL;
  guint max_workers, n_workers, idle_timeout, max_calls;

  g_assert_true (ARIP_IS_POOL (pool));
  g_assert_true (arip_pool_get_launcher (pool) == launcher);
  g_assert_cmpuint (arip_pool_get_max_workers (pool), ==, 3);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
  g_assert_cmpuint (arip_pool_get_idle_timeout (pool), ==, 300);
  g_assert_cmpuint (arip_pool_get_max_calls_per_worker (pool), ==, 0);

  g_object_get (pool,
                "launcher", &prop_launcher,
                "max-workers", &max_workers,
                "n-workers", &n_workers,
                "idle-timeout", &idle_timeout,
                "max-calls-per-worker", &max_calls,
                NULL);
  g_assert_true (prop_launcher == launcher);
  g_assert_cmpuint (max_workers, ==, 3);
  g_assert_cmpuint (n_workers, ==, 0);
  g_assert_cmpuint (idle_timeout, ==, 300);
  g_assert_cmpuint (max_calls, ==, 0);

  /* A pool without a launcher makes its own. */
  g_assert_true (ARIP_IS_LAUNCHER (arip_pool_get_launcher (plain)));

  /* No worker starts before the first call. */
  arip_test_iterate_for (50);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);
}

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
test_properties (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  guint n_idle_notify = 0, n_max_notify = 0;
  guint value;

  g_signal_connect (pool, "notify::idle-timeout", G_CALLBACK (count_notify), &n_idle_notify);
  g_signal_connect (pool, "notify::max-calls-per-worker", G_CALLBACK (count_notify), &n_max_notify);

  /* notify is emitted only when the value changes. */
  arip_pool_set_idle_timeout (pool, 7);
  arip_pool_set_idle_timeout (pool, 7);
  g_object_set (pool, "idle-timeout", 8, NULL);
  arip_pool_set_max_calls_per_worker (pool, 5);
  arip_pool_set_max_calls_per_worker (pool, 5);
  g_object_set (pool, "max-calls-per-worker", 0, NULL);

  g_assert_cmpuint (n_idle_notify, ==, 2);
  g_assert_cmpuint (n_max_notify, ==, 2);
  g_object_get (pool, "idle-timeout", &value, NULL);
  g_assert_cmpuint (value, ==, 8);
  g_assert_cmpuint (arip_pool_get_max_calls_per_worker (pool), ==, 0);
  g_signal_handlers_disconnect_by_data (pool, &n_idle_notify);
  g_signal_handlers_disconnect_by_data (pool, &n_max_notify);
}

static void
test_default_max_workers (Fixture *f, gconstpointer data)
{
  const guint saved = arip_get_max_processes ();
  const guint expected = MAX (1, MIN (saved, g_get_num_processors ()));
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 0);
  g_autoptr(AripPool) one = NULL;
  g_autoptr(AripPool) explicit = NULL;

  g_assert_cmpuint (arip_pool_get_max_workers (pool), ==, expected);

  /* The global limit wins when it is smaller than the number of CPUs. */
  arip_set_max_processes (1);
  one = arip_pool_new (NULL, 0);
  g_assert_cmpuint (arip_pool_get_max_workers (one), ==, 1);

  /* An explicit maximum is kept as it is. */
  explicit = arip_pool_new (NULL, 5);
  g_assert_cmpuint (arip_pool_get_max_workers (explicit), ==, 5);

  arip_set_max_processes (saved);
}

static void
test_basic (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) echoed = NULL;
  g_autoptr(GVariant) failed = NULL;
  GVariant *args;

  args = g_variant_new_parsed ("('text', @ay [1, 2, 3], {'k': <uint64 42>}, [2.5, -1.0])");
  echoed = pool_run (pool, "echo", args, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (echoed,
                            g_variant_new_parsed ("('text', @ay [1, 2, 3], {'k': <uint64 42>}, [2.5, -1.0])"));

  /* NULL args are (). */
  g_clear_pointer (&echoed, g_variant_unref);
  echoed = pool_run (pool, "echo", NULL, NULL, &error);
  g_assert_no_error (error);
  arip_test_assert_variant (echoed, g_variant_new ("()"));

  /* An error travels with its domain, code and message. */
  failed = pool_run (pool, "fail", NULL, NULL, &error);
  g_assert_null (failed);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "the thing is not there");
  g_clear_error (&error);

  /* All three ran, one after the other, on the one warm worker. */
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
}

static void
test_reuse (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 4);
  GPid first;
  gint32 nth;

  first = pool_whoami (pool, &nth);
  g_assert_cmpint (nth, ==, 1);

  /* Sequential calls all run on the same warm worker. */
  for (gint32 i = 2; i <= 10; i++)
    {
      g_assert_cmpint (pool_whoami (pool, &nth), ==, first);
      g_assert_cmpint (nth, ==, i);
    }
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
}

static void
test_mru (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autofree char *started_a = fixture_path (f, "started-a");
  g_autofree char *started_b = fixture_path (f, "started-b");
  g_autofree char *gate_a = fixture_path (f, "gate-a");
  g_autofree char *gate_b = fixture_path (f, "gate-b");
  g_autoptr(GAsyncResult) ra = NULL;
  g_autoptr(GAsyncResult) rb = NULL;
  GPid pid_a, pid_b;

  /* Two calls at once: two workers. */
  arip_pool_run_async (pool, "hold", hold_args (started_a, gate_a), NULL, arip_test_store_result, &ra);
  arip_pool_run_async (pool, "hold", hold_args (started_b, gate_b), NULL, arip_test_store_result, &rb);
  arip_test_wait_until (g_file_test (started_a, G_FILE_TEST_EXISTS) &&
                        g_file_test (started_b, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 2);

  /* A finishes first, then B: B is the most recently used. */
  touch (gate_a);
  arip_test_wait_until (ra != NULL);
  pid_a = finish_whoami (pool, ra, NULL);
  arip_test_iterate_for (50);
  g_assert_null (rb);
  touch (gate_b);
  arip_test_wait_until (rb != NULL);
  pid_b = finish_whoami (pool, rb, NULL);
  g_assert_cmpint (pid_a, !=, pid_b);

  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (pool_whoami (pool, NULL), ==, pid_b);

  /* A stays warm, idle. */
  g_assert_true (pid_is_alive (pid_a));
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 2);
}

static void
test_on_demand (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 3);
  g_autofree char *gate = fixture_path (f, "gate");
  GAsyncResult *results[6] = { NULL, };
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  guint max_seen = 0;
  GPid first;

  g_signal_connect (pool, "notify::n-workers", G_CALLBACK (on_n_workers), &max_seen);

  /* One call starts one worker, not max-workers of them. */
  first = pool_whoami (pool, NULL);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
  g_assert_cmpuint (max_seen, ==, 1);

  /* Six calls that block: three workers, the other calls wait. */
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autofree char *started = g_strdup_printf ("%s/started-%u", f->dir, i);
      arip_pool_run_async (pool, "hold", hold_args (started, gate), NULL,
                           arip_test_store_result, &results[i]);
    }

  arip_test_wait_until (arip_get_running_processes () == 3 &&
                        arip_pool_get_n_workers (pool) == 3);
  {
    g_autofree char *s0 = g_strdup_printf ("%s/started-0", f->dir);
    g_autofree char *s1 = g_strdup_printf ("%s/started-1", f->dir);
    g_autofree char *s2 = g_strdup_printf ("%s/started-2", f->dir);
    g_autofree char *s3 = g_strdup_printf ("%s/started-3", f->dir);

    arip_test_wait_until (g_file_test (s0, G_FILE_TEST_EXISTS) &&
                          g_file_test (s1, G_FILE_TEST_EXISTS) &&
                          g_file_test (s2, G_FILE_TEST_EXISTS));
    arip_test_iterate_for (200);
    g_assert_false (g_file_test (s3, G_FILE_TEST_EXISTS));
  }
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 3);
  g_assert_cmpuint (arip_get_running_processes (), ==, 3);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    g_assert_null (results[i]);

  touch (gate);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      arip_test_wait_until (results[i] != NULL);
      g_hash_table_add (pids, GINT_TO_POINTER (finish_whoami (pool, results[i], NULL)));
      g_object_unref (results[i]);
    }

  g_assert_cmpuint (g_hash_table_size (pids), ==, 3);
  g_assert_true (g_hash_table_contains (pids, GINT_TO_POINTER (first)));
  g_assert_cmpuint (max_seen, ==, 3);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 3);
}

typedef struct {
  GArray       *order;
  guint         index;
  GAsyncResult *result;
} Ordered;

static void
on_ordered_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Ordered *o = user_data;

  o->result = g_object_ref (result);
  g_array_append_val (o->order, o->index);
}

static void
test_fifo (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autofree char *started = fixture_path (f, "started");
  g_autofree char *gate = fixture_path (f, "gate");
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GAsyncResult) holder = NULL;
  Ordered calls[6];
  GPid pid;
  gint32 holder_nth;

  arip_pool_run_async (pool, "hold", hold_args (started, gate), NULL, arip_test_store_result, &holder);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));

  for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
    {
      calls[i] = (Ordered) { order, i, NULL };
      arip_pool_run_async (pool, "whoami", NULL, NULL, on_ordered_done, &calls[i]);
    }
  arip_test_iterate_for (100);
  g_assert_cmpuint (order->len, ==, 0);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);

  touch (gate);
  arip_test_wait_until (holder != NULL);
  pid = finish_whoami (pool, holder, &holder_nth);
  arip_test_wait_until (order->len == G_N_ELEMENTS (calls));

  /* First come, first served: in the order they were made, one after the
   * other on the one worker. */
  for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
    {
      gint32 nth;

      g_assert_cmpuint (g_array_index (order, guint, i), ==, i);
      g_assert_cmpint (finish_whoami (pool, calls[i].result, &nth), ==, pid);
      g_assert_cmpint (nth, ==, holder_nth + 1 + (gint32) i);
      g_object_unref (calls[i].result);
    }
}

static void
test_limiter (Fixture *f, gconstpointer data)
{
  const guint saved = arip_get_max_processes ();
  g_autoptr(AripPool) pool = NULL;
  g_autofree char *gate = fixture_path (f, "gate");
  g_autofree char *oneshot_gate = fixture_path (f, "oneshot-gate");
  g_autofree char *oneshot_started = fixture_path (f, "oneshot-started");
  g_autoptr(GAsyncResult) oneshot = NULL;
  g_autoptr(GAsyncResult) later = NULL;
  GAsyncResult *results[3] = { NULL, };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GPid pids[3];

  arip_set_max_processes (2);
  pool = arip_pool_new (NULL, 4);

  /* Workers take slots of the global limit: with 2 slots, a pool of 4
   * runs 2 workers and queues the third call. */
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    arip_pool_run_async (pool, "hold", hold_args (NULL, gate), NULL, arip_test_store_result, &results[i]);
  arip_test_wait_until (arip_get_running_processes () == 2);
  arip_test_iterate_for (300);
  g_assert_cmpuint (arip_get_running_processes (), ==, 2);

  /* A one-shot run waits for a slot too. */
  arip_run_in_process_async ("hold", hold_args (oneshot_started, oneshot_gate), NULL,
                             arip_test_store_result, &oneshot);
  arip_test_iterate_for (200);
  g_assert_false (g_file_test (oneshot_started, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (arip_get_running_processes (), ==, 2);

  touch (gate);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      arip_test_wait_until (results[i] != NULL);
      pids[i] = finish_whoami (pool, results[i], NULL);
      g_object_unref (results[i]);
    }
  /* The third call ran on one of the two warm workers. */
  g_assert_true (pids[2] == pids[0] || pids[2] == pids[1]);
  g_assert_cmpint (pids[0], !=, pids[1]);

  /* An idle worker yields its slot to the one-shot that waits for one:
   * the one-shot starts, and the idle worker is gone. */
  arip_test_wait_until (g_file_test (oneshot_started, G_FILE_TEST_EXISTS));
  arip_test_wait_until (arip_test_pid_is_gone (pids[0]) || arip_test_pid_is_gone (pids[1]));
  g_assert_cmpuint (arip_get_running_processes (), ==, 2);

  /* Closing the pool gives the other slot back. */
  pool_close (pool);
  g_assert_true (arip_test_pid_is_gone (pids[0]));
  g_assert_true (arip_test_pid_is_gone (pids[1]));
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  /* A pool whose worker waits for a slot: its call runs once the slot is
   * free. */
  arip_set_max_processes (1);
  g_clear_object (&pool);
  pool = arip_pool_new (NULL, 2);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &later);
  arip_test_iterate_for (200);
  g_assert_null (later);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
  touch (oneshot_gate);
  arip_test_wait_until (oneshot != NULL);
  value = arip_run_in_process_finish (oneshot, &error);
  g_assert_no_error (error);
  arip_test_wait_until (later != NULL);
  finish_whoami (pool, later, NULL);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  /* The last reference: a finished call's result holds one too. */
  g_clear_object (&later);
  g_clear_object (&pool);
  arip_test_wait_until (arip_get_running_processes () == 0);
  arip_set_max_processes (saved);
}

static void
test_limiter_close_waiting (Fixture *f, gconstpointer data)
{
  const guint saved = arip_get_max_processes ();
  g_autoptr(AripPool) pool = NULL;
  g_autofree char *gate = fixture_path (f, "gate");
  g_autofree char *started = fixture_path (f, "started");
  g_autoptr(GAsyncResult) oneshot = NULL;
  g_autoptr(GAsyncResult) queued = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  arip_set_max_processes (1);
  arip_run_in_process_async ("hold", hold_args (started, gate), NULL, arip_test_store_result, &oneshot);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));

  /* The pool's worker waits for a slot; closing the pool ends the wait. */
  pool = arip_pool_new (NULL, 1);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &queued);
  arip_test_iterate_for (100);
  g_assert_null (queued);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);

  pool_close (pool);
  g_assert_nonnull (queued);
  value = arip_pool_run_finish (pool, queued, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  touch (gate);
  arip_test_wait_until (oneshot != NULL);
  value = arip_run_in_process_finish (oneshot, &error);
  g_assert_no_error (error);
  arip_test_wait_until (arip_get_running_processes () == 0);
  arip_set_max_processes (saved);
}

static void
test_idle_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  guint n_notify = 0;
  GPid pid, second;

  arip_pool_set_idle_timeout (pool, 1);
  g_signal_connect (pool, "notify::n-workers", G_CALLBACK (count_notify), &n_notify);

  pid = pool_whoami (pool, NULL);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  arip_test_wait_until (arip_pool_get_n_workers (pool) == 0);
  arip_test_assert_pid_gone (pid);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);
  g_assert_cmpuint (n_notify, >=, 2);

  /* The pool goes on with a fresh worker. */
  second = pool_whoami (pool, NULL);
  g_assert_cmpint (second, !=, pid);

  /* 0 keeps idle workers for ever. */
  arip_pool_set_idle_timeout (pool, 0);
  g_assert_cmpint (pool_whoami (pool, NULL), ==, second);
  arip_test_iterate_for (1500);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
  g_assert_true (pid_is_alive (second));
}

static void
test_idle_timeout_busy (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autofree char *started = fixture_path (f, "started");
  g_autofree char *gate = fixture_path (f, "gate");
  g_autoptr(GAsyncResult) result = NULL;
  GPid pid;

  /* A busy worker is not idle, however long its call takes. */
  arip_pool_set_idle_timeout (pool, 1);
  arip_pool_run_async (pool, "hold", hold_args (started, gate), NULL, arip_test_store_result, &result);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));
  arip_test_iterate_for (1500);
  g_assert_null (result);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);

  touch (gate);
  arip_test_wait_until (result != NULL);
  pid = finish_whoami (pool, result, NULL);
  arip_test_wait_until (arip_pool_get_n_workers (pool) == 0);
  arip_test_assert_pid_gone (pid);
}

static void
test_max_calls_per_worker (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  GPid pids[7];

  arip_pool_set_max_calls_per_worker (pool, 3);

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      gint32 nth;

      pids[i] = pool_whoami (pool, &nth);
      /* Each worker serves calls 1, 2, 3 and is replaced. */
      g_assert_cmpint (nth, ==, (gint32) (i % 3) + 1);
      if (i % 3 != 0)
        g_assert_cmpint (pids[i], ==, pids[i - 1]);
      else if (i > 0)
        {
          g_assert_cmpint (pids[i], !=, pids[i - 1]);
          arip_test_assert_pid_gone (pids[i - 1]);
        }
    }
  g_assert_cmpuint (arip_pool_get_n_workers (pool), <=, 1);
}

#define MANY_CALLS   1000
#define MANY_FDS     100
#define MANY_AT_ONCE 4

static void
test_no_fd_leak (Fixture *f, gconstpointer data)
{
  if (g_test_subprocess ())
    {
      struct rlimit limit;
      g_autoptr(AripPool) pool = NULL;
      GAsyncResult *inflight[MANY_AT_ONCE] = { NULL, };
      guint started = 0, done = 0;
      guint fds_before, fds_after;

      g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
      limit.rlim_cur = MANY_FDS;
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

      /* GLib opens a few descriptors once, for the main context and for
       * watching children: let it do so before counting. */
      pool = arip_pool_new (NULL, 2);
      pool_whoami (pool, NULL);
      pool_close (pool);
      g_clear_object (&pool);
      arip_test_iterate_for (50);
      fds_before = arip_test_count_fds ();

      pool = arip_pool_new (NULL, 2);
      arip_pool_set_max_calls_per_worker (pool, 1);

      while (done < MANY_CALLS)
        {
          for (guint i = 0; i < MANY_AT_ONCE; i++)
            {
              if (inflight[i] != NULL)
                {
                  g_autoptr(GError) error = NULL;
                  g_autoptr(GVariant) value = NULL;
                  gint32 pid, nth;

                  value = arip_pool_run_finish (pool, inflight[i], &error);
                  if (error != NULL)
                    g_error ("call %u of %u failed: %s", done + 1, MANY_CALLS, error->message);
                  g_variant_get (value, "(ii)", &pid, &nth);
                  /* Every call ran on a fresh worker. */
                  g_assert_cmpint (nth, ==, 1);
                  g_clear_object (&inflight[i]);
                  done++;
                }
              if (inflight[i] == NULL && started < MANY_CALLS)
                {
                  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &inflight[i]);
                  started++;
                }
            }
          g_main_context_iteration (NULL, TRUE);
        }

      pool_close (pool);
      g_clear_object (&pool);
      arip_test_iterate_for (50);

      fds_after = arip_test_count_fds ();
      if (fds_after != fds_before)
        {
          g_autofree char *list = arip_test_list_fds ();
          g_error ("%u descriptors before, %u after:\n%s", fds_before, fds_after, list);
        }
      return;
    }

  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_crash (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autofree char *started = fixture_path (f, "started");
  g_autofree char *gate = fixture_path (f, "gate");
  g_autoptr(GAsyncResult) holder = NULL;
  GAsyncResult *r[5] = { NULL, };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *pid_str = NULL;
  GPid pid0, pid2, pid4;

  /* All queued behind one call, on a pool of one worker. */
  arip_pool_run_async (pool, "hold", hold_args (started, gate), NULL, arip_test_store_result, &holder);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &r[0]);
  arip_pool_run_async (pool, "crash", NULL, NULL, arip_test_store_result, &r[1]);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &r[2]);
  arip_pool_run_async (pool, "exit", g_variant_new ("(i)", 3), NULL, arip_test_store_result, &r[3]);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &r[4]);
  touch (gate);

  arip_test_wait_until (holder != NULL && r[0] && r[1] && r[2] && r[3] && r[4]);
  pid0 = finish_whoami (pool, holder, NULL);
  g_assert_cmpint (finish_whoami (pool, r[0], NULL), ==, pid0);

  /* The crash fails only the call that crashed, as a one-shot process
   * would. */
  value = arip_pool_run_finish (pool, r[1], &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
  g_assert_nonnull (strstr (error->message, "SIGSEGV"));
  pid_str = g_strdup_printf ("%d", (int) pid0);
  g_assert_nonnull (strstr (error->message, pid_str));
  g_assert_nonnull (strstr (error->message, "crash"));
  g_clear_error (&error);
  arip_test_assert_pid_gone (pid0);

  /* The next call runs on a replacement. */
  pid2 = finish_whoami (pool, r[2], NULL);
  g_assert_cmpint (pid2, !=, pid0);

  value = arip_pool_run_finish (pool, r[3], &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
  g_assert_nonnull (strstr (error->message, "3"));
  g_clear_error (&error);
  arip_test_assert_pid_gone (pid2);

  pid4 = finish_whoami (pool, r[4], NULL);
  g_assert_cmpint (pid4, !=, pid2);
  g_assert_cmpint (pid4, !=, pid0);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
  g_assert_cmpuint (arip_get_running_processes (), ==, 1);

  for (guint i = 0; i < G_N_ELEMENTS (r); i++)
    g_object_unref (r[i]);
}

static void
test_idle_worker_killed (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  GPid pid, next;

  /* A worker that dies while idle is forgotten; no call fails. */
  pid = pool_whoami (pool, NULL);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  arip_test_wait_until (arip_pool_get_n_workers (pool) == 0);
  arip_test_assert_pid_gone (pid);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);

  next = pool_whoami (pool, NULL);
  g_assert_cmpint (next, !=, pid);
}

static void
test_start_failure (Fixture *f, gconstpointer data)
{
  g_autoptr(AripLauncher) missing = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripLauncher) falls = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GAsyncResult *r[3] = { NULL, };
  const char * const missing_argv[] = { "/nonexistent/arip-worker", NULL };
  const char * const false_argv[] = { "false", NULL };

  /* A worker that cannot be spawned fails calls instead of hanging. */
  arip_launcher_set_worker_argv (missing, missing_argv);
  pool = arip_pool_new (missing, 1);
  value = pool_run (pool, "whoami", NULL, NULL, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SPAWN_FAILED);
  g_clear_error (&error);
  arip_test_wait_until (arip_pool_get_n_workers (pool) == 0);
  g_clear_object (&pool);

  /* A worker that exits before saying hello: each queued call fails in
   * turn. */
  arip_launcher_set_worker_argv (falls, false_argv);
  pool = arip_pool_new (falls, 1);
  for (guint i = 0; i < G_N_ELEMENTS (r); i++)
    arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &r[i]);
  for (guint i = 0; i < G_N_ELEMENTS (r); i++)
    {
      arip_test_wait_until (r[i] != NULL);
      value = arip_pool_run_finish (pool, r[i], &error);
      g_assert_null (value);
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      g_clear_error (&error);
      g_object_unref (r[i]);
    }
  arip_test_wait_until (arip_pool_get_n_workers (pool) == 0);
}

static void
test_unknown_function (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GPid pid;

  pid = pool_whoami (pool, NULL);
  value = pool_run (pool, "no-such-function", NULL, NULL, &error);
  g_assert_null (value);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
  g_assert_nonnull (strstr (error->message, "no-such-function"));

  /* The worker is fine and serves the next call. */
  g_assert_cmpint (pool_whoami (pool, NULL), ==, pid);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
}

static void
cancel_noticed (Fixture *f, const char *mode)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *started = fixture_path (f, "started");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) check = NULL;
  gint32 pid, check_pid, nth;
  gboolean cancelled;

  pid = pool_whoami (pool, NULL);

  arip_pool_run_async (pool, "busy_until_interrupted", g_variant_new ("(ss)", mode, started),
                       cancellable, arip_test_store_result, &result);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));
  g_cancellable_cancel (cancellable);
  arip_test_wait_until (result != NULL);
  value = arip_pool_run_finish (pool, result, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* The function noticed and answered: the worker stays, and the
   * interrupt does not reach its next call. */
  check = pool_run (pool, "check_cancellable", NULL, NULL, &error);
  g_clear_error (&error);
  g_assert_nonnull (check);
  g_variant_get (check, "(iib)", &check_pid, &nth, &cancelled);
  g_assert_cmpint (check_pid, ==, pid);
  g_assert_cmpint (nth, ==, 3);
  g_assert_false (cancelled);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
}

static void
test_cancel_noticed_error (Fixture *f, gconstpointer data)
{
  cancel_noticed (f, "error");
}

static void
test_cancel_noticed_value (Fixture *f, gconstpointer data)
{
  cancel_noticed (f, "value");
}

static void
cancel_ignored (Fixture *f, gboolean ignore_term)
{
  g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *started = fixture_path (f, "started");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) next = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GPid pid, next_pid;
  gint32 nth;

  arip_launcher_set_stop_timeouts (launcher, 100, 100);
  pool = arip_pool_new (launcher, 1);
  g_assert_true (arip_pool_get_launcher (pool) == launcher);

  pid = pool_whoami (pool, NULL);
  arip_pool_run_async (pool, "ignore_interrupt", g_variant_new ("(sb)", started, ignore_term),
                       cancellable, arip_test_store_result, &result);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &next);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));

  g_cancellable_cancel (cancellable);
  arip_test_wait_until (result != NULL);
  value = arip_pool_run_finish (pool, result, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* The worker was terminated (or killed) and replaced; the queued call
   * goes on, on a fresh worker. */
  arip_test_assert_pid_gone (pid);
  arip_test_wait_until (next != NULL);
  next_pid = finish_whoami (pool, next, &nth);
  g_assert_cmpint (next_pid, !=, pid);
  g_assert_cmpint (nth, ==, 1);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 1);
}

static void
test_cancel_ignored_terminated (Fixture *f, gconstpointer data)
{
  cancel_ignored (f, FALSE);
}

static void
test_cancel_ignored_killed (Fixture *f, gconstpointer data)
{
  cancel_ignored (f, TRUE);
}

static void
test_cancel_queued (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) already = g_cancellable_new ();
  g_autofree char *started = fixture_path (f, "started");
  g_autofree char *gate = fixture_path (f, "gate");
  g_autoptr(GAsyncResult) holder = NULL;
  g_autoptr(GAsyncResult) queued = NULL;
  g_autoptr(GAsyncResult) after = NULL;
  g_autoptr(GAsyncResult) pre = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  gint32 holder_nth, after_nth;
  GPid pid;

  arip_pool_run_async (pool, "hold", hold_args (started, gate), NULL, arip_test_store_result, &holder);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));
  arip_pool_run_async (pool, "whoami", NULL, cancellable, arip_test_store_result, &queued);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &after);
  arip_test_iterate_for (50);
  g_assert_null (queued);

  /* A queued call ends at once when cancelled, while the worker is still
   * busy. */
  g_cancellable_cancel (cancellable);
  arip_test_wait_until (queued != NULL);
  g_assert_null (holder);
  value = arip_pool_run_finish (pool, queued, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* A call made with a cancelled cancellable never runs either. */
  g_cancellable_cancel (already);
  arip_pool_run_async (pool, "whoami", NULL, already, arip_test_store_result, &pre);
  arip_test_wait_until (pre != NULL);
  value = arip_pool_run_finish (pool, pre, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  touch (gate);
  arip_test_wait_until (holder != NULL && after != NULL);
  pid = finish_whoami (pool, holder, &holder_nth);
  /* The cancelled calls never reached the worker. */
  g_assert_cmpint (finish_whoami (pool, after, &after_nth), ==, pid);
  g_assert_cmpint (after_nth, ==, holder_nth + 1);
}

static void
test_cancel_early (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  GPid pid;

  pid = pool_whoami (pool, NULL);

  /* Cancelled as soon as it is handed to the worker, perhaps before the
   * worker has read it: the interrupt still reaches that call, which
   * notices, so the worker is not killed. */
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;

      arip_pool_run_async (pool, "busy_until_interrupted", g_variant_new ("(ss)", "error", ""),
                           cancellable, arip_test_store_result, &result);
      g_main_context_iteration (NULL, FALSE);
      g_cancellable_cancel (cancellable);
      arip_test_wait_until (result != NULL);
      value = arip_pool_run_finish (pool, result, &error);
      g_assert_null (value);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    }

  g_assert_cmpint (pool_whoami (pool, NULL), ==, pid);
}

#define N_THREAD_CANCELLED 400

typedef struct
{
  AripPool      *pool;
  GCancellable  *cancellables[N_THREAD_CANCELLED];
  guint          completions[N_THREAD_CANCELLED];
  gint           outcome[N_THREAD_CANCELLED];   /* 1 a value, 2 cancelled */
  guint          n_done;
} ThreadCancels;

typedef struct
{
  ThreadCancels *state;
  guint          index;
} ThreadCancelsCall;

static void
thread_cancels_done (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  ThreadCancelsCall *call = user_data;
  ThreadCancels *state = call->state;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_pool_run_finish (state->pool, result, &error);

  state->completions[call->index]++;
  if (value != NULL)
    state->outcome[call->index] = 1;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    state->outcome[call->index] = 2;
  state->n_done++;
  g_free (call);
}

static gpointer
cancel_odd_ones (gpointer user_data)
{
  ThreadCancels *state = user_data;
  GRand *rand = g_rand_new_with_seed (7);

  /* Odd calls, in a shuffled order, at moments spread over their run:
   * queued, running, finished, or about to finish. */
  for (guint i = 1; i < N_THREAD_CANCELLED; i += 2)
    {
      guint j = 1 + 2 * g_rand_int_range (rand, 0, N_THREAD_CANCELLED / 2);

      g_usleep (g_rand_int_range (rand, 0, 100));
      g_cancellable_cancel (state->cancellables[j]);
      g_cancellable_cancel (state->cancellables[i]);
    }
  g_rand_free (rand);
  return NULL;
}

/* Calls cancelled from another thread while the pool works through them:
 * each ends once, a cancelled one as cancelled unless it had its value
 * first, none of the others is touched, and the pool serves on. */
static void
test_cancel_from_thread (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  ThreadCancels *state = g_new0 (ThreadCancels, 1);
  GThread *thread;
  guint cancelled = 0;

  state->pool = pool;
  pool_whoami (pool, NULL);
  for (guint i = 0; i < N_THREAD_CANCELLED; i++)
    {
      ThreadCancelsCall *call = g_new0 (ThreadCancelsCall, 1);

      call->state = state;
      call->index = i;
      state->cancellables[i] = g_cancellable_new ();
      arip_pool_run_async (pool, "whoami", NULL, state->cancellables[i], thread_cancels_done, call);
    }
  thread = g_thread_new ("canceller", cancel_odd_ones, state);
  arip_test_wait_until (state->n_done == N_THREAD_CANCELLED);
  g_thread_join (thread);
  arip_test_iterate_for (50);

  for (guint i = 0; i < N_THREAD_CANCELLED; i++)
    {
      g_assert_cmpuint (state->completions[i], ==, 1);
      if (i % 2 == 0)
        g_assert_cmpint (state->outcome[i], ==, 1);
      else
        g_assert_cmpint (state->outcome[i], !=, 0);
      cancelled += state->outcome[i] == 2;
      g_object_unref (state->cancellables[i]);
    }
  g_test_message ("%u of %u odd calls ended cancelled", cancelled, N_THREAD_CANCELLED / 2);
  g_assert_cmpuint (cancelled, >, 0);
  g_assert_cmpuint (pool_whoami (pool, NULL), >, 0);
  g_free (state);
}

#define N_QUEUED 300

typedef struct
{
  AripPool        *pool;
  AripResultQueue *queue;
} Submitter;

static gpointer
submit_to_queue (gpointer user_data)
{
  Submitter *submitter = user_data;
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();

  g_cancellable_cancel (cancelled);
  for (guint i = 0; i < N_QUEUED; i++)
    {
      if (i % 10 == 3)
        arip_pool_run_to_queue (submitter->pool, "fail", NULL, submitter->queue, i, NULL);
      else if (i % 10 == 7)
        arip_pool_run_to_queue (submitter->pool, "echo", g_variant_new ("(u)", i), submitter->queue,
                                i, cancelled);
      else
        arip_pool_run_to_queue (submitter->pool, "echo", g_variant_new ("(u)", i), submitter->queue,
                                i, NULL);
    }
  return NULL;
}

static gboolean
fd_is_readable (gint fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  return poll (&pfd, 1, 0) == 1;
}

/* Calls started from another thread end in a result queue, taken in
 * this thread: each once, with its tag, its value or its error; the
 * queue's descriptor is readable exactly while results wait. */
static void
test_result_queue (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(AripResultQueue) queue = arip_result_queue_new ();
  g_autoptr(AripResultQueue) dropped = arip_result_queue_new ();
  Submitter submitter = { pool, queue };
  gboolean seen[N_QUEUED] = { FALSE };
  guint n_seen = 0;
  GThread *thread;
  gint fd = arip_result_queue_get_fd (queue);

  g_assert_cmpint (fd, >=, 0);
  g_assert_false (fd_is_readable (fd));
  g_assert_null (arip_result_queue_pop (queue, NULL));

  thread = g_thread_new ("submitter", submit_to_queue, &submitter);
  while (n_seen < N_QUEUED)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;
      guint64 tag = G_MAXUINT64;

      if (!fd_is_readable (fd))
        {
          g_main_context_iteration (NULL, TRUE);
          continue;
        }
      result = arip_result_queue_pop (queue, &tag);
      g_assert_nonnull (result);
      g_assert_cmpuint (tag, <, N_QUEUED);
      g_assert_false (seen[tag]);
      seen[tag] = TRUE;
      n_seen++;
      value = arip_pool_run_finish (pool, result, &error);
      if (tag % 10 == 3)
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
      else if (tag % 10 == 7)
        g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      else
        {
          g_autoptr(GVariant) expected = g_variant_ref_sink (g_variant_new ("(u)", (guint32) tag));

          g_assert_no_error (error);
          g_assert_cmpvariant (value, expected);
        }
    }
  g_thread_join (thread);
  g_assert_false (fd_is_readable (fd));
  g_assert_null (arip_result_queue_pop (queue, NULL));

  /* A queue let go of with calls in flight: they end, nobody takes them. */
  for (guint i = 0; i < 5; i++)
    arip_pool_run_to_queue (pool, "whoami", NULL, dropped, i, NULL);
  g_clear_object (&dropped);
  arip_test_iterate_for (300);
  g_assert_cmpint (pool_whoami (pool, NULL), >, 0);
}

static void
test_close_starting (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  /* Closed while its first worker is still starting: the call fails, the
   * worker goes. */
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &result);
  pool_close (pool);
  arip_test_wait_until (result != NULL);
  value = arip_pool_run_finish (pool, result, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);
}

static void
test_close (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  g_autofree char *gate = fixture_path (f, "gate");
  g_autofree char *started_a = fixture_path (f, "started-a");
  g_autofree char *started_b = fixture_path (f, "started-b");
  g_autoptr(GAsyncResult) ra = NULL;
  g_autoptr(GAsyncResult) rb = NULL;
  g_autoptr(GAsyncResult) rq1 = NULL;
  g_autoptr(GAsyncResult) rq2 = NULL;
  g_autoptr(GAsyncResult) closed = NULL;
  g_autoptr(GAsyncResult) closed_again = NULL;
  g_autoptr(GAsyncResult) late = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  GPid pid_a, pid_b;

  arip_pool_run_async (pool, "hold", hold_args (started_a, gate), NULL, arip_test_store_result, &ra);
  arip_pool_run_async (pool, "hold", hold_args (started_b, gate), NULL, arip_test_store_result, &rb);
  arip_test_wait_until (g_file_test (started_a, G_FILE_TEST_EXISTS) &&
                        g_file_test (started_b, G_FILE_TEST_EXISTS));
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &rq1);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &rq2);
  arip_test_iterate_for (50);

  arip_pool_close_async (pool, NULL, arip_test_store_result, &closed);
  arip_pool_close_async (pool, NULL, arip_test_store_result, &closed_again);

  /* Queued calls fail at once. */
  arip_test_wait_until (rq1 != NULL && rq2 != NULL);
  value = arip_pool_run_finish (pool, rq1, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  value = arip_pool_run_finish (pool, rq2, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);

  /* New calls too. */
  value = pool_run (pool, "whoami", NULL, NULL, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);

  /* Running calls go on; closing waits for them. */
  arip_test_iterate_for (100);
  g_assert_null (ra);
  g_assert_null (rb);
  g_assert_null (closed);
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 2);

  touch (gate);
  arip_test_wait_until (ra != NULL && rb != NULL);
  pid_a = finish_whoami (pool, ra, NULL);
  pid_b = finish_whoami (pool, rb, NULL);

  arip_test_wait_until (closed != NULL && closed_again != NULL);
  g_assert_true (arip_pool_close_finish (pool, closed, &error));
  g_assert_no_error (error);
  g_assert_true (arip_pool_close_finish (pool, closed_again, &error));
  g_assert_no_error (error);

  /* Closed means gone. */
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
  g_assert_true (arip_test_pid_is_gone (pid_a));
  g_assert_true (arip_test_pid_is_gone (pid_b));
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);

  /* Closing a closed pool completes at once. */
  pool_close (pool);
  arip_pool_run_async (pool, "whoami", NULL, NULL, arip_test_store_result, &late);
  arip_test_wait_until (late != NULL);
  value = arip_pool_run_finish (pool, late, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

static void
test_close_idle (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) unused = arip_pool_new (NULL, 2);
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 2);
  GPid pid;

  /* A pool that never ran anything closes at once. */
  pool_close (unused);

  pid = pool_whoami (pool, NULL);
  pool_close (pool);
  g_assert_true (arip_test_pid_is_gone (pid));
  g_assert_cmpuint (arip_pool_get_n_workers (pool), ==, 0);
}

static void
test_close_cancelled (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *started = fixture_path (f, "started");
  g_autofree char *gate = fixture_path (f, "gate");
  g_autoptr(GAsyncResult) running = NULL;
  g_autoptr(GAsyncResult) closed = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid;

  arip_pool_run_async (pool, "hold", hold_args (started, gate), NULL, arip_test_store_result, &running);
  arip_test_wait_until (g_file_test (started, G_FILE_TEST_EXISTS));

  /* Cancelling stops the waiting, not the closing. */
  arip_pool_close_async (pool, cancellable, arip_test_store_result, &closed);
  arip_test_iterate_for (50);
  g_assert_null (closed);
  g_cancellable_cancel (cancellable);
  arip_test_iterate_for (200);

  g_assert_nonnull (closed);
  g_assert_false (arip_pool_close_finish (pool, closed, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (running);

  /* The pool still closes: the call finishes, its worker goes. */
  touch (gate);
  arip_test_wait_until (running != NULL);
  pid = finish_whoami (pool, running, NULL);
  arip_test_wait_until (arip_pool_get_n_workers (pool) == 0);
  arip_test_assert_pid_gone (pid);
}

static void
test_dispose (Fixture *f, gconstpointer data)
{
  AripPool *pool = arip_pool_new (NULL, 2);
  g_autofree char *gate = fixture_path (f, "gate");
  g_autofree char *started_a = fixture_path (f, "started-a");
  g_autofree char *started_b = fixture_path (f, "started-b");
  g_autoptr(GAsyncResult) ra = NULL;
  g_autoptr(GAsyncResult) rb = NULL;
  GPid pid_a, pid_b;

  /* Two idle workers: both calls run at once before either may end, so
   * each is on a worker of its own... */
  arip_pool_run_async (pool, "hold", hold_args (started_a, gate), NULL, arip_test_store_result, &ra);
  arip_pool_run_async (pool, "hold", hold_args (started_b, gate), NULL, arip_test_store_result, &rb);
  arip_test_wait_until (g_file_test (started_a, G_FILE_TEST_EXISTS) &&
                        g_file_test (started_b, G_FILE_TEST_EXISTS));
  touch (gate);
  arip_test_wait_until (ra != NULL && rb != NULL);
  pid_a = finish_whoami (pool, ra, NULL);
  pid_b = finish_whoami (pool, rb, NULL);
  g_assert_cmpint (pid_a, !=, pid_b);
  g_clear_object (&ra);
  g_clear_object (&rb);

  /* ... are gone with the pool. */
  g_object_unref (pool);
  arip_test_assert_pid_gone (pid_a);
  arip_test_assert_pid_gone (pid_b);
  /* A fork server's worker is gone a moment before the server says so. */
  arip_test_wait_until (arip_get_running_processes () == 0);
}

static void
test_run_sync (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) again = NULL;
  g_autoptr(GVariant) failed = NULL;
  gint32 pid, nth, pid2, nth2;

  value = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (value);
  g_variant_get (value, "(ii)", &pid, &nth);
  g_assert_cmpint (nth, ==, 1);

  again = arip_pool_run_sync (pool, "whoami", NULL, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (again, "(ii)", &pid2, &nth2);
  g_assert_cmpint (pid2, ==, pid);
  g_assert_cmpint (nth2, ==, 2);

  failed = arip_pool_run_sync (pool, "no-such-function", NULL, NULL, &error);
  g_assert_null (failed);
  g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
}

typedef struct {
  AripPool *pool;
  GVariant *value;
  GError   *error;
  gboolean  done;
} ThreadRun;

static gpointer
run_sync_thread (gpointer data)
{
  ThreadRun *run = data;

  run->value = arip_pool_run_sync (run->pool, "whoami", NULL, NULL, &run->error);
  g_atomic_int_set (&run->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

static void
test_run_sync_thread (Fixture *f, gconstpointer data)
{
  g_autoptr(AripPool) pool = arip_pool_new (NULL, 1);
  ThreadRun run = { pool, NULL, NULL, FALSE };
  GThread *thread;
  GPid pid;
  gint32 thread_pid, nth;

  pid = pool_whoami (pool, NULL);

  /* From another thread, while this one runs the pool's context. */
  thread = g_thread_new ("run-sync", run_sync_thread, &run);
  arip_test_wait_until (g_atomic_int_get (&run.done));
  g_thread_join (thread);

  g_assert_no_error (run.error);
  g_assert_nonnull (run.value);
  g_variant_get (run.value, "(ii)", &thread_pid, &nth);
  g_assert_cmpint (thread_pid, ==, pid);
  g_assert_cmpint (nth, ==, 2);
  g_variant_unref (run.value);
}

int
main (int argc, char **argv)
{
  arip_register_function ("whoami", fn_whoami, NULL, NULL);
  arip_register_function ("echo", fn_echo, NULL, NULL);
  arip_register_function ("hold", fn_hold, NULL, NULL);
  arip_register_function ("crash", fn_crash, NULL, NULL);
  arip_register_function ("exit", fn_exit, NULL, NULL);
  arip_register_function ("fail", fn_fail, NULL, NULL);
  arip_register_function ("busy_until_interrupted", fn_busy_until_interrupted, NULL, NULL);
  arip_register_function ("ignore_interrupt", fn_ignore_interrupt, NULL, NULL);
  arip_register_function ("check_cancellable", fn_check_cancellable, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

#define ADD(path, func) \
  g_test_add ("/Arip/Pool/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("new", test_new);
  ADD ("properties", test_properties);
  ADD ("default-max-workers", test_default_max_workers);
  ADD ("basic", test_basic);
  ADD ("reuse", test_reuse);
  ADD ("mru", test_mru);
  ADD ("on-demand", test_on_demand);
  ADD ("fifo", test_fifo);
  ADD ("limiter/shared", test_limiter);
  ADD ("limiter/close-waiting", test_limiter_close_waiting);
  ADD ("idle-timeout", test_idle_timeout);
  ADD ("idle-timeout/busy", test_idle_timeout_busy);
  ADD ("max-calls-per-worker", test_max_calls_per_worker);
  ADD ("max-calls-per-worker/no-fd-leak", test_no_fd_leak);
  ADD ("crash", test_crash);
  ADD ("idle-worker-killed", test_idle_worker_killed);
  ADD ("start-failure", test_start_failure);
  ADD ("unknown-function", test_unknown_function);
  ADD ("cancel/noticed-error", test_cancel_noticed_error);
  ADD ("cancel/noticed-value", test_cancel_noticed_value);
  ADD ("cancel/ignored-terminated", test_cancel_ignored_terminated);
  ADD ("cancel/ignored-killed", test_cancel_ignored_killed);
  ADD ("cancel/queued", test_cancel_queued);
  ADD ("cancel/early", test_cancel_early);
  ADD ("cancel/from-thread", test_cancel_from_thread);
  ADD ("result-queue", test_result_queue);
  ADD ("close", test_close);
  ADD ("close/idle", test_close_idle);
  ADD ("close/starting", test_close_starting);
  ADD ("close/cancelled", test_close_cancelled);
  ADD ("dispose", test_dispose);
  ADD ("run-sync", test_run_sync);
  ADD ("run-sync/thread", test_run_sync_thread);

#undef ADD

  return g_test_run ();
}
