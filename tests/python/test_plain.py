# Plain Python values and exceptions with @Arip.function, blocking and
# awaited from a plain asyncio.run(): each case of plain.py, run as a
# program of its own (its workers are that script).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

import pytest

from ariptest import HERE, TIMEOUT_S

CASES = {
    'types': 'same',
    'big_bytes': 'same %d' % (256 * 4096 * 16),
    'big_bytes_kinds': 'True True True True True True',
    'mapped_bytes': ' '.join(['True'] * 11),
    'mapped_bytes_map_fails': 'True True True',
    'pickle': 'True True True True True True True True',
    'async': '144',
    'in_another_process': 'True',
    'overflow': 'OverflowError: the integer 18446744073709551616 does not fit in 64 bits, '
                'and cannot be sent to another process',
    'not_plain': 'TypeError: a value of type object cannot be sent to another process: send '
                 'None, bool, int, float, str, bytes, bytearray, memoryview, tuple, list, dict '
                 'with str keys, or a GLib.Variant (or decorate the function with '
                 '@Arip.function(pickle=True))',
    'str_keys_only': 'TypeError: only dicts with str keys can be sent to another process, not '
                     'a key of type int (or decorate the function with '
                     '@Arip.function(pickle=True))',
    'cycle': 'ValueError: a value nested more than 64 levels deep (or that contains itself) '
             'cannot be sent to another process',
    'undecorated': None,   # checked below
    'value_error': 'ValueError bad value 42 | RemoteTraceback True',
    'key_error': "KeyError 'missing'",
    'remote_error': 'RemoteError Custom mine True',
    'exit_status': 'Error True',
    'c_form': '(v)',
    'pool_map': '[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]',
    'pool_map_error': 'ValueError bad value 42',
    'aio_result': '55',
    'aio_gather': '[0, 1, 1, 2, 3, 5, 8, 13]',
    'aio_exception': 'ValueError bad value 42',
    'aio_c_form': '(v)',
    'aio_timeout': 'TimeoutError True True',
    'aio_cancel': 'CancelledError True',
    'aio_pool': '6765 [0, 1, 1, 2, 3, 5, 8, 13, 21, 34] True True ValueError bad value 42 True',
    'aio_pool_cancel': 'CancelledError False 13',   # the worker took the interrupt and lives on
    'pool_blocking': '[0, 1, 1, 2, 3, 5]',
    'open_in_process': 'True True slept 0',
    'open_in_process_error': "KeyError 'missing'",
    'open_in_process_body_fails': 'the block failed True True',
    'interrupt_is_keyboard_interrupt': 'KeyboardInterrupt True 0',
    'aio_timeout_interrupts': 'TimeoutError KeyboardInterrupt',
    # Arip.Process.for_function() on a GLib main loop, and Arip.current_call()
    # in the worker (None in the parent).
    'for_function': "3 ['step 1', 'step 2', 'step 3'] 1.0 | ValueError bad value 42 [] None | None",
    'glib_and_asyncio': "2 ['step 1', 'step 2'] 1.0 | 144 [] None | [55, [0, 1, 1, 2, 3, 5]]",
    'for_function_pool': "2 ['step 1', 'step 2'] 1.0 | KeyError 'missing' [] None",
}


def test_crash_in_c_shows_the_python_traceback():
    """A worker that crashes in C code prints its Python traceback
    (faulthandler) on stderr and in the error's last words, and the call
    fails with the signal."""
    done = subprocess.run([sys.executable, os.path.join(HERE, 'plain.py'), 'crash_in_c'],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == 'True True True', done.stdout
    assert 'Fatal Python error: Segmentation fault' in done.stderr, done.stderr
    assert 'in crash_in_c' in done.stderr and 'plain.py' in done.stderr, done.stderr


def test_mapped_bytes_under_a_debugging_allocator():
    """PYTHONMALLOC=debug puts a header before every object: a large bytes
    is then read into its object (one copy), never mapped over it."""
    env = dict(os.environ, PYTHONMALLOC='debug')
    done = subprocess.run([sys.executable, os.path.join(HERE, 'plain.py'), 'mapped_bytes'],
                          capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr
    got = done.stdout.strip().splitlines()[-1].split()
    assert got[0::2][:5] == ['True'] * 5, done.stdout    # the same bytes
    assert got[1:9:2] == ['False'] * 4, done.stdout      # not mapped
    assert got[-1] == 'True', done.stdout


@pytest.mark.parametrize('case', sorted(CASES))
def test_plain(case):
    done = subprocess.run([sys.executable, os.path.join(HERE, 'plain.py'), case],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    if case == 'undecorated':
        assert line.startswith('TypeError: ') and 'is not decorated with @Arip.function' in line
    else:
        assert line == CASES[case], done.stderr
