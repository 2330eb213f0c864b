# Arip.Process from Python: states, pid and exit status, signals while
# running, stopping, messages, pipes. Ported from asyncio-run-in-process's
# test_open_in_process.py, then beyond.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import signal
import threading

import pytest

from ariptest import (assert_arip_error, make_launcher, pid_is_gone, start_process,
                      wait_message, wait_process)
from gi.repository import Arip, Gio, GLib

S = Arip.State


def test_states_pid_and_exit_status(waiter, launcher):
    process = Arip.Process.new(launcher, 'add', GLib.Variant('(ii)', (1, 2)))
    assert process.get_state() == S.INITIALIZING
    assert process.props.state == S.INITIALIZING
    assert process.get_pid() == 0

    changes = []
    notified = []
    process.connect('state-changed', lambda _p, old, new: changes.append((old, new)))
    process.connect('notify::state', lambda p, _pspec: notified.append(p.props.state))

    assert waiter.call(process.start_async, None, finish=process.start_finish)
    assert process.get_state() in (S.EXECUTING, S.FINISHED)
    pid = process.get_pid()
    assert pid > 0
    assert process.props.pid == pid

    result = wait_process(waiter, process)
    assert result.unpack() == (3,)

    order = [S.INITIALIZING, S.INITIALIZED, S.WAIT_EXEC_DATA, S.BOOTING,
             S.STARTED, S.EXECUTING, S.FINISHED]
    assert changes == list(zip(order, order[1:]))
    assert notified == order[1:]
    assert process.get_state() == S.FINISHED
    assert process.get_pid() == pid
    assert process.get_if_exited()
    assert process.get_exit_status() == 0
    assert not process.get_if_signaled()
    assert process.get_result().unpack() == (3,)
    assert process.get_error() is None
    assert pid_is_gone(pid)


def test_properties(launcher):
    args = GLib.Variant('(ii)', (1, 2))
    process = Arip.Process.new(launcher, 'add', args)
    assert process.get_function() == 'add' == process.props.function
    assert process.get_args().equal(args)
    assert process.get_launcher() is launcher
    assert Arip.Process.new(None, 'add', None).get_args().unpack() == ()

    # The GObject way works too.
    process = Arip.Process(function='add', launcher=launcher)
    assert process.props.function == 'add'
    assert process.props.args.unpack() == ()


def test_sys_exit_status(waiter, launcher):
    process = start_process(waiter, launcher, 'exit_with', GLib.Variant('(i)', (3,)))
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    assert_arip_error(exc_info, Arip.Error.EXITED)
    assert process.get_if_exited()
    assert process.get_exit_status() == 3
    error = process.get_error()
    assert error.matches(Arip.error_quark(), Arip.Error.EXITED)
    with pytest.raises(GLib.Error):
        process.get_result()


def test_sigterm_while_running(waiter, launcher):
    process = start_process(waiter, launcher, 'sleep_forever')
    wait_message(waiter, process)
    process.terminate()
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    error = assert_arip_error(exc_info, Arip.Error.SIGNALED)
    assert 'SIGTERM' in error.message
    assert process.get_if_signaled()
    assert process.get_term_sig() == signal.SIGTERM
    assert pid_is_gone(process.get_pid())


def test_sigkill_while_running(waiter, launcher):
    process = start_process(waiter, launcher, 'sleep_forever')
    pid = process.get_pid()
    process.kill()
    # kill() finishes the process at once.
    assert process.get_state() == S.FINISHED
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    assert_arip_error(exc_info, Arip.Error.PROCESS_KILLED)
    assert process.get_if_signaled()
    assert process.get_term_sig() == signal.SIGKILL
    waiter.run_until(lambda: pid_is_gone(pid), what='the child to be reaped')


def test_send_signal(waiter, launcher):
    process = start_process(waiter, launcher, 'sleep_forever')
    wait_message(waiter, process)
    process.send_signal(signal.SIGUSR1)
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    error = assert_arip_error(exc_info, Arip.Error.SIGNALED)
    assert 'SIGUSR1' in error.message
    assert process.get_term_sig() == signal.SIGUSR1


def test_interrupt_while_running(waiter, launcher):
    process = start_process(waiter, launcher, 'wait_for_interrupt')
    wait_message(waiter, process)
    process.interrupt()
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    assert_arip_error(exc_info, Arip.Error.CHILD_CANCELLED)
    assert process.get_if_exited()
    assert process.get_exit_status() == 0


