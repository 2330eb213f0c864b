# Functions decorated with @Arip.function, called with plain values. Run
# by test_plain.py as `plain.py CASE`: the workers are this script run
# again (without a launcher), so the functions are registered there too.
# Each case prints one line the test compares.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import os
import sys
import tempfile
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, GLib  # noqa: E402


@Arip.function
def echo(*values):
    return values


@Arip.function
def identity(value):
    return value


@Arip.function
async def fib(n):
    return n if n <= 1 else await fib(n - 1) + await fib(n - 2)


@Arip.function
def pid():
    return os.getpid()


@Arip.function
def sleeper(path, seconds):
    with open(path, 'w') as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return 'slept'


@Arip.function
def sleeper_noting(path, seconds):
    """Sleeps; on KeyboardInterrupt writes so in @path and lets it go on.
    Says it started in @path.started."""
    open(path + '.started', 'w').close()
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        with open(path, 'w') as f:
            f.write('KeyboardInterrupt')
        raise
    return 'slept'


@Arip.function
def crash_in_c():
    import ctypes
    ctypes.string_at(0)   # reads address 0: SIGSEGV


@Arip.function
def counter(n):
    """Counts to @n, saying so through Arip.current_call()."""
    call = Arip.current_call()
    for i in range(1, n + 1):
        call.set_progress(i / n)
        call.send_message(GLib.Variant('s', 'step %d' % i))
    return n


@Arip.function(pickle=True)
def pickled_echo(value):
    return value


