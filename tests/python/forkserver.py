# A Python program whose workers come from the fork server: the script is
# loaded once in the server (its functions registered, the preload hook
# run), and each worker is a fork of it. Run by
# test_run.py::test_forkserver_workers.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import sys

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, GLib  # noqa: E402

preloaded = {}


def preload(tag):
    # What a real program would import once: here, a module and a pid.
    import json
    preloaded['json'] = json
    preloaded['pid'] = os.getpid()
    preloaded['tag'] = tag
    # Not flushed here: the binding flushes it before the server forks.
    # One write: the server and a worker spawned meanwhile print at once.
    sys.stdout.write('preload ran in %d\n' % os.getpid())


def whoami(call, args):
    return GLib.Variant('(iiis)', (os.getpid(), os.getppid(), preloaded.get('pid', 0),
                                   preloaded['json'].dumps(preloaded.get('tag'))))


def environment(call, args):
    return GLib.Variant('(sb)', (os.environ.get('ARIP_TEST_MARK', ''), 'ARIP_ZYGOTE' in os.environ))


def fail(call, args):
    raise ValueError('from a forked worker')


def leave(call, args):
    sys.exit(3)


Arip.register_function('whoami', whoami)
Arip.register_function('fail', fail)
Arip.register_function('environment', environment)
Arip.register_function('leave', leave)
Arip.set_preload_func(preload, 'tagged')


def run(function, launcher=None):
    """Runs @function until a forked worker ran it (the first may be spawned)."""
    for _ in range(2000):
        process = Arip.Process.new(launcher, function, None)
        loop = GLib.MainLoop()
        process.start_async(None, None)
        box = []
        process.wait_async(None, lambda p, r: (box.append(r), loop.quit()))
        loop.run()
        try:
            value = process.wait_finish(box[0])
            outcome = value.unpack()
        except GLib.Error as error:
            outcome = error
        if process.get_start_method() == Arip.StartMethod.FORKSERVER:
            return process, outcome
        GLib.usleep(10000)
    raise SystemExit('no worker was forked')


if __name__ == '__main__':
    Arip.init(sys.argv)
    print('parent', os.getpid(), flush=True)

    process, (pid, ppid, preloaded_in, tag) = run('whoami')
    print('worker is a child of the fork server:', ppid != os.getpid() and ppid == preloaded_in,
          flush=True)
    print('preloaded tag:', tag, flush=True)
    print('parent preloaded:', bool(preloaded), flush=True)

    process, error = run('fail')
    print('error:', error.domain, error.message.splitlines()[0], flush=True)

    process, error = run('leave')
    print('exit status:', process.get_exit_status(), flush=True)

    launcher = Arip.Launcher.new(0)
    launcher.setenv('ARIP_TEST_MARK', 'from the launcher', True)
    process, (mark, zygote_env) = run('environment', launcher)
    print('os.environ: %s, server variable %s' % (mark, 'seen' if zygote_env else 'gone'),
          flush=True)
