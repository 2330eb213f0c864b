/* arip-bench-true.c: the smallest GIO program, the floor a worker start is
 * measured against
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * It does what any GIO program does before its main() starts work (the
 * dynamic loader maps GLib, GObject and GIO; the type system starts) and
 * exits 0. With --wait it then stays, blocked on stdin, until stdin closes,
 * after writing one byte to stdout to say it is ready: the benchmark reads
 * its resident memory meanwhile.
 */
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>

int
main (int argc, char **argv)
{
  g_type_ensure (G_TYPE_FILE);

  if (argc > 1 && strcmp (argv[1], "--wait") == 0)
    {
      char c = '.';

      if (write (STDOUT_FILENO, &c, 1) != 1)
        return 1;
      while (read (STDIN_FILENO, &c, 1) > 0)
        ;
    }

  return 0;
}
