/* Compiled by the header-c99 test with -std=c99 -Wpedantic -Werror: the
 * public headers must not need C11 (no typedef declared twice). */
#include <arip.h>

int
main (void)
{
  return arip_get_max_processes () > 0 ? 0 : 1;
}
