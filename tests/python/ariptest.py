# Helpers for the PyGObject tests of arip (fixtures live in conftest.py).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The tests run against the uninstalled library: meson test sets
# GI_TYPELIB_PATH and LD_LIBRARY_PATH to the build tree, and PYTHONPATH to
# bindings/python so that PyGObject finds the gi.overrides.Arip override.
#
# Workers are started with a launcher running `python3 worker.py`: without
# one, arip would start pytest itself again as the worker.

import os
import sys

import pytest

import gi

gi.require_version('Arip', '1.0')
gi.require_version('Gio', '2.0')
gi.require_version('GLib', '2.0')

from gi.repository import Arip, Gio, GLib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, 'worker.py')

# Generous: a test only fails on this when something hangs.
TIMEOUT_S = 60


class Waiter:
    """Runs the default main context until an async operation completes."""

    def __init__(self):
        self.loop = GLib.MainLoop.new(None, False)

    def run_until(self, predicate, timeout=TIMEOUT_S, what='the condition'):
        """Iterates the main context until predicate() is true."""
        context = GLib.MainContext.default()
        expired = []

        def on_timeout(*_user_data):
            expired.append(True)
            return GLib.SOURCE_REMOVE

        source = GLib.timeout_source_new_seconds(timeout)
        source.set_callback(on_timeout)
        source.attach(context)
        try:
            while not predicate():
                if expired:
                    pytest.fail('timed out after %d s waiting for %s' % (timeout, what))
                context.iteration(True)
        finally:
            source.destroy()

    def call(self, start, *args, finish, timeout=TIMEOUT_S):
        """start(*args, callback); returns finish(result), raising its error."""
        box = []

        def on_done(source, result, *user_data):
            box.append(result)

        start(*args, on_done)
        self.run_until(lambda: box, timeout, getattr(start, '__name__', 'the operation'))
        return finish(box[0])

    def sleep(self, seconds):
        """Lets the main context run for a while."""
        done = []
        GLib.timeout_add(int(seconds * 1000), lambda: done.append(True) or GLib.SOURCE_REMOVE)
        self.run_until(lambda: done, what='a pause')


def make_launcher(flags=Gio.SubprocessFlags.NONE):
    """A launcher whose workers run tests/python/worker.py, quick to stop."""
    launcher = Arip.Launcher.new(flags)
    launcher.set_worker_argv([sys.executable, WORKER])
    launcher.set_stop_timeouts(300, 300)
    return launcher


def new_process(launcher, function, args=None):
    """Creates a process that records the messages of its child.

    The messages are recorded from the start: a message the function sends
    at once can arrive before start_async() completes.
    """
    process = Arip.Process.new(launcher, function, args)
    process.messages = []
    process.connect('message', lambda p, message: p.messages.append(message.unpack()))
    return process


def start_process(waiter, launcher, function, args=None):
    """Creates and starts a process; returns it once the function executes."""
    process = new_process(launcher, function, args)
    assert waiter.call(process.start_async, None, finish=process.start_finish)
    return process


def wait_process(waiter, process):
    return waiter.call(process.wait_async, None, finish=process.wait_finish)


def wait_message(waiter, process, expected='ready'):
    """Waits until the function sent the string message @expected."""
    waiter.run_until(lambda: expected in process.messages, what='the message %r' % expected)


def pid_is_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def assert_arip_error(exc_info, code):
    error = exc_info.value
    assert error.domain == GLib.quark_to_string(Arip.error_quark()), error
    assert error.code == int(code), error
    return error
