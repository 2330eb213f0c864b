/* pool.c: warm workers for many small calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Counts the primes below 200,000 in ten ranges on a pool of two workers
 * (arip_pool_map_async: the results come in the order of the ranges), then
 * runs one more count as a process on the pool, to watch its progress. A
 * call that crashes fails alone: the pool replaces its worker. Exits 0
 * when every count is right.
 */
#include <signal.h>
#include <stdio.h>

#include <arip.h>

static guint32
count_primes (guint32 from, guint32 to)
{
  guint32 count = 0;

  for (guint32 n = MAX (from, 2); n < to; n++)
    {
      gboolean prime = TRUE;

      for (guint32 d = 2; d * d <= n && prime; d++)
        prime = n % d != 0;
      count += prime;
    }
  return count;
}

/* (uu) from, to -> (u) how many primes; reports its progress. */
static void
fn_count (AripCall *call, GVariant *args, gpointer user_data)
{
  guint32 from, to, count = 0;
  const guint32 step = 10000;

  g_variant_get (args, "(uu)", &from, &to);
  for (guint32 start = from; start < to; start += step)
    {
      count += count_primes (start, MIN (start + step, to));
      arip_call_set_progress (call, (gdouble) (MIN (start + step, to) - from) / (to - from));
    }
  arip_call_return_value (call, g_variant_new ("(u)", count));
}

static void
fn_crash (AripCall *call, GVariant *args, gpointer user_data)
{
  raise (SIGSEGV);
}

static void
store (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
on_progress (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  printf ("  progress %3.0f%%\n", 100 * arip_process_get_progress (ARIP_PROCESS (object)));
}

static void
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
}

int
main (int argc, char **argv)
{
  g_autoptr(AripPool) pool = NULL;
  g_autoptr(AripProcess) process = NULL;
  g_autoptr(GAsyncResult) mapped = NULL;
  g_autoptr(GAsyncResult) crashed = NULL;
  g_autoptr(GAsyncResult) closed = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) last = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder ranges;
  guint32 total = 0, count;

  arip_register_function ("count", fn_count, NULL, NULL);
  arip_register_function ("crash", fn_crash, NULL, NULL);
  arip_init (&argc, &argv);

  pool = arip_pool_new (NULL, 2);

  /* Ten calls on two warm workers. */
  g_variant_builder_init (&ranges, G_VARIANT_TYPE ("a(uu)"));
  for (guint32 i = 0; i < 10; i++)
    g_variant_builder_add (&ranges, "(uu)", i * 20000, (i + 1) * 20000);
  arip_pool_map_async (pool, "count", g_variant_builder_end (&ranges), NULL, store, &mapped);
  wait_for (&mapped);
  results = arip_pool_map_finish (pool, mapped, &error);
  if (results == NULL)
    {
      fprintf (stderr, "map failed: %s\n", error->message);
      return 1;
    }
  for (gsize i = 0; i < g_variant_n_children (results); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_variant_get (value, "(u)", &count);
      printf ("primes in [%u, %u): %u\n", (guint) i * 20000, (guint) (i + 1) * 20000, count);
      total += count;
    }
  printf ("%u workers served them\n", arip_pool_get_n_workers (pool));

  /* A crash fails its own call only. */
  arip_pool_run_async (pool, "crash", NULL, NULL, store, &crashed);
  wait_for (&crashed);
  g_assert_null (arip_pool_run_finish (pool, crashed, &error));
  printf ("the crash: %s\n", error->message);
  g_clear_error (&error);

  /* A call that reports its progress: a process on the pool. */
  process = arip_process_new_for_pool (pool, "count", g_variant_new ("(uu)", 200000, 260000));
  g_signal_connect (process, "notify::progress", G_CALLBACK (on_progress), NULL);
  arip_process_start_async (process, NULL, NULL, NULL);
  while (arip_process_get_state (process) != ARIP_STATE_FINISHED)
    g_main_context_iteration (NULL, TRUE);
  last = arip_process_get_result (process, &error);
  if (last == NULL)
    {
      fprintf (stderr, "the last count failed: %s\n", error->message);
      return 1;
    }
  g_variant_get (last, "(u)", &count);
  printf ("primes in [200000, 260000): %u, on worker %d\n", count, (int) arip_process_get_pid (process));

  arip_pool_close_async (pool, NULL, store, &closed);
  wait_for (&closed);

  return total == 17984 && count == 4853 ? 0 : 1;
}
