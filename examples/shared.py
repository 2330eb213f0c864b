#!/usr/bin/python3
# shared.py: a queue, an event and a lock shared with a child, in Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# aioprocessing's own example, with arip: a worker takes the lock, sets
# the event and puts its items (blocking calls, as with multiprocessing);
# the parent awaits the event and then the lock on asyncio, puts one more
# item and closes the queue, while it reads the queue until it is closed.
# Exits 0 when every item arrived, in order.

import asyncio
import sys
import time

import gi

gi.require_version('Arip', '1.0')
from gi.repository import Arip  # noqa: E402


@Arip.function
def func(queue, event, lock, items):
    """Runs in its own process, with blocking calls."""
    with lock:
        event.set()
        for item in items:
            time.sleep(0.05)
            queue.put(item + 5)


async def example(queue, event, lock):
    worker = asyncio.ensure_future(Arip.run_in_process(func, queue, event, lock, [1, 2, 3, 4, 5]))
    got = []
    async for result in queue:      # until example2 closes it
        print('Got result {}'.format(result))
        got.append(result)
    await worker
    return got


async def example2(queue, event, lock):
    await event.coro_wait()
    async with lock:                # the worker has put all its items
        await queue.coro_put(78)
        queue.close()               # what aioprocessing does with a None


async def main():
    queue, lock, event = Arip.Queue(), Arip.Lock(), Arip.Event()
    got, _ = await asyncio.gather(example(queue, event, lock), example2(queue, event, lock))
    return got == [6, 7, 8, 9, 10, 78]


if __name__ == '__main__':
    Arip.init(sys.argv)
    sys.exit(0 if asyncio.run(main()) else 1)
