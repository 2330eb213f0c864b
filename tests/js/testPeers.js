// The peers' own tests in the shape of arip's GJS layer, as
// tests/python/peers.py ports them to Python: asyncio-run-in-process's
// tests/core (run, open, the process object, signals, interrupts, max
// processes, states) and anyio's tests/test_to_process.py (on Arip.Pool).
// Where arip's meaning differs from the peer's, the case says so. This
// module is its own worker: the top level, up to Arip.init(), runs again
// in every worker.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

import {
    assert, assertEquals, assertRejects, rejection, run, sleep, test, waitUntil
} from './harness.js';

const SIGKILL = 9, SIGTERM = 15;

function touch(path) {
    GLib.file_set_contents(path, `${new Gio.Credentials().get_unix_pid()}`);
}

function forever() {
    return new Promise(() => {});
}

const touchFile = Arip.registerFunction('peers.touchFile', touch);
const return7 = Arip.registerFunction('peers.return7', async () => 7);
const raiseErr = Arip.registerFunction('peers.raiseErr', async () => {
    throw new RangeError('Some err');
});
const returnEnv = Arip.registerFunction('peers.returnEnv',
    () => GLib.getenv('ARIP_PEERS_ENV_TEST'));
const sleepForever = Arip.registerFunction('peers.sleepForever', async path => {
    touch(path);
    await forever();
});
const interruptEnds = Arip.registerFunction('peers.interruptEnds', async path => {
    touch(path);
    await Arip.interrupted();
    throw new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, 'interrupted');
});
const interruptHandled = Arip.registerFunction('peers.interruptHandled', async path => {
    touch(path);
    await Arip.interrupted();
    return 9;
});
const interruptIgnored = Arip.registerFunction('peers.interruptIgnored', async path => {
    touch(path);
    await Arip.interrupted();
    touch(`${path}.heard`);
    await forever();
});
const takesOne = Arip.registerFunction('peers.takesOne', value => {
    if (value === undefined)
        throw new TypeError('takesOne() needs its argument');
    return value;
});
const exit123 = Arip.registerFunction('peers.exit123', () => System.exit(123));
// System.exit() in a promise's continuation (it asks GJS's main loop to
// end, which a worker does not run: the call hung).
const exitLater = Arip.registerFunction('peers.exitLater', async code => {
    await new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
    System.exit(code);
    return 'not reached';
});
const ownPid = Arip.registerFunction('peers.ownPid', () => new Gio.Credentials().get_unix_pid());
// The workers' stdout is this test's TAP stream: what they print there is
// a TAP comment.
const printing = Arip.registerFunction('peers.printing', () => {
    print('# printed by the worker');
    printerr('and on its stderr');
    return 'done';
});
const flood = Arip.registerFunction('peers.flood', () => {
    const line = `# ${'x'.repeat(1021)}`;
    for (let i = 0; i < 1024; i++)
        print(line);
    return 'flooded';
});

Arip.init([System.programInvocationName, ...ARGV]);   // a worker ends here

const SCRATCH = GLib.dir_make_tmp('arip-js-peers-XXXXXX');
let scratchCount = 0;

function scratch() {
    return GLib.build_filenamev([SCRATCH, `${scratchCount++}`]);
}

function created(path) {
    return waitUntil(() => GLib.file_test(path, GLib.FileTest.EXISTS), path);
}

/** Opens @fn in a process, waits for it to touch its file and to wait
 * for its interrupt (it has neither ended nor heard one), and interrupts
 * it. Resolves to [process, path]. */
async function interruptWhileWaiting(fn) {
    const path = scratch();
    const proc = await Arip.openInProcess(fn, path);
    await created(path);
    await sleep(200);
    assertEquals(proc.get_state(), Arip.State.EXECUTING, 'state before the interrupt');
    assert(!GLib.file_test(`${path}.heard`, GLib.FileTest.EXISTS), 'heard an interrupt too soon');
    proc.interrupt();
    return [proc, path];
}

/** The pid a touched file holds. */
function pidIn(path) {
    return Number(new TextDecoder().decode(GLib.file_get_contents(path)[1]));
}

/** True once @pid is gone (reaped: no zombie left either). */
function pidIsGone(pid) {
    return !GLib.file_test(`/proc/${pid}`, GLib.FileTest.EXISTS);
}

// -- test_run_in_process.py --------------------------------------------------

test('run: the function runs (it touched the file)', async () => {
    const path = scratch();
    assert(!GLib.file_test(path, GLib.FileTest.EXISTS));
    assertEquals(await Arip.runInProcess(touchFile, path), null);
    assert(GLib.file_test(path, GLib.FileTest.EXISTS), 'not touched');
});

