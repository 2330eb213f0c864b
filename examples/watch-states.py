#!/usr/bin/python3
# watch-states.py: open a process and watch it go through its states
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An Arip.Process is one child running one call. It moves through
# INITIALIZING -> INITIALIZED -> WAIT_EXEC_DATA -> BOOTING -> STARTED ->
# EXECUTING -> FINISHED, emitting ::state-changed for each step; the
# function's progress and messages arrive as notify::progress and ::message.
# Exits 0 when every state was seen once, in order, and the result is right.

import sys

import gi

gi.require_version('Arip', '1.0')
from gi.repository import Arip, GLib  # noqa: E402


# Runs in the child: (u) n -> (t) the sum of 0..n-1, in ten steps, telling
# the parent how far it is.
def sum_below(call, args):
    (n,) = args.unpack()
    total = 0
    for step in range(10):
        total += sum(range(n * step // 10, n * (step + 1) // 10))
        call.set_progress((step + 1) / 10)
    call.send_message(GLib.Variant('s', 'all steps done'))
    return GLib.Variant('(t)', (total,))


Arip.register_function('sum_below', sum_below)


def main():
    Arip.init(sys.argv)   # in a worker: serves the call and exits

    loop = GLib.MainLoop()
    process = Arip.Process.new(None, 'sum_below', GLib.Variant('(u)', (2_000_000,)))
    seen = [process.get_state()]

    def on_state_changed(process, old, new):
        # The pid is known from INITIALIZED on.
        print('[pid %d] %s -> %s' % (process.get_pid(), old.value_nick, new.value_nick))
        seen.append(new)

    def on_progress(process, _pspec):
        print('[pid %d] progress %3.0f %%' % (process.get_pid(), process.get_progress() * 100))

    def on_message(process, message):
        print('[pid %d] says: %s' % (process.get_pid(), message.unpack()))

    process.connect('state-changed', on_state_changed)
    process.connect('notify::progress', on_progress)
    process.connect('message', on_message)

    results = []

    def on_waited(process, result):
        try:
            (total,) = process.wait_finish(result).unpack()
            print('sum = %d; exit status %d' % (total, process.get_exit_status()))
            results.append(total)
        except GLib.Error as e:
            print('failed: %s' % e.message, file=sys.stderr)
        loop.quit()

    def on_started(process, result):
        try:
            process.start_finish(result)
            print('[pid %d] the function is executing' % process.get_pid())
        except GLib.Error as e:
            print('could not start: %s' % e.message, file=sys.stderr)

    process.start_async(None, on_started)
    process.wait_async(None, on_waited)
    loop.run()

    every_state = [Arip.State.INITIALIZING, Arip.State.INITIALIZED, Arip.State.WAIT_EXEC_DATA,
                   Arip.State.BOOTING, Arip.State.STARTED, Arip.State.EXECUTING,
                   Arip.State.FINISHED]
    n = 2_000_000
    ok = seen == every_state and results == [n * (n - 1) // 2] and process.get_progress() == 1.0
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
