/* arip-demo.c: five child processes on one GLib main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What it shows:
 *
 *  - four CPU-heavy calls (counting primes by trial division) run in child
 *    processes, at most two at a time: the global limiter keeps the others
 *    waiting in ARIP_STATE_INITIALIZING, first come, first served;
 *  - every state change and the progress each child reports reach the
 *    parent as ordinary GObject signals, on the parent's main loop, which
 *    stays free the whole time (a 100 ms timer keeps ticking);
 *  - a fifth call dereferences a NULL pointer. The child dies of SIGSEGV;
 *    the parent gets an ARIP_ERROR_SIGNALED error that names the signal and
 *    carries the child's last words, and carries on.
 *
 * Run it:   build-aux/dev demo      (or _build/examples/arip-demo)
 *
 * ARIP_MAX_PROCS=N in the environment overrides the limit of 2 the demo
 * sets. Ctrl-C stops the children cleanly (their GCancellable fires).
 *
 * The exit status is 0 when every result is right and the crash was
 * reported as it should be, so the test suite runs this program too.
 */

#include <arip.h>

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The functions the children run                                      */
/* ------------------------------------------------------------------ */

static gboolean
is_prime (guint32 n)
{
  if (n < 2)
    return FALSE;
  if (n % 2 == 0)
    return n == 2;
  for (guint32 d = 3; d <= n / d; d += 2)
    if (n % d == 0)
      return FALSE;
  return TRUE;
}

/* count_primes ((u) n) -> (u): how many primes are below n.
 *
 * Deliberately slow (trial division), so that it keeps one core busy for
 * about half a second. It runs in a worker process, so it may block as long
 * as it likes: the parent's main loop is not this process's main loop. */
static void
count_primes (AripCall *call,
              GVariant *args,
              gpointer  user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  const guint32 n_steps = 100;
  guint32 n, count = 0;

  g_variant_get (args, "(u)", &n);

  for (guint32 step = 0; step < n_steps; step++)
    {
      guint32 from = (guint32) ((guint64) n * step / n_steps);
      guint32 to = (guint32) ((guint64) n * (step + 1) / n_steps);

      /* The parent interrupts a call by cancelling this GCancellable (also
       * while this function runs without returning to a main loop): look
       * at it now and then, and give up politely. */
      if (g_cancellable_is_cancelled (cancellable))
        {
          arip_call_return_error (call, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                  "Counting the primes below %u was interrupted "
                                  "at %u", n, from);
          return;
        }

      for (guint32 i = from; i < to; i++)
        count += is_prime (i);

      /* Goes to the parent as AripProcess:progress. */
      arip_call_set_progress (call, (gdouble) (step + 1) / n_steps);
    }

  arip_call_return_value (call, g_variant_new ("(u)", count));
}

/* crash (()) -> never returns: a bug that would take a whole program down,
 * contained in its child process. */
static void
crash (AripCall *call,
       GVariant *args,
       gpointer  user_data)
{
  /* volatile, twice: so that the compiler can neither assume the pointer
   * is NULL nor drop the write through it. */
  volatile int *volatile pointer = NULL;

  *pointer = 42;  /* SIGSEGV */

  arip_call_return_value (call, NULL);  /* not reached */
}

/* ------------------------------------------------------------------ */
/* The parent                                                          */
/* ------------------------------------------------------------------ */

typedef struct _Job Job;

typedef struct {
  GMainLoop *loop;
  gint64     start_time;
  GPtrArray *jobs;           /* of Job */
  guint      n_running;      /* jobs not finished yet */
  guint      n_results;      /* correct results */
  guint      n_crashes;      /* crashes reported as expected */
  guint      n_failures;     /* anything not as expected */
  gboolean   interrupted;    /* Ctrl-C */
  guint      n_ticks;        /* of the 100 ms heartbeat */
  gint64     last_tick;
  gint64     longest_tick_gap;
  guint8    *composite;      /* sieve of Eratosthenes: composite[i] != 0 */
  guint32    sieve_size;
  AripLauncher *launcher;    /* the workers' limits and sandbox */
  gboolean   told_sandbox;
} Demo;

