# PyGObject overrides for Arip: what a Python function needs to be a good
# citizen of a worker process.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A worker serves one call and exits, and it only exits once the call is
# answered. A Python function that raises would leave the call unanswered
# (PyGObject prints the traceback and returns to C), so the worker would
# wait forever. The wrapper that register_function() puts around every
# function answers for it instead:
#
#   - an exception becomes an error for the parent: a GLib.Error keeps its
#     domain and code, anything else is ARIP_ERROR_FAILED; the message starts
#     with "Type: message" and carries the child's traceback;
#   - sys.exit(N) ends the worker with exit status N (the parent gets
#     ARIP_ERROR_EXITED and the status);
#   - a GLib.Variant returned by the function is its answer; so is the value
#     of a coroutine function (async def), run to completion with asyncio;
#   - an exception raised later by a callback of the worker's main context
#     (a timeout, a signal handler) while the call is not answered yet also
#     answers it, instead of hanging.
#
# Python's stdout and stderr are flushed before the worker exits, so
# print() output is never lost.

import asyncio
import faulthandler
import gc
import inspect
import os
import signal
import sys
import threading
import traceback
import _thread

from gi.repository import Gio, GLib

from ..module import get_introspection_module
from ..overrides import override
from . import _arip_bridge as _bridge
from . import _arip_plain as _plain
from . import _arip_shared

Arip = get_introspection_module('Arip')
_plain.set_library(Arip)
_bridge.set_library(Arip)

__all__ = []


def _flush_stdio():
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _to_quark(domain):
    if isinstance(domain, str):
        return GLib.quark_from_string(domain)
    return int(domain)


def _with_memory_limit(head):
    """A MemoryError's line, naming the launcher's memory limit if any."""
    import resource
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return head
    note = 'the worker ran out of memory under its memory limit of %s' % (
        GLib.format_size_full(limit, GLib.FormatSizeFlags.IEC_UNITS))
    if ':' not in head:
        return '%s: %s' % (head, note)
    return '%s (%s)' % (head, note)


def _exception_to_error(exc, tb=None):
    """Returns (quark, code, message) describing @exc for the parent."""
    if tb is None:
        tb = exc.__traceback__
    # Start the traceback at the user's code, not at this wrapper.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next

    if isinstance(exc, GLib.Error):
        # Keep the GError's identity: the parent can match domain and code
        # (G_IO_ERROR_CANCELLED arrives as ARIP_ERROR_CHILD_CANCELLED).
        quark, code, head = _to_quark(exc.domain), exc.code, exc.message or str(exc)
    elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        # The interrupt (arip_process_interrupt(), a cancelled call) did
        # what it asks for, or the function's own work was cancelled: the
        # call was cancelled (ARIP_ERROR_CHILD_CANCELLED in the parent).
        quark, code = Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED
        head = ('KeyboardInterrupt: the function was interrupted'
                if isinstance(exc, KeyboardInterrupt) else
                'CancelledError: the function was cancelled')
        tb = None
    else:
        quark, code = Arip.error_quark(), Arip.Error.FAILED
        head = traceback.format_exception_only(type(exc), exc)[-1].strip()
        if isinstance(exc, MemoryError):
            head = _with_memory_limit(head)

    if tb is None:
        return quark, code, head
    trace = ''.join(traceback.format_exception(type(exc), exc, tb)).rstrip()
    return quark, code, '%s\n\n%s' % (head, trace)


def _answer_with_exception(call, exc, tb=None):
    quark, code, message = _exception_to_error(exc, tb)
    call.return_error_literal(quark, code, message)


