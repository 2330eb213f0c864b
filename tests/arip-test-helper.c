/* arip-test-helper.c: programs a user might write wrong, run by
 * test-mistakes in a session of their own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   no-init        registers a function but never calls arip_init(), then
 *                  runs it: each worker would start another (a storm);
 *   no-init-sleep  the same, but a worker never gets to start anything: it
 *                  just keeps running main();
 *   quotes         runs an unknown function and prints the error with
 *                  g_printerr(), never calling setlocale() itself;
 *   ctrl-c         a correct program: its call polls for an interrupt for
 *                  a while; it prints "started" once the call executes, and
 *                  at the end whether the call was interrupted and whether
 *                  the program itself got SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arip.h>

static volatile sig_atomic_t got_sigint;

static void
on_sigint (int signum)
{
  got_sigint = 1;
}

static void
fn_hello (AripCall *call, GVariant *args, gpointer user_data)
{
  arip_call_return_value (call, g_variant_new ("(s)", "hello"));
}

/* Answers "interrupted" if the call's cancellable was cancelled within
 * three seconds, "not interrupted" otherwise. */
static void
fn_wait_interrupt (AripCall *call, GVariant *args, gpointer user_data)
{
  GCancellable *cancellable = arip_call_get_cancellable (call);
  gint64 end = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end && !g_cancellable_is_cancelled (cancellable))
    g_usleep (10 * 1000);
  arip_call_return_value (call, g_variant_new ("(s)", g_cancellable_is_cancelled (cancellable)
                                                      ? "interrupted" : "not interrupted"));
}

static void
on_state (AripProcess *process, AripState old_state, AripState new_state, gpointer user_data)
{
  if (new_state == ARIP_STATE_EXECUTING)
    {
      printf ("started\n");
      fflush (stdout);
    }
}

static int
run_ctrl_c (void)
{
  g_autoptr(AripProcess) process = arip_process_new (NULL, "wait_interrupt", NULL);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  struct sigaction action = { 0 };
  const char *answer;

  action.sa_handler = on_sigint;
  sigaction (SIGINT, &action, NULL);

  g_signal_connect (process, "state-changed", G_CALLBACK (on_state), NULL);
  arip_process_start_async (process, NULL, NULL, NULL);
  while (arip_process_get_state (process) != ARIP_STATE_FINISHED)
    g_main_context_iteration (NULL, TRUE);
  value = arip_process_get_result (process, &error);
  if (value == NULL)
    {
      printf ("error: %s\n", error->message);
      return 1;
    }
  g_variant_get (value, "(&s)", &answer);
  printf ("%s, %s\n", answer, got_sigint ? "parent got SIGINT" : "parent did not get SIGINT");
  return 0;
}

int
main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";

  arip_register_function ("hello", fn_hello, NULL, NULL);
  arip_register_function ("wait_interrupt", fn_wait_interrupt, NULL, NULL);

  if (g_str_equal (mode, "quotes"))
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;

      arip_init (&argc, &argv);
      value = arip_run_in_process_sync ("no-such-function", NULL, NULL, &error);
      g_printerr ("%s\n", error != NULL ? error->message : "no error");
      return 0;
    }

  if (g_str_equal (mode, "ctrl-c"))
    {
      arip_init (&argc, &argv);
      return run_ctrl_c ();
    }

  if (g_str_equal (mode, "no-init") || g_str_equal (mode, "no-init-sleep"))
    {
      g_autoptr(AripLauncher) launcher = arip_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;

      /* The mistake: no arip_init() here. */

      if (g_str_equal (mode, "no-init-sleep") && g_getenv ("ARIP_WORKER") != NULL)
        {
          /* A worker that went on with main(): a program that runs a long
           * time before it would start anything. */
          g_usleep (30 * G_USEC_PER_SEC);
          return 0;
        }

      arip_launcher_set_startup_timeout (launcher, 1000);
      value = arip_launcher_run_sync (launcher, "hello", NULL, NULL, &error);
      if (value != NULL)
        {
          printf ("unexpected: a result\n");
          return 1;
        }
      printf ("%s\n", error->message);
      return 0;
    }

  fprintf (stderr, "usage: %s no-init|no-init-sleep|quotes|ctrl-c\n", argv[0]);
  return 2;
}
