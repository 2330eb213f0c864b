# The worker program of the PyGObject tests: the functions the tests run in
# child processes. Started by the tests' launcher as `python3 worker.py`.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Only registrations happen before Arip.init(): in a worker, Arip.init()
# serves the call and exits.

import asyncio
import os
import signal
import sys
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, Gio, GLib  # noqa: E402

# A worker that needs long to start, for the startup timeout test: what
# runs before Arip.init() delays every worker.
if os.environ.get('ARIP_TEST_SLOW_START'):
    time.sleep(float(os.environ['ARIP_TEST_SLOW_START']))


def ready(call):
    """Tells the parent the function is set up (signal handlers and all)."""
    call.send_message(GLib.Variant('s', 'ready'))


def touch_file(call, args):
    (path,) = args.unpack()
    with open(path, 'w'):
        pass
    call.return_value(None)


def add(call, args):
    a, b = args.unpack()
    call.return_value(GLib.Variant('(i)', (a + b,)))


def add_returned(call, args):
    a, b = args.unpack()
    return GLib.Variant('(i)', (a + b,))


async def add_async(call, args):
    a, b = args.unpack()
    await asyncio.sleep(0.01)
    return GLib.Variant('(i)', (a + b,))


def add_later(call, args):
    a, b = args.unpack()
    # Answer from the call's main context, after the function returned.
    source = GLib.timeout_source_new(10)
    source.set_callback(lambda *_: call.return_value(GLib.Variant('(i)', (a + b,))) or False)
    source.attach(GLib.MainContext.get_thread_default())


def raise_value_error(call, args):
    (message,) = args.unpack()
    raise ValueError(message)


def raise_later(call, args):
    def fail(*_):
        raise KeyError('raised in a callback')
    source = GLib.timeout_source_new(10)
    source.set_callback(fail)
    source.attach(GLib.MainContext.get_thread_default())


def raise_gerror(call, args):
    raise GLib.Error.new_literal(Gio.io_error_quark(), 'no such thing', Gio.IOErrorEnum.NOT_FOUND)


def return_error(call, args):
    call.return_error('my-test-error-quark', 42, 'answered with an error')


def return_wrong_type(call, args):
    return 42


def exit_with(call, args):
    (status,) = args.unpack()
    print('exiting with', status)
    sys.exit(status)


def abort(call, args):
    os.abort()


def get_env(call, args):
    (name,) = args.unpack()
    return GLib.Variant('(ms)', (os.environ.get(name),))


def connect_to(call, args):
    """(q): connects to 127.0.0.1:port; (s) '' or the error."""
    import socket
    (port,) = args.unpack()
    try:
        socket.create_connection(('127.0.0.1', port), timeout=5).close()
        return GLib.Variant('(s)', ('',))
    except OSError as exc:
        return GLib.Variant('(s)', (type(exc).__name__,))


def write_to(call, args):
    """(s): writes a file; (s) '' or the exception's type."""
    (path,) = args.unpack()
    try:
        with open(path, 'w') as f:
            f.write('written')
        return GLib.Variant('(s)', ('',))
    except OSError as exc:
        return GLib.Variant('(s)', (type(exc).__name__,))


def read_from(call, args):
    """(s): reads a file; (s) its text or the exception's type."""
    (path,) = args.unpack()
    try:
        with open(path) as f:
            return GLib.Variant('(s)', (f.read(),))
    except OSError as exc:
        return GLib.Variant('(s)', (type(exc).__name__,))


def no_new_privs(call, args):
    """(b): whether the kernel says the worker can never gain privileges."""
    with open('/proc/self/status') as f:
        flags = dict(line.split(':', 1) for line in f if ':' in line)
    return GLib.Variant('(b)', (flags['NoNewPrivs'].strip() == '1',))


