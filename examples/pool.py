#!/usr/bin/python3
# pool.py: warm workers for many small calls, in Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Counts the primes below 200,000 in ten ranges on a pool of two workers
# (map: the results come in the order of the ranges), then runs one more
# count as a process on the pool, to watch its progress. Exits 0 when
# every count is right.

import sys

import gi

gi.require_version('Arip', '1.0')
from gi.repository import Arip, GLib  # noqa: E402


def count_primes(start, end):
    return sum(1 for n in range(max(start, 2), end)
               if all(n % d for d in range(2, int(n ** 0.5) + 1)))


# (uu) from, to -> (u) how many primes; reports its progress.
def count(call, args):
    start, end = args.unpack()
    total = 0
    for lo in range(start, end, 10000):
        total += count_primes(lo, min(lo + 10000, end))
        call.set_progress((min(lo + 10000, end) - start) / (end - start))
    return GLib.Variant('(u)', (total,))


Arip.register_function('count', count)


def wait(pool_or_process, begin, finish, *args):
    """Runs the default main context until the async call completes."""
    results = []
    begin(*args, lambda source, result: results.append(result))
    context = GLib.MainContext.default()
    while not results:
        context.iteration(True)
    return finish(results[0])


def main():
    Arip.init(sys.argv)

    pool = Arip.Pool.new(None, 2)
    ranges = GLib.Variant('a(uu)', [(i * 20000, (i + 1) * 20000) for i in range(10)])
    results = wait(pool, pool.map_async, pool.map_finish, 'count', ranges, None)
    counts = [value[0] for value in results.unpack()]
    for i, n in enumerate(counts):
        print('primes in [%d, %d): %d' % (i * 20000, (i + 1) * 20000, n))

    process = Arip.Process.new_for_pool(pool, 'count', GLib.Variant('(uu)', (200000, 260000)))
    process.connect('notify::progress',
                    lambda p, _: print('  progress %3.0f%%' % (100 * p.get_progress())))
    process.start_async(None, None)
    context = GLib.MainContext.default()
    while process.get_state() != Arip.State.FINISHED:
        context.iteration(True)
    (last,) = process.get_result().unpack()
    print('primes in [200000, 260000): %d, on worker %d' % (last, process.get_pid()))

    wait(pool, pool.close_async, pool.close_finish, None)
    return 0 if sum(counts) == 17984 and last == 4853 else 1


if __name__ == '__main__':
    sys.exit(main())
