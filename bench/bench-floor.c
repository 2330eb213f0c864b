/* bench-floor.c: the ping-pong floor the benchmarks compare with
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-floor.h"

Echoer
bench_echoer_start (void)
{
  Echoer e;
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    g_error ("socketpair: %s", g_strerror (errno));

  e.pid = fork ();
  if (e.pid < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (e.pid == 0)
    {
      char c;

      /* Keep only our end: a copy of another child's socket (or of a
       * worker's channel) held here would keep it from seeing EOF. */
      if (sv[1] > 3)
        close_range (3, sv[1] - 1, 0);
      close_range (sv[1] + 1, ~0U, 0);
      for (;;)
        {
          ssize_t r = read (sv[1], &c, 1);

          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0)
            _exit (0);
          while (write (sv[1], &c, 1) < 0 && errno == EINTR)
            ;
        }
    }

  close (sv[1]);
  e.fd = sv[0];
  return e;
}

void
bench_echoer_stop (Echoer *e)
{
  int status;

  close (e->fd);
  while (waitpid (e->pid, &status, 0) < 0 && errno == EINTR)
    ;
}

void
bench_ping (int fd)
{
  char c = 'p';

  while (write (fd, &c, 1) < 0)
    if (errno != EINTR)
      g_error ("ping write: %s", g_strerror (errno));
  while (read (fd, &c, 1) != 1)
    if (errno != EINTR)
      g_error ("ping read: %s", g_strerror (errno));
}