test('run: with a result, with an error', async () => {
    assertEquals(await Arip.runInProcess(return7), 7);
    const error = await rejection(Arip.runInProcess(raiseErr));
    assert(error instanceof RangeError && error.message === 'Some err', `${error}`);
});

test('run: environment variables from the launcher', async () => {
    assertEquals(GLib.getenv('ARIP_PEERS_ENV_TEST'), null);
    const launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE);
    launcher.setenv('ARIP_PEERS_ENV_TEST', 'test-value', true);
    const process = Arip.Process.forFunction(returnEnv, [], {launcher});
    await process.start_async(null);
    assertEquals(await process.result(), 'test-value');
});

// -- test_open_in_process.py -------------------------------------------------

test('open: SIGTERM while running', async () => {
    const path = scratch();
    const proc = await Arip.openInProcess(sleepForever, path);
    await created(path);
    proc.terminate();
    await assertRejects(proc.result(), Arip.error_quark(), Arip.Error.SIGNALED);
    assert(proc.get_if_signaled() && proc.get_term_sig() === SIGTERM, `${proc.get_term_sig()}`);
});

test('open: SIGKILL while running', async () => {
    const path = scratch();
    const proc = await Arip.openInProcess(sleepForever, path);
    await created(path);
    proc.kill();
    await assertRejects(proc.result(), Arip.error_quark(), Arip.Error.PROCESS_KILLED);
    assertEquals(proc.get_term_sig(), SIGKILL);
});

// The peer: SIGINT ends the child with status 2. arip: the interrupt is a
// request the function hears (Arip.interrupted()); this one ends its call
// as cancelled by the child.
test('open: an interrupt while running ends the call as the function says', async () => {
    const [proc] = await interruptWhileWaiting(interruptEnds);
    await assertRejects(proc.result(), Arip.error_quark(), Arip.Error.CHILD_CANCELLED);
    assertEquals(proc.get_exit_status(), 0);
});

test('open: an interrupt can be handled', async () => {
    const [proc] = await interruptWhileWaiting(interruptHandled);
    assertEquals(await proc.result(), 9);
    assertEquals(proc.get_exit_status(), 0);
});

// The peer's second SIGINT ends the function. arip's interrupt is heard
// once: a function that ignores it runs on until a stop's SIGTERM.
test('open: an interrupt can be ignored; SIGTERM ends it', async () => {
    const [proc, path] = await interruptWhileWaiting(interruptIgnored);
    await created(`${path}.heard`);
    await sleep(200);
    assertEquals(proc.get_state(), Arip.State.EXECUTING);
    proc.terminate();
    await rejection(proc.result());
    assertEquals(proc.get_term_sig(), SIGTERM);
});

test('open: a function not registered is a TypeError, and no process', async () => {
    const before = Arip.get_running_processes();
    const error = await rejection(Arip.openInProcess(() => 1));
    assert(error instanceof TypeError && error.message.includes('registerFunction'), `${error}`);
    assertEquals(Arip.get_running_processes(), before);
});

test('open: a call the function refuses (a missing argument)', async () => {
    const proc = await Arip.openInProcess(takesOne);
    const error = await rejection(proc.result());
    assert(error instanceof TypeError && error.message.includes('needs its argument'), `${error}`);
});

// The peer: pickle.PickleError. arip: a Map is not a plain value.
test('open: arguments that cannot be sent: TypeError, nothing started', async () => {
    const error = await rejection(Arip.openInProcess(touchFile, new Map()));
    assert(error instanceof TypeError && error.message.includes('type Map'), `${error}`);
});

test('open: cancelling the start stops the process', async () => {
    const cancellable = new Gio.Cancellable();
    cancellable.cancel();
    await assertRejects(Arip.openInProcess(return7, cancellable), Gio.io_error_quark(),
        Gio.IOErrorEnum.CANCELLED);
});

