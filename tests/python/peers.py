# The peers' own tests, ported to arip's Python API: asyncio-run-in-process's
# tests/core (run_in_process with its asyncio and synchronous runners,
# open_in_process, the Process object, SIGINT handling, max processes) and
# anyio's tests/test_to_process.py (on Arip.Pool). Run by test_peers.py as
# `peers.py CASE`; each case prints one line the test compares. Where arip
# means something else than the peer (its interrupt is a KeyboardInterrupt
# the function may catch; a cancelled block kills its process), the case
# checks arip's meaning and says so.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import os
import signal
import sys
import tempfile
import time

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip, Gio, GLib  # noqa: E402

from ariptest import pid_is_gone  # noqa: E402


@Arip.function
async def touch_file(path):
    open(path, 'w').close()


@Arip.function
async def return7():
    return 7


@Arip.function
async def raise_err():
    raise ValueError('Some err')


@Arip.function
async def return_env():
    return os.environ['ASYNC_RUN_IN_PROCESS_ENV_TEST']


@Arip.function
async def do_sleep_forever(path):
    open(path, 'w').close()
    while True:
        await asyncio.sleep(0.01)


@Arip.function
async def sigint_handled(path):
    open(path, 'w').close()
    try:
        while True:
            await asyncio.sleep(0.01)
    except KeyboardInterrupt:
        return 9999


@Arip.function
async def sigint_ignored_once(path):
    open(path, 'w').close()
    try:
        while True:
            await asyncio.sleep(0.01)
    except KeyboardInterrupt:
        open(path + '.first', 'w').close()   # silence the first one
    try:
        while True:
            await asyncio.sleep(0.01)
    except KeyboardInterrupt:
        return 9999


@Arip.function
async def takes_no_args():
    pass


class CustomBaseException(BaseException):
    pass


@Arip.function
async def raise_base_exception():
    await asyncio.sleep(0.01)
    raise CustomBaseException('Just a boring exception')


class TwoArgException(BaseException):
    def __init__(self, msg, arg2):
        super().__init__(msg)
        self.arg2 = arg2


@Arip.function
async def raise_two_arg_exception():
    raise TwoArgException('msg', 'arg2')


@Arip.function
async def raise_cancelled():
    await asyncio.sleep(0.01)
    raise asyncio.CancelledError()


@Arip.function
async def system_exit_123():
    raise SystemExit(123)


@Arip.function
def getpid():
    return os.getpid()


@Arip.function
def sys_path():
    return list(sys.path)


@Arip.function
def to_int(text):
    return int(text)


@Arip.function
def say(text):
    print(text)


@Arip.function
def flood_output():
    payload = 'x' * (1024 * 1024)
    for stream in sys.stdout, sys.stderr:
        stream.write(payload)
        stream.flush()
    return 'completed'


@Arip.function
def sleep_noting(path, seconds):
    with open(path, 'w') as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)


@Arip.function
def sleep_stubbornly(path, seconds):
    """Sleeps through interrupts: only the stop's SIGTERM ends it."""
    with open(path, 'w') as f:
        f.write(str(os.getpid()))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass


def scratch(name='touch.txt'):
    return os.path.join(tempfile.mkdtemp(), name)


async def created(path, nonempty=False):
    while not os.path.exists(path) or (nonempty and os.path.getsize(path) == 0):
        await asyncio.sleep(0.01)


def is_code(exc, code):
    return isinstance(exc, GLib.Error) and exc.matches(Arip.error_quark(), code)


# -- test_run_in_process.py: both runners --------------------------------------

def run(runner, function, *args):
    """asyncio-run-in-process's two runners: awaited, and its trio variant,
    which here is the blocking call."""
    if runner == 'asyncio':
        async def main():
            return await asyncio.wait_for(Arip.run_in_process(function, *args), 10)
        return asyncio.run(main())
    return Arip.run_in_process_sync(function, *args)


def case_touch_file():
    out = []
    for runner in ('asyncio', 'sync'):
        path = scratch()
        before = os.path.exists(path)
        run(runner, touch_file, path)
        out.append(not before and os.path.exists(path))
    return ' '.join(map(str, out))


def case_with_result():
    return ' '.join(str(run(runner, return7)) for runner in ('asyncio', 'sync'))


def case_with_error():
    out = []
    for runner in ('asyncio', 'sync'):
        try:
            run(runner, raise_err)
        except ValueError as exc:
            out.append(str(exc))
    return ' | '.join(out)


def case_pass_environment_variables():
    assert 'ASYNC_RUN_IN_PROCESS_ENV_TEST' not in os.environ
    launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE)
    launcher.setenv('ASYNC_RUN_IN_PROCESS_ENV_TEST', 'test-value', True)

    async def main():
        async with Arip.Pool(launcher=launcher, max_workers=1) as pool:
            return await pool.run(return_env)
    return asyncio.run(main())


# -- test_open_in_process.py -----------------------------------------------------

