# python-peers.py: arip from Python beside the peers, in one run
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Three figures from one run, each against the peers that are installed
# (Debian 12: python3-aioprocessing, python3-anyio; concurrent.futures is in
# the standard library; asyncio-run-in-process is not packaged, and PyPI is
# out of reach here):
#
# - calls per second with 2 workers: trivial calls awaited all at once from
#   asyncio, on arip's Arip.Pool, ProcessPoolExecutor and anyio's
#   to_process;
# - a 64 MiB bytes result on a warm worker (built beforehand, as arip's C
#   benchmark does), as bytes and as a memoryview, against arip's own C
#   figure for the same result (bench/arip-bench --only blob, run here)
#   and the peers;
# - the lines of the seeds' quickstart (fib(10) in another process) as a
#   whole program in each, from bench/quickstart/, each run to check it.
#
#   python3 bench/python-peers.py [--quick] [--c-bench PATH]
#
# Not a test.

import asyncio
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip  # noqa: E402

SIZE = 64 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
_blob = None


def blob():
    global _blob
    if _blob is None:
        _blob = os.urandom(1 << 20) * (SIZE >> 20)
    return _blob


def plain_noop():
    return None


def plain_blob():
    return blob()


@Arip.function
def arip_noop():
    return None


@Arip.function
def arip_blob(kind):
    return blob() if kind == 'bytes' else memoryview(blob())


def touch_pages(view):
    """Reads a byte of every page, as arip's C benchmark does."""
    return sum(view[i] for i in range(0, len(view), 4096))


# -- calls per second, 2 workers ---------------------------------------------

# Calls before the clock starts, for each system: its workers started and
# past their first calls (a forked worker's first ones pay its
# copy-on-write faults).
WARM_UP = 200

async def rate_arip(n):
    async with Arip.Pool(max_workers=2) as pool:
        await asyncio.gather(*[pool.run(arip_noop) for _ in range(WARM_UP)])
        start = time.perf_counter()
        await asyncio.gather(*[pool.run(arip_noop) for _ in range(n)])
        return n / (time.perf_counter() - start)


async def rate_executor(n):
    loop = asyncio.get_running_loop()
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        await asyncio.gather(*[loop.run_in_executor(pool, plain_noop) for _ in range(WARM_UP)])
        start = time.perf_counter()
        await asyncio.gather(*[loop.run_in_executor(pool, plain_noop) for _ in range(n)])
        return n / (time.perf_counter() - start)


async def rate_anyio(anyio, n):
    limiter = anyio.CapacityLimiter(2)

    async def one():
        await anyio.to_process.run_sync(plain_noop, limiter=limiter)
    await asyncio.gather(*[one() for _ in range(WARM_UP)])
    start = time.perf_counter()
    await asyncio.gather(*[one() for _ in range(n)])
    return n / (time.perf_counter() - start)


# -- a 64 MiB result ---------------------------------------------------------

async def big_arip(n, kind):
    times = []
    async with Arip.Pool(max_workers=1) as pool:
        await pool.run(arip_blob, kind)
        for _ in range(n):
            start = time.perf_counter()
            value = await pool.run(arip_blob, kind)
            # Either may be a mapping of the worker's memfd: read as C reads.
            touch_pages(value)
            times.append(time.perf_counter() - start)
            assert len(value) == SIZE
            del value
    return statistics.median(times)


async def big_executor(n):
    loop = asyncio.get_running_loop()
    times = []
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        await loop.run_in_executor(pool, plain_blob)
        for _ in range(n):
            start = time.perf_counter()
            value = await loop.run_in_executor(pool, plain_blob)
            times.append(time.perf_counter() - start)
            assert len(value) == SIZE
            del value
    return statistics.median(times)


async def big_anyio(anyio, n):
    times = []
    await anyio.to_process.run_sync(plain_blob)
    for _ in range(n):
        start = time.perf_counter()
        value = await anyio.to_process.run_sync(plain_blob)
        times.append(time.perf_counter() - start)
        assert len(value) == SIZE
        del value
    return statistics.median(times)