def ptrace_parent(call, args):
    """(x): ptrace(PTRACE_PEEKUSER) on the parent, through the C library."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return GLib.Variant('(x)', (libc.ptrace(3, os.getppid(), None, None),))


def allocate(call, args):
    """(t): allocates that many bytes."""
    (size,) = args.unpack()
    block = bytearray(size)
    return GLib.Variant('(t)', (len(block),))


def spin(call, args):
    """Uses CPU time until it is stopped."""
    while True:
        pass


def get_cwd(call, args):
    return GLib.Variant('(s)', (os.getcwd(),))


def get_pid(call, args):
    return GLib.Variant('(i)', (os.getpid(),))


def sleep_forever(call, args):
    """Ignores interrupts; SIGTERM ends it."""
    ready(call)
    while True:
        time.sleep(1)


def wait_for_interrupt(call, args):
    """Gives up when interrupted: the parent gets ARIP_ERROR_CHILD_CANCELLED."""
    cancellable = call.get_cancellable()
    ready(call)
    while not cancellable.is_cancelled():
        time.sleep(0.01)
    cancellable.set_error_if_cancelled()   # raises G_IO_ERROR_CANCELLED


def handle_interrupt(call, args):
    """Notices the interrupt and still answers with a value."""
    cancellable = call.get_cancellable()
    ready(call)
    while not cancellable.is_cancelled():
        time.sleep(0.01)
    return GLib.Variant('(s)', ('interrupted, and fine',))


def stubborn(call, args):
    """Ignores interrupts and SIGTERM, writing down each: only SIGKILL ends it."""
    (path,) = args.unpack()

    def note(what):
        with open(path, 'a') as f:
            f.write(what + '\n')

    signal.signal(signal.SIGTERM, lambda *_: note('terminate'))
    call.get_cancellable().connect(lambda *_: note('interrupt'))
    note('ready')
    ready(call)
    while True:
        time.sleep(0.01)


def wait_for_message(call, args):
    """Echoes each message back; answers with the one that says 'quit'."""
    def on_message(_call, message):
        if message.unpack() == 'quit':
            call.return_value(GLib.Variant('(s)', ('quit',)))
        else:
            call.send_message(message)

    call.connect('message', on_message)
    ready(call)


def progress(call, args):
    call.set_progress(0.25)
    call.send_message(GLib.Variant('s', 'halfway'))
    call.set_progress(1.0)
    return GLib.Variant('(s)', ('done',))


def print_stdout(call, args):
    (text,) = args.unpack()
    print(text)
    return GLib.Variant('()', ())


def read_stdin(call, args):
    return GLib.Variant('(s)', (sys.stdin.readline().strip(),))


def write_fd(call, args):
    fd, text = args.unpack()
    os.write(fd, text.encode())
    os.close(fd)
    call.return_value(None)


def call_info(call, args, extra):
    return GLib.Variant('(ssb)', (call.get_function_name(), extra, Arip.is_worker()))


FUNCTIONS = {
    'touch_file': touch_file,
    'add': add,
    'add_returned': add_returned,
    'add_async': add_async,
    'add_later': add_later,
    'raise_value_error': raise_value_error,
    'raise_later': raise_later,
    'raise_gerror': raise_gerror,
    'return_error': return_error,
    'return_wrong_type': return_wrong_type,
    'exit_with': exit_with,
    'abort': abort,
    'get_env': get_env,
    'get_cwd': get_cwd,
    'get_pid': get_pid,
    'sleep_forever': sleep_forever,
    'wait_for_interrupt': wait_for_interrupt,
    'handle_interrupt': handle_interrupt,
    'stubborn': stubborn,
    'wait_for_message': wait_for_message,
    'progress': progress,
    'print_stdout': print_stdout,
    'read_stdin': read_stdin,
    'write_fd': write_fd,
    'connect_to': connect_to,
    'write_to': write_to,
    'read_from': read_from,
    'no_new_privs': no_new_privs,
    'ptrace_parent': ptrace_parent,
    'allocate': allocate,
    'spin': spin,
}

for name, function in FUNCTIONS.items():
    Arip.register_function(name, function)
Arip.register_function('call_info', call_info, 'user data')

if __name__ == '__main__':
    Arip.init(sys.argv)
    sys.exit('worker.py is the worker of the arip Python tests; run the tests instead')
