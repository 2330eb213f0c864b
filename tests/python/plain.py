# Functions decorated with @Arip.function, called with plain values. Run
# by test_plain.py as `plain.py CASE`: the workers are this script run
# again (without a launcher), so the functions are registered there too.
# Each case prints one line the test compares.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import sys

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


if __name__ == '__main__':
    Arip.init(sys.argv)
    print(globals()['case_' + sys.argv[1]](), flush=True)
