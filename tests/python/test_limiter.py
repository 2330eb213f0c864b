# The global limiter from Python: a limit of N runs N children and queues
# the rest, first come first served. Ported from asyncio-run-in-process's
# max-processes test.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import pytest

from ariptest import new_process, wait_message, wait_process
from gi.repository import Arip, Gio, GLib

S = Arip.State


def test_max_processes_queue(waiter, launcher, max_processes):
    Arip.set_max_processes(2)
    assert Arip.get_max_processes() == 2

    processes = [new_process(launcher, 'wait_for_message') for _ in range(3)]
    for process in processes:
        process.start_async(None, None)

    first, second, third = processes
    wait_message(waiter, first)
    wait_message(waiter, second)
    # Two run; the third waits for a slot instead of failing.
    assert first.get_state() == S.EXECUTING
    assert second.get_state() == S.EXECUTING
    assert third.get_state() == S.INITIALIZING
    assert third.get_pid() == 0
    assert Arip.get_running_processes() == 2

    first.send_message(GLib.Variant('s', 'quit'))
    assert wait_process(waiter, first).unpack() == ('quit',)
    wait_message(waiter, third)
    assert third.get_state() == S.EXECUTING
    assert third.get_pid() > 0

    for process in (second, third):
        process.send_message(GLib.Variant('s', 'quit'))
        assert wait_process(waiter, process).unpack() == ('quit',)
    waiter.run_until(lambda: Arip.get_running_processes() == 0, what='the slots to be free')


def test_queued_process_can_be_cancelled(waiter, launcher, max_processes):
    Arip.set_max_processes(1)
    running = new_process(launcher, 'wait_for_message')
    running.start_async(None, None)
    wait_message(waiter, running)

    queued = Arip.Process.new(launcher, 'wait_for_message', None)
    cancellable = Gio.Cancellable()
    box = []
    queued.start_async(cancellable, lambda _p, result: box.append(result))
    waiter.sleep(0.1)
    assert queued.get_state() == S.INITIALIZING
    cancellable.cancel()
    waiter.run_until(lambda: box, what='the queued start to fail')
    with pytest.raises(GLib.Error) as exc_info:
        queued.start_finish(box[0])
    assert exc_info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert queued.get_state() == S.FINISHED
    assert queued.get_pid() == 0

    running.send_message(GLib.Variant('s', 'quit'))
    assert wait_process(waiter, running).unpack() == ('quit',)
