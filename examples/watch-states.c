/* watch-states.c: open a process and watch it go through its states
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An AripProcess is one child running one call. It moves through
 * INITIALIZING -> INITIALIZED -> WAIT_EXEC_DATA -> BOOTING -> STARTED ->
 * EXECUTING -> FINISHED, emitting ::state-changed for each step; the
 * function's progress and messages arrive as notify::progress and ::message.
 * Exits 0 when every state was seen once, in order, and the result is right.
 */

#include <arip.h>

#include <locale.h>
#include <string.h>

#define N 2000000u

/* Runs in the child: (u) n -> (t) the sum of 0..n-1, in ten steps, telling
 * the parent how far it is. */
static void
sum_below (AripCall *call,
           GVariant *args,
           gpointer  user_data)
{
  guint32 n;
  guint64 total = 0;

  g_variant_get (args, "(u)", &n);
  for (guint step = 0; step < 10; step++)
    {
      for (guint64 i = (guint64) n * step / 10; i < (guint64) n * (step + 1) / 10; i++)
        total += i;
      arip_call_set_progress (call, (step + 1) / 10.0);
    }
  arip_call_send_message (call, g_variant_new_string ("all steps done"));
  arip_call_return_value (call, g_variant_new ("(t)", total));
}

typedef struct {
  GMainLoop *loop;
  GArray    *seen;     /* of AripState */
  guint64    total;
  gboolean   ok;
} Watch;

static const char *
state_name (AripState state)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (ARIP_TYPE_STATE);

  return g_enum_get_value (klass, state)->value_nick;
}

static void
on_state_changed (AripProcess *process,
                  AripState    old_state,
                  AripState    new_state,
                  gpointer     user_data)
{
  Watch *watch = user_data;

  /* The pid is known from INITIALIZED on. */
  g_print ("[pid %d] %s -> %s\n", (int) arip_process_get_pid (process),
           state_name (old_state), state_name (new_state));
  g_array_append_val (watch->seen, new_state);
}

static void
on_progress (AripProcess *process,
             GParamSpec  *pspec,
             gpointer     user_data)
{
  g_print ("[pid %d] progress %3.0f %%\n", (int) arip_process_get_pid (process),
           arip_process_get_progress (process) * 100);
}

static void
on_message (AripProcess *process,
            GVariant    *message,
            gpointer     user_data)
{
  g_print ("[pid %d] says: %s\n", (int) arip_process_get_pid (process),
           g_variant_get_string (message, NULL));
}

static void
on_started (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AripProcess *process = ARIP_PROCESS (source);
  g_autoptr(GError) error = NULL;

  if (arip_process_start_finish (process, result, &error))
    g_print ("[pid %d] the function is executing\n", (int) arip_process_get_pid (process));
  else
    g_printerr ("could not start: %s\n", error->message);
}

static void
on_waited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  AripProcess *process = ARIP_PROCESS (source);
  Watch *watch = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = arip_process_wait_finish (process, result, &error);

  if (value != NULL)
    {
      g_variant_get (value, "(t)", &watch->total);
      g_print ("sum = %" G_GUINT64_FORMAT "; exit status %d\n",
               watch->total, arip_process_get_exit_status (process));
      watch->ok = TRUE;
    }
  else
    g_printerr ("failed: %s\n", error->message);

  g_main_loop_quit (watch->loop);
}

int
main (int    argc,
      char **argv)
{
  static const AripState every_state[] = {
    ARIP_STATE_INITIALIZING, ARIP_STATE_INITIALIZED, ARIP_STATE_WAIT_EXEC_DATA,
    ARIP_STATE_BOOTING, ARIP_STATE_STARTED, ARIP_STATE_EXECUTING, ARIP_STATE_FINISHED,
  };
  g_autoptr(AripProcess) process = NULL;
  Watch watch = { 0 };
  AripState state;

  arip_register_function ("sum_below", sum_below, NULL, NULL);
  arip_init (&argc, &argv);   /* in a worker: serves the call and exits */
  setlocale (LC_ALL, "");     /* so that g_print () writes UTF-8 */

  watch.loop = g_main_loop_new (NULL, FALSE);
  watch.seen = g_array_new (FALSE, FALSE, sizeof (AripState));

  process = arip_process_new (NULL, "sum_below", g_variant_new ("(u)", N));
  state = arip_process_get_state (process);
  g_array_append_val (watch.seen, state);

  g_signal_connect (process, "state-changed", G_CALLBACK (on_state_changed), &watch);
  g_signal_connect (process, "notify::progress", G_CALLBACK (on_progress), &watch);
  g_signal_connect (process, "message", G_CALLBACK (on_message), &watch);

  arip_process_start_async (process, NULL, on_started, &watch);
  arip_process_wait_async (process, NULL, on_waited, &watch);
  g_main_loop_run (watch.loop);

  watch.ok = watch.ok &&
             watch.seen->len == G_N_ELEMENTS (every_state) &&
             memcmp (watch.seen->data, every_state, sizeof every_state) == 0 &&
             watch.total == (guint64) N * (N - 1) / 2 &&
             arip_process_get_progress (process) == 1.0;

  g_array_unref (watch.seen);
  g_main_loop_unref (watch.loop);
  return watch.ok ? 0 : 1;
}
