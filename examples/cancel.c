/* cancel.c: cancel calls that run in child processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Cancelling the GCancellable of a call (or stopping an AripProcess) stops
 * its child politely first: the call's own cancellable
 * (arip_call_get_cancellable()) is cancelled in the child; if the child is
 * still there after the launcher's interrupt timeout, it gets SIGTERM, and
 * after the terminate timeout SIGKILL.
 *
 *  - "cooperative" notices the interrupt and gives up at once: the call
 *    fails with G_IO_ERROR_CANCELLED;
 *  - "stubborn" ignores the interrupt and SIGTERM, so stopping its process
 *    goes the whole way, to SIGKILL.
 *
 * Exits 0 when both ended that way.
 */

#include <arip.h>

#include <signal.h>
#include <locale.h>
#include <string.h>
#include <unistd.h>

/* Runs in the child: counts until interrupted. */
static void
cooperative (AripCall *call,
             GVariant *args,
             gpointer  user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  guint64 count = 0;

  while (!g_cancellable_is_cancelled (cancellable))
    count++;

  arip_call_return_error (call, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                          "cooperative gave up after counting to %" G_GUINT64_FORMAT, count);
}

static void
on_sigterm (int signum)
{
  static const char text[] = "  (stubborn ignores SIGTERM)\n";

  if (write (STDOUT_FILENO, text, sizeof text - 1) < 0)
    { /* nothing to do about it in a signal handler */ }
}

/* Runs in the child: ignores the interrupt, and SIGTERM too. */
static void
stubborn (AripCall *call,
          GVariant *args,
          gpointer  user_data)
{
  struct sigaction action = { 0 };

  action.sa_handler = on_sigterm;
  sigemptyset (&action.sa_mask);
  sigaction (SIGTERM, &action, NULL);

  arip_call_send_message (call, g_variant_new_string ("waiting"));
  /* Returns without answering: the worker keeps running its main loop. */
}

typedef struct {
  GMainLoop    *loop;
  GCancellable *cancellable;
  gint64        t0;
  gboolean      ok;
} Demo;

static gdouble
seconds_since (gint64 t0)
{
  return (g_get_monotonic_time () - t0) / (gdouble) G_USEC_PER_SEC;
}

static gboolean
cancel_now (gpointer user_data)
{
  Demo *demo = user_data;

  g_print ("cooperative: cancelling the call\n");
  g_cancellable_cancel (demo->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_call_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Demo *demo = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_run_in_process_finish (result, &error);

  if (value != NULL)
    g_print ("cooperative: finished?\n");
  else
    g_print ("cooperative: %s after %.1f s\n", error->message, seconds_since (demo->t0));

  demo->ok = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_main_loop_quit (demo->loop);
}

static void
on_stopped (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Demo *demo = user_data;

  arip_process_stop_finish (ARIP_PROCESS (source), result, NULL);
  g_main_loop_quit (demo->loop);
}

static void
on_message (AripProcess *process,
            GVariant    *message,
            gpointer     user_data)
{
  g_print ("stubborn [pid %d]: %s; stopping it\n", (int) arip_process_get_pid (process),
           g_variant_get_string (message, NULL));
  arip_process_stop_async (process, NULL, on_stopped, user_data);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(AripLauncher) launcher = NULL;
  g_autoptr(AripProcess) process = NULL;
  const GError *error;
  Demo demo = { 0 };
  gboolean ok;

  arip_register_function ("cooperative", cooperative, NULL, NULL);
  arip_register_function ("stubborn", stubborn, NULL, NULL);
  arip_init (&argc, &argv);   /* in a worker: serves the call and exits */
  setlocale (LC_ALL, "");     /* so that g_print () writes UTF-8 */

  demo.loop = g_main_loop_new (NULL, FALSE);

  /* A call, cancelled after a second. */
  demo.cancellable = g_cancellable_new ();
  demo.t0 = g_get_monotonic_time ();
  arip_run_in_process_async ("cooperative", NULL, demo.cancellable, on_call_done, &demo);
  g_timeout_add (1000, cancel_now, &demo);
  g_main_loop_run (demo.loop);
  ok = demo.ok;

  /* A process, stopped once it said it runs. */
  launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  /* How long to wait after the interrupt, then after SIGTERM (ms). */
  arip_launcher_set_stop_timeouts (launcher, 500, 500);
  /* A stubborn function needs neither the network nor the files: a
   * sandbox does not change how it is stopped. */
  arip_launcher_set_sandbox (launcher, ARIP_SANDBOX_NO_NETWORK | ARIP_SANDBOX_SECCOMP,
                             ARIP_SANDBOX_POLICY_BEST_EFFORT);
  arip_launcher_set_cpu_limit (launcher, 30);
  process = arip_process_new (launcher, "stubborn", NULL);
  g_signal_connect (process, "message", G_CALLBACK (on_message), &demo);
  demo.t0 = g_get_monotonic_time ();
  arip_process_start_async (process, NULL, NULL, NULL);
  g_main_loop_run (demo.loop);

  error = arip_process_get_error (process);
  g_print ("stubborn: %s after %.1f s (term sig %s)\n",
           error != NULL ? error->message : "finished?", seconds_since (demo.t0),
           arip_process_get_if_signaled (process) ? g_strsignal (arip_process_get_term_sig (process)) : "none");
  ok = ok &&
       g_error_matches (error, ARIP_ERROR, ARIP_ERROR_PROCESS_KILLED) &&
       arip_process_get_term_sig (process) == SIGKILL;

  g_object_unref (demo.cancellable);
  g_main_loop_unref (demo.loop);
  return ok ? 0 : 1;
}