def test_interrupt_handled(waiter, launcher):
    process = start_process(waiter, launcher, 'handle_interrupt')
    wait_message(waiter, process)
    process.interrupt()
    assert wait_process(waiter, process).unpack() == ('interrupted, and fine',)
    assert process.get_exit_status() == 0


def test_interrupt_ignored_by_an_uncooperative_function(waiter, launcher):
    process = start_process(waiter, launcher, 'sleep_forever')
    wait_message(waiter, process)
    process.interrupt()
    waiter.sleep(0.3)
    assert process.get_state() == S.EXECUTING
    process.kill()
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    assert_arip_error(exc_info, Arip.Error.PROCESS_KILLED)


def test_stop_cooperative(waiter, launcher):
    process = start_process(waiter, launcher, 'handle_interrupt')
    wait_message(waiter, process)
    assert waiter.call(process.stop_async, None, finish=process.stop_finish)
    assert process.get_state() == S.FINISHED
    assert process.get_result().unpack() == ('interrupted, and fine',)


def test_stop_escalates_to_sigkill(waiter, launcher, tmp_path):
    notes = tmp_path / 'notes'
    process = start_process(waiter, launcher, 'stubborn', GLib.Variant('(s)', (str(notes),)))
    wait_message(waiter, process)
    assert waiter.call(process.stop_async, None, finish=process.stop_finish)
    assert process.get_state() == S.FINISHED
    assert process.get_if_signaled()
    assert process.get_term_sig() == signal.SIGKILL
    assert process.get_error().matches(Arip.error_quark(), Arip.Error.PROCESS_KILLED)
    assert notes.read_text().split() == ['ready', 'interrupt', 'terminate']
    assert pid_is_gone(process.get_pid())


def test_start_cancelled_stops_the_process(waiter, launcher):
    cancellable = Gio.Cancellable()
    cancellable.cancel()
    process = Arip.Process.new(launcher, 'sleep_forever', None)
    with pytest.raises(GLib.Error) as exc_info:
        waiter.call(process.start_async, cancellable, finish=process.start_finish)
    assert exc_info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    waiter.call(process.wait_for_state_async, S.FINISHED, None,
                finish=process.wait_for_state_finish)
    assert process.get_state() == S.FINISHED


def test_crash(waiter, launcher):
    process = start_process(waiter, launcher, 'abort')
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    error = assert_arip_error(exc_info, Arip.Error.SIGNALED)
    assert 'SIGABRT' in error.message
    assert 'fatal signal SIGABRT' in error.message   # the child's last words
    assert process.get_term_sig() == signal.SIGABRT


def test_messages_both_ways(waiter, launcher):
    process = start_process(waiter, launcher, 'wait_for_message')
    wait_message(waiter, process, 'ready')
    process.send_message(GLib.Variant('s', 'hello'))
    wait_message(waiter, process, 'hello')
    process.send_message(GLib.Variant('s', 'quit'))
    assert wait_process(waiter, process).unpack() == ('quit',)
    assert process.messages == ['ready', 'hello']


def test_progress(waiter, launcher):
    process = Arip.Process.new(launcher, 'progress', None)
    seen = []
    process.connect('notify::progress', lambda p, _pspec: seen.append(p.get_progress()))
    process.connect('message', lambda _p, message: seen.append(message.unpack()))
    waiter.call(process.start_async, None, finish=process.start_finish)
    assert wait_process(waiter, process).unpack() == ('done',)
    assert seen == [0.25, 'halfway', 1.0]
    assert process.props.progress == 1.0


def test_wait_for_state(waiter, launcher):
    process = Arip.Process.new(launcher, 'wait_for_message', None)
    process.start_async(None, None)
    assert waiter.call(process.wait_for_state_async, S.EXECUTING, None,
                       finish=process.wait_for_state_finish)
    assert process.get_state() == S.EXECUTING
    process.send_message(GLib.Variant('s', 'quit'))
    assert waiter.call(process.wait_for_state_async, S.FINISHED, None,
                       finish=process.wait_for_state_finish)
    assert process.get_result().unpack() == ('quit',)


def test_invalid_state(waiter, launcher):
    process = Arip.Process.new(launcher, 'add', GLib.Variant('(ii)', (1, 1)))
    with pytest.raises(GLib.Error) as exc_info:
        wait_process(waiter, process)
    assert_arip_error(exc_info, Arip.Error.INVALID_STATE)
    with pytest.raises(GLib.Error) as exc_info:
        process.get_result()
    assert_arip_error(exc_info, Arip.Error.INVALID_STATE)

    start_process(waiter, launcher, 'add', GLib.Variant('(ii)', (1, 1)))
    process = start_process(waiter, launcher, 'add', GLib.Variant('(ii)', (1, 1)))
    with pytest.raises(GLib.Error) as exc_info:
        waiter.call(process.start_async, None, finish=process.start_finish)
    assert_arip_error(exc_info, Arip.Error.INVALID_STATE)
    assert wait_process(waiter, process).unpack() == (2,)


