# Limits and the sandbox from Python: one case per piece, each next to a
# worker without it that succeeds (issue 13). The meson setups run them
# under the fork server and under spawn.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import signal
import socket

import pytest

from ariptest import Waiter, make_launcher
from gi.repository import Arip, GLib

F = Arip.SandboxFlags
REQUIRED = Arip.SandboxPolicy.REQUIRED


def sandboxed(flags):
    launcher = make_launcher()
    launcher.set_sandbox(flags, REQUIRED)
    return launcher


def run(launcher, function, fmt=None, *args):
    value = GLib.Variant(fmt, args) if fmt else None
    return launcher.run_sync(function, value, None).unpack()


def run_process(launcher, function, fmt=None, *args):
    """The process, its value or None, and its GLib.Error or None."""
    waiter = Waiter()
    process = Arip.Process.new(launcher, function, GLib.Variant(fmt, args) if fmt else None)
    try:
        waiter.call(process.start_async, None, finish=process.start_finish)
        value = waiter.call(process.wait_async, None, finish=process.wait_finish)
        return process, value.unpack(), None
    except GLib.Error as error:
        return process, None, error


def test_no_network():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    assert run(make_launcher(), 'connect_to', '(q)', port) == ('',)
    process, value, error = run_process(sandboxed(F.NO_NETWORK), 'connect_to', '(q)', port)
    assert error is None
    # No loopback at all: unreachable, not refused.
    assert value == ('OSError',)
    assert process.get_sandbox() == F.NO_NETWORK
    assert process.props.sandbox == F.NO_NETWORK
    listener.close()


def test_restrict_filesystem(tmp_path):
    inside = tmp_path / 'inside'
    outside = tmp_path / 'outside'
    inside.mkdir()
    outside.mkdir()
    (inside / 'allowed').write_text('inside')
    (outside / 'secret').write_text('secret')
    launcher = sandboxed(F.RESTRICT_FILESYSTEM)
    launcher.allow_path(str(inside), True)

    assert run(make_launcher(), 'write_to', '(s)', str(outside / 'new')) == ('',)
    (outside / 'new').unlink()

    assert run(launcher, 'read_from', '(s)', str(inside / 'allowed')) == ('inside',)
    assert run(launcher, 'write_to', '(s)', str(inside / 'new')) == ('',)
    assert (inside / 'new').read_text() == 'written'
    assert run(launcher, 'write_to', '(s)', str(outside / 'new')) == ('PermissionError',)
    assert not (outside / 'new').exists()
    assert run(launcher, 'read_from', '(s)', str(outside / 'secret')) == ('PermissionError',)


def test_seccomp_names_the_call():
    assert len(run(make_launcher(), 'ptrace_parent')) == 1
    process, value, error = run_process(sandboxed(F.SECCOMP), 'ptrace_parent')
    assert value is None
    assert error.matches(Arip.error_quark(), Arip.Error.SIGNALED)
    assert '“ptrace”' in error.message
    assert process.get_term_sig() == signal.SIGSYS


def test_no_new_privs():
    assert run(make_launcher(), 'no_new_privs') == (False,)
    assert run(sandboxed(F.NO_NEW_PRIVS), 'no_new_privs') == (True,)


def test_clear_env():
    assert run(make_launcher(), 'get_env', '(s)', 'ARIP_TEST_PARENT_VAR') == ('parent',)
    launcher = sandboxed(F.CLEAR_ENV)
    launcher.setenv('GIVEN', 'given', True)
    assert run(launcher, 'get_env', '(s)', 'ARIP_TEST_PARENT_VAR') == (None,)
    assert run(launcher, 'get_env', '(s)', 'GIVEN') == ('given',)


def test_memory_limit():
    launcher = make_launcher()
    launcher.set_memory_limit(512 << 20)
    assert run(launcher, 'allocate', '(t)', 16 << 20) == (16 << 20,)
    with pytest.raises(GLib.Error) as exc_info:
        run(launcher, 'allocate', '(t)', 1 << 30)
    message = exc_info.value.message
    assert message.startswith('MemoryError')
    assert 'memory limit of 512.0' in message


def test_cpu_limit():
    launcher = make_launcher()
    launcher.set_cpu_limit(1)
    process, value, error = run_process(launcher, 'spin')
    assert error.matches(Arip.error_quark(), Arip.Error.SIGNALED)
    assert 'exceeded its CPU time limit of 1 s' in error.message
    assert process.get_term_sig() == signal.SIGXCPU


def test_everything_on_a_pool():
    every = (F.NO_NEW_PRIVS | F.NO_NETWORK | F.RESTRICT_FILESYSTEM | F.SECCOMP | F.CLEAR_ENV)
    launcher = sandboxed(every)
    pool = Arip.Pool.new(launcher, 2)
    for _ in range(3):
        assert pool.run_sync('no_new_privs', None, None).unpack() == (True,)
    process, value, error = run_process(sandboxed(every), 'get_env', '(s)', 'HOME')
    assert error is None and value == (None,)
    assert process.get_sandbox() == every
