# _arip_shared.py: the shared objects, the Python way
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What multiprocessing and aioprocessing users write works: `with lock:`,
# `async with lock:`, `for item in queue:` (until it is closed), queue.Empty
# and queue.Full, threading.BrokenBarrierError, timeouts in seconds, and
# items and dictionary values that are plain Python values (the codec of
# @Arip.function). The blocking forms block the calling thread only; the
# `coro_` forms (aioprocessing's names) are awaited on asyncio and wait on
# arip's own main context, in the bridge's thread: no thread per wait.

import asyncio
import queue as _queue
import threading

from gi.repository import Gio, GLib

from . import _arip_bridge as _bridge
from . import _arip_plain as _plain


class Closed(Exception):
    """The shared queue was closed (and, for a get, is empty)."""


def _ms(timeout):
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return int(timeout * 1000)


def _encode(value):
    return _plain.to_variant(value)


def _decode(variant):
    if variant is None:
        return None
    try:
        return _plain.from_variant(variant)
    except TypeError:
        # Put by C code, not by Python: the GLib.Variant as it is.
        return variant


def _matches(error, domain, code):
    return isinstance(error, GLib.Error) and error.matches(domain, code)


def _arip_error(Arip, code):
    return lambda error: _matches(error, Arip.error_quark(), code)


def _timed_out(error):
    return _matches(error, Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT)


def _would_block(error):
    return _matches(error, Gio.io_error_quark(), Gio.IOErrorEnum.WOULD_BLOCK)


async def _await(start, finish):
    return await _bridge.get().call(start, finish)


