// Arip.Process from GJS: state signals, pid and exit status, signals and
// interrupts while running, messages and progress.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';

import {
    assert, assertEquals, assertRejects, makeLauncher, newProcess, run, sleep, test, waitMessage
} from './harness.js';

const ARIP_ERROR = Arip.error_quark();
const S = Arip.State;
const SIGKILL = 9, SIGTERM = 15;

const launcher = makeLauncher();

async function startProcess(func, args = null) {
    const process = newProcess(launcher, func, args);
    assert(await process.start_async(null), 'started');
    return process;
}

test('state signals, pid and exit status', async () => {
    const process = newProcess(launcher, 'add', new GLib.Variant('(ii)', [1, 2]));
    assertEquals(process.state, S.INITIALIZING, 'state before start');
    assertEquals(process.pid, 0, 'pid before start');

    const changes = [];
    const notified = [];
    process.connect('state-changed', (p, oldState, newState) => changes.push([oldState, newState]));
    process.connect('notify::state', p => notified.push(p.state));

    await process.start_async(null);
    const pid = process.get_pid();
    assert(pid > 0, `pid ${pid}`);
    assertEquals(process.pid, pid, 'pid property');

    assertEquals((await process.wait_async(null)).deepUnpack(), [3], 'result');

    const order = [S.INITIALIZING, S.INITIALIZED, S.WAIT_EXEC_DATA, S.BOOTING, S.STARTED,
        S.EXECUTING, S.FINISHED];
    assertEquals(changes, order.slice(0, -1).map((state, i) => [state, order[i + 1]]), 'changes');
    assertEquals(notified, order.slice(1), 'notifications');
    assertEquals(process.get_state(), S.FINISHED, 'state');
    assert(process.get_if_exited(), 'exited');
    assertEquals(process.get_exit_status(), 0, 'exit status');
    assertEquals(process.get_result().deepUnpack(), [3], 'get_result');
    assertEquals(process.get_error(), null, 'get_error');
});

test('wait_for_state', async () => {
    const process = newProcess(launcher, 'wait_for_message');
    process.start_async(null, null);
    assert(await process.wait_for_state_async(S.EXECUTING, null), 'executing');
    await waitMessage(process);
    process.send_message(new GLib.Variant('s', 'quit'));
    await process.wait_for_state_async(S.FINISHED, null);
    assertEquals(process.get_result().deepUnpack(), ['quit'], 'result');
});

test('SIGTERM while running', async () => {
    const process = await startProcess('wait_forever');
    await waitMessage(process);
    process.terminate();
    const error = await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.SIGNALED);
    assert(error.message.includes('SIGTERM'), error.message);
    assert(process.get_if_signaled(), 'signaled');
    assertEquals(process.get_term_sig(), SIGTERM, 'term sig');
});

test('SIGKILL while running', async () => {
    const process = await startProcess('wait_forever');
    process.kill();
    assertEquals(process.get_state(), S.FINISHED, 'state right after kill()');
    await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.PROCESS_KILLED);
    assertEquals(process.get_term_sig(), SIGKILL, 'term sig');
});

test('interrupt while running', async () => {
    const process = await startProcess('wait_for_interrupt');
    await waitMessage(process);
    process.interrupt();
    await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.CHILD_CANCELLED);
    assertEquals(process.get_exit_status(), 0, 'exit status');
});

test('interrupt while a busy function polls', async () => {
    const process = await startProcess('busy_until_interrupted');
    await waitMessage(process);
    process.interrupt();
    await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.CHILD_CANCELLED);
});

test('interrupt handled', async () => {
    const process = await startProcess('handle_interrupt');
    await waitMessage(process);
    process.interrupt();
    assertEquals((await process.wait_async(null)).deepUnpack(), ['interrupted, and fine'], 'result');
});

test('interrupt ignored', async () => {
    const process = await startProcess('wait_forever');
    await waitMessage(process);
    process.interrupt();
    await sleep(300);
    assertEquals(process.get_state(), S.EXECUTING, 'state');
    process.kill();
    await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.PROCESS_KILLED);
});

test('messages both ways', async () => {
    const process = await startProcess('wait_for_message');
    await waitMessage(process, 'ready');
    process.send_message(new GLib.Variant('s', 'hello'));
    await waitMessage(process, 'hello');
    process.send_message(new GLib.Variant('s', 'quit'));
    assertEquals((await process.wait_async(null)).deepUnpack(), ['quit'], 'result');
    assertEquals(process.messages, ['ready', 'hello'], 'messages');
});

test('progress', async () => {
    const process = newProcess(launcher, 'progress');
    const seen = [];
    process.connect('notify::progress', p => seen.push(p.progress));
    process.connect('message', (p, message) => seen.push(message.deepUnpack()));
    await process.start_async(null);
    assertEquals((await process.wait_async(null)).deepUnpack(), ['done'], 'result');
    assertEquals(seen, [0.25, 'halfway', 1], 'progress and messages');
});

test('waiting before starting', async () => {
    const process = newProcess(launcher, 'add', new GLib.Variant('(ii)', [1, 1]));
    await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.INVALID_STATE);
});

await run();
