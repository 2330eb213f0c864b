#!/usr/bin/python3
# cancel.py: cancel calls that run in child processes
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Cancelling the GCancellable of a call (or stopping an Arip.Process) stops
# its child politely first: the call's own cancellable
# (call.get_cancellable()) is cancelled in the child; if the child is still
# there after the launcher's interrupt timeout, it gets SIGTERM, and after
# the terminate timeout SIGKILL.
#
#  - "cooperative" notices the interrupt and gives up at once: the call
#    fails with G_IO_ERROR_CANCELLED;
#  - "stubborn" ignores the interrupt and SIGTERM, so stopping its process
#    goes the whole way, to SIGKILL.
#
# Exits 0 when both ended that way.

import signal
import sys
import time

import gi

gi.require_version('Arip', '1.0')
gi.require_version('Gio', '2.0')
from gi.repository import Arip, Gio, GLib  # noqa: E402


# Runs in the child: counts until interrupted. set_error_if_cancelled()
# raises the GLib.Error G_IO_ERROR_CANCELLED, which answers the call.
def cooperative(call, args):
    cancellable = call.get_cancellable()
    call.send_message(GLib.Variant('s', 'counting'))
    count = 0
    while True:
        count += 1
        if count % 10_000 == 0:
            cancellable.set_error_if_cancelled()


# Runs in the child: ignores the interrupt and SIGTERM.
def stubborn(call, args):
    signal.signal(signal.SIGTERM, lambda *_: print('  (stubborn ignores SIGTERM)', flush=True))
    call.send_message(GLib.Variant('s', 'sleeping'))
    while True:
        time.sleep(0.05)


Arip.register_function('cooperative', cooperative)
Arip.register_function('stubborn', stubborn)


def cancel_a_call(loop):
    """Runs "cooperative" and cancels the call after a second."""
    cancellable = Gio.Cancellable()
    outcome = []
    t0 = time.monotonic()

    def on_done(_source, result):
        try:
            Arip.run_in_process_finish(result)
            outcome.append(None)
        except GLib.Error as e:
            outcome.append(e)
        loop.quit()

    def cancel():
        print('cooperative: cancelling the call')
        cancellable.cancel()
        return GLib.SOURCE_REMOVE

    Arip.run_in_process_async('cooperative', None, cancellable, on_done)
    GLib.timeout_add(1000, cancel)
    loop.run()

    error = outcome[0]
    print('cooperative: %s after %.1f s' % (error.message if error else 'finished',
                                             time.monotonic() - t0))
    return error is not None and error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)


def stop_a_process(loop):
    """Runs "stubborn" and stops its process once it said it runs."""
    launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE)
    # How long to wait after the interrupt, then after SIGTERM (ms).
    launcher.set_stop_timeouts(500, 500)
    # A stubborn function needs neither the network nor the files: a
    # sandbox does not change how it is stopped.
    launcher.set_sandbox(Arip.SandboxFlags.NO_NETWORK | Arip.SandboxFlags.SECCOMP,
                         Arip.SandboxPolicy.BEST_EFFORT)
    launcher.set_cpu_limit(30)
    process = Arip.Process.new(launcher, 'stubborn', None)
    t0 = time.monotonic()

    def on_stopped(process, result):
        process.stop_finish(result)
        loop.quit()

    def on_message(process, message):
        print('stubborn [pid %d]: %s; stopping it' % (process.get_pid(), message.unpack()))
        process.stop_async(None, on_stopped)

    process.connect('message', on_message)
    process.start_async(None, None)
    loop.run()

    error = process.get_error()
    print('stubborn: %s after %.1f s (term sig %s)'
          % (error.message, time.monotonic() - t0, signal.Signals(process.get_term_sig()).name))
    return (error.matches(Arip.error_quark(), Arip.Error.PROCESS_KILLED)
            and process.get_term_sig() == signal.SIGKILL)


def main():
    Arip.init(sys.argv)   # in a worker: serves the call and exits

    loop = GLib.MainLoop()
    ok = cancel_a_call(loop)
    ok = stop_a_process(loop) and ok
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
