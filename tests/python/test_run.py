# run_in_process from Python: results, errors, the environment, cancelling.
# Ported from asyncio-run-in-process's test_run_in_process.py, then beyond.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys

import pytest

from ariptest import HERE, TIMEOUT_S, assert_arip_error, make_launcher
from gi.repository import Arip, Gio, GLib


def run(waiter, launcher, function, args=None, cancellable=None):
    return waiter.call(launcher.run_async, function, args, cancellable,
                       finish=launcher.run_finish)


def test_touch_file(waiter, launcher, tmp_path):
    path = tmp_path / 'touched'
    assert not path.exists()
    result = run(waiter, launcher, 'touch_file', GLib.Variant('(s)', (str(path),)))
    assert result.unpack() == ()
    assert path.exists()


@pytest.mark.parametrize('function', ['add', 'add_returned', 'add_async', 'add_later'])
def test_result(waiter, launcher, function):
    result = run(waiter, launcher, function, GLib.Variant('(ii)', (40, 2)))
    assert result.get_type_string() == '(i)'
    assert result.unpack() == (42,)


def test_result_sync(launcher):
    result = launcher.run_sync('add', GLib.Variant('(ii)', (1, 2)), None)
    assert result.unpack() == (3,)


def test_call_and_user_data(waiter, launcher):
    result = run(waiter, launcher, 'call_info')
    assert result.unpack() == ('call_info', 'user data', True)
    assert not Arip.is_worker()


def test_exception(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'raise_value_error', GLib.Variant('(s)', ('something broke',)))
    error = assert_arip_error(exc_info, Arip.Error.FAILED)
    # The type and the message first, then the child's traceback.
    assert error.message.startswith('ValueError: something broke\n')
    assert 'Traceback (most recent call last):' in error.message
    assert 'worker.py' in error.message
    assert 'in raise_value_error' in error.message
    assert "raise ValueError(message)" in error.message


def test_exception_in_a_callback(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'raise_later')
    error = assert_arip_error(exc_info, Arip.Error.FAILED)
    assert error.message.startswith("KeyError: 'raised in a callback'")
    assert 'in fail' in error.message


def test_gerror_keeps_domain_and_code(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'raise_gerror')
    error = exc_info.value
    assert error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND)
    assert error.message.startswith('no such thing')
    assert 'in raise_gerror' in error.message


def test_return_error(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'return_error')
    error = exc_info.value
    assert error.domain == 'my-test-error-quark'
    assert error.code == 42
    assert error.message == 'answered with an error'


def test_returning_something_else_than_a_variant(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'return_wrong_type')
    error = assert_arip_error(exc_info, Arip.Error.FAILED)
    assert error.message.startswith('TypeError: ')
    assert 'return_wrong_type' in error.message


def test_sys_exit(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'exit_with', GLib.Variant('(i)', (7,)))
    error = assert_arip_error(exc_info, Arip.Error.EXITED)
    assert 'status 7' in error.message


def test_unknown_function(waiter, launcher):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'no_such_function')
    error = assert_arip_error(exc_info, Arip.Error.UNKNOWN_FUNCTION)
    assert 'no_such_function' in error.message


def test_environment(waiter, monkeypatch):
    monkeypatch.setenv('ARIP_TEST_INHERITED', 'from the parent')
    launcher = make_launcher()   # copies the environment now
    launcher.setenv('ARIP_TEST_SET', 'from the launcher', True)
    launcher.unsetenv('ARIP_TEST_UNSET')

    def get(name):
        return run(waiter, launcher, 'get_env', GLib.Variant('(s)', (name,))).unpack()[0]

    assert get('ARIP_TEST_INHERITED') == 'from the parent'
    assert get('ARIP_TEST_SET') == 'from the launcher'
    assert get('ARIP_TEST_UNSET') is None
    # The worker's private channel variable never reaches the function.
    assert get('ARIP_WORKER') is None


def test_cwd(waiter, launcher, tmp_path):
    launcher.set_cwd(str(tmp_path))
    assert launcher.get_cwd() == str(tmp_path)
    assert run(waiter, launcher, 'get_cwd').unpack() == (str(tmp_path),)


def test_cancel_escalates(waiter, launcher, tmp_path):
    """Cancelling interrupts, then terminates, then kills the child."""
    notes = tmp_path / 'notes'
    cancellable = Gio.Cancellable()
    box = []
    launcher.run_async('stubborn', GLib.Variant('(s)', (str(notes),)), cancellable,
                       lambda _source, result: box.append(result))

    waiter.run_until(lambda: notes.exists() and 'ready' in notes.read_text(),
                     what='the function to be ready')
    cancellable.cancel()
    waiter.run_until(lambda: box, what='the cancelled call to end')

    with pytest.raises(GLib.Error) as exc_info:
        launcher.run_finish(box[0])
    assert exc_info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert notes.read_text().split() == ['ready', 'interrupt', 'terminate']


def test_cancel_cooperative_function(waiter, launcher):
    """A function that gives up when interrupted ends the call at once."""
    cancellable = Gio.Cancellable()
    GLib.timeout_add(200, lambda: cancellable.cancel() or GLib.SOURCE_REMOVE)
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, launcher, 'wait_for_interrupt', cancellable=cancellable)
    assert exc_info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def test_default_worker_reruns_the_script():
    """Without a launcher, the worker is the parent's own script run again."""
    script = os.path.join(HERE, 'selfrun.py')
    done = subprocess.run([sys.executable, script, 'an-argument'],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The module level ran in the parent and in each spawned worker, or in
    # the fork server (and in the workers spawned while it started); the
    # main block only in the parent.
    if os.environ.get('ARIP_START_METHOD', 'forkserver') == 'spawn':
        assert lines.count('module level') == 3, done.stdout
    else:
        assert 2 <= lines.count('module level') <= 4, done.stdout
    assert lines.count('main block') == 1, done.stdout
    assert 'async: 6' in lines and 'sync: 7' in lines, done.stdout
    worker_argv = [line for line in lines if line.startswith('worker argv: ')]
    assert worker_argv == ["worker argv: ['%s', 'an-argument']" % script] * 2, done.stdout


def test_forkserver_workers():
    """Workers forked from the fork server: the script loaded once there."""
    script = os.path.join(HERE, 'forkserver.py')
    env = dict(os.environ, ARIP_START_METHOD='forkserver')
    done = subprocess.run([sys.executable, script], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert 'worker is a child of the fork server: True' in lines, done.stdout
    assert 'preloaded tag: "tagged"' in lines, done.stdout
    assert 'parent preloaded: False' in lines, done.stdout
    assert any(line.startswith('error: ') and 'ValueError' in line
               and 'from a forked worker' in line for line in lines), done.stdout
    assert 'exit status: 3' in lines, done.stdout
    # os.environ in a forked worker is the launcher's environment, not the
    # server's copy.
    assert 'os.environ: from the launcher, server variable gone' in lines, done.stdout
    # The preload ran in the server (and in workers spawned while it
    # started), each time printed once: what it left buffered was flushed
    # before the server forked, not copied into every worker.
    ran = [line for line in lines if line.startswith('preload ran in ')]
    assert 1 <= len(ran) <= 4 and len(set(ran)) == len(ran), done.stdout