def test_stdout_pipe(waiter):
    launcher = make_launcher(Gio.SubprocessFlags.STDOUT_PIPE)
    process = start_process(waiter, launcher, 'print_stdout', GLib.Variant('(s)', ('printed',)))
    wait_process(waiter, process)
    stream = process.get_stdout_pipe()
    assert isinstance(stream, Gio.InputStream)
    data = stream.read_bytes(4096, None).get_data()
    assert data == b'printed\n'


def test_stdin_pipe(waiter):
    launcher = make_launcher(Gio.SubprocessFlags.STDIN_PIPE)
    assert launcher.get_flags() == Gio.SubprocessFlags.STDIN_PIPE
    process = start_process(waiter, launcher, 'read_stdin')
    stream = process.get_stdin_pipe()
    stream.write_all(b'typed in\n', None)
    stream.close(None)
    assert wait_process(waiter, process).unpack() == ('typed in',)


def test_take_fd(waiter, launcher):
    read_fd, write_fd = os.pipe()
    launcher.take_fd(write_fd, 10)   # the launcher owns write_fd now
    process = start_process(waiter, launcher, 'write_fd', GLib.Variant('(is)', (10, 'through fd 10')))
    wait_process(waiter, process)
    try:
        # The child wrote and exited; the pipe holds what it wrote. (Not
        # read to the end: the launcher keeps its copy of the write end.)
        assert os.read(read_fd, 100) == b'through fd 10'
    finally:
        os.close(read_fd)


def test_startup_timeout(waiter, launcher):
    launcher.setenv('ARIP_TEST_SLOW_START', '60', True)
    launcher.set_startup_timeout(500)
    assert launcher.get_startup_timeout() == 500
    process = Arip.Process.new(launcher, 'add', GLib.Variant('(ii)', (1, 1)))
    with pytest.raises(GLib.Error) as exc_info:
        waiter.call(process.start_async, None, finish=process.start_finish)
    assert_arip_error(exc_info, Arip.Error.TIMED_OUT)
    assert process.get_state() == S.FINISHED


def test_fork_needs_one_thread(waiter):
    """A fork of a threaded interpreter is refused, saying why."""
    # A fork makes this very program: no worker argv.
    launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE)
    launcher.set_start_method(Arip.StartMethod.FORK)
    assert launcher.get_start_method() == Arip.StartMethod.FORK
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        process = Arip.Process.new(launcher, 'add', GLib.Variant('(ii)', (1, 1)))
        with pytest.raises(GLib.Error) as exc_info:
            waiter.call(process.start_async, None, finish=process.start_finish)
        assert_arip_error(exc_info, Arip.Error.NOT_SUPPORTED)
        assert 'threads' in exc_info.value.message
    finally:
        release.set()
        thread.join()


def test_spawn_failure(waiter):
    launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE)
    launcher.set_worker_argv(['/nonexistent/arip-worker'])
    assert launcher.get_worker_argv() == ['/nonexistent/arip-worker']
    with pytest.raises(GLib.Error) as exc_info:
        waiter.call(launcher.run_async, 'add', None, None, finish=launcher.run_finish)
    assert_arip_error(exc_info, Arip.Error.SPAWN_FAILED)


def test_launcher_settings():
    launcher = Arip.Launcher.new(Gio.SubprocessFlags.STDERR_SILENCE)
    assert launcher.get_flags() == Gio.SubprocessFlags.STDERR_SILENCE
    launcher.set_flags(Gio.SubprocessFlags.NONE)
    assert launcher.props.flags == Gio.SubprocessFlags.NONE
    assert launcher.get_worker_argv() == []
    launcher.set_stop_timeouts(10, 20)
    assert launcher.get_stop_timeouts() == (10, 20)
    launcher.set_environ(['ONLY=this'])
    assert launcher.getenv('ONLY') == 'this'
    assert launcher.getenv('HOME') is None
    launcher.setenv('ONLY', 'not replaced', False)
    assert launcher.getenv('ONLY') == 'this'
    launcher.set_cwd(None)
    assert launcher.get_cwd() is None
