/* replay.c: runs a libFuzzer target over files, without libFuzzer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: replay FILE-OR-DIRECTORY...
 *
 * Each file is one input; a directory stands for the files in it. This is
 * how the committed corpus and every input the fuzzer ever found wrong
 * (fuzz/regressions/) run as a plain test in every build, with any
 * compiler, under ASan or valgrind. A failing input aborts.
 */
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "fuzz-frame-decoder.h"

static guint n_inputs;

static gint
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static void
replay_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      g_printerr ("replay: %s\n", error->message);
      exit (1);
    }
  LLVMFuzzerTestOneInput ((const guint8 *) contents, len);
  n_inputs++;
}

static void
replay (const char *path)
{
  g_autoptr(GPtrArray) names = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      replay_file (path);
      return;
    }

  dir = g_dir_open (path, 0, NULL);
  if (dir == NULL)
    {
      g_printerr ("replay: cannot open %s\n", path);
      exit (1);
    }

  /* In a stable order, so a failure is easy to find again. */
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, compare_paths);

  for (guint i = 0; i < names->len; i++)
    replay (names->pdata[i]);
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      g_printerr ("usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
      return 2;
    }

  for (int i = 1; i < argc; i++)
    replay (argv[i]);

  printf ("1..1\nok 1 - %u inputs replayed\n", n_inputs);
  return 0;
}
