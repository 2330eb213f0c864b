# The shared objects from Python. Run by test_shared.py as
# `shared.py CASE`: the workers are this script run again. Each case
# prints one line the test compares.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import os
import queue
import signal
import sys
import threading

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip  # noqa: E402


@Arip.function
def produce(q, n):
    for i in range(n):
        q.put({'i': i, 'pid': os.getpid()})
    return n


@Arip.function
def consume(q):
    return [item for item in q]


@Arip.function
def produce_then_close(q, n):
    for i in range(n):
        q.put(i)
    q.close()


@Arip.function
def die_holding(lock):
    lock.acquire()
    os.kill(os.getpid(), signal.SIGKILL)


@Arip.function
def write_memory(memory, value):
    memory.buf[0] = value
    memory.buf[len(memory.buf) - 1] = value
    return len(memory.buf)


@Arip.function
def dict_work(d):
    d['child'] = [1, 'two', 3.0]
    won = d.compare_and_set('counter', 1, 2)
    lost = d.compare_and_set('counter', 1, 3)
    return won, lost


@Arip.function
def at_barrier(barrier):
    return barrier.wait()


@Arip.function
async def awaits_in_child(q, event):
    await event.coro_wait()
    return await q.coro_get()


def case_queue():
    q = Arip.Queue(4)
    print(Arip.run_in_process_sync(produce, q, 3), q.qsize(),
          [q.get()['i'] for _ in range(3)], q.empty())


def case_iterate():
    q = Arip.Queue()
    for i in range(5):
        q.put(i)
    q.close()
    print(Arip.run_in_process_sync(consume, q))


def case_full_empty():
    q = Arip.Queue(1)
    q.put('x')
    try:
        q.put('y', timeout=0.01)
    except queue.Full:
        full = 'Full'
    try:
        q.put_nowait('y')
    except queue.Full:
        full += ' Full'
    q.get()
    try:
        q.get(timeout=0.01)
    except queue.Empty:
        empty = 'Empty'
    q.close()
    try:
        q.put(1)
    except Arip.QueueClosed:
        closed = 'Closed'
    print(full, empty, closed)


def case_abandoned():
    lock = Arip.Lock()
    try:
        Arip.run_in_process_sync(die_holding, lock)
    except Exception as exc:  # noqa: B902
        died = type(exc).__name__
    with lock:
        print(died, lock.get_abandoned())


def case_memory():
    memory = Arip.SharedMemory(4096)
    n = Arip.run_in_process_sync(write_memory, memory, 42)
    print(n, memory.buf[0], memory.buf[4095], memory.size)


def case_dict():
    d = Arip.SharedDict()
    d['counter'] = 1
    changed = []
    d.connect('changed', lambda _d, key: changed.append(key))
    won, lost = Arip.run_in_process_sync(dict_work, d)
    print(won, lost, d['counter'], d['child'], sorted(d.keys()), 'missing' in d)


def case_barrier():
    barrier = Arip.Barrier(3)

    async def main():
        calls = [Arip.run_in_process(at_barrier, barrier) for _ in range(2)]
        mine = barrier.coro_wait()
        return sorted(await asyncio.gather(mine, *calls))

    print(asyncio.run(main()))


def case_cancel_get():
    q = Arip.Queue()

    async def main():
        lost = 0
        for i in range(200):
            task = asyncio.ensure_future(q.coro_get())
            await asyncio.sleep(0)
            q.put(i)
            task.cancel()
            try:
                got = await task
            except asyncio.CancelledError:
                got = q.get(timeout=1)
            lost += got != i
        return lost, q.qsize()

    print(*asyncio.run(main()))


def case_semaphore():
    sem = Arip.Semaphore(2, 2)
    with sem:
        inside = sem.get_value()
    try:
        sem.release()
    except ValueError:
        over = 'ValueError'
    print(inside, sem.get_value(), over, sem.acquire(timeout=0), sem.acquire(timeout=0),
          sem.acquire(timeout=0.01))


def case_awaits_in_child():
    q, event = Arip.Queue(), Arip.Event()

    async def main():
        call = asyncio.ensure_future(Arip.run_in_process(awaits_in_child, q, event))
        await asyncio.sleep(0.1)
        q.put('hello')
        event.set()
        return await call

    print(asyncio.run(main()))


def case_awaited_stream():
    # A child puts 2000 values as fast as it can (its puts do not wait for
    # answers); the parent awaits them: all of them, in order, then the
    # close, as asyncio.Queue users expect.
    q = Arip.Queue()

    async def main():
        worker = asyncio.ensure_future(Arip.run_in_process(produce_then_close, q, 2000))
        got = []
        while True:
            try:
                got.append(await q.coro_get())
            except Arip.QueueClosed:
                break
        await worker
        return got

    got = asyncio.run(main())
    print(len(got), got == list(range(2000)))


def case_condition():
    cond = Arip.Condition()
    with cond:
        timed = cond.wait(timeout=0.01)
        still = cond.get_lock().try_acquire()
    print(timed, still, threading.active_count() < 10)


if __name__ == '__main__':
    Arip.init(sys.argv)
    globals()['case_' + sys.argv[1]]()