def _exit_status(exc):
    """The exit status sys.exit() asked for, as the interpreter computes it."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xff
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _exit_worker(exc):
    _flush_stdio()
    os._exit(_exit_status(exc))


# The environment variable through which a worker finds its channel. The
# library removes it from the C environment as a worker starts; os.environ
# is Python's copy, made at start-up, and subprocesses started from Python
# use that copy.
_WORKER_ENV = 'ARIP_WORKER'

# In a fork server the library took away the LD_BIND_NOW it started the
# server with (its ARIP_ZYGOTE value ends in ":1"); os.environ was copied
# before that.
if os.environ.get('ARIP_ZYGOTE', '').endswith(':1'):
    os.environ.pop('LD_BIND_NOW', None)

# The call the worker serves now. A worker of an Arip.Pool serves several
# calls, one after the other.
_current_call = None


def _excepthook(exc_type, exc, tb):
    # PyGObject reports exceptions raised in callbacks (timeouts, signal
    # handlers) through sys.excepthook. Until the call is answered, such an
    # exception is the call's error: the worker would wait forever else.
    call = _current_call
    if call is not None and not call.has_returned():
        try:
            traceback.print_exception(exc_type, exc, tb)
            _answer_with_exception(call, exc, tb)
            return
        except Exception:
            pass
    _original_excepthook(exc_type, exc, tb)


_original_excepthook = sys.excepthook


_environ_synced = False


def _sync_environ():
    """Makes os.environ the environment this worker really has.

    os.environ is Python's copy, made when the interpreter started: a
    worker forked from the fork server started as the server, and got its
    own environment (the launcher's) from the library afterwards.
    """
    real = dict(entry.split('=', 1) for entry in GLib.get_environ() if '=' in entry)
    for key in [key for key in os.environ if key not in real]:
        del os.environ[key]
    for key, value in real.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _enable_faulthandler():
    try:
        notes = os.memfd_create('arip-python-traceback', os.MFD_CLOEXEC)
    except OSError:
        notes = -1
    try:
        if notes >= 0:
            faulthandler.enable(file=notes, all_threads=True)
            Arip.set_crash_notes_fd(notes)
        else:
            faulthandler.enable()
    except (RuntimeError, ValueError, OSError):
        pass   # no usable file


def _serve(name, func, call, args, user_data):
    """Runs @func for @call in the worker and makes sure the call ends."""
    global _current_call, _original_excepthook, _environ_synced

    # Once per worker: a pool worker's environment stays what it started with.
    if not _environ_synced:
        _sync_environ()
        os.environ.pop(_WORKER_ENV, None)
        _environ_synced = True
    # A crash in C code (SIGSEGV, SIGABRT...) writes the Python traceback
    # into a file of the worker's, which its own crash handler (the next
    # in line: enabled here, over it) copies into the report the parent's
    # error shows, and to stderr.
    if not faulthandler.is_enabled():
        _enable_faulthandler()
    if sys.excepthook is not _excepthook:
        _original_excepthook = sys.excepthook
        sys.excepthook = _excepthook
    _current_call = call

    try:
        result = func(call, args, *user_data)
        if inspect.isawaitable(result):
            result = _run_awaitable(result)
    except SystemExit as exc:
        _exit_worker(exc)
    except BaseException as exc:
        if call.has_returned():
            # The answer was given; it stands. Show what happened after it.
            traceback.print_exc()
        else:
            _answer_with_exception(call, exc)
        return

    if result is None:
        _flush_stdio()
        return

    if call.has_returned():
        print('arip: “%s” answered its call and also returned %r; '
              'the answer stands' % (name, result), file=sys.stderr)
    elif isinstance(result, GLib.Variant):
        call.return_value(result)
    else:
        error = TypeError('the function registered as “%s” returned %s; return a '
                          'GLib.Variant, or None and answer with call.return_value()'
                          % (name, type(result).__name__))
        _answer_with_exception(call, error)


async def _await(awaitable):
    return await awaitable


def _run_awaitable(awaitable):
    """Runs @awaitable to its end in a loop of its own.

    Not asyncio.run(): it would put its own SIGINT handler in the place of
    the worker's, and leave Python's there afterwards, so that a pool
    worker's later interrupts would raise KeyboardInterrupt anywhere.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_await(awaitable))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def register_function(name, func, *user_data):
    """Offers @func to run in worker processes under @name.

    @func is called in the worker as ``func(call, args, *user_data)``, with
    the Arip.Call and the GLib.Variant arguments. It answers with
    ``call.return_value(GLib.Variant(...))`` (or an error), or by returning
    a GLib.Variant. An exception it raises reaches the parent as an error
    carrying the exception's type, message and traceback; ``sys.exit(N)``
    ends the worker with status N.

    Register every function before calling Arip.init().
    """
    if not callable(func):
        raise TypeError('func must be callable, not %s' % type(func).__name__)

    def serve(call, args, *ignored):
        _serve(name, func, call, args, user_data)

    Arip.register_function(name, serve)


__all__.append('register_function')


class _interrupt_raises_keyboard_interrupt:
    """While it is entered, an interrupt of @call raises KeyboardInterrupt
    in the main thread, as Ctrl-C does in a terminal, also in a blocking
    call such as time.sleep()."""

    def __init__(self, call):
        self._cancellable = call.get_cancellable()
        self._handler = None
        self._loop = self._task = None

    def _raise_at_await(self):
        """In an async function's loop: KeyboardInterrupt at the await the
        function is suspended in, where it can catch it (raised in the
        loop's own wait, it would end the loop). True if it was."""
        delivered = threading.Event()
        given_up = []

        def deliver():
            if given_up or self._task.done():
                return
            waiter = getattr(self._task, '_fut_waiter', None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(KeyboardInterrupt())
                delivered.set()
            else:
                # About to run (or yielding with a bare sleep(0)): next time.
                self._loop.call_soon(deliver)
        try:
            self._loop.call_soon_threadsafe(deliver)
        except RuntimeError:
            return False   # the loop is closed
        if delivered.wait(0.1):
            return True
        given_up.append(True)
        return delivered.is_set()

    def _interrupt(self, *_ignored):
        # In the worker's watch thread. An async function gets it at its
        # await; otherwise trip Python's SIGINT flag for the main thread, and
        # end the system call it may be blocked in (the signal comes back to
        # the watch thread as an interrupt of the same call: nothing more
        # happens).
        if self._loop is not None and self._raise_at_await():
            return
        _thread.interrupt_main()
        try:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        except (OSError, ValueError):
            pass

    def __enter__(self):
        try:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
        except RuntimeError:
            self._loop = self._task = None
        if self._task is None:
            self._loop = None
        if self._cancellable.is_cancelled():
            raise KeyboardInterrupt
        # g_cancellable_connect(): also safe against a cancel racing it.
        self._handler = self._cancellable.connect(self._interrupt)
        return self

    def __exit__(self, *exc_info):
        if self._handler:
            self._cancellable.disconnect(self._handler)
        return False


def function(func=None, *, pickle=False):
    """Decorator: offers @func to workers, taking and returning plain values.

    @func is registered under "module.qualname" (for a script,
    "__main__.name"), so decorate it at the top level of a module that the
    worker imports too. It may be a def or an async def; its arguments and
    its return value are plain Python values (None, bool, int, float, str,
    bytes, bytearray, memoryview, tuple, list, dict with str keys, nested,
    or a GLib.Variant), each arriving with its own type. An exception it
    raises is raised in the parent: built-in types as themselves, with the
    worker's traceback as their cause; others as Arip.RemoteError.

    ``@Arip.function(pickle=True)`` also lets any other value that pickle
    can take cross, pickled, in either direction (a class instance, a set, a
    dict with other keys...). Unpickling runs code the sender chose: use it
    only where the parent and the workers trust each other (your own code on
    both sides, no untrusted input driving what the worker returns), as for
    multiprocessing. Values that are plain still travel as plain values.

    The function itself is returned unchanged: it can still be called here.
    """
    if func is None:
        return lambda f: function(f, pickle=pickle)
    if not callable(func):
        raise TypeError('Arip.function decorates a function, not %s' % type(func).__name__)
    name = '%s.%s' % (func.__module__, func.__qualname__)
    codec = _Codec(name, bool(pickle))

    def serve(call, args):
        values = codec.args_of(args) if args is not None else ()
        if not isinstance(values, tuple):
            raise TypeError('the arguments of “%s” are not a tuple of plain values' % name)
        with _interrupt_raises_keyboard_interrupt(call):
            result = func(*values)
            if not inspect.isawaitable(result):
                return answer(call, result)
        async def finish():
            with _interrupt_raises_keyboard_interrupt(call):
                return answer(call, await result)
        return finish()

    def answer(call, result):
        # A function that answered through Arip.current_call() has nothing
        # to add when it returns None.
        if result is None and call.has_returned():
            return None
        return codec.result(result)

    register_function(name, serve)
    func.__arip_name__ = name
    func.__arip_codec__ = codec
    return func


__all__.append('function')

RemoteError = _plain.RemoteError
__all__.append('RemoteError')


def _plain_codec(func):
    codec = getattr(func, '__arip_codec__', None)
    if codec is None:
        raise TypeError('%r is not decorated with @Arip.function (and a function named by a '
                        'string takes a GLib.Variant)' % (func,))
    return codec



def _plain_error(error):
    """The exception to raise for the GLib.Error a plain call ended with."""
    if error.matches(Arip.error_quark(), Arip.Error.FAILED):
        # The library may have said which call it was first ("Call 3 of
        # the map: ValueError: ...").
        message = error.message
        for _ in range(4):
            exc = _plain.exception_from_message(message)
            if exc is not None:
                return exc
            head, sep, rest = message.partition(': ')
            if not sep or '\n' in head:
                break
            message = rest
    return error


class _Codec:
    """How a decorated function's values cross: plain values, and, for a
    function decorated with pickle=True, pickles of the others."""

    def __init__(self, name, pickle_ok):
        self.name = name
        self.pickle_ok = pickle_ok

    def pack(self, args):
        """The arguments of a call: the tuple of the positional ones."""
        return _plain.to_variant(tuple(args), pickle_ok=self.pickle_ok)

    def result(self, value):
        """A call's "(v)" result for the value the function returned."""
        return _plain.to_variant((value,), pickle_ok=self.pickle_ok)

    def args_of(self, variant):
        return _plain.from_variant(variant, pickle_ok=self.pickle_ok)

    def value(self, result):
        """The value a call's "(v)" result stands for."""
        return _plain.from_variant(result.get_child_value(0).get_variant(),
                                   pickle_ok=self.pickle_ok)

    def values(self, results):
        """The values of a map's results: an array of (v)."""
        return [self.value(results.get_child_value(i).get_variant())
                for i in range(results.n_children())]

    def map_args(self, iterable):
        """The arguments of a map, or None for none: as multiprocessing's
        map, each element is the one argument."""
        items = [self.pack((item,)) for item in iterable]
        return GLib.Variant.new_array(None, items) if items else None


_PLAIN = _Codec(None, False)


def _plain_value(result):
    return _PLAIN.value(result)


def _plain_call(run, decode=_plain_value):
    """decode(run()), raising what the worker raised for a GLib.Error."""
    try:
        return decode(run())
    except GLib.Error as error:
        raise _plain_error(error)


async def _plain_awaited(start, finish, decode=_plain_value):
    """The same as _plain_call() for an asynchronous call, through the bridge."""
    try:
        return decode(await _bridge.get().call(start, finish))
    except GLib.Error as error:
        raise _plain_error(error)


def run_in_process_sync(function, *args, **kwargs):
    """Runs @function in a new worker process and returns its result.

    With a function decorated by @Arip.function, the rest are its arguments,
    plain values, and the result is the plain value it returned; an
    exception it raised is raised here. With a function's registered name
    (a str), it is the C form: (name, args GLib.Variant or None,
    cancellable) and a GLib.Variant result. It blocks.
    """
    if isinstance(function, str):
        return Arip.run_in_process_sync(function, *args, **kwargs)
    if kwargs:
        raise TypeError('only positional arguments go to a worker')
    codec = _plain_codec(function)
    packed = codec.pack(args)
    return _plain_call(lambda: Arip.run_in_process_sync(codec.name, packed, None), codec.value)


__all__.append('run_in_process_sync')


async def run_in_process(function, *args):
    """Awaits @function run in a new worker process; returns its result.

    The same as run_in_process_sync() (plain values with a function
    decorated by @Arip.function; the GLib.Variant form with a name), from
    asyncio: it works under a plain asyncio.run(), with no GLib main loop.
    Cancelling the awaiting task (task.cancel(), asyncio.timeout()) cancels
    the call: the worker is interrupted, then stopped with the launcher's
    escalation, and the CancelledError comes once it is gone.
    """
    if isinstance(function, str):
        variant_args = args[0] if args else None
        return await _bridge.get().call(
            lambda cancellable, callback: Arip.run_in_process_async(function, variant_args,
                                                                    cancellable, callback),
            Arip.run_in_process_finish)
    codec = _plain_codec(function)
    packed = codec.pack(args)
    return await _plain_awaited(
        lambda cancellable, callback: Arip.run_in_process_async(codec.name, packed, cancellable,
                                                                callback),
        Arip.run_in_process_finish, codec.value)


__all__.append('run_in_process')


def init(argv=None):
    """Serves the call in a worker (never returning); returns argv otherwise.

    Call it at the start of the program, after registering functions and
    before anything else: in a script, first thing under
    ``if __name__ == '__main__':``. @argv defaults to sys.argv and is
    returned unchanged.
    """
    if argv is None:
        argv = sys.argv
    # Tells the library that this layer answers for Python functions:
    # without it, every call fails with an error saying where this file is.
    Arip.set_language_binding('python')
    # Runs where workers start from (the fork server, or a spawned worker).
    Arip.set_preload_func(_preload)
    # In a fork server, what is still buffered would be copied into every
    # worker it forks, and printed by each.
    _flush_stdio()
    # arip_init() changes nothing in argv and only quotes it in a message;
    # the worker's real command line, which it reads itself, says more
    # (and a Python list does not reach C NULL-terminated).
    Arip.init(None)
    return list(argv)


__all__.append('init')


# The preload function set_preload_func() named, and its arguments.
_user_preload = None


def _preload(*_ignored):
    """Readies the process workers start from (see set_preload_func())."""
    try:
        if _user_preload is not None:
            func, user_data = _user_preload
            func(*user_data)
    finally:
        _flush_stdio()
        # What exists now is never collected in a worker: the collector
        # would otherwise write to every object's header in each worker and
        # copy each page of the fork server's heap (gc.freeze()).
        gc.collect()
        gc.freeze()


def set_preload_func(func, *user_data):
    """Names what a worker runs before its first call, e.g. heavy imports.

    The fork server (the default start method) runs it once, before it
    forks its first worker, and every worker starts with what it loaded; a
    spawned worker runs it itself. Call it before init(). It must not start
    threads. What it prints is flushed before any fork.
    """
    global _user_preload
    _user_preload = (func, user_data)


__all__.append('set_preload_func')


class Call(Arip.Call):
    """The call a worker serves; see Arip.Call.

    Every answer flushes Python's stdout and stderr first: the worker exits
    as soon as the call is answered.
    """

    def return_value(self, value=None):
        _flush_stdio()
        Arip.Call.return_value(self, value)

    def return_error_literal(self, domain, code, message):
        _flush_stdio()
        Arip.Call.return_error_literal(self, _to_quark(domain), int(code), message)

    def return_error(self, domain, code, message):
        """Answers with an error; @domain is a quark or its name."""
        self.return_error_literal(domain, code, message)

    def return_gerror(self, error):
        """Answers with a GLib.Error, keeping its domain, code and message."""
        self.return_error_literal(error.domain, error.code, error.message)

    def return_exception(self, exc):
        """Answers with @exc, as if the function had raised it."""
        _flush_stdio()
        _answer_with_exception(self, exc)


Call = override(Call)
__all__.append('Call')


class Process(Arip.Process):
    """A worker process you can watch; see Arip.Process.

    Arip.open_in_process() gives one from asyncio; wait() and
    wait_for_state() are its awaitable forms, and ``result`` its outcome.
    Its signals (notify::state, message, progress) are emitted in the
    thread of the main context it works in: arip's own thread for one
    from open_in_process() (use loop.call_soon_threadsafe() to reach the
    asyncio loop from a handler).
    """

    _arip_plain = False
    _arip_bridged = False

    def _in_its_thread(self, method, *args):
        # A process of arip's own context is driven in arip's thread: what
        # changes it is done there.
        if self._arip_bridged:
            return _bridge.get().run_sync(lambda: method(self, *args))
        return method(self, *args)

    def interrupt(self):
        self._in_its_thread(Arip.Process.interrupt)

    def terminate(self):
        self._in_its_thread(Arip.Process.terminate)

    def kill(self):
        self._in_its_thread(Arip.Process.kill)

    def send_signal(self, signum):
        self._in_its_thread(Arip.Process.send_signal, signum)

    def send_message(self, message):
        self._in_its_thread(Arip.Process.send_message, message)

    def _outcome(self, value=None, error=None):
        if error is not None:
            raise _plain_error(error) if self._arip_plain else error
        return self._arip_plain.value(value) if self._arip_plain else value

    @property
    def result(self):
        """What the function returned (a plain value for a function decorated
        by @Arip.function); raises what it raised, or the GLib.Error the
        process ended with. Only once the process is FINISHED."""
        if self.get_state() != Arip.State.FINISHED:
            raise RuntimeError('the process has not finished: await proc.wait() first')
        error = self.get_error()
        if error is not None:
            return self._outcome(error=error)
        return self._outcome(self.get_result())

    async def wait(self):
        """Awaits the end of the process; returns its result (see result)."""
        try:
            value = await _bridge.get().call(
                lambda cancellable, callback: Arip.Process.wait_async(self, cancellable, callback),
                lambda result: Arip.Process.wait_finish(self, result))
        except GLib.Error as error:
            return self._outcome(error=error)
        return self._outcome(value)

    async def wait_for_state(self, state):
        """Awaits the process reaching @state (an Arip.State) or beyond."""
        await _bridge.get().call(
            lambda cancellable, callback: Arip.Process.wait_for_state_async(self, state, cancellable,
                                                                            callback),
            lambda result: Arip.Process.wait_for_state_finish(self, result))


    @classmethod
    def for_function(cls, function, *args, launcher=None, pool=None):
        """A process that will run @function (decorated by @Arip.function)
        with the plain values @args, on @launcher's worker (or the default
        one), or on a warm worker of @pool.

        It works in the main context of the thread that makes it, as
        Arip.Process.new() does: for a GLib or GTK program. Start it with
        start_async(); ``result`` is then the plain value the function
        returned, or raises what it raised.
        """
        codec = _plain_codec(function)
        packed = codec.pack(args)
        if pool is not None:
            process = Arip.Process.new_for_pool(pool, codec.name, packed)
        else:
            process = Arip.Process.new(launcher, codec.name, packed)
        process._arip_plain = codec
        return process


Process = override(Process)


def current_call():
    """The Arip.Call the worker serves now (None in the parent): a function
    decorated by @Arip.function reports progress and sends messages through
    it (``Arip.current_call().set_progress(0.5)``)."""
    return _current_call


__all__.append('current_call')
__all__.append('Process')


class _OpenInProcess:
    def __init__(self, function, args):
        self._codec = _plain_codec(function)
        self._name = self._codec.name
        self._args = self._codec.pack(args)
        self._process = None

    async def __aenter__(self):
        bridge = _bridge.get()
        process = bridge.run_sync(lambda: Arip.Process.new(None, self._name, self._args))
        process._arip_plain = self._codec
        process._arip_bridged = True
        self._process = process
        # Complete once the function runs (EXECUTING): pid and states known.
        await bridge.call(
            lambda cancellable, callback: Arip.Process.start_async(process, cancellable, callback),
            lambda result: Arip.Process.start_finish(process, result))
        return process

    async def __aexit__(self, exc_type, exc, tb):
        process = self._process
        if exc_type is not None:
            # The block failed or was cancelled: the process goes with it.
            process.kill()
        try:
            await process.wait()
        except BaseException:  # noqa: B902 (kept for proc.result)
            if exc_type is None and process.get_state() != Arip.State.FINISHED:
                raise
        return False


def open_in_process(function, *args):
    """An async context manager running @function in a new worker process.

    ``async with Arip.open_in_process(func, *args) as proc:`` starts the
    process (decorated by @Arip.function, plain @args) and gives the
    Arip.Process once the function runs; the block can watch it (state,
    pid, signals) and talk to it. Leaving the block waits for the process
    to end; ``proc.result`` then is its result (or raises its exception).
    If the block raises or is cancelled, the process is killed.
    """
    return _OpenInProcess(function, args)


__all__.append('open_in_process')


class Pool(Arip.Pool):
    """A pool of warm workers; see Arip.Pool.

    Made with Arip.Pool(max_workers=N) (and the other properties as
    keywords), the pool does its work in arip's own main context, in a
    thread of arip's: it is then usable from asyncio (``await
    pool.run(...)``, ``await pool.map(...)``, ``async with``) as from
    blocking code, with no GLib main loop running. Made with
    Arip.Pool.new(), it works in the caller's thread-default main context,
    which must run, as in C.
    """

    def __init__(self, *args, **kwargs):
        _bridge.get().run_sync(lambda: super(Pool, self).__init__(*args, **kwargs))

    async def run(self, function, *args):
        """Awaits @function, decorated by @Arip.function, run on a worker of
        the pool with plain @args; returns its plain result (an exception
        it raised is raised here). Cancelling the awaiting task cancels
        the call (see Arip.run_in_process())."""
        codec = _plain_codec(function)
        packed = codec.pack(args)
        try:
            return codec.value(await _bridge.get().pool_call(self, codec.name, packed))
        except GLib.Error as error:
            raise _plain_error(error)

    async def _map_plain_async(self, function, iterable):
        codec = _plain_codec(function)
        args_list = codec.map_args(iterable)
        if args_list is None:
            return []
        return await _plain_awaited(
            lambda cancellable, callback: Arip.Pool.map_async(self, codec.name, args_list,
                                                              cancellable, callback),
            lambda result: Arip.Pool.map_finish(self, result), codec.values)

    async def close(self):
        """Awaits the end of every call and every worker of the pool."""
        await _bridge.get().call(
            lambda cancellable, callback: Arip.Pool.close_async(self, cancellable, callback),
            lambda result: Arip.Pool.close_finish(self, result))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    def map(self, function, iterable, cancellable=None):
        """Runs @function once per arguments in @iterable; returns the results.

        Like multiprocessing's Pool.map: the calls run on the pool's workers
        at once, the results come back in the order of @iterable, and the
        first error ends the map and cancels the other calls. With a
        function decorated by @Arip.function, each element is its one
        argument, a plain value, and the results are plain values (an
        exception is raised as run_in_process_sync() raises it). With a
        function's registered name, each element is the arguments of one
        call, a GLib.Variant tuple, all of one type (@iterable may also be a
        GLib.Variant array of them), and the first error is a GLib.Error.

        Called in a running asyncio loop with a decorated function, it
        returns an awaitable: ``await pool.map(func, iterable)``. Elsewhere
        it blocks (from a GLib main loop, use map_async() and map_finish()).
        """
        if callable(function) and not isinstance(function, str):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return self._map_plain(function, iterable, cancellable)
            return self._map_plain_async(function, iterable)
        if isinstance(iterable, GLib.Variant):
            args_list = iterable
        else:
            items = list(iterable)
            if not items:
                return []
            for item in items:
                if not isinstance(item, GLib.Variant) or not item.get_type_string().startswith('('):
                    raise TypeError('each element must be a GLib.Variant tuple (the arguments of '
                                    'one call), not %r' % (item,))
            args_list = GLib.Variant.new_array(None, items)
        results = Arip.Pool.map_sync(self, function, args_list, cancellable)
        return [results.get_child_value(i).get_variant() for i in range(results.n_children())]

    def _map_plain(self, function, iterable, cancellable):
        codec = _plain_codec(function)
        args_list = codec.map_args(iterable)
        if args_list is None:
            return []
        return _plain_call(lambda: Arip.Pool.map_sync(self, codec.name, args_list, cancellable),
                           codec.values)


Pool = override(Pool)
__all__.append('Pool')


# The shared objects: Queue, Lock, Event, Semaphore, Condition, Barrier,
# SharedMemory, SharedDict (and QueueClosed).
_shared_classes = _arip_shared.install(Arip, override)
globals().update(_shared_classes)
__all__ += list(_shared_classes)