def case_sigterm_while_running():
    async def main():
        path = scratch()
        async with Arip.open_in_process(do_sleep_forever, path) as proc:
            await created(path)
            proc.terminate()
        return proc.get_if_signaled() and proc.get_term_sig() == signal.SIGTERM
    return str(asyncio.run(main()))


def case_sigkill_while_running():
    async def main():
        path = scratch()
        async with Arip.open_in_process(do_sleep_forever, path) as proc:
            await created(path)
            proc.kill()
        try:
            proc.result
        except GLib.Error as exc:
            killed = is_code(exc, Arip.Error.PROCESS_KILLED)
        return '%s %s' % (proc.get_term_sig() == signal.SIGKILL, killed)
    return asyncio.run(main())


def case_sigint_while_running():
    # The peer: exit status 2. arip: the interrupt is a KeyboardInterrupt in
    # the function, which ends its call as cancelled by the child.
    async def main():
        path = scratch()
        async with Arip.open_in_process(do_sleep_forever, path) as proc:
            await created(path)
            proc.interrupt()
        try:
            proc.result
        except GLib.Error as exc:
            return str(is_code(exc, Arip.Error.CHILD_CANCELLED))
        return 'no error'
    return asyncio.run(main())


def case_sigint_can_be_handled():
    async def main():
        path = scratch()
        async with Arip.open_in_process(sigint_handled, path) as proc:
            await created(path)
            proc.interrupt()
        return '%d %d' % (proc.get_exit_status(), proc.result)
    return asyncio.run(main())


def case_sigint_can_be_ignored():
    # The peer's second SIGINT ends the function. arip's interrupt cancels
    # the call once: a function that ignored it runs on until a stop's
    # SIGTERM (or a kill) ends it.
    async def main():
        path = scratch()
        async with Arip.open_in_process(sigint_ignored_once, path) as proc:
            await created(path)
            proc.interrupt()
            await created(path + '.first')
            await asyncio.sleep(0.2)
            running = proc.get_state() == Arip.State.EXECUTING
            proc.terminate()
        return '%s %s' % (running, proc.get_term_sig() == signal.SIGTERM)
    return asyncio.run(main())


def case_invalid_function_call():
    async def main():
        async with Arip.open_in_process(takes_no_args, 1, 2, 3) as proc:
            pass
        try:
            proc.result
        except TypeError as exc:
            return 'TypeError %s' % ('positional argument' in str(exc))
        return 'no error'
    return asyncio.run(main())


def case_unpicklable_params():
    # The peer: pickle.PickleError. arip: an open file is not a plain value.
    async def main():
        entered = []
        with open(scratch(), 'w') as f:
            try:
                async with Arip.open_in_process(touch_file, f):
                    entered.append(True)
            except TypeError as exc:
                return 'TypeError %s %s' % ('TextIOWrapper' in str(exc), entered == [])
        return 'no error'
    return asyncio.run(main())


def case_keyboard_interrupt_while_running():
    async def main():
        path = scratch()
        try:
            async with Arip.open_in_process(do_sleep_forever, path) as proc:
                await created(path)
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        # The block failed: its process is gone.
        return '%s %s' % (proc.get_state() == Arip.State.FINISHED, pid_is_gone(proc.get_pid()))
    return asyncio.run(main())


def case_does_not_hang_on_exception():
    async def inner():
        async with Arip.open_in_process(raise_base_exception) as proc:
            await proc.wait()

    async def main():
        try:
            await asyncio.wait_for(inner(), 10)
        except Arip.RemoteError as exc:
            return '%s %s' % (exc.type_name.endswith('CustomBaseException'), exc.message)
        return 'no error'
    return asyncio.run(main())


def case_unpicklable_exception():
    # The peer: InvalidDataFromChild (the exception cannot be pickled).
    # arip does not pickle exceptions: it arrives as Arip.RemoteError.
    async def main():
        async with Arip.open_in_process(raise_two_arg_exception) as proc:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except Arip.RemoteError as exc:
                return '%s %s' % (exc.type_name.endswith('TwoArgException'), exc.message)
        return 'no error'
    return asyncio.run(main())


def case_cancelled_error_in_child():
    async def main():
        async with Arip.open_in_process(raise_cancelled) as proc:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except GLib.Error as exc:
                return str(is_code(exc, Arip.Error.CHILD_CANCELLED))
            except Arip.RemoteError as exc:
                return 'RemoteError %s' % exc.type_name
        return 'no error'
    return asyncio.run(main())


def case_task_cancellation():
    # Cancelling the task in the block: the CancelledError propagates once
    # the process is gone.
    async def main():
        path = scratch()
        pids = []

        async def runner():
            async with Arip.open_in_process(do_sleep_forever, path) as proc:
                pids.append(proc.get_pid())
                await proc.wait()

        async def inside_block():
            # The function can run before the block is entered (the start
            # is reported through the bridge's thread): wait for both.
            await created(path)
            while not pids:
                await asyncio.sleep(0.01)

        task = asyncio.create_task(runner())
        await asyncio.wait_for(inside_block(), 10)
        task.cancel()
        try:
            await asyncio.wait_for(task, 10)
        except asyncio.CancelledError:
            return 'CancelledError %s' % pid_is_gone(pids[0])
        return 'not cancelled'
    return asyncio.run(main())