def install(Arip, override):
    """The overrides of the shared types, for Arip.py to export."""
    is_closed = _arip_error(Arip, Arip.Error.CLOSED)
    is_broken = _arip_error(Arip, Arip.Error.BROKEN)

    def shared_from(handle):
        return Arip.Shared.from_variant(handle)

    class Queue(Arip.Queue):
        """A queue of plain values shared between processes: see AripQueue."""

        def __new__(cls, maxsize=0):
            return Arip.Queue.new(maxsize)

        def __init__(self, *args, **kwargs):
            pass

        def put(self, item, block=True, timeout=None):
            try:
                if not block:
                    self.try_put(_encode(item))
                else:
                    self.put_sync(_encode(item), _ms(timeout), None)
            except GLib.Error as error:
                if _timed_out(error) or _would_block(error):
                    raise _queue.Full() from None
                if is_closed(error):
                    raise Closed(error.message) from None
                raise

        def put_nowait(self, item):
            self.put(item, block=False)

        def get(self, block=True, timeout=None):
            try:
                if not block:
                    return _decode(self.try_get())
                return _decode(self.get_sync(_ms(timeout), None))
            except GLib.Error as error:
                if _timed_out(error) or _would_block(error):
                    raise _queue.Empty() from None
                if is_closed(error):
                    raise Closed(error.message) from None
                raise

        def get_nowait(self):
            return self.get(block=False)

        def qsize(self):
            return self.get_length()

        def empty(self):
            return self.get_length() == 0

        def full(self):
            size = self.get_max_size()
            return size > 0 and self.get_length() >= size

        async def coro_put(self, item):
            variant = _encode(item)
            try:
                await _await(lambda c, cb: self.put_async(variant, c, cb), self.put_finish)
            except GLib.Error as error:
                if is_closed(error):
                    raise Closed(error.message) from None
                raise

        async def coro_get(self):
            if self.is_owner():
                # Here the queue is in this process: an item that is there
                # is taken at once, as asyncio.Queue.get does, with no
                # round through the main loop.
                try:
                    return _decode(self.try_get())
                except GLib.Error as error:
                    if is_closed(error):
                        raise Closed(error.message) from None
                    if not _would_block(error):
                        raise
                # Empty: the wait runs in arip's thread for shared objects
                # and ends in this loop (an item a child puts wakes it
                # there, with no round through the bridge's thread).
                try:
                    return _decode(await _bridge.get().queue_get(self))
                except GLib.Error as error:
                    if is_closed(error):
                        raise Closed(error.message) from None
                    raise
            got = []

            def finish(result):
                item = self.get_finish(result)
                got.append(item)
                return item

            try:
                return _decode(await _await(lambda c, cb: self.get_async(c, cb), finish))
            except asyncio.CancelledError:
                # Taken for us just as we were cancelled: it goes back first.
                if got:
                    self.unget(got[0])
                raise
            except GLib.Error as error:
                if is_closed(error):
                    raise Closed(error.message) from None
                raise

        def __iter__(self):
            while True:
                try:
                    yield self.get()
                except Closed:
                    return

        def __aiter__(self):
            return self

        async def __anext__(self):
            try:
                return await self.coro_get()
            except Closed:
                raise StopAsyncIteration from None

    class Lock(Arip.Lock):
        """A lock shared between processes: see AripLock."""

        def __new__(cls):
            return Arip.Lock.new()

        def __init__(self, *args, **kwargs):
            pass

        def acquire(self, block=True, timeout=None):
            if not block:
                return self.try_acquire()
            try:
                return self.acquire_sync(_ms(timeout), None)
            except GLib.Error as error:
                if _timed_out(error):
                    return False
                raise

        async def coro_acquire(self):
            return await _await(lambda c, cb: self.acquire_async(c, cb), self.acquire_finish)

        def __enter__(self):
            self.acquire()
            return self

        def __exit__(self, *exc_info):
            self.release()

        async def __aenter__(self):
            await self.coro_acquire()
            return self

        async def __aexit__(self, *exc_info):
            self.release()

    class Event(Arip.Event):
        """An event shared between processes: see AripEvent."""

        def __new__(cls):
            return Arip.Event.new()

        def __init__(self, *args, **kwargs):
            pass

        def wait(self, timeout=None):
            try:
                return self.wait_sync(_ms(timeout), None)
            except GLib.Error as error:
                if _timed_out(error):
                    return False
                raise

        async def coro_wait(self):
            return await _await(lambda c, cb: self.wait_async(c, cb), self.wait_finish)

    class Semaphore(Arip.Semaphore):
        """A semaphore shared between processes: see AripSemaphore."""

        def __new__(cls, value=1, max_value=0):
            return Arip.Semaphore.new(value, max_value)

        def __init__(self, *args, **kwargs):
            pass

        def acquire(self, block=True, timeout=None):
            if not block:
                return self.try_acquire()
            try:
                return self.acquire_sync(_ms(timeout), None)
            except GLib.Error as error:
                if _timed_out(error):
                    return False
                raise

        def release(self):
            try:
                Arip.Semaphore.release(self)
            except GLib.Error as error:
                raise ValueError(error.message) from None

        async def coro_acquire(self):
            return await _await(lambda c, cb: self.acquire_async(c, cb), self.acquire_finish)

        def __enter__(self):
            self.acquire()
            return self

        def __exit__(self, *exc_info):
            self.release()

        async def __aenter__(self):
            await self.coro_acquire()
            return self

        async def __aexit__(self, *exc_info):
            self.release()

    class Condition(Arip.Condition):
        """A condition variable shared between processes: see AripCondition."""

        def __new__(cls, lock=None):
            return Arip.Condition.new(lock)

        def __init__(self, *args, **kwargs):
            pass

        def wait(self, timeout=None):
            try:
                return self.wait_sync(_ms(timeout), None)
            except GLib.Error as error:
                if _timed_out(error):
                    return False
                raise

        def wait_for(self, predicate, timeout=None):
            result = predicate()
            while not result:
                if not self.wait(timeout):
                    return predicate()
                result = predicate()
            return result

        async def coro_wait(self):
            return await _await(lambda c, cb: self.wait_async(c, cb), self.wait_finish)

        def notify(self, n=1):
            Arip.Condition.notify(self, n)

        def acquire(self, *args, **kwargs):
            return self.get_lock().acquire(*args, **kwargs)

        def release(self):
            self.get_lock().release()

        def __enter__(self):
            self.get_lock().acquire()
            return self

        def __exit__(self, *exc_info):
            self.get_lock().release()

        async def __aenter__(self):
            await self.get_lock().coro_acquire()
            return self

        async def __aexit__(self, *exc_info):
            self.get_lock().release()

    class Barrier(Arip.Barrier):
        """A barrier shared between processes: see AripBarrier."""

        def __new__(cls, parties):
            return Arip.Barrier.new(parties)

        def __init__(self, *args, **kwargs):
            pass

        def wait(self, timeout=None):
            try:
                ok, index = self.wait_sync(_ms(timeout), None)
                return index
            except GLib.Error as error:
                if _timed_out(error):
                    # As threading.Barrier: a wait that times out breaks
                    # the barrier, for the others too.
                    self.abort()
                    raise threading.BrokenBarrierError(error.message) from None
                if is_broken(error):
                    raise threading.BrokenBarrierError(error.message) from None
                raise

        async def coro_wait(self):
            def finish(result):
                ok, index = self.wait_finish(result)
                return index

            try:
                return await _await(lambda c, cb: self.wait_async(c, cb), finish)
            except GLib.Error as error:
                if is_broken(error):
                    raise threading.BrokenBarrierError(error.message) from None
                raise

        @property
        def parties(self):
            return self.get_parties()

        @property
        def n_waiting(self):
            return self.get_n_waiting()

        @property
        def broken(self):
            return self.is_broken()

    class SharedMemory(Arip.SharedMemory):
        """Bytes shared between processes: see AripSharedMemory. `buf` is a
        writable memoryview of them (numpy.frombuffer(m.buf, ...) works)."""

        def __new__(cls, size):
            return Arip.SharedMemory.new(size)

        def __init__(self, *args, **kwargs):
            pass

        @property
        def buf(self):
            return memoryview(_shared_memory_view(self)).cast('B')

        @property
        def size(self):
            return self.get_size()

    class SharedDict(Arip.SharedDict):
        """A dictionary of plain values shared between processes (a
        Manager().dict()): see AripSharedDict."""

        def __new__(cls):
            return Arip.SharedDict.new()

        def __init__(self, *args, **kwargs):
            pass

        def __getitem__(self, key):
            value = self.lookup(key)
            if value is None:
                raise KeyError(key)
            return _decode(value)

        def get(self, key, default=None):
            value = self.lookup(key)
            return default if value is None else _decode(value)

        def __setitem__(self, key, value):
            self.set(key, _encode(value))

        def __delitem__(self, key):
            if not self.remove(key):
                raise KeyError(key)

        def __contains__(self, key):
            return self.lookup(key) is not None

        def keys(self):
            return list(self.get_keys())

        def __iter__(self):
            return iter(self.keys())

        def __len__(self):
            return len(self.get_keys())

        def items(self):
            return [(key, self[key]) for key in self.keys()]

        def compare_and_set(self, key, expected, value):
            """Sets @key to @value if its value is @expected (None: absent),
            atomically; True if it did."""
            return self.replace(key, None if expected is None else _encode(expected),
                                _encode(value))

    for cls in (Queue, Lock, Event, Semaphore, Condition, Barrier, SharedMemory, SharedDict):
        cls.__module__ = 'gi.overrides.Arip'
    classes = {cls.__name__: override(cls)
               for cls in (Queue, Lock, Event, Semaphore, Condition, Barrier, SharedMemory,
                           SharedDict)}
    classes['QueueClosed'] = Closed
    # A shared object is a plain value: it goes as its handle, and comes
    # out as the live object.
    _plain.set_shared(Arip.Shared, shared_from)
    return classes


def _shared_memory_view(memory):
    # get_data() gives a pointer GI cannot turn into a buffer: ctypes maps
    # the same bytes, writable, for as long as the object lives.
    import ctypes

    size = memory.get_size()
    if size == 0:
        return bytearray()
    address = _data_address(memory)
    array = (ctypes.c_ubyte * size).from_address(address)
    # Keep the object (and so its mapping) alive as long as the view.
    array._arip_owner = memory
    return array


def _data_address(memory):
    import ctypes

    # Loaded already (GI did): this finds the same library.
    lib = ctypes.CDLL('libarip-1.0.so.0')
    lib.arip_shared_memory_get_data.restype = ctypes.c_void_p
    lib.arip_shared_memory_get_data.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    # A GObject's hash in PyGObject is its address.
    return lib.arip_shared_memory_get_data(hash(memory), None)
