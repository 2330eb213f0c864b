# python-one-shot.py: a Python one-shot call beside aioprocessing's
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Times, in one run and interleaved, a one-shot arip call of a trivial
# function (with the fork server: the default start method; and spawned)
# from a GLib main loop, against aioprocessing's AioProcess start + join
# of the same function from an asyncio loop. arip returns the function's
# result; AioProcess does not (it would need a queue on top). Not a test.
#
#   python3 bench/python-one-shot.py [--quick]

import asyncio
import statistics
import sys
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, GLib  # noqa: E402


def noop(call, args):
    return GLib.Variant('()', ())


def plain_noop():
    return None


Arip.register_function('noop', noop)


def arip_one_shot(launcher):
    loop = GLib.MainLoop()
    box = []
    process = Arip.Process.new(launcher, 'noop', None)
    start = time.perf_counter_ns()
    process.start_async(None, None)
    process.wait_async(None, lambda p, r: (box.append(time.perf_counter_ns()), box.append(r),
                                           loop.quit()))
    loop.run()
    process.wait_finish(box[1])
    return box[0] - start, process.get_start_method()


async def aio_one_shot(aioprocessing):
    start = time.perf_counter_ns()
    p = aioprocessing.AioProcess(target=plain_noop)
    p.start()
    await p.coro_join()
    return time.perf_counter_ns() - start


def ms(ns):
    return '%.2f ms' % (ns / 1e6)


def main():
    n = 30 if '--quick' in sys.argv else 200
    try:
        import aioprocessing
    except ImportError:
        print('aioprocessing is not installed (apt-get install python3-aioprocessing): '
              'nothing to compare with')
        return 0

    forkserver = Arip.Launcher.new(0)
    forkserver.set_start_method(Arip.StartMethod.FORKSERVER)
    spawn = Arip.Launcher.new(0)
    spawn.set_start_method(Arip.StartMethod.SPAWN)

    # Until the fork server has said hello, workers are spawned.
    for _ in range(500):
        if arip_one_shot(forkserver)[1] == Arip.StartMethod.FORKSERVER:
            break
        time.sleep(0.01)

    loop = asyncio.new_event_loop()
    for _ in range(5):
        arip_one_shot(forkserver)
        loop.run_until_complete(aio_one_shot(aioprocessing))

    arip_fs, arip_spawn, aio = [], [], []
    for i in range(n):
        aio.append(loop.run_until_complete(aio_one_shot(aioprocessing)))
        took, method = arip_one_shot(forkserver)
        if method != Arip.StartMethod.FORKSERVER:
            raise SystemExit('a fork server one-shot was spawned')
        arip_fs.append(took)
        if i % 4 == 0:
            arip_spawn.append(arip_one_shot(spawn)[0])
    loop.close()

    fs, sp, ap = (statistics.median(x) for x in (arip_fs, arip_spawn, aio))
    print('Python one-shot (trivial function), medians, n=%d (spawn n=%d), same run:'
          % (n, len(arip_spawn)))
    print('  arip, fork server:                 %s' % ms(fs))
    print('  arip, spawn:                       %s' % ms(sp))
    print('  aioprocessing AioProcess start+join: %s (fork; no result comes back)' % ms(ap))
    verdict = 'PASS' if fs < ap else 'MISS'
    print('  arip fork server / aioprocessing: %.2fx (target < 1x: %s)' % (fs / ap, verdict))
    return 0


if __name__ == '__main__':
    Arip.init(sys.argv)
    sys.exit(main())
