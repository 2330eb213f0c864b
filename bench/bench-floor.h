/* bench-floor.h: the ping-pong floor the benchmarks compare with
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

typedef struct {
  GPid pid;
  int  fd;
} Echoer;

/* A child that writes back every byte it reads, until EOF. */
Echoer bench_echoer_start (void);
void   bench_echoer_stop  (Echoer *e);
/* One byte there and back: the floor of a round trip between processes. */
void   bench_ping         (int     fd);