def case_max_processes():
    # The peer's limit makes the process above it time out at startup;
    # arip's limiter makes it wait for a slot, and run once one is free.
    Arip.set_max_processes(2)

    async def main():
        paths = [scratch('%d' % i) for i in range(3)]
        first = Arip.open_in_process(do_sleep_forever, paths[0])
        second = Arip.open_in_process(do_sleep_forever, paths[1])
        proc1 = await first.__aenter__()
        proc2 = await second.__aenter__()
        both = proc1.get_state() == proc2.get_state() == Arip.State.EXECUTING
        third = asyncio.create_task(Arip.run_in_process(touch_file, paths[2]))
        await asyncio.sleep(0.5)
        waited = not os.path.exists(paths[2]) and Arip.get_running_processes() == 2
        proc1.kill()
        await first.__aexit__(None, None, None)
        await asyncio.wait_for(third, 10)
        ran = os.path.exists(paths[2])
        proc2.kill()
        await second.__aexit__(None, None, None)
        return '%s %s %s' % (both, waited, ran)
    return asyncio.run(main())


# -- test_process_object.py ------------------------------------------------------

def case_process_object():
    async def main():
        out = []
        async with Arip.open_in_process(return7) as proc:
            out.append(proc.get_state() >= Arip.State.STARTED)
            out.append(proc.get_pid() > 0)
            await asyncio.wait_for(proc.wait_for_state(Arip.State.FINISHED), 10)
            out.append(proc.get_state() == Arip.State.FINISHED and proc.result == 7)
        async with Arip.open_in_process(system_exit_123) as proc:
            pass
        out.append(proc.get_exit_status())
        async with Arip.open_in_process(raise_err) as proc:
            try:
                await proc.wait()
            except ValueError as exc:
                out.append(str(exc))
        try:
            proc.result
        except ValueError:
            out.append('again')
        async with Arip.open_in_process(return7) as proc:
            out.append(await proc.wait())
        return ' '.join(map(str, out))
    return asyncio.run(main())


# -- test_state.py -----------------------------------------------------------------

def case_states_in_order():
    states = [Arip.State.INITIALIZING, Arip.State.INITIALIZED, Arip.State.WAIT_EXEC_DATA,
              Arip.State.BOOTING, Arip.State.STARTED, Arip.State.EXECUTING,
              Arip.State.FINISHED]
    return str(all(a < b for a, b in zip(states, states[1:])) and
               sorted(states) == states)


# -- anyio's test_to_process.py, on Arip.Pool ---------------------------------

def pool_case(body):
    async def main():
        async with Arip.Pool(max_workers=1) as pool:
            return await body(pool)
    return asyncio.run(main())


def case_pool_same_worker():
    async def body(pool):
        first = await pool.run(getpid)
        return '%s %s' % (first != os.getpid(), await pool.run(getpid) == first)
    return pool_case(body)


def case_pool_identical_sys_path():
    async def body(pool):
        return str(await pool.run(sys_path) == sys.path)
    return pool_case(body)


def case_pool_exception():
    async def body(pool):
        try:
            await pool.run(to_int, 'a')
        except ValueError as exc:
            return str('invalid literal for int' in str(exc))
        return 'no error'
    return pool_case(body)


def case_pool_print():
    async def body(pool):
        pid = await pool.run(getpid)
        await pool.run(say, 'hello')
        await pool.run(say, 'world')
        return str(await pool.run(getpid) == pid)
    return pool_case(body)


def case_pool_output_flood():
    async def body(pool):
        return await asyncio.wait_for(pool.run(flood_output), 10)
    return pool_case(body)


def case_pool_cancel_before():
    # A call cancelled before it starts starts no worker.
    async def body(pool):
        task = asyncio.create_task(pool.run(getpid))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return str(pool.get_n_workers())
    return pool_case(body)


def case_pool_cancel_during():
    # The peer kills the worker. arip interrupts it first: a function that
    # takes the interrupt leaves its worker alive for the next call; one
    # that ignores it is stopped, and the next call gets a new worker.
    async def body(pool):
        out = []
        for function in (sleep_noting, sleep_stubbornly):
            path = scratch('pid')
            task = asyncio.create_task(pool.run(function, path, 5))
            await asyncio.wait_for(created(path, nonempty=True), 10)
            with open(path) as f:
                worker = int(f.read())
            start = time.monotonic()
            task.cancel()
            try:
                await asyncio.wait_for(task, 10)
            except asyncio.CancelledError:
                out.append(time.monotonic() - start < 4)
            out.append((await pool.run(getpid)) == worker)
        return ' '.join(map(str, out))

    async def main():
        launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE)
        launcher.set_stop_timeouts(500, 500)
        async with Arip.Pool(launcher=launcher, max_workers=1) as pool:
            return await body(pool)
    return asyncio.run(main())


if __name__ == '__main__':
    Arip.init()
    print(globals()['case_' + sys.argv[1]](), flush=True)
