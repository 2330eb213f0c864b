/* test-load.c: many calls through the limiter, with cancels, kills and
 * failures mixed in
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ARIP_TEST_LOAD_CALLS calls (default 10,000) run through a limit of 16
 * processes, up to 48 outstanding at once: one-shot calls (most of them),
 * AripProcess calls, pool calls, and among them random cancels, kills by
 * arip_process_kill() at a random state, SIGKILLs from outside, crashes,
 * exits, unknown functions and errors. The test checks that
 *
 *   - every callback fires exactly once, with the outcome its kind allows;
 *   - every child is reaped: at each checkpoint (quiescent: nothing in
 *     flight, the pool closed) no process, not even a zombie, has this
 *     process as its parent;
 *   - descriptors and memory are flat: the number of open descriptors after
 *     the last call equals the number after the first tenth (call 1,000 of
 *     10,000), and VmRSS grew by at most 4 MiB between the two (skipped
 *     under ASan and valgrind, whose own bookkeeping grows).
 *
 * `build-aux/dev soak` runs it with ARIP_TEST_LOAD_CALLS=1000000.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>

#include "arip-test-util.h"

#if defined(__SANITIZE_ADDRESS__)
# define UNDER_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define UNDER_ASAN 1
# endif
#endif

#define MAX_PROCESSES  16
#define WINDOW         48
#define RSS_TOLERANCE_KB (4 * 1024)
/* No call completing for this long is a hang. */
#define STALL_SECONDS  30

/* ---------------------------------------------------------------------- */
/* Functions the workers run                                              */

/* (u): sleeps that many ms, or until interrupted: then answers
 * G_IO_ERROR_CANCELLED. */
static void
fn_sleep (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 end;
  guint32 ms;

  g_variant_get (args, "(u)", &ms);
  end = g_get_monotonic_time () + ms * 1000;
  while (g_get_monotonic_time () < end)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_CANCELLED, "interrupted");
          return;
        }
      g_usleep (1000);
    }
  arip_call_return_value (call, args);
}

static void
fn_hang (AripCall *call, GVariant *args, gpointer user_data)
{
}

static void
fn_crash (AripCall *call, GVariant *args, gpointer user_data)
{
  signal (SIGABRT, SIG_DFL);
  abort ();
}

static void
fn_exit (AripCall *call, GVariant *args, gpointer user_data)
{
  _exit (3);
}

static void
fn_error (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_error_literal (call, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "not found");
}

/* ---------------------------------------------------------------------- */
/* The calls                                                              */

typedef enum {
  KIND_ECHO,            /* run_in_process: the value */
  KIND_PROCESS,         /* AripProcess start + wait: the value */
  KIND_CANCEL,          /* run_in_process, cancelled at random: value or CANCELLED */
  KIND_CANCEL_HANG,     /* launcher run of a function that never ends, cancelled: CANCELLED */
  KIND_KILL,            /* AripProcess, arip_process_kill() at a random state or time */
  KIND_SIGKILL,         /* AripProcess, SIGKILL from outside at a random state */
  KIND_CRASH,           /* abort(): SIGNALED */
  KIND_EXIT,            /* exit 3: EXITED */
  KIND_UNKNOWN,         /* UNKNOWN_FUNCTION */
  KIND_ERROR,           /* the function's GError */
  KIND_POOL,            /* pool: the value */
  KIND_POOL_CANCEL,     /* pool, cancelled at random: value or CANCELLED */
  N_KINDS
} Kind;

static const char * const kind_names[N_KINDS] = {
  "echo", "process", "cancel", "cancel-hang", "kill", "sigkill",
  "crash", "exit", "unknown", "error", "pool", "pool-cancel",
};

/* Out of 100. */
static const guint kind_weights[N_KINDS] = {
  40, 10, 8, 2, 8, 4, 2, 2, 2, 2, 18, 2,
};

typedef struct {
  guint         index;
  Kind          kind;
  GCancellable *cancellable;
  AripProcess  *process;
  AripState     kill_state;   /* KILL/SIGKILL: when; INITIALIZING: on a timer */
  gboolean      killed;
  guint         timer_id;
} Call;

typedef struct {
  guint      n_calls;
  guint      issued;
  guint      completed;
  guint      in_flight;
  guint      target;           /* issue up to this many, then quiesce */
  guint8    *fired;            /* per call: callbacks seen */
  AripLauncher *launcher;      /* short stop timeouts */
  AripPool  *pool;
  guint      by_kind[N_KINDS];
  guint      succeeded;
  guint      cancels;
  guint      kills;
  guint      faults;
  gint64     last_progress;
} Load;

static Load load;

static void pump (void);

static gboolean
cancel_later (gpointer user_data)
{
  Call *call = user_data;

  call->timer_id = 0;
  g_cancellable_cancel (call->cancellable);
  return G_SOURCE_REMOVE;
}

