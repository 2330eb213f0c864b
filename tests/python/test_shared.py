# The shared objects from Python: each case of shared.py, run as a
# program of its own (its workers are that script).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

import pytest

from ariptest import HERE, TIMEOUT_S

CASES = {
    'queue': '3 3 [0, 1, 2] True',
    'iterate': '[0, 1, 2, 3, 4]',
    'full_empty': 'Full Full Empty Closed',
    'abandoned': 'Error True',
    'memory': '4096 42 42 4096',
    'dict': "True False 2 [1, 'two', 3.0] ['child', 'counter'] False",
    'barrier': '[0, 1, 2]',
    'cancel_get': '0 0',
    'semaphore': '1 2 ValueError True True False',
    'awaits_in_child': 'hello',
    'awaited_stream': '2000 True',
    'event': '[False, False, False, True, True, True, False, True]',
    'barrier_semantics': "[0, 0, 1, 0, False, 'Broken', True, 'still', False, "
                         "'threading.BrokenBarrierError']",
    'condition_notify': "([1, 2], ['a', 'b', 'c'])",
    'semaphore_timeout': '[True, True, False, False, 1, True]',
    'condition': 'False False True',
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_case(case):
    done = subprocess.run([sys.executable, os.path.join(HERE, 'shared.py'), case], cwd=HERE,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == CASES[case], done.stderr