struct _Job {
  Demo        *demo;
  char        *label;
  AripProcess *process;
  guint32      n;            /* count_primes argument; 0 for the crash */
  gboolean     expect_crash;
  AripState    last_state;
  gint         last_quarter; /* of progress, last printed */
  gint64       queued_since; /* when its start was requested; 0 before */
  gboolean     was_queued;
  gboolean     done;
};

static void
say (Demo       *demo,
     const char *who,
     const char *format,
     ...) G_GNUC_PRINTF (3, 4);

static void
say (Demo       *demo,
     const char *who,
     const char *format,
     ...)
{
  g_autofree char *message = NULL;
  va_list ap;

  va_start (ap, format);
  message = g_strdup_vprintf (format, ap);
  va_end (ap);

  printf ("%6.3fs  %-10s  %s\n",
          (g_get_monotonic_time () - demo->start_time) / (double) G_USEC_PER_SEC,
          who, message);
  fflush (stdout);
}

/* "EXECUTING" for ARIP_STATE_EXECUTING, from the GEnumClass that
 * arip-enum-types.h registers. */
static const char *
state_name (AripState state)
{
  GEnumClass *klass = g_type_class_peek (ARIP_TYPE_STATE);
  GEnumValue *value = klass ? g_enum_get_value (klass, state) : NULL;

  if (value == NULL)
    return "(unknown state)";
  if (g_str_has_prefix (value->value_name, "ARIP_STATE_"))
    return value->value_name + strlen ("ARIP_STATE_");
  return value->value_name;
}

/* How many primes are below n, counted by the parent in a different way
 * (about 30 ms for n = 6 million), to check the children's answers.
 * Known values: 216816 below 3e6, 283146 below 4e6, 348513 below 5e6,
 * 412849 below 6e6. */
static void
sieve (Demo    *demo,
       guint32  size)
{
  demo->sieve_size = size;
  demo->composite = g_malloc0 (size);
  demo->composite[0] = demo->composite[1] = 1;
  for (guint32 p = 2; (guint64) p * p < size; p++)
    if (!demo->composite[p])
      for (guint32 m = p * p; m < size; m += p)
        demo->composite[m] = 1;
}

static guint32
primes_below (Demo    *demo,
              guint32  n)
{
  guint32 count = 0;

  g_assert (n <= demo->sieve_size);
  for (guint32 i = 0; i < n; i++)
    count += !demo->composite[i];
  return count;
}

/* If every slot of the limiter is visibly taken by a live child, the jobs
 * that are still INITIALIZING wait in its queue: say so. */
static void
show_queue (Demo *demo)
{
  g_autoptr(GString) queue = g_string_new (NULL);
  guint n_alive = 0;

  for (guint i = 0; i < demo->jobs->len; i++)
    {
      Job *job = g_ptr_array_index (demo->jobs, i);
      AripState state = arip_process_get_state (job->process);

      if (state == ARIP_STATE_INITIALIZING && job->queued_since != 0)
        g_string_append_printf (queue, "%s%s", queue->len ? ", " : "", job->label);
      else if (state != ARIP_STATE_INITIALIZING && state != ARIP_STATE_FINISHED)
        n_alive++;
    }

  if (n_alive < arip_get_max_processes () || queue->len == 0)
    return;

  say (demo, "limiter", "%u of %u slots in use; waiting in INITIALIZING: %s",
       n_alive, arip_get_max_processes (), queue->str);
  for (guint i = 0; i < demo->jobs->len; i++)
    {
      Job *job = g_ptr_array_index (demo->jobs, i);

      if (arip_process_get_state (job->process) == ARIP_STATE_INITIALIZING &&
          job->queued_since != 0)
        job->was_queued = TRUE;
    }
}