static void
kill_call (Call *call)
{
  GPid pid = arip_process_get_pid (call->process);

  if (call->killed)
    return;
  call->killed = TRUE;
  if (call->kind == KIND_KILL)
    {
      arip_process_kill (call->process);
      load.kills++;
    }
  else if (pid > 0)
    {
      /* From outside, as the OOM killer would. The child may be a zombie
       * already; then this changes nothing. */
      kill (pid, SIGKILL);
      load.faults++;
    }
}

static gboolean
kill_later (gpointer user_data)
{
  Call *call = user_data;

  call->timer_id = 0;
  if (arip_process_get_state (call->process) != ARIP_STATE_FINISHED)
    kill_call (call);
  return G_SOURCE_REMOVE;
}

static void
on_state_changed (AripProcess *process, AripState old_state, AripState new_state, gpointer user_data)
{
  Call *call = user_data;

  if (new_state == call->kill_state && new_state != ARIP_STATE_FINISHED)
    kill_call (call);
}

static void
call_free (Call *call)
{
  if (call->timer_id != 0)
    g_source_remove (call->timer_id);
  if (call->process != NULL)
    g_signal_handlers_disconnect_by_data (call->process, call);
  g_clear_object (&call->process);
  g_clear_object (&call->cancellable);
  g_free (call);
}

static void
check_outcome (Call     *call,
               GVariant *value,
               GError   *error)
{
  g_autoptr(GVariant) expected = NULL;

  if (value != NULL)
    {
      g_assert_no_error (error);
      load.succeeded++;
      switch (call->kind)
        {
        case KIND_ECHO:
        case KIND_PROCESS:
        case KIND_POOL:
          expected = g_variant_ref_sink (g_variant_new ("(u)", call->index));
          break;
        case KIND_CANCEL:
        case KIND_KILL:
        case KIND_SIGKILL:
        case KIND_POOL_CANCEL:
          expected = g_variant_ref_sink (g_variant_new ("(u)", call->index % 20));
          break;
        default:
          g_error ("call %u (%s) succeeded; it cannot", call->index, kind_names[call->kind]);
        }
      if (!g_variant_equal (value, expected))
        g_error ("call %u (%s) returned the wrong value", call->index, kind_names[call->kind]);
      return;
    }

  g_assert_nonnull (error);
  switch (call->kind)
    {
    case KIND_CANCEL:
    case KIND_CANCEL_HANG:
    case KIND_POOL_CANCEL:
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      break;
    case KIND_KILL:
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED);
      break;
    case KIND_SIGKILL:
    case KIND_CRASH:
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_SIGNALED);
      break;
    case KIND_EXIT:
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_EXITED);
      break;
    case KIND_UNKNOWN:
      g_assert_error (error, ARIP_ERROR, ARIP_ERROR_UNKNOWN_FUNCTION);
      break;
    case KIND_ERROR:
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
      break;
    case KIND_ECHO:
    case KIND_PROCESS:
    case KIND_POOL:
    default:
      g_error ("call %u (%s) failed: %s", call->index, kind_names[call->kind], error->message);
    }
}

static void
call_done (Call     *call,
           GVariant *value,
           GError   *error)
{
  g_assert_cmpuint (call->index, <, load.n_calls);
  if (load.fired[call->index] != 0)
    g_error ("the callback of call %u (%s) fired twice", call->index, kind_names[call->kind]);
  load.fired[call->index] = 1;

  check_outcome (call, value, error);
  if (value != NULL)
    g_variant_unref (value);
  if (error != NULL)
    g_error_free (error);

  load.completed++;
  load.in_flight--;
  load.last_progress = g_get_monotonic_time ();
  call_free (call);
  pump ();
}

static void
on_run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;
  GVariant *value;

  if (call->kind == KIND_CANCEL_HANG)
    value = arip_launcher_run_finish (ARIP_LAUNCHER (source), result, &error);
  else
    value = arip_run_in_process_finish (result, &error);
  call_done (call, value, error);
}

static void
on_wait_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;
  GVariant *value = arip_process_wait_finish (ARIP_PROCESS (source), result, &error);

  call_done (call, value, error);
}

static void
on_pool_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  GError *error = NULL;
  GVariant *value = arip_pool_run_finish (ARIP_POOL (source), result, &error);

  call_done (call, value, error);
}

static Kind
pick_kind (void)
{
  guint r = (guint) g_test_rand_int_range (0, 100);

  for (Kind k = 0; k < N_KINDS; k++)
    {
      if (r < kind_weights[k])
        return k;
      r -= kind_weights[k];
    }
  g_assert_not_reached ();
}

static void
arm_cancel (Call *call, guint max_ms)
{
  call->cancellable = g_cancellable_new ();
  call->timer_id = g_timeout_add ((guint) g_test_rand_int_range (0, (gint32) max_ms + 1),
                                  cancel_later, call);
  load.cancels++;
}

