# _arip_bridge.py: awaiting arip's asynchronous calls from asyncio
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# arip's asynchronous calls finish in a GLib main context, which a plain
# asyncio program never runs (and PyGObject 3.42 has no asyncio
# integration). The bridge owns one thread for the whole program that runs
# a main context of its own: every call is started there, its callback runs
# there, and the result is handed to the awaiting task's loop. One thread
# however many calls wait; none per call. It works the same in a GLib or
# GTK program, whose own main loop it leaves alone.
#
# A pool's calls, the commonest by far, run no Python in that thread: they
# start with Arip.Pool.run_to_queue() (callable from the loop's thread) and
# end in the loop's own Arip.ResultQueue, whose descriptor the loop
# watches. The bridge's thread then waits for the GIL never, and the loop
# wakes once for all the results that came meanwhile.
#
# Cancelling the awaiting task cancels the call, which is arip's
# cancellation: the worker is interrupted, then stopped with the launcher's
# escalation. The task's CancelledError is raised once the call has ended,
# so that no worker outlives the await (asyncio.timeout() therefore ends at
# the timeout plus at most the stop timeouts).

import asyncio
import threading
import traceback
import weakref

from gi.repository import Gio, GLib


class _Bridge:
    def __init__(self):
        self._context = GLib.MainContext.new()
        # Work for the bridge's thread, and results for each asyncio loop,
        # handed over in batches: one wake-up for all that piled up while
        # the other side was busy (with many calls awaited at once, a
        # wake-up per call kept both threads fighting for the GIL).
        self._lock = threading.Lock()
        self._pending = []
        self._pending_scheduled = False
        self._outboxes = {}   # loop -> [settle calls], while one is scheduled
        self._ends = weakref.WeakKeyDictionary()   # loop -> _LoopEnds
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name='arip-asyncio-bridge', daemon=True)
        self._thread.start()
        ready.wait()

    def _run(self, ready):
        self._context.push_thread_default()
        loop = GLib.MainLoop.new(self._context, False)
        ready.set()
        loop.run()

    def invoke(self, func):
        """Runs @func() soon in the bridge's thread and main context."""
        with self._lock:
            self._pending.append(func)
            if self._pending_scheduled:
                return
            self._pending_scheduled = True
        source = GLib.idle_source_new()
        source.set_callback(self._run_pending)
        source.attach(self._context)

    def _run_pending(self, *_ignored):
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._pending_scheduled = False
                    return GLib.SOURCE_REMOVE
            for func in batch:
                try:
                    func()
                except Exception:  # noqa: B902 (as GLib shows a callback's)
                    traceback.print_exc()

    def _hand_to(self, loop, func, *args):
        """Runs @func(*args) soon in @loop's thread (from the bridge's)."""
        with self._lock:
            outbox = self._outboxes.get(loop)
            if outbox is not None:
                outbox.append((func, args))
                return
            self._outboxes[loop] = [(func, args)]
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:
            # The loop is closed: nobody awaits any more.
            with self._lock:
                self._outboxes.pop(loop, None)

    def _deliver(self, loop):
        with self._lock:
            batch = self._outboxes.pop(loop, [])
        for func, args in batch:
            func(*args)

    def run_sync(self, func):
        """Runs @func() in the bridge's thread and returns what it returns
        (or raises what it raises); blocks until then."""
        if threading.current_thread() is self._thread:
            return func()
        done = threading.Event()
        outcome = []

        def run():
            try:
                outcome.append((True, func()))
            except BaseException as exc:  # noqa: B902 (raised in the caller)
                outcome.append((False, exc))
            done.set()

        self.invoke(run)
        done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    async def call(self, start, finish):
        """Awaits one asynchronous call.

        @start(cancellable, callback) starts it (in the bridge's thread);
        @finish(result) is its _finish() (called there too), whose value or
        exception is the await's.
        """
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        cancellable = Gio.Cancellable.new()
        # Futures waiting for the end: the await's own, and, once the task
        # is cancelled, the one its cancellation waits on (no shield(): one
        # future and its callbacks less per call). Settled in the loop's
        # thread, as is everything that reads them.
        ended = []
        waiting = [done]

        def settle(outcome, value):
            ended.append(True)
            if not done.done():
                if outcome:
                    done.set_result(value)
                else:
                    done.set_exception(value)
            for future in waiting[1:]:
                if not future.done():
                    future.set_result(None)

        def on_finished(_source, result, *_ignored):
            try:
                value = finish(result)
            except BaseException as exc:  # noqa: B902 (handed to the task)
                self._hand_to(loop, settle, False, exc)
            else:
                self._hand_to(loop, settle, True, value)

        def begin():
            try:
                start(cancellable, on_finished)
            except BaseException as exc:  # noqa: B902
                self._hand_to(loop, settle, False, exc)

        self.invoke(begin)
        try:
            return await done
        except asyncio.CancelledError:
            # The call ends the way arip ends a cancelled call; the task's
            # cancellation stands, once the worker is gone.
            cancellable.cancel()
            if not ended:
                end = loop.create_future()
                waiting.append(end)
                await end
            raise

    async def pool_call(self, pool, function, args):
        """Awaits pool.run_async(function, args) with nothing run in the
        bridge's thread but arip's C code: the call starts there by
        Arip.Pool.run_to_queue(), and ends in this loop's Arip.ResultQueue,
        which the loop watches (a wake-up for all the results that came
        meanwhile). Returns run_finish()'s value, or raises its error;
        cancelling the task cancels the call, as call() does."""
        return await self._to_queue(
            lambda ends, tag, cancellable: _Arip.Pool.run_to_queue(
                pool, function, args, ends.queue, tag, cancellable),
            lambda result: _Arip.Pool.run_finish(pool, result))

    async def queue_get(self, queue):
        """Awaits a get of @queue (one this process holds) the way
        pool_call() awaits a call: Arip.Queue.get_to_queue() waits in
        arip's own thread and ends in this loop's result queue. Returns the
        item (a GLib.Variant), or raises get_finish()'s error; an item
        taken just as the task was cancelled goes back to the queue."""
        def abandon(result):
            try:
                item = queue.get_finish(result)
            except GLib.Error:
                return
            queue.unget(item)

        return await self._to_queue(
            lambda ends, tag, cancellable: _Arip.Queue.get_to_queue(
                queue, ends.queue, tag, cancellable),
            queue.get_finish, abandon)

    async def _to_queue(self, start, finish, abandon=None):
        loop = asyncio.get_running_loop()
        ends = self._ends.get(loop)
        if ends is None:
            ends = self._ends[loop] = _LoopEnds(loop)
        done = loop.create_future()
        cancellable = Gio.Cancellable.new()
        tag = ends.add(done, finish, abandon)
        start(ends, tag, cancellable)
        try:
            return await done
        except asyncio.CancelledError:
            cancellable.cancel()
            if tag in ends.waiting:
                end = loop.create_future()
                ends.on_end[tag] = end
                await end
            raise


