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
 *
 * With --fork-server it is the floor of a fork server: for each byte it
 * reads on stdin it forks a child that writes one byte to stdout and
 * exits, reaps the child, and writes one more byte; it ends when stdin
 * closes.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>

static int
fork_server (void)
{
  char c;

  while (read (STDIN_FILENO, &c, 1) == 1)
    {
      pid_t pid = fork ();
      int status;

      if (pid == 0)
        {
          c = 'c';
          _exit (write (STDOUT_FILENO, &c, 1) == 1 ? 0 : 1);
        }
      if (pid < 0 || waitpid (pid, &status, 0) != pid)
        return 1;
      c = WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 'x' : '!';
      if (write (STDOUT_FILENO, &c, 1) != 1)
        return 1;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  g_type_ensure (G_TYPE_FILE);

  if (argc > 1 && strcmp (argv[1], "--fork-server") == 0)
    return fork_server ();

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
