# The peers' own tests, ported to arip (see peers.py): asyncio-run-in-process's
# tests/core and anyio's to_process tests. Each case runs as a program of
# its own (its workers are that script).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

import pytest

from ariptest import HERE, TIMEOUT_S

CASES = {
    # asyncio-run-in-process: test_run_in_process.py, with its asyncio
    # runner and its trio runner (here the blocking call)
    'touch_file': 'True True',
    'with_result': '7 7',
    'with_error': 'Some err | Some err',
    'pass_environment_variables': 'test-value',
    # test_open_in_process.py
    'sigterm_while_running': 'True',
    'sigkill_while_running': 'True True',
    'sigint_while_running': 'True',
    'sigint_can_be_handled': '0 9999',
    'sigint_can_be_ignored': 'True True',
    'invalid_function_call': 'TypeError True',
    'unpicklable_params': 'TypeError True True',
    'keyboard_interrupt_while_running': 'True True',
    'does_not_hang_on_exception': 'True Just a boring exception',
    'unpicklable_exception': 'True msg',
    'cancelled_error_in_child': 'True',
    'task_cancellation': 'CancelledError True',
    'max_processes': 'True True True',
    # test_process_object.py, test_state.py
    'process_object': 'True True True 123 Some err again 7',
    'states_in_order': 'True',
    # anyio: test_to_process.py, on Arip.Pool
    'pool_same_worker': 'True True',
    'pool_identical_sys_path': 'True',
    'pool_exception': 'True',
    'pool_print': 'True',
    'pool_output_flood': 'completed',
    'pool_cancel_before': '0',
    'pool_cancel_during': 'True True True False',
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_peers(case):
    done = subprocess.run([sys.executable, os.path.join(HERE, 'peers.py'), case],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    line = done.stdout.strip().splitlines()[-1]
    # The flood's own output ends its last line.
    if case == 'pool_output_flood':
        line = line[-len('completed'):]
    assert line == CASES[case], done.stderr[-4000:]
