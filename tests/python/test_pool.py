# Arip.Pool from Python: warm Python workers serve call after call, and a
# Python exception or sys.exit() in one call does not break the next.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os

import pytest

from ariptest import assert_arip_error
from gi.repository import Arip, Gio, GLib


@pytest.fixture
def pool(waiter, launcher):
    pool = Arip.Pool.new(launcher, 2)
    yield pool
    waiter.call(pool.close_async, None, finish=pool.close_finish)
    assert pool.get_n_workers() == 0


def run(waiter, pool, function, args=None, cancellable=None):
    return waiter.call(pool.run_async, function, args, cancellable, finish=pool.run_finish)


def worker_pid_of(pool):
    """The pid of the pool's only worker, from /proc: a child of ours."""
    with open('/proc/%d/task/%d/children' % (os.getpid(), os.getpid())) as f:
        children = [int(p) for p in f.read().split()]
    assert children, 'no child process'
    return children[-1]


def worker_pid(waiter, pool):
    return run(waiter, pool, 'get_pid').unpack()[0]


def test_properties(launcher):
    pool = Arip.Pool.new(launcher, 3)
    assert pool.get_max_workers() == 3 == pool.props.max_workers
    assert pool.get_launcher() is launcher
    assert pool.get_n_workers() == 0 == pool.props.n_workers
    pool.set_idle_timeout(10)
    assert pool.get_idle_timeout() == 10 == pool.props.idle_timeout
    pool.set_max_calls_per_worker(5)
    assert pool.get_max_calls_per_worker() == 5 == pool.props.max_calls_per_worker
    assert Arip.Pool(launcher=launcher, max_workers=1).get_max_workers() == 1


def test_calls_reuse_a_warm_worker(waiter, pool):
    assert run(waiter, pool, 'add', GLib.Variant('(ii)', (1, 2))).unpack() == (3,)
    pids = {worker_pid(waiter, pool) for _ in range(4)}
    assert len(pids) == 1
    assert pool.get_n_workers() == 1


def test_sync(pool):
    assert pool.run_sync('add_returned', GLib.Variant('(ii)', (2, 2)), None).unpack() == (4,)


def test_exception_fails_only_its_call(waiter, pool):
    pid = worker_pid(waiter, pool)
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, pool, 'raise_value_error', GLib.Variant('(s)', ('in a pool',)))
    error = assert_arip_error(exc_info, Arip.Error.FAILED)
    assert error.message.startswith('ValueError: in a pool\n')
    assert 'Traceback (most recent call last):' in error.message
    # The same worker serves the next call.
    assert worker_pid(waiter, pool) == pid


def test_exception_in_a_callback_fails_only_its_call(waiter, pool):
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, pool, 'raise_later')
    assert_arip_error(exc_info, Arip.Error.FAILED)
    assert run(waiter, pool, 'add_later', GLib.Variant('(ii)', (3, 4))).unpack() == (7,)


def test_sys_exit_replaces_the_worker(waiter, pool):
    pid = worker_pid(waiter, pool)
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, pool, 'exit_with', GLib.Variant('(i)', (5,)))
    error = assert_arip_error(exc_info, Arip.Error.EXITED)
    assert 'status 5' in error.message
    assert worker_pid(waiter, pool) != pid


def test_async_function(waiter, pool):
    for i in range(3):
        assert run(waiter, pool, 'add_async', GLib.Variant('(ii)', (i, i))).unpack() == (2 * i,)


def test_worker_environment(waiter, pool):
    assert run(waiter, pool, 'get_env', GLib.Variant('(s)', ('ARIP_WORKER',))).unpack() == (None,)


def test_cancel(waiter, pool, tmp_path):
    notes = tmp_path / 'notes'
    cancellable = Gio.Cancellable()
    box = []
    pool.run_async('stubborn', GLib.Variant('(s)', (str(notes),)), cancellable,
                   lambda _pool, result: box.append(result))
    waiter.run_until(lambda: notes.exists() and 'ready' in notes.read_text(),
                     what='the function to be ready')
    cancellable.cancel()
    waiter.run_until(lambda: box, what='the cancelled call to end')
    with pytest.raises(GLib.Error) as exc_info:
        pool.run_finish(box[0])
    assert exc_info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
    assert notes.read_text().split() == ['ready', 'interrupt', 'terminate']
    # The pool goes on with a new worker.
    assert run(waiter, pool, 'add', GLib.Variant('(ii)', (1, 1))).unpack() == (2,)


def test_closed_pool_refuses_calls(waiter, launcher):
    pool = Arip.Pool.new(launcher, 1)
    assert run(waiter, pool, 'add', GLib.Variant('(ii)', (1, 1))).unpack() == (2,)
    assert waiter.call(pool.close_async, None, finish=pool.close_finish)
    assert pool.get_n_workers() == 0
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, pool, 'add', GLib.Variant('(ii)', (1, 1)))
    assert exc_info.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CLOSED)