static void
on_state_changed (AripProcess *process,
                  AripState    old_state,
                  AripState    new_state,
                  gpointer     user_data)
{
  Job *job = user_data;
  Demo *demo = job->demo;

  switch (new_state)
    {
    case ARIP_STATE_INITIALIZED:
      if (job->was_queued)
        say (demo, job->label, "%s -> %s  pid %d, got a slot after %.2f s in the queue",
             state_name (old_state), state_name (new_state),
             (int) arip_process_get_pid (process),
             (g_get_monotonic_time () - job->queued_since) / (double) G_USEC_PER_SEC);
      else
        say (demo, job->label, "%s -> %s  pid %d",
             state_name (old_state), state_name (new_state),
             (int) arip_process_get_pid (process));
      break;
    case ARIP_STATE_EXECUTING:
      say (demo, job->label, "%s -> %s  (the function is running now)",
           state_name (old_state), state_name (new_state));
      break;
    default:
      say (demo, job->label, "%s -> %s",
           state_name (old_state), state_name (new_state));
      break;
    }

  /* The contract: each state once, in order; only FINISHED may come early
   * (a crash, a kill). */
  if (old_state != job->last_state ||
      (new_state != old_state + 1 && new_state != ARIP_STATE_FINISHED))
    {
      say (demo, job->label, "UNEXPECTED: %s -> %s after %s",
           state_name (old_state), state_name (new_state),
           state_name (job->last_state));
      demo->n_failures++;
    }
  job->last_state = new_state;

  if (new_state == ARIP_STATE_INITIALIZED)
    show_queue (demo);
}

static void
on_progress (AripProcess *process,
             GParamSpec  *pspec,
             gpointer     user_data)
{
  Job *job = user_data;
  gdouble progress = arip_process_get_progress (process);
  gint quarter = (gint) (progress * 4 + 1e-9);

  /* Children report every 1 %; print every 25 %. */
  if (quarter > job->last_quarter)
    {
      job->last_quarter = quarter;
      say (job->demo, job->label, "progress %3.0f %%", progress * 100);
    }
}

/* Up to @max_lines lines of @text, indented, and how many were left out. */
static void
print_first_lines (const char *text,
                   guint       max_lines)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  guint n_lines = g_strv_length (lines);

  while (n_lines > 0 && *lines[n_lines - 1] == '\0')
    n_lines--;
  for (guint i = 0; i < n_lines && i < max_lines; i++)
    printf ("%20s| %s\n", "", lines[i]);
  if (n_lines > max_lines)
    printf ("%20s| (%u more lines)\n", "", n_lines - max_lines);
  fflush (stdout);
}

static void
job_finished (Job          *job,
              GVariant     *result,
              const GError *error)
{
  Demo *demo = job->demo;

  job->done = TRUE;

  if (demo->interrupted)
    {
      say (demo, job->label, "stopped: %s", error ? error->message : "it had finished");
    }
  else if (job->expect_crash)
    {
      if (error == NULL)
        {
          say (demo, job->label, "UNEXPECTED: the crashing function returned a value");
          demo->n_failures++;
        }
      else if (!g_error_matches (error, ARIP_ERROR, ARIP_ERROR_SIGNALED) ||
               strstr (error->message, "SIGSEGV") == NULL)
        {
          say (demo, job->label, "UNEXPECTED: %s error %d instead of ARIP_ERROR_SIGNALED "
               "naming SIGSEGV: %s",
               g_quark_to_string (error->domain), error->code, error->message);
          demo->n_failures++;
        }
      else if (!arip_process_get_if_signaled (job->process) ||
               arip_process_get_term_sig (job->process) != SIGSEGV)
        {
          say (demo, job->label, "UNEXPECTED: if_signaled %d, term_sig %d (SIGSEGV is %d)",
               arip_process_get_if_signaled (job->process),
               arip_process_get_term_sig (job->process), SIGSEGV);
          demo->n_failures++;
        }
      else
        {
          say (demo, job->label, "crash contained: ARIP_ERROR_SIGNALED, term sig %d "
               "(SIGSEGV):", arip_process_get_term_sig (job->process));
          print_first_lines (error->message, 4);
          demo->n_crashes++;
        }
    }
  else if (error != NULL)
    {
      say (demo, job->label, "UNEXPECTED: %s", error->message);
      demo->n_failures++;
    }
  else if (!g_variant_is_of_type (result, G_VARIANT_TYPE ("(u)")))
    {
      say (demo, job->label, "UNEXPECTED: a result of type %s",
           g_variant_get_type_string (result));
      demo->n_failures++;
    }
  else
    {
      guint32 count, expected = primes_below (demo, job->n);

      g_variant_get (result, "(u)", &count);
      if (count == expected)
        {
          say (demo, job->label, "result: %u primes below %u (the parent's sieve agrees)",
               count, job->n);
          demo->n_results++;
        }
      else
        {
          say (demo, job->label, "WRONG: %u primes below %u, the sieve says %u",
               count, job->n, expected);
          demo->n_failures++;
        }
    }

  if (--demo->n_running == 0)
    g_main_loop_quit (demo->loop);
}