static void
issue (guint index)
{
  Call *call = g_new0 (Call, 1);

  call->index = index;
  call->kind = pick_kind ();
  load.by_kind[call->kind]++;
  load.issued++;
  load.in_flight++;

  switch (call->kind)
    {
    case KIND_ECHO:
      arip_run_in_process_async ("echo", g_variant_new ("(u)", index), NULL, on_run_done, call);
      break;

    case KIND_PROCESS:
      call->process = arip_process_new (NULL, "echo", g_variant_new ("(u)", index));
      arip_process_start_async (call->process, NULL, NULL, NULL);
      arip_process_wait_async (call->process, NULL, on_wait_done, call);
      break;

    case KIND_CANCEL:
      arm_cancel (call, 30);
      arip_run_in_process_async ("sleep", g_variant_new ("(u)", index % 20), call->cancellable,
                                 on_run_done, call);
      break;

    case KIND_CANCEL_HANG:
      arm_cancel (call, 20);
      arip_launcher_run_async (load.launcher, "hang", NULL, call->cancellable, on_run_done, call);
      break;

    case KIND_KILL:
    case KIND_SIGKILL:
      call->process = arip_process_new (load.launcher, "sleep", g_variant_new ("(u)", index % 20));
      /* At a state (INITIALIZED .. EXECUTING), or on a timer. */
      call->kill_state = (AripState) g_test_rand_int_range (ARIP_STATE_INITIALIZING,
                                                            ARIP_STATE_EXECUTING + 1);
      if (call->kill_state == ARIP_STATE_INITIALIZING)
        call->timer_id = g_timeout_add ((guint) g_test_rand_int_range (0, 25), kill_later, call);
      else
        g_signal_connect (call->process, "state-changed", G_CALLBACK (on_state_changed), call);
      arip_process_start_async (call->process, NULL, NULL, NULL);
      arip_process_wait_async (call->process, NULL, on_wait_done, call);
      break;

    case KIND_CRASH:
      arip_run_in_process_async ("crash", NULL, NULL, on_run_done, call);
      break;

    case KIND_EXIT:
      arip_run_in_process_async ("exit", NULL, NULL, on_run_done, call);
      break;

    case KIND_UNKNOWN:
      arip_run_in_process_async ("no such function", NULL, NULL, on_run_done, call);
      break;

    case KIND_ERROR:
      arip_run_in_process_async ("error", NULL, NULL, on_run_done, call);
      break;

    case KIND_POOL:
      arip_pool_run_async (load.pool, "echo", g_variant_new ("(u)", index), NULL, on_pool_done, call);
      break;

    case KIND_POOL_CANCEL:
      arm_cancel (call, 30);
      arip_pool_run_async (load.pool, "sleep", g_variant_new ("(u)", index % 20), call->cancellable,
                           on_pool_done, call);
      break;

    case N_KINDS:
    default:
      g_assert_not_reached ();
    }
}

static void
pump (void)
{
  while (load.in_flight < WINDOW && load.issued < load.target)
    issue (load.issued);
}

/* ---------------------------------------------------------------------- */
/* Accounting                                                             */

static guint64
status_kb (const char *field)
{
  g_autofree char *contents = NULL;
  g_autofree char *key = g_strconcat ("\n", field, ":", NULL);
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &contents, NULL, NULL));
  line = strstr (contents, key);
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen (key), NULL, 10);
}

static gboolean
watchdog (gpointer user_data)
{
  if (load.in_flight > 0 &&
      g_get_monotonic_time () - load.last_progress > STALL_SECONDS * G_USEC_PER_SEC)
    {
      g_autoptr(GString) children = g_string_new (NULL);

      arip_test_count_workers (children);
      g_error ("no call completed for %d s: %u issued, %u completed, %u in flight, "
               "%u processes running; children:%s",
               STALL_SECONDS, load.issued, load.completed, load.in_flight,
               arip_get_running_processes (), children->str);
    }
  return G_SOURCE_CONTINUE;
}

static void
on_pool_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *closed = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (arip_pool_close_finish (ARIP_POOL (source), result, &error));
  g_assert_no_error (error);
  *closed = TRUE;
}

static AripPool *
new_pool (void)
{
  return arip_pool_new (load.launcher, 4);
}

/* Runs calls until @target were issued and all of them completed; then
 * closes the pool and waits until no child is left. */
static void
run_until (guint target)
{
  gboolean closed = FALSE;

  load.target = target;
  load.last_progress = g_get_monotonic_time ();
  pump ();
  while (load.completed < target)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (load.in_flight, ==, 0);

  arip_pool_close_async (load.pool, NULL, on_pool_closed, &closed);
  arip_test_wait_until (closed);
  g_clear_object (&load.pool);

  /* Killed children are reaped by their child watch, soon. */
  arip_test_wait_until (arip_test_count_workers (NULL) == 0);
  arip_test_iterate_for (100);
  g_assert_cmpuint (arip_get_running_processes (), ==, 0);

  load.pool = new_pool ();
}