def c_figure(c_bench, quick):
    """arip's C figure for a 64 MiB result on a warm worker, in seconds."""
    if c_bench is None or not os.access(c_bench, os.X_OK):
        return None
    out = subprocess.run([c_bench, '--only', 'blob'] + (['--quick'] if quick else []),
                         capture_output=True,
                         text=True, timeout=600, stdin=subprocess.DEVNULL).stdout
    found = re.search(r'^64 MiB ay result \(warm pool\), median\s+([0-9.]+) ms', out, re.M)
    return float(found.group(1)) / 1e3 if found else None


# -- the quickstart's lines --------------------------------------------------

def code_lines(path):
    with open(path, encoding='utf-8') as f:
        return sum(1 for line in f if line.strip() and not line.strip().startswith('#'))


def run_quickstart(path):
    try:
        done = subprocess.run([sys.executable, path], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 'timed out'
    if done.stdout.strip() == 'The 10th fibonacci number is 55':
        return 'runs'
    last = (done.stderr.strip().splitlines() or ['no output'])[-1]
    return 'does not run here (%s)' % last


def ms(seconds):
    return '%.1f ms' % (seconds * 1e3)


def main():
    quick = '--quick' in sys.argv
    c_bench = sys.argv[sys.argv.index('--c-bench') + 1] if '--c-bench' in sys.argv else None
    try:
        import anyio
        import anyio.to_process
    except ImportError:
        anyio = None

    n = 300 if quick else 3000
    print('Calls per second with 2 workers (trivial calls awaited at once, n=%d):' % n)
    arip_rate = asyncio.run(rate_arip(n))
    print('  arip Arip.Pool(max_workers=2):      %8.0f/s' % arip_rate)
    rate = asyncio.run(rate_executor(n))
    print('  ProcessPoolExecutor(2):             %8.0f/s  (arip: %.2fx)' % (rate, arip_rate / rate))
    if anyio is not None:
        rate = asyncio.run(rate_anyio(anyio, n))
        print('  anyio to_process, limiter of 2:     %8.0f/s  (arip: %.2fx)' % (rate, arip_rate / rate))

    n = 5 if quick else 15
    print('A 64 MiB result on a warm worker, medians, n=%d:' % n)
    c = c_figure(c_bench, quick)
    as_bytes = asyncio.run(big_arip(n, 'bytes'))
    as_view = asyncio.run(big_arip(n, 'memoryview'))
    if c is not None:
        print('  arip in C (arip-bench, same run):   %s' % ms(c))
    for label, value in [('arip, bytes (pages read):', as_bytes),
                         ('arip, memoryview (pages read):', as_view)]:
        line = '  %-35s %s' % (label, ms(value))
        if c is not None:
            ratio = value / c
            line += '  %.2fx of C (target <= 1.2x: %s)' % (ratio, 'PASS' if ratio <= 1.2 else 'MISS')
        print(line)
    peer = asyncio.run(big_executor(n))
    print('  ProcessPoolExecutor, bytes:          %s  (arip bytes: %.2fx)' % (ms(peer), as_bytes / peer))
    if anyio is not None:
        peer = asyncio.run(big_anyio(anyio, n))
        print('  anyio to_process, bytes:             %s  (arip bytes: %.2fx)' % (ms(peer), as_bytes / peer))

    print("The seeds' quickstart as a whole program, lines of code (blank lines and "
          "comments not counted):")
    for name in ['arip', 'asyncio-run-in-process', 'aioprocessing', 'anyio', 'concurrent-futures']:
        path = os.path.join(HERE, 'quickstart', 'with-%s.py' % name)
        print('  %-24s %3d  %s' % (name, code_lines(path), run_quickstart(path)))
    return 0


if __name__ == '__main__':
    Arip.init(sys.argv)
    sys.exit(main())
