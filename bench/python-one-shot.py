# python-one-shot.py: a Python one-shot call beside aioprocessing's
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Times, in one run and interleaved, a one-shot arip call of a trivial
# function (with the fork server: the default start method; and spawned)
# from a GLib main loop, against aioprocessing's AioProcess start + join
# of the same function from an asyncio loop. arip returns the function's
# result; AioProcess does not (it would need a queue on top). Then a warm
# call awaited from asyncio: arip's Arip.Pool.run against anyio's
# to_process.run_sync, interleaved. Not a test.
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


@Arip.function
def plain_arip_noop():
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


def us(ns):
    return '%.1f us' % (ns / 1e3)


async def warm_calls(n, anyio):
    """Medians of one awaited call at a time on a warm worker: arip's
    Arip.Pool.run (plain values) and anyio's to_process.run_sync."""
    arip_times, anyio_times = [], []
    async with Arip.Pool(max_workers=1) as pool:
        await pool.run(plain_arip_noop)
        if anyio is not None:
            await anyio.to_process.run_sync(plain_noop)
        for _ in range(n):
            start = time.perf_counter_ns()
            await pool.run(plain_arip_noop)
            arip_times.append(time.perf_counter_ns() - start)
            if anyio is not None:
                start = time.perf_counter_ns()
                await anyio.to_process.run_sync(plain_noop)
                anyio_times.append(time.perf_counter_ns() - start)
    return (statistics.median(arip_times),
            statistics.median(anyio_times) if anyio_times else None)


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

    try:
        import anyio
        import anyio.to_process
    except ImportError:
        anyio = None
    warm_n = 300 if '--quick' in sys.argv else 3000
    arip_warm, anyio_warm = asyncio.run(warm_calls(warm_n, anyio))
    print('Python warm call (trivial function, awaited from asyncio), medians, n=%d:' % warm_n)
    print('  arip, await pool.run():              %s' % us(arip_warm))
    if anyio_warm is None:
        print('  anyio is not installed (apt-get install python3-anyio): nothing to compare with')
    else:
        print('  anyio, await to_process.run_sync():  %s' % us(anyio_warm))
        print('  arip / anyio: %.2fx' % (arip_warm / anyio_warm))
    return 0


if __name__ == '__main__':
    Arip.init(sys.argv)
    sys.exit(main())
