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
import time

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
def set_later(event):
    time.sleep(0.05)
    event.set()


@Arip.function
def wait_notified(cond, ready, q, tag):
    with cond:
        ready.release()      # under the lock: the parent's notify comes after our wait
        cond.wait()
    q.put(tag)


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


# The semantics of CPython's multiprocessing tests (Lib/test/
# _test_multiprocessing.py), for arip's objects across processes.

def case_event():
    e = Arip.Event()
    r = [e.is_set(), e.wait(0.0), e.wait(0.01)]
    e.set()
    r += [e.is_set(), e.wait(), e.wait(0.01)]
    e.clear()
    r.append(e.is_set())

    async def main():
        worker = asyncio.ensure_future(Arip.run_in_process(set_later, e))
        woke = await e.coro_wait()
        await worker
        return woke

    r.append(asyncio.run(main()))
    print(r)


def case_barrier_semantics():
    one = Arip.Barrier(1)
    r = [one.wait(), one.wait(), one.parties, one.n_waiting, one.broken]
    two = Arip.Barrier(2)
    try:
        two.wait(timeout=0.01)      # as threading.Barrier: a timeout breaks it
    except threading.BrokenBarrierError:
        r.append('Broken')
    r.append(two.broken)
    try:
        two.wait()
    except threading.BrokenBarrierError:
        r.append('still')
    two.reset()
    r.append(two.broken)

    async def main():
        worker = asyncio.ensure_future(Arip.run_in_process(at_barrier, two))
        while two.n_waiting == 0:
            await asyncio.sleep(0.01)
        two.abort()
        try:
            await worker
        except Arip.RemoteError as error:
            return error.type_name
        return 'not broken'

    r.append(asyncio.run(main()))
    print(r)


def case_condition_notify():
    cond, ready, q = Arip.Condition(), Arip.Semaphore(0), Arip.Queue()

    async def main():
        loop = asyncio.get_running_loop()
        workers = [asyncio.ensure_future(Arip.run_in_process(wait_notified, cond, ready, q, tag))
                   for tag in ('a', 'b', 'c')]

        def notify_and_count():
            for _ in workers:
                ready.acquire()     # each of them waits now
            counts = []
            with cond:
                cond.notify()
            first = [q.get(timeout=10)]
            try:
                first.append(q.get(timeout=0.2))
            except queue.Empty:
                pass
            counts.append(len(first))
            with cond:
                cond.notify_all()
            rest = [q.get(timeout=10), q.get(timeout=10)]
            counts.append(len(rest))
            return counts, sorted(first + rest)

        result = await loop.run_in_executor(None, notify_and_count)
        await asyncio.gather(*workers)
        return result

    print(asyncio.run(main()))


def case_semaphore_timeout():
    sem = Arip.Semaphore(2)
    r = [sem.acquire(), sem.acquire(), sem.acquire(timeout=0.01), sem.acquire(block=False)]
    sem.release()
    r += [sem.get_value(), sem.acquire(timeout=0.01)]
    print(r)


def case_condition():
    cond = Arip.Condition()
    with cond:
        timed = cond.wait(timeout=0.01)
        still = cond.get_lock().try_acquire()
    print(timed, still, threading.active_count() < 10)


if __name__ == '__main__':
    Arip.init(sys.argv)
    globals()['case_' + sys.argv[1]]()
