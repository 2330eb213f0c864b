# What a Python user gets wrong, and what arip must do then.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

from ariptest import TIMEOUT_S

SCRIPT = '''
import sys
import gi
gi.require_version('Arip', '1.0')
from gi.repository import Arip, GLib

def boom(call, args):
    raise ValueError('boom')

Arip.register_function('boom', boom)
Arip.init(sys.argv)
try:
    Arip.run_in_process_sync('boom', None, None)
    print('no error')
except GLib.Error as error:
    print('error:', error.message)
'''


def test_missing_override_fails_instead_of_hanging(tmp_path):
    # An install to a custom prefix without PYTHONPATH: the override is not
    # found. A function that raises must not leave the call hanging.
    script = tmp_path / 'no_override.py'
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('error: This program runs in Python, but the PyGObject '
                                  'override of Arip')
    assert 'PYTHONPATH=' in done.stdout
    # It also says so once, as the program starts.
    assert 'was not loaded' in done.stderr


def test_with_the_override_the_same_script_gets_the_exception(tmp_path):
    script = tmp_path / 'with_override.py'
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('error: ValueError: boom')
