# python-queue.py: items/s through arip's queue beside aioprocessing's
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# In one run: a child process puts N small items, the parent gets them,
# through Arip.Queue (blocking get, and awaited coro_get), aioprocessing's
# AioQueue (awaited coro_get, as its users write) and multiprocessing.Queue
# (blocking get). Each is timed from its first item on, so that what is
# measured is the queue, not the start of the child. Not a test.
#
#   python3 bench/python-queue.py [--quick]

import asyncio
import multiprocessing
import sys
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip  # noqa: E402


@Arip.function
def arip_produce(queue, n):
    for i in range(n):
        queue.put(i)
    return n


def mp_produce(queue, n):
    for i in range(n):
        queue.put(i)


def rate(n, seconds):
    return n / seconds


def time_arip_blocking(n):
    queue = Arip.Queue(1000)

    async def main():
        call = asyncio.ensure_future(Arip.run_in_process(arip_produce, queue, n))
        loop = asyncio.get_running_loop()
        await queue.coro_get()
        start = time.perf_counter()
        await loop.run_in_executor(None, lambda: [queue.get() for _ in range(n - 1)])
        elapsed = time.perf_counter() - start
        await call
        return elapsed

    return asyncio.run(main())


def time_arip_awaited(n):
    queue = Arip.Queue(1000)

    async def main():
        call = asyncio.ensure_future(Arip.run_in_process(arip_produce, queue, n))
        await queue.coro_get()
        start = time.perf_counter()
        for _ in range(n - 1):
            await queue.coro_get()
        elapsed = time.perf_counter() - start
        await call
        return elapsed

    return asyncio.run(main())


def time_aioprocessing(aioprocessing, n):
    queue = aioprocessing.AioQueue(1000)

    async def main():
        p = aioprocessing.AioProcess(target=mp_produce, args=(queue, n))
        p.start()
        await queue.coro_get()
        start = time.perf_counter()
        for _ in range(n - 1):
            await queue.coro_get()
        elapsed = time.perf_counter() - start
        await p.coro_join()
        return elapsed

    return asyncio.run(main())


def time_multiprocessing(n):
    queue = multiprocessing.Queue(1000)
    p = multiprocessing.Process(target=mp_produce, args=(queue, n))
    p.start()
    queue.get()
    start = time.perf_counter()
    for _ in range(n - 1):
        queue.get()
    elapsed = time.perf_counter() - start
    p.join()
    return elapsed


def main():
    Arip.init(sys.argv)
    quick = '--quick' in sys.argv
    n = 2000 if quick else 20000
    try:
        import aioprocessing
    except ImportError:
        print('aioprocessing is not installed (apt-get install python3-aioprocessing): '
              'only arip and multiprocessing are timed')
        aioprocessing = None

    best = {}
    for _ in range(1 if quick else 3):
        for name, func in [('arip Queue.get (blocking)', time_arip_blocking),
                           ('arip Queue.coro_get (awaited)', time_arip_awaited),
                           ('multiprocessing.Queue.get (blocking)', time_multiprocessing)]:
            best[name] = max(best.get(name, 0), rate(n - 1, func(n)))
        if aioprocessing is not None:
            name = 'aioprocessing AioQueue.coro_get (awaited)'
            best[name] = max(best.get(name, 0), rate(n - 1, time_aioprocessing(aioprocessing, n)))

    print('Python, %d small items from a child to the parent, best of %d runs:'
          % (n, 1 if quick else 3))
    for name, value in best.items():
        print('  %-44s %9.0f items/s' % (name, value))
    aio = best.get('aioprocessing AioQueue.coro_get (awaited)')
    if aio:
        ratio = best['arip Queue.coro_get (awaited)'] / aio
        print('  arip awaited / aioprocessing awaited: %.2fx (target >= 10x: %s)'
              % (ratio, 'PASS' if ratio >= 10 else 'MISS'))


if __name__ == '__main__':
    main()