class _LoopEnds:
    """One asyncio loop's result queue, and the futures its results settle."""

    def __init__(self, loop):
        self.queue = _Arip.ResultQueue.new()
        self.waiting = {}     # tag -> (future, finish, abandon)
        self.on_end = {}      # tag -> future, for a cancelled call's end
        self.next_tag = 0
        loop.add_reader(self.queue.get_fd(), self.drain)

    def add(self, future, finish, abandon=None):
        """A tag for a call or get whose result @finish takes; @abandon, if
        given, takes the result of one whose task was cancelled."""
        self.next_tag += 1
        self.waiting[self.next_tag] = (future, finish, abandon)
        return self.next_tag

    def drain(self):
        pop = self.queue.pop
        while True:
            result, tag = pop()
            if result is None:
                return
            future, finish, abandon = self.waiting.pop(tag)
            end = self.on_end.pop(tag, None)
            if end is not None and not end.done():
                end.set_result(None)
            if future.done():
                if abandon is not None:
                    abandon(result)
                continue
            try:
                value = finish(result)
            except BaseException as exc:  # noqa: B902 (handed to the task)
                future.set_exception(exc)
            else:
                future.set_result(value)


_bridge = None
_bridge_lock = threading.Lock()
_Arip = None


def set_library(arip):
    global _Arip
    _Arip = arip


def get():
    """The program's bridge, started on first use."""
    global _bridge
    with _bridge_lock:
        if _bridge is None:
            _bridge = _Bridge()
        return _bridge
