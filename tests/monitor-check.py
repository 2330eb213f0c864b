#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the GTK 4 monitor's self-test on a private X server and checks it.

    monitor-check.py DIR PROGRAM [ARGS...]

starts Xvfb on a free display, runs `PROGRAM ARGS --self-test DIR/METHOD`
(METHOD: $ARIP_START_METHOD, or "default") there in
a process group of its own (killed at the end, whatever happened), and
checks what it printed: the fork server never fell back to spawning (it
would if GTK were loaded before Arip.init()); every row FINISHED; each prime count equal to the
one counted here by a sieve; the crash ended by SIGSEGV, the stuck job by
the stop's SIGTERM; both screenshots in DIR as real PNG images. Exits 77
(skipped) when there is no Xvfb.
"""

import os
import select
import shutil
import signal
import struct
import subprocess
import sys

TIMEOUT = 150


def fail(message):
    print('monitor-check: ' + message, file=sys.stderr)
    sys.exit(1)


def count_primes(start, end):
    """The number of primes in [start, end), by a segmented sieve."""
    limit = int(end ** 0.5) + 1
    small = bytearray([1]) * (limit + 1)
    small[0:2] = b'\0\0'
    for p in range(2, int(limit ** 0.5) + 1):
        if small[p]:
            small[p * p::p] = bytes(len(range(p * p, limit + 1, p)))
    segment = bytearray([1]) * (end - start)
    for n in range(start, min(end, 2)):
        segment[n - start] = 0
    for p in range(2, limit + 1):
        if small[p]:
            first = max(p * p, (start + p - 1) // p * p)
            if first < end:
                segment[first - start::p] = bytes(len(range(first, end, p)))
    return segment.count(1)


def start_x_server():
    """Xvfb on the first free display: it writes the number it took on a
    pipe (-displayfd), so parallel tests never race for one."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ['Xvfb', '-displayfd', str(write_end), '-screen', '0', '1280x1024x24',
         '-nolisten', 'tcp', '-noreset'],
        pass_fds=[write_end], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    os.close(write_end)
    number = b''
    while not number.endswith(b'\n'):
        ready, _, _ = select.select([read_end], [], [], 30)
        chunk = os.read(read_end, 16) if ready else b''
        if not chunk:
            server.kill()
            fail('Xvfb did not start: %s' % server.communicate()[1].decode(errors='replace'))
        number += chunk
    os.close(read_end)
    return server, ':' + number.decode().strip()


def is_png(path):
    """A PNG header with a plausible window size, and some content."""
    with open(path, 'rb') as f:
        head = f.read(24)
    if head[:8] != b'\x89PNG\r\n\x1a\n' or head[12:16] != b'IHDR':
        return False
    width, height = struct.unpack('>II', head[16:24])
    return width >= 300 and height >= 200 and os.path.getsize(path) > 10000


def main():
    if len(sys.argv) < 3:
        fail('usage: monitor-check.py DIR PROGRAM [ARGS...]')
    # One directory per start method (the test setups set it).
    out_dir = os.path.join(sys.argv[1], os.environ.get('ARIP_START_METHOD', 'default'))
    command = sys.argv[2:]
    if shutil.which('Xvfb') is None:
        print('monitor-check: no Xvfb (Debian package xvfb): skipped')
        sys.exit(77)
    os.makedirs(out_dir, exist_ok=True)
    for name in ['monitor-running.png', 'monitor-finished.png']:
        if os.path.exists(os.path.join(out_dir, name)):
            os.unlink(os.path.join(out_dir, name))

    server, display = start_x_server()
    env = dict(os.environ, DISPLAY=display, GDK_BACKEND='x11',
               # The same picture on every machine: no GL, no accessibility bus.
               GSK_RENDERER='cairo', NO_AT_BRIDGE='1', GTK_A11Y='none')
    env.pop('WAYLAND_DISPLAY', None)
    try:
        monitor = subprocess.Popen(command + ['--self-test', out_dir], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True, text=True)
        try:
            output, errors = monitor.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            fail('the monitor did not end within %d s' % TIMEOUT)
        finally:
            # The monitor and every worker it may have left.
            try:
                os.killpg(monitor.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            monitor.wait()
    finally:
        server.terminate()
        server.wait()

    sys.stdout.write(output)
    sys.stderr.write(errors)
    if monitor.returncode != 0:
        fail('the monitor exited with status %d' % monitor.returncode)

    # A GTK program must not load GTK in its workers: under the fork server
    # they are forks of a single-threaded server, not spawned programs.
    if os.environ.get('ARIP_START_METHOD') == 'forkserver' and 'spawning workers instead' in errors:
        fail('the workers were spawned, not forked: the fork server was threaded')

    rows = [line.split('\t')[1:] for line in output.splitlines() if line.startswith('row\t')]
    functions = [row[1] for row in rows]
    if functions.count('crash') != 1 or functions.count('stuck') != 1 or \
       functions.count('count_primes') < 2:
        fail('expected prime jobs, one crash and one stuck job, got %s' % functions)
    for label, function, span, state, sig, outcome in rows:
        if state != 'finished':
            fail('%s is %s, not finished' % (label, state))
        if function == 'count_primes':
            start, end = map(int, span.split('-'))
            expected = '%d primes' % count_primes(start, end)
            if outcome != expected:
                fail('%s says %r; there are %s' % (label, outcome, expected))
            if sig != '-':
                fail('%s ended by %s' % (label, sig))
        elif function == 'crash' and sig != 'SIGSEGV':
            fail('the crash ended by %s, not SIGSEGV' % sig)
        elif function == 'stuck' and sig != 'SIGTERM':
            fail('the stuck job ended by %s, not the stop\'s SIGTERM' % sig)

    for name in ['monitor-running.png', 'monitor-finished.png']:
        if not is_png(os.path.join(out_dir, name)):
            fail('%s is not a screenshot of the window' % name)
    print('monitor-check: %d rows as they should be; screenshots in %s' % (len(rows), out_dir))


if __name__ == '__main__':
    main()