// The peer: cancelling the awaiting task. GIO's: the call's cancellable,
// last among the arguments; the process is interrupted, then stopped.
test('run: a cancelled call stops its process', async () => {
    const path = scratch();
    const cancellable = new Gio.Cancellable();
    const call = Arip.runInProcess(sleepForever, path, cancellable);
    await created(path);
    cancellable.cancel();
    await assertRejects(call, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    const pid = pidIn(path);
    await waitUntil(() => pidIsGone(pid), `process ${pid} to be gone`);
});

// The peer's limit makes the process above it time out at startup; arip's
// limiter makes it wait for a slot.
test('max processes: the one above the limit waits for a slot', async () => {
    const before = Arip.get_max_processes();
    Arip.set_max_processes(2);
    try {
        const paths = [scratch(), scratch(), scratch()];
        const first = await Arip.openInProcess(sleepForever, paths[0]);
        const second = await Arip.openInProcess(sleepForever, paths[1]);
        const third = Arip.runInProcess(touchFile, paths[2]);
        await sleep(500);
        assert(!GLib.file_test(paths[2], GLib.FileTest.EXISTS), 'the third ran at once');
        assertEquals(Arip.get_running_processes(), 2);
        first.kill();
        await rejection(first.result());
        await third;
        assert(GLib.file_test(paths[2], GLib.FileTest.EXISTS), 'the third did not run');
        second.kill();
        await rejection(second.result());
    } finally {
        Arip.set_max_processes(before);
    }
});

// -- test_process_object.py, test_state.py -----------------------------------

test('the process object: state, pid, result, exit status, error', async () => {
    let proc = await Arip.openInProcess(return7);
    assert(proc.get_state() >= Arip.State.STARTED, `${proc.get_state()}`);
    assert(proc.get_pid() > 0, `${proc.get_pid()}`);
    await proc.wait_for_state_async(Arip.State.FINISHED, null);
    assertEquals(await proc.result(), 7);
    assertEquals(await proc.result(), 7, 'the result, again');

    proc = await Arip.openInProcess(exit123);
    await assertRejects(proc.result(), Arip.error_quark(), Arip.Error.EXITED);
    assertEquals(proc.get_exit_status(), 123);

    proc = await Arip.openInProcess(exitLater, 42);
    await assertRejects(proc.result(), Arip.error_quark(), Arip.Error.EXITED);
    assertEquals(proc.get_exit_status(), 42);

    proc = await Arip.openInProcess(raiseErr);
    for (let i = 0; i < 2; i++) {
        // eslint-disable-next-line no-await-in-loop
        const error = await rejection(proc.result());
        assert(error instanceof RangeError && error.message === 'Some err', `${error}`);
    }
});

test('states come in order, each once', async () => {
    const order = [Arip.State.INITIALIZING, Arip.State.INITIALIZED, Arip.State.WAIT_EXEC_DATA,
        Arip.State.BOOTING, Arip.State.STARTED, Arip.State.EXECUTING, Arip.State.FINISHED];
    assert(order.every((state, i) => i === 0 || order[i - 1] < state), 'ordered');
    const seen = [];
    const proc = Arip.Process.forFunction(return7);
    proc.connect('state-changed', (p, oldState, newState) => seen.push(newState));
    await proc.start_async(null);
    await proc.result();
    assert(seen.every((state, i) => i === 0 || seen[i - 1] < state), `${seen}`);
    assertEquals(seen[seen.length - 1], Arip.State.FINISHED);
});

// -- anyio's test_to_process.py, on Arip.Pool --------------------------------

async function withPool(body) {
    const pool = Arip.Pool.new(null, 1);
    try {
        return await body(pool);
    } finally {
        await pool.close_async(null);
    }
}

test('pool: calls reuse the same worker', () => withPool(async pool => {
    const first = await pool.run(ownPid);
    assertEquals(await pool.run(ownPid), first);
    assert(first !== new Gio.Credentials().get_unix_pid(), 'ran in the parent');
}));

test('pool: an exception keeps its type; the worker serves on', () => withPool(async pool => {
    const pid = await pool.run(ownPid);
    const error = await rejection(pool.run(raiseErr));
    assert(error instanceof RangeError && error.message === 'Some err', `${error}`);
    assertEquals(await pool.run(ownPid), pid);
}));

test('pool: a function that prints, and one that floods its output', () => withPool(async pool => {
    assertEquals(await pool.run(printing), 'done');
    assertEquals(await pool.run(flood), 'flooded');
    assertEquals(await pool.run(return7), 7);
}));

test('pool: cancelled before it runs, the call never starts', () => withPool(async pool => {
    const path = scratch();
    const cancellable = new Gio.Cancellable();
    cancellable.cancel();
    await assertRejects(pool.run(touchFile, path, cancellable), Gio.io_error_quark(),
        Gio.IOErrorEnum.CANCELLED);
    assertEquals(await pool.run(return7), 7);
    assert(!GLib.file_test(path, GLib.FileTest.EXISTS), 'the cancelled call ran');
}));

test('pool: cancelled while it runs; the pool serves on', () => withPool(async pool => {
    const path = scratch();
    const cancellable = new Gio.Cancellable();
    const call = pool.run(interruptEnds, path, cancellable);
    await created(path);
    cancellable.cancel();
    await assertRejects(call, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assertEquals(await pool.run(return7), 7);
    const map = await rejection(pool.map(sleepForever, [scratch(), scratch()], cancellable));
    assert(map instanceof GLib.Error && map.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED),
        `${map}`);
}));

await run(() => GLib.spawn_command_line_sync(`rm -rf ${GLib.shell_quote(SCRATCH)}`));
