#!/usr/bin/env python3
# arip-monitor.py: the GTK 4 monitor of running workers, in Python.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The same window as examples/arip-monitor.c, written as a Python user
# would: functions decorated by @Arip.function taking and returning plain
# values, Arip.Process.for_function() to watch each one's states, pid,
# progress and messages from the GTK main loop, and buttons to interrupt,
# stop and kill it. `arip-monitor.py --self-test DIR [--pool]` is the test
# hook, as in the C one.
#
# This script holds what the workers run; the window is in
# arip_monitor_window.py, imported only once Arip.init() has returned, that
# is in the parent alone. Importing GTK initialises it (it opens the display
# and starts threads): a worker that did so would pay for it at every start,
# and the fork server, which runs the script up to Arip.init(), could not
# fork a threaded process and would spawn every worker instead.

import ctypes
import sys
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, GLib  # noqa: E402


# -------------------------------------------------------------------------
# What the workers run (registered before Arip.init(): a worker is this
# script again)

def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


@Arip.function
def count_primes(start, end):
    """The number of primes in [start, end), saying how far it is."""
    call = Arip.current_call()
    step = max((end - start) // 50, 1)
    count = 0
    for n in range(start, end):
        if is_prime(n):
            count += 1
        if (n - start) % step == step - 1:
            call.set_progress((n - start + 1) / (end - start))
            call.send_message(GLib.Variant('s', '%d primes below %d' % (count, n + 1)))
    return count


@Arip.function
def crash():
    """Works a little, then reads through a NULL pointer."""
    Arip.current_call().send_message(GLib.Variant('s', 'about to crash'))
    time.sleep(0.3)
    ctypes.string_at(0)


@Arip.function
def stuck():
    """Hangs, deaf to interrupts: only a stop's SIGTERM or a kill ends it."""
    Arip.current_call().send_message(GLib.Variant('s', 'stuck, ignoring interrupts'))
    while True:
        try:
            time.sleep(1)
        except KeyboardInterrupt:
            pass



if __name__ == '__main__':
    Arip.init(sys.argv)   # a worker runs its function here and never returns
    import arip_monitor_window  # noqa: E402 (GTK: the parent only)
    sys.exit(arip_monitor_window.main(count_primes, crash, stuck))