static void
test_load (void)
{
  const char *env = g_getenv ("ARIP_TEST_LOAD_CALLS");
  guint64 n_calls = 10000;
  guint checkpoint;
  guint fds_first, fds_last;
  guint64 rss_first, rss_last;
  gboolean check_rss = TRUE;
  gint64 started;
  gdouble elapsed;
  guint watchdog_id;

  if (env != NULL && *env != '\0' &&
      !g_ascii_string_to_unsigned (env, 10, 100, G_MAXUINT32, &n_calls, NULL))
    g_error ("ARIP_TEST_LOAD_CALLS=%s is not a number of calls (at least 100)", env);

#ifdef UNDER_ASAN
  check_rss = FALSE;
#endif
  if (g_getenv ("ARIP_TEST_UNDER_VALGRIND") != NULL)
    check_rss = FALSE;

  arip_set_max_processes (MAX_PROCESSES);
  g_assert_cmpuint (arip_get_max_processes (), ==, MAX_PROCESSES);

  memset (&load, 0, sizeof load);
  load.n_calls = (guint) n_calls;
  load.fired = g_new0 (guint8, load.n_calls);
  load.launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  arip_launcher_set_stop_timeouts (load.launcher, 20, 20);
  load.pool = new_pool ();
  watchdog_id = g_timeout_add_seconds (1, watchdog, NULL);

  checkpoint = load.n_calls / 10;
  started = g_get_monotonic_time ();

  run_until (checkpoint);
  fds_first = arip_test_count_fds ();
  rss_first = status_kb ("VmRSS");
  g_test_message ("after %u calls: %u fds, VmRSS %" G_GUINT64_FORMAT " kB",
                  checkpoint, fds_first, rss_first);

  run_until (load.n_calls);
  fds_last = arip_test_count_fds ();
  rss_last = status_kb ("VmRSS");
  elapsed = (g_get_monotonic_time () - started) / (gdouble) G_USEC_PER_SEC;
  g_test_message ("after %u calls: %u fds, VmRSS %" G_GUINT64_FORMAT " kB",
                  load.n_calls, fds_last, rss_last);

  /* No callback comes late. */
  arip_test_iterate_for (200);
  for (guint i = 0; i < load.n_calls; i++)
    if (load.fired[i] != 1)
      g_error ("the callback of call %u fired %u times", i, load.fired[i]);
  g_assert_cmpuint (load.completed, ==, load.n_calls);

  {
    g_autoptr(GString) kinds = g_string_new (NULL);

    for (Kind k = 0; k < N_KINDS; k++)
      g_string_append_printf (kinds, " %s=%u", kind_names[k], load.by_kind[k]);
    g_printerr ("# test-load: %u calls in %.1f s (%.0f/s) at a limit of %u:%s\n"
                "# test-load: %u succeeded, %u cancels, %u kills, %u SIGKILLs from outside\n"
                "# test-load: fds %u -> %u, VmRSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
                " kB (after call %u -> after call %u)%s\n",
                load.n_calls, elapsed, load.n_calls / elapsed, MAX_PROCESSES, kinds->str,
                load.succeeded, load.cancels, load.kills, load.faults,
                fds_first, fds_last, rss_first, rss_last, checkpoint, load.n_calls,
                check_rss ? "" : " (RSS not checked under ASan/valgrind)");
  }

  if (fds_last != fds_first)
    {
      g_autofree char *list = arip_test_list_fds ();

      g_test_message ("open descriptors now:\n%s", list);
    }
  g_assert_cmpuint (fds_last, ==, fds_first);
  if (check_rss)
    g_assert_cmpuint (rss_last, <=, rss_first + RSS_TOLERANCE_KB);

  g_source_remove (watchdog_id);
  g_clear_object (&load.pool);
  g_clear_object (&load.launcher);
  g_free (load.fired);
}

int
main (int argc, char **argv)
{
  arip_register_function ("echo", arip_test_fn_echo, NULL, NULL);
  arip_register_function ("sleep", fn_sleep, NULL, NULL);
  arip_register_function ("hang", fn_hang, NULL, NULL);
  arip_register_function ("crash", fn_crash, NULL, NULL);
  arip_register_function ("exit", fn_exit, NULL, NULL);
  arip_register_function ("error", fn_error, NULL, NULL);
  arip_init (&argc, &argv);

  g_test_init (&argc, &argv, NULL);
  arip_test_wait_for_fork_server ();

  g_test_add_func ("/Arip/Load/mixed", test_load);

  return g_test_run ();
}