class Marker:
    """Unpickled, it creates the file @path: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@Arip.function
def sends_a_pickle(path):
    """A plain function whose worker answers with a pickle anyway, as a
    hostile worker would: the parent must not unpickle it."""
    import pickle
    data = pickle.dumps(Marker(path))
    value = GLib.Variant.new_tuple(GLib.Variant('s', 'pickle'), GLib.Variant.new_variant(
        GLib.Variant.new_from_bytes(GLib.VariantType('ay'), GLib.Bytes.new(data), True)))
    Arip.current_call().return_value(GLib.Variant.new_tuple(GLib.Variant.new_variant(value)))


class Custom(Exception):
    pass


@Arip.function
def fail(kind):
    if kind == 'value':
        raise ValueError('bad value 42')
    if kind == 'key':
        raise KeyError('missing')
    if kind == 'custom':
        raise Custom('mine')
    if kind == 'exit':
        sys.exit(7)
    return 'no failure'


def same(a, b):
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, memoryview):
        return a.tobytes() == b.tobytes()
    if isinstance(a, GLib.Variant):
        return a.equal(b)
    return a == b


def case_types():
    values = (None, True, False, 0, -1, 5, 2 ** 63 - 1, -2 ** 63, 2 ** 64 - 1, 1.5, float('inf'),
              '', 'hé ☃', b'', b'\x00\xff', bytearray(b'ab'), memoryview(b'cd'), (), (1,),
              (1, (2, 'x')), [], [1, [2, None]], {}, {'a': {'b': [b'c']}},
              GLib.Variant('(ii)', (1, 2)), GLib.Variant('as', ['x']))
    got = Arip.run_in_process_sync(echo, *values)
    return 'same' if same(got, values) else 'different: %r' % (got,)


def case_big_bytes():
    data = bytes(range(256)) * 4096 * 16
    got = Arip.run_in_process_sync(identity, data)
    return 'same %d' % len(got) if got == data and type(got) is bytes else 'different'


def case_big_bytes_kinds():
    """Large bytes, bytearray and memoryview, alone and nested, both ways:
    each the same bytes and type back; the memoryview a read-only view
    (of the sender's memfd, checked through Arip.variant_dup_memfd())."""
    data = bytes(range(256)) * 4096 * 4
    out = []
    for value in (data, bytearray(data), memoryview(data), {'blob': bytearray(data), 'n': 1}):
        got = Arip.run_in_process_sync(identity, value)
        out.append(same(got, value))
    view = Arip.run_in_process_sync(identity, memoryview(data))
    out.append(view.readonly)
    packed = GLib.Variant.new_tuple(GLib.Variant.new_variant(
        GLib.Variant.new_tuple(GLib.Variant('s', 'memoryview'), GLib.Variant.new_variant(
            GLib.Variant.new_from_bytes(GLib.VariantType('ay'), GLib.Bytes.new(data), True)))))
    result = Arip.run_in_process_sync(identity.__arip_name__, packed, None)
    fd, offset = Arip.variant_dup_memfd(result)
    out.append(fd >= 0)
    if fd >= 0:
        os.close(fd)
    return ' '.join(str(x) for x in out)


def memfd_mappings():
    """How many mappings of memfds carrying values this process has."""
    with open('/proc/self/maps') as maps:
        return sum('/memfd:arip-value' in line for line in maps)


def case_mapped_bytes():
    """A large bytes result is the sender's memfd mapped into a new bytes
    object (no copy): the same bytes, at sizes that end anywhere in a page;
    the mappings go with the object. Under a debugging allocator (which
    puts its own header before objects) it is read into it instead."""
    # Above 32 MiB, glibc's malloc always gives an object a mapping of its
    # own (smaller ones come from its heap once it has freed a large one:
    # those are read, as mapping over its heap would keep the memfd alive
    # after the object).
    base = bytes(range(256)) * 4096 * 41
    before = memfd_mappings()
    out = []
    for size in ((32 << 20) + 1, (40 << 20) - 48, (40 << 20) - 47, (33 << 20) + 4000,
                 256 * 1024):
        got = Arip.run_in_process_sync(identity, base[:size])
        out.append(type(got) is bytes and got == base[:size] and got[size - 1:] == base[size - 1:size])
        out.append(memfd_mappings() > before or size < (32 << 20))
        del got
    out.append(memfd_mappings() == before)
    return ' '.join(str(x) for x in out)


def case_mapped_bytes_map_fails():
    """A MAP_FIXED over the new object's pages that fails after it has
    unmapped them (the kernel may): zero pages take their place again and
    the bytes are read; the object is whole and usable."""
    import ctypes
    from gi.overrides import _arip_plain
    base = bytes(range(256)) * 4096 * 41
    value = Arip.run_in_process_sync(identity, base[:1 << 20])   # makes the mapper
    mapper = _arip_plain._mapper
    if mapper is None or not mapper.usable:
        return 'no mapper'
    libc = ctypes.CDLL('libc.so.6')
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    real_mmap = mapper.mmap
    failed = []

    def failing_mmap(addr, length, prot, flags, fd, offset):
        if fd >= 0 and not failed:
            failed.append(True)
            libc.munmap(addr, length)
            return ctypes.c_void_p(-1).value
        return real_mmap(addr, length, prot, flags, fd, offset)
    mapper.mmap = failing_mmap
    try:
        size = (36 << 20) + 123
        got = Arip.run_in_process_sync(identity, base[:size])
    finally:
        mapper.mmap = real_mmap
    return '%s %s %s' % (failed == [True], type(got) is bytes and got == base[:size],
                         value == base[:1 << 20])


def case_pickle():
    """pickle=True: other values cross, keeping their type; a plain
    function refuses them, and a pickle its worker sends anyway is not
    unpickled."""
    import collections
    import enum
    import fractions

    class Color(enum.IntEnum):
        RED = 1
    out = []
    for value in ({1, 2}, fractions.Fraction(2, 7), [1, {2: 'x'}], 1 << 70,
                  collections.OrderedDict(a=1)):
        got = Arip.run_in_process_sync(pickled_echo, value)
        out.append(got == value and type(got) is type(value))
    try:
        Arip.run_in_process_sync(identity, {1, 2})
    except TypeError as exc:
        out.append('pickle=True' in str(exc))
    path = os.path.join(tempfile.mkdtemp(), 'unpickled')
    try:
        Arip.run_in_process_sync(sends_a_pickle, path)
    except TypeError as exc:
        out.append('refusing a pickled value' in str(exc))
    out.append(not os.path.exists(path))
    return ' '.join(str(x) for x in out)


def case_async():
    return str(Arip.run_in_process_sync(fib, 12))


def case_in_another_process():
    return str(Arip.run_in_process_sync(pid) != os.getpid())


def case_overflow():
    try:
        Arip.run_in_process_sync(identity, 2 ** 64)
    except OverflowError as exc:
        return 'OverflowError: %s' % exc
    return 'no error'


def case_not_plain():
    try:
        Arip.run_in_process_sync(identity, object())
    except TypeError as exc:
        return 'TypeError: %s' % exc
    return 'no error'


def case_str_keys_only():
    try:
        Arip.run_in_process_sync(identity, {1: 'one'})
    except TypeError as exc:
        return 'TypeError: %s' % exc
    return 'no error'


def case_cycle():
    loop = []
    loop.append(loop)
    try:
        Arip.run_in_process_sync(identity, loop)
    except ValueError as exc:
        return 'ValueError: %s' % exc
    return 'no error'


def case_undecorated():
    try:
        Arip.run_in_process_sync(same, 1, 2)
    except TypeError as exc:
        return 'TypeError: %s' % exc
    return 'no error'


def raised(kind):
    try:
        Arip.run_in_process_sync(fail, kind)
    except BaseException as exc:  # noqa: B902
        return exc
    return None


def case_value_error():
    exc = raised('value')
    cause = exc.__cause__
    return '%s %s | %s %s' % (type(exc).__name__, exc, type(cause).__name__,
                              'in fail' in str(cause) and "raise ValueError('bad value 42')" in str(cause))


def case_key_error():
    exc = raised('key')
    return '%s %s' % (type(exc).__name__, exc)


def case_remote_error():
    exc = raised('custom')
    return '%s %s %s %s' % (type(exc).__name__, exc.type_name, exc.message,
                            'raise Custom' in exc.remote_traceback)


def case_exit_status():
    exc = raised('exit')
    return '%s %s' % (type(exc).__name__, exc.matches(Arip.error_quark(), Arip.Error.EXITED))


def case_c_form():
    result = Arip.run_in_process_sync('%s.identity' % __name__, GLib.Variant('(v)', (GLib.Variant('s', 'x'),)), None)
    return result.get_type_string()


def case_pool_map():
    pool = Arip.Pool.new(None, 2)
    return str(pool.map(fib, range(10)))


def case_pool_map_error():
    pool = Arip.Pool.new(None, 2)
    try:
        pool.map(fail, ['none', 'value', 'none'])
    except ValueError as exc:
        return 'ValueError %s' % exc
    return 'no error'


def case_aio_result():
    return str(asyncio.run(Arip.run_in_process(fib, 10)))


def case_aio_gather():
    async def main():
        return await asyncio.gather(*[Arip.run_in_process(fib, i) for i in range(8)])
    return str(asyncio.run(main()))


def case_aio_exception():
    async def main():
        try:
            await Arip.run_in_process(fail, 'value')
        except ValueError as exc:
            return 'ValueError %s' % exc
        return 'no error'
    return asyncio.run(main())


def case_aio_c_form():
    async def main():
        result = await Arip.run_in_process('%s.identity' % __name__,
                                           GLib.Variant('(v)', (GLib.Variant('s', 'x'),)))
        return result.get_type_string()
    return asyncio.run(main())


def gone(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] in ('Z', 'X')
    except FileNotFoundError:
        return True


def case_aio_timeout():
    # The worker ignores the interrupt (time.sleep goes on): the launcher's
    # escalation ends it, and the timeout comes once it is gone.
    path = os.path.join(tempfile.mkdtemp(), 'pid')

    async def main():
        start = time.monotonic()
        try:
            async with asyncio.timeout(0.5):
                await Arip.run_in_process(sleeper, path, 60)
        except TimeoutError:
            took = time.monotonic() - start
            with open(path) as f:
                pid = int(f.read())
            return 'TimeoutError %s %s' % (0.5 <= took < 0.5 + 4 + 10, gone(pid))
        return 'no timeout'
    return asyncio.run(main())


async def cancel_once_started(awaitable, path):
    """Cancels the task awaiting @awaitable (a sleeper writing its pid in
    @path) once the function runs; the worker's pid, or None if the task
    was not cancelled."""
    task = asyncio.create_task(awaitable)
    while not os.path.exists(path) or os.path.getsize(path) == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        with open(path) as f:
            return int(f.read())
    return None


def case_aio_cancel():
    path = os.path.join(tempfile.mkdtemp(), 'pid')

    async def main():
        worker = await cancel_once_started(Arip.run_in_process(sleeper, path, 60), path)
        return 'not cancelled' if worker is None else 'CancelledError %s' % gone(worker)
    return asyncio.run(main())


def case_aio_pool():
    async def main():
        async with Arip.Pool(max_workers=2) as pool:
            first = await pool.run(fib, 20)
            mapped = await pool.map(fib, range(10))
            pids = set(await asyncio.gather(*[pool.run(pid) for _ in range(12)]))
            try:
                await pool.run(fail, 'value')
            except ValueError as exc:
                error = 'ValueError %s' % exc
            workers = pool.get_n_workers()
        return '%s %s %s %s %s %s' % (first, mapped, len(pids) <= 2, os.getpid() not in pids,
                                      error, workers <= 2 and pool.get_n_workers() == 0)
    return asyncio.run(main())


def case_aio_pool_cancel():
    path = os.path.join(tempfile.mkdtemp(), 'pid')

    async def main():
        async with Arip.Pool(max_workers=1) as pool:
            worker = await cancel_once_started(pool.run(sleeper, path, 60), path)
            if worker is None:
                return 'not cancelled'
            # The worker took the interrupt (KeyboardInterrupt) and
            # answered: it lives on, and the pool with it.
            return 'CancelledError %s %s' % (gone(worker), await pool.run(fib, 7))
    return asyncio.run(main())


def case_pool_blocking():
    pool = Arip.Pool(max_workers=2)
    return str(pool.map(fib, range(6)))


def case_open_in_process():
    path = os.path.join(tempfile.mkdtemp(), 'pid')

    async def main():
        async with Arip.open_in_process(sleeper, path, 0.3) as proc:
            running = proc.get_state() == Arip.State.EXECUTING
            pid = proc.get_pid()
            await proc.wait_for_state(Arip.State.FINISHED)
        with open(path) as f:
            same_pid = int(f.read()) == pid
        return '%s %s %s %s' % (running, same_pid, proc.result, proc.get_exit_status())
    return asyncio.run(main())


def case_open_in_process_error():
    async def main():
        async with Arip.open_in_process(fail, 'key') as proc:
            pass
        try:
            proc.result
        except KeyError as exc:
            return 'KeyError %r' % exc.args
        return 'no error'
    return asyncio.run(main())


def case_open_in_process_body_fails():
    path = os.path.join(tempfile.mkdtemp(), 'pid')

    async def main():
        try:
            async with Arip.open_in_process(sleeper, path, 60) as proc:
                raise RuntimeError('the block failed')
        except RuntimeError as exc:
            return '%s %s %s' % (exc, proc.get_state() == Arip.State.FINISHED,
                                 proc.get_if_signaled())
        return 'no error'
    return asyncio.run(main())


def case_interrupt_is_keyboard_interrupt():
    # The interrupt raises KeyboardInterrupt in the function, even in a
    # blocking call, and the call ends as cancelled by the child.
    path = os.path.join(tempfile.mkdtemp(), 'noted')

    async def main():
        async with Arip.open_in_process(sleeper_noting, path, 60) as proc:
            await _started(path)
            proc.interrupt()
        try:
            proc.result
        except GLib.Error as exc:
            cancelled = exc.matches(Arip.error_quark(), Arip.Error.CHILD_CANCELLED)
        with open(path) as f:
            noted = f.read()
        return '%s %s %s' % (noted, cancelled, proc.get_exit_status())
    return asyncio.run(main())


async def _started(path):
    while not os.path.exists(path + '.started'):
        await asyncio.sleep(0.01)


def case_aio_timeout_interrupts():
    path = os.path.join(tempfile.mkdtemp(), 'noted')

    async def main():
        try:
            # The timeout runs from when the function runs: a worker slow
            # to start (a loaded machine) would be cancelled before it, and
            # have nothing to interrupt.
            async with asyncio.timeout(None) as deadline:
                call = asyncio.ensure_future(Arip.run_in_process(sleeper_noting, path, 60))
                await _started(path)
                deadline.reschedule(asyncio.get_running_loop().time() + 0.3)
                await call
        except TimeoutError:
            with open(path) as f:
                return 'TimeoutError %s' % f.read()
        return 'no timeout'
    return asyncio.run(main())


def case_crash_in_c():
    try:
        Arip.run_in_process_sync(crash_in_c)
    except GLib.Error as exc:
        # The Python traceback is in the error's last words, before the
        # native backtrace.
        words = exc.message.partition('Its last words:')[2]
        python = words.find('in crash_in_c')
        native = words.find('Backtrace:')
        return '%s %s %s' % (exc.matches(Arip.error_quark(), Arip.Error.SIGNALED),
                             'SIGSEGV' in exc.message, 0 <= python < native)
    return 'no error'


def run_processes_on_a_loop(processes):
    """Starts @processes on a GLib main loop, as a GTK program would (no
    asyncio), and gives each one's messages, progress and result."""
    loop = GLib.MainLoop()
    seen = []
    for process in processes:
        messages, progress = [], []
        process.connect('message', lambda p, m, messages=messages: messages.append(m.unpack()))
        process.connect('notify::progress',
                        lambda p, _, progress=progress: progress.append(p.get_progress()))
        seen.append((process, messages, progress))

    def on_done(process, result):
        try:
            process.wait_finish(result)
        except GLib.Error:
            pass
        if all(p.get_state() == Arip.State.FINISHED for p in processes):
            loop.quit()

    for process in processes:
        process.start_async(None, None)
        process.wait_async(None, on_done)
    GLib.timeout_add_seconds(60, loop.quit)
    loop.run()
    out = []
    for process, messages, progress in seen:
        try:
            result = repr(process.result)
        except Exception as exc:   # noqa: B902 (the case prints what came)
            result = '%s %s' % (type(exc).__name__, exc)
        out.append('%s %s %s' % (result, messages, progress[-1] if progress else None))
    return out


def case_glib_and_asyncio():
    """A GLib program whose main loop runs processes while asyncio code in
    another thread awaits calls: neither gets in the other's way."""
    import threading
    awaited = []

    def asyncio_side():
        async def main():
            awaited.append(await Arip.run_in_process(fib, 10))
            async with Arip.Pool(max_workers=2) as pool:
                awaited.append(await pool.map(fib, range(6)))
        asyncio.run(main())

    thread = threading.Thread(target=asyncio_side)
    thread.start()
    on_loop = run_processes_on_a_loop([Arip.Process.for_function(counter, 2),
                                       Arip.Process.for_function(fib, 12)])
    thread.join(60)
    return '%s | %s' % (' | '.join(on_loop), awaited)


def case_for_function():
    processes = [Arip.Process.for_function(counter, 3), Arip.Process.for_function(fail, 'value')]
    return ' | '.join(run_processes_on_a_loop(processes) + [repr(Arip.current_call())])


def case_for_function_pool():
    pool = Arip.Pool.new(None, 1)
    processes = [Arip.Process.for_function(counter, 2, pool=pool),
                 Arip.Process.for_function(fail, 'key', pool=pool)]
    return ' | '.join(run_processes_on_a_loop(processes))


if __name__ == '__main__':
    Arip.init(sys.argv)
    print(globals()['case_' + sys.argv[1]](), flush=True)
