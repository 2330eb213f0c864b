#!/usr/bin/python3
# quickstart.py: the smallest complete arip program in Python
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Computes fib(30) in a child process while the main loop stays free.
# Exits 0 when the child's answer is right.
#
# The worker is this script run again by the same interpreter (arip's
# default), so the rule is the one of multiprocessing's spawn: the module
# level only defines and registers; the program itself runs under
# `if __name__ == "__main__":`, after Arip.init(), which in a worker serves
# the call and exits.

import sys

import gi

gi.require_version('Arip', '1.0')
from gi.repository import Arip, GLib  # noqa: E402


def compute_fib(n):
    return n if n < 2 else compute_fib(n - 1) + compute_fib(n - 2)


# Runs in the child: (i) n -> (t) fib(n). Returning a GLib.Variant answers
# the call; raising an exception would reach the parent as a GLib.Error.
def fib(call, args):
    (n,) = args.unpack()
    return GLib.Variant('(t)', (compute_fib(n),))


# Module level: definitions and registrations only. It runs again in every
# worker.
Arip.register_function('fib', fib)


def main():
    Arip.init(sys.argv)   # in a worker: serves the call and exits

    loop = GLib.MainLoop()
    answers = []

    # Runs in the parent, on its main loop, once the child has answered.
    def on_done(_source, result):
        try:
            (value,) = Arip.run_in_process_finish(result).unpack()
            print('fib(30) = %d, computed in a child process' % value)
            answers.append(value)
        except GLib.Error as e:
            print('fib(30) failed: %s' % e.message, file=sys.stderr)
        loop.quit()

    Arip.run_in_process_async('fib', GLib.Variant('(i)', (30,)), None, on_done)
    loop.run()

    return 0 if answers == [832040] else 1


if __name__ == '__main__':
    sys.exit(main())
