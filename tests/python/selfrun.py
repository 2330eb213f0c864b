# A program that uses arip without a launcher: its workers are this script
# run again, by the same interpreter with the same arguments. Run by
# test_run.py::test_default_worker_reruns_the_script.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import sys

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, GLib  # noqa: E402

# Module level code runs in the parent and again in every worker (or once
# in the fork server): one write, so that lines of processes running at
# the same time do not interleave.
sys.stdout.write('module level\n')
sys.stdout.flush()


def times(call, args):
    a, b = args.unpack()
    print('worker argv:', sys.argv, flush=True)
    return GLib.Variant('(i)', (a * b,))


Arip.register_function('times', times)

if __name__ == '__main__':
    # In a worker this serves the call and exits: nothing below runs there.
    Arip.init(sys.argv)
    print('main block', flush=True)

    loop = GLib.MainLoop()
    results = []

    def on_done(_source, result):
        results.append(Arip.run_in_process_finish(result).unpack()[0])
        loop.quit()

    Arip.run_in_process_async('times', GLib.Variant('(ii)', (2, 3)), None, on_done)
    loop.run()
    print('async:', results[0], flush=True)

    print('sync:', Arip.run_in_process_sync('times', GLib.Variant('(ii)', (1, 7)), None).unpack()[0],
          flush=True)
