/* quickstart.c: the smallest complete arip program
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Computes fib (30) in a child process while the main loop stays free.
 * Exits 0 when the child's answer is right.
 */

#include <arip.h>

static guint64
compute_fib (gint n)
{
  return n < 2 ? (guint64) n : compute_fib (n - 1) + compute_fib (n - 2);
}

/* Runs in the child: (i) n -> (t) fib (n). */
static void
fib (AripCall *call,
     GVariant *args,
     gpointer  user_data)
{
  gint n;

  g_variant_get (args, "(i)", &n);
  arip_call_return_value (call, g_variant_new ("(t)", compute_fib (n)));
}

static int exit_status = 1;

/* Runs in the parent, on its main loop, once the child has answered. */
static void
on_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GMainLoop *loop = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  guint64 answer;

  value = arip_run_in_process_finish (result, &error);
  if (value == NULL)
    {
      g_printerr ("fib (30) failed: %s\n", error->message);
    }
  else
    {
      g_variant_get (value, "(t)", &answer);
      g_print ("fib (30) = %" G_GUINT64_FORMAT ", computed in a child process\n", answer);
      exit_status = answer == 832040 ? 0 : 1;
    }

  g_main_loop_quit (loop);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GMainLoop) loop = NULL;

  /* First thing in main(): name the functions, then arip_init(). A worker
   * is this program started again; in a worker arip_init() runs the call
   * and exits, so whatever comes before it here runs in every worker too. */
  arip_register_function ("fib", fib, NULL, NULL);
  arip_init (&argc, &argv);

  loop = g_main_loop_new (NULL, FALSE);
  arip_run_in_process_async ("fib", g_variant_new ("(i)", 30), NULL, on_done, loop);
  g_main_loop_run (loop);

  return exit_status;
}