static void
on_waited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = arip_process_wait_finish (ARIP_PROCESS (source), result, &error);
  job_finished (job, value, error);
}

static void
on_started (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;

  /* start_async completes once the function runs (or has already ended);
   * then wait for its result. */
  if (!arip_process_start_finish (ARIP_PROCESS (source), result, &error))
    job_finished (job, NULL, error);
  else
    {
      /* What this machine let the first worker have of its sandbox. */
      if (!job->demo->told_sandbox)
        {
          g_autofree char *applied = g_flags_to_string (ARIP_TYPE_SANDBOX_FLAGS,
                                                        arip_process_get_sandbox (job->process));

          say (job->demo, job->label, "sandboxed: %s", applied);
          job->demo->told_sandbox = TRUE;
        }
      arip_process_wait_async (job->process, NULL, on_waited, job);
    }
}

static void
add_job (Demo       *demo,
         const char *label,
         const char *function,
         GVariant   *args)
{
  Job *job = g_new0 (Job, 1);

  job->demo = demo;
  job->label = g_strdup (label);
  job->expect_crash = g_str_equal (function, "crash");
  if (!job->expect_crash)
    g_variant_get (args, "(u)", &job->n);

  /* The launcher re-runs this program as the worker (the default), in a
   * sandbox. */
  job->process = arip_process_new (demo->launcher, function, args);
  job->last_state = arip_process_get_state (job->process);
  g_signal_connect (job->process, "state-changed", G_CALLBACK (on_state_changed), job);
  g_signal_connect (job->process, "notify::progress", G_CALLBACK (on_progress), job);

  g_ptr_array_add (demo->jobs, job);
}

static void
job_free (gpointer data)
{
  Job *job = data;

  g_signal_handlers_disconnect_by_data (job->process, job);
  g_object_unref (job->process);
  g_free (job->label);
  g_free (job);
}

static gboolean
on_tick (gpointer user_data)
{
  Demo *demo = user_data;
  gint64 now = g_get_monotonic_time ();

  demo->n_ticks++;
  demo->longest_tick_gap = MAX (demo->longest_tick_gap, now - demo->last_tick);
  demo->last_tick = now;
  return G_SOURCE_CONTINUE;
}

static void
on_stopped (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!arip_process_stop_finish (ARIP_PROCESS (source), result, &error))
    g_printerr ("arip-demo: stopping a process failed: %s\n", error->message);
}

static gboolean
on_sigint (gpointer user_data)
{
  Demo *demo = user_data;

  say (demo, "demo", "Ctrl-C: stopping the children (interrupt, then SIGTERM, then SIGKILL)");
  demo->interrupted = TRUE;
  for (guint i = 0; i < demo->jobs->len; i++)
    {
      Job *job = g_ptr_array_index (demo->jobs, i);

      if (!job->done)
        arip_process_stop_async (job->process, NULL, on_stopped, NULL);
    }
  return G_SOURCE_REMOVE;  /* a second Ctrl-C ends the demo at once */
}

static gboolean
on_watchdog (gpointer user_data)
{
  Demo *demo = user_data;

  say (demo, "demo", "GIVING UP: not finished after 60 s");
  for (guint i = 0; i < demo->jobs->len; i++)
    {
      Job *job = g_ptr_array_index (demo->jobs, i);

      if (!job->done)
        say (demo, job->label, "still %s", state_name (arip_process_get_state (job->process)));
    }
  demo->n_failures++;
  g_main_loop_quit (demo->loop);
  return G_SOURCE_REMOVE;
}