def test_unref_with_a_call_in_flight(waiter, launcher):
    # Fire and forget: the pool goes away while its call runs; the call
    # still completes, and then the pool's workers go.
    results = []
    pool = Arip.Pool.new(launcher, 1)

    def done(source, result):
        results.append(source.run_finish(result).unpack())

    pool.run_async('add', GLib.Variant('(ii)', (20, 22)), None, done)
    del pool
    import gc
    gc.collect()
    waiter.run_until(lambda: results, what='the callback of a call of a dropped pool')
    assert results == [(42,)]


def test_dispose_with_a_call_in_flight(waiter, launcher, tmp_path):
    # g_object_run_dispose() on a busy pool: the call fails with
    # G_IO_ERROR_CLOSED, its worker goes, nothing aborts.
    pool = Arip.Pool.new(launcher, 1)
    results = []

    def done(source, result):
        try:
            results.append(source.run_finish(result))
        except GLib.Error as error:
            results.append(error)

    pool.run_async('sleep_forever', None, None, done)
    waiter.run_until(lambda: pool.get_n_workers() == 1, what='a worker')
    pid = worker_pid_of(pool)
    pool.run_dispose()
    waiter.run_until(lambda: results, what='the failed call')
    assert isinstance(results[0], GLib.Error)
    assert results[0].matches(Gio.io_error_quark(), Gio.IOErrorEnum.CLOSED)
    waiter.run_until(lambda: not os.path.exists('/proc/%d/status' % pid) or
                     'zombie' in open('/proc/%d/status' % pid).read(),
                     what='the worker to be gone')


def test_call_timeout(waiter, launcher):
    launcher.set_call_timeout(200)
    pool = Arip.Pool.new(launcher, 1)
    with pytest.raises(GLib.Error) as exc_info:
        run(waiter, pool, 'sleep_forever')
    error = assert_arip_error(exc_info, Arip.Error.TIMED_OUT)
    assert 'call timeout of 200 ms' in error.message
    # The next call gets a fresh worker.
    assert run(waiter, pool, 'add', GLib.Variant('(ii)', (2, 3))).unpack() == (5,)
    waiter.call(pool.close_async, None, finish=pool.close_finish)


def test_map(waiter, pool):
    args = GLib.Variant('a(ii)', [(i, i) for i in range(8)])
    results = waiter.call(pool.map_async, 'add', args, None, finish=pool.map_finish)
    assert [value[0] for value in results.unpack()] == [2 * i for i in range(8)]


def test_map_plain(pool):
    """pool.map() blocks and returns the results in order, as multiprocessing's does."""
    results = pool.map('add', [GLib.Variant('(ii)', (i, 1)) for i in range(6)])
    assert [value.unpack() for value in results] == [(i + 1,) for i in range(6)]
    assert pool.map('add', []) == []
    with pytest.raises(GLib.Error) as exc_info:
        pool.map('raise_value_error', [GLib.Variant('(s)', ('x',))])
    assert 'ValueError' in exc_info.value.message
    with pytest.raises(TypeError):
        pool.map('add', [(1, 2)])


def test_map_first_error(waiter, pool):
    args = GLib.Variant('a(s)', [('one',), ('two',)])
    with pytest.raises(GLib.Error) as exc_info:
        waiter.call(pool.map_async, 'raise_value_error', args, None, finish=pool.map_finish)
    assert 'ValueError' in exc_info.value.message


def test_process_on_the_pool_reports_progress(waiter, pool):
    process = Arip.Process.new_for_pool(pool, 'progress', None)
    seen = []
    process.connect('notify::progress', lambda p, _: seen.append(p.get_progress()))
    assert process.get_pool() is pool
    waiter.call(process.start_async, None, finish=process.start_finish)
    value = waiter.call(process.wait_async, None, finish=process.wait_finish)
    assert value is not None
    assert seen and seen[-1] == 1.0
    assert process.get_state() == Arip.State.FINISHED
    # Its worker serves the pool's next call.
    assert worker_pid(waiter, pool) == process.get_pid()


def test_interrupt_after_an_async_function(waiter, pool):
    """An async function leaves the worker's own SIGINT handler in place:
    the next call's interrupt still cancels its cancellable."""
    assert run(waiter, pool, 'add_async', GLib.Variant('(ii)', (1, 2))).unpack() == (3,)
    first = worker_pid(waiter, pool)
    process = Arip.Process.new_for_pool(pool, 'handle_interrupt', None)
    seen = []
    process.connect('message', lambda _p, message: seen.append(message.unpack()))
    waiter.call(process.start_async, None, finish=process.start_finish)
    waiter.run_until(lambda: 'ready' in seen, what='the function to be ready')
    process.interrupt()
    value = waiter.call(process.wait_async, None, finish=process.wait_finish)
    assert value.unpack() == ('interrupted, and fine',)
    assert process.get_pid() == first