int
main (int    argc,
      char **argv)
{
  static const guint32 sizes[] = { 3000000, 4000000, 5000000, 6000000 };
  Demo demo = { 0 };
  guint watchdog_id, tick_id, sigint_id;
  int status;

  /* Name the functions a child may run, then call arip_init() FIRST THING.
   *
   * A worker is this very program, started again: arip_init() notices it,
   * serves one call and exits, so in a worker main() never goes past it.
   * Whatever main() does before arip_init() therefore runs again in every
   * worker: registering functions is the only thing that belongs here. */
  arip_register_function ("count_primes", count_primes, NULL, NULL);
  arip_register_function ("crash", crash, NULL, NULL);
  arip_init (&argc, &argv);

  /* From here on, this is the parent. */
  demo.start_time = g_get_monotonic_time ();
  demo.loop = g_main_loop_new (NULL, FALSE);
  demo.jobs = g_ptr_array_new_with_free_func (job_free);
  g_type_class_ref (ARIP_TYPE_STATE);

  /* At most two children at once (this machine may have two cores), unless
   * ARIP_MAX_PROCS says otherwise: further processes wait their turn. */
  if (g_getenv ("ARIP_MAX_PROCS") == NULL)
    arip_set_max_processes (2);

  /* Counting primes needs neither the network nor the user's files, nor
   * more than a minute of CPU: the workers get what this kernel allows of
   * a sandbox (a crash inside it is contained all the same). */
  demo.launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  arip_launcher_set_sandbox (demo.launcher,
                             ARIP_SANDBOX_NO_NEW_PRIVS | ARIP_SANDBOX_NO_NETWORK |
                             ARIP_SANDBOX_RESTRICT_FILESYSTEM | ARIP_SANDBOX_SECCOMP |
                             ARIP_SANDBOX_CLEAR_ENV,
                             ARIP_SANDBOX_POLICY_BEST_EFFORT);
  arip_launcher_set_cpu_limit (demo.launcher, 60);

  printf ("arip demo: 5 calls in child processes, at most %u at a time%s.\n"
          "  primes<3M .. primes<6M  count the primes below 3..6 million by trial division\n"
          "                          (CPU-bound, about half a second each), reporting progress\n"
          "  crash                   dereferences a NULL pointer\n"
          "The times are seconds since the start; the parent's main loop runs throughout.\n\n",
          arip_get_max_processes (),
          g_getenv ("ARIP_MAX_PROCS") ? " (from ARIP_MAX_PROCS)" : "");
  fflush (stdout);

  sieve (&demo, sizes[G_N_ELEMENTS (sizes) - 1]);

  /* The crash comes second: it takes a slot, loses its child, and frees
   * the slot for the next one in the queue. */
  add_job (&demo, "primes<3M", "count_primes", g_variant_new ("(u)", sizes[0]));
  add_job (&demo, "crash", "crash", g_variant_new ("()"));
  for (guint i = 1; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *label = g_strdup_printf ("primes<%uM", sizes[i] / 1000000);

      add_job (&demo, label, "count_primes", g_variant_new ("(u)", sizes[i]));
    }

  for (guint i = 0; i < demo.jobs->len; i++)
    {
      Job *job = g_ptr_array_index (demo.jobs, i);

      say (&demo, job->label, "start requested (%s)", state_name (job->last_state));
      job->queued_since = g_get_monotonic_time ();
      demo.n_running++;
      arip_process_start_async (job->process, NULL, on_started, job);
    }
  show_queue (&demo);

  demo.last_tick = g_get_monotonic_time ();
  tick_id = g_timeout_add (100, on_tick, &demo);
  sigint_id = g_unix_signal_add (SIGINT, on_sigint, &demo);
  watchdog_id = g_timeout_add_seconds (60, on_watchdog, &demo);

  g_main_loop_run (demo.loop);

  g_source_remove (tick_id);
  g_source_remove (watchdog_id);
  if (!demo.interrupted)
    g_source_remove (sigint_id);

  printf ("\n");
  if (demo.interrupted)
    {
      printf ("Interrupted: %u results, %u crash contained, parent still alive.\n",
              demo.n_results, demo.n_crashes);
      status = 130;
    }
  else
    {
      printf ("%u results, %u crash contained, parent still alive; "
              "its main loop ticked %u times meanwhile (longest gap %" G_GINT64_FORMAT " ms).\n",
              demo.n_results, demo.n_crashes, demo.n_ticks,
              demo.longest_tick_gap / 1000);
      if (demo.n_failures == 0 && demo.n_results == G_N_ELEMENTS (sizes) && demo.n_crashes == 1)
        status = 0;
      else
        {
          printf ("FAILED: %u thing(s) did not go as expected (see above).\n",
                  MAX (demo.n_failures, 1u));
          status = 1;
        }
    }

  g_ptr_array_unref (demo.jobs);
  g_object_unref (demo.launcher);
  g_main_loop_unref (demo.loop);
  g_free (demo.composite);
  return status;
}
