// Plain JavaScript values with Arip.registerFunction() and
// Arip.runInProcess(). This module is its own worker (no launcher): the
// top level, up to Arip.init(), runs again in every worker.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

import {assert, assertEquals, rejection, run, test} from './harness.js';

const echo = Arip.registerFunction('plain.echo', (...values) => values);
const fib = Arip.registerFunction('plain.fib',
    async n => n <= 1 ? n : await fib(n - 1) + await fib(n - 2));
const double = Arip.registerFunction('plain.double', n => n * 2);
const fail = Arip.registerFunction('plain.fail', kind => {
    if (kind === 'range')
        throw new RangeError('out of range');
    class Custom extends Error {
        constructor(message) {
            super(message);
            this.name = 'Custom';
        }
    }
    throw new Custom('mine');
});

const counter = Arip.registerFunction('plain.counter', async n => {
    const call = Arip.currentCall();
    for (let i = 1; i <= n; i++) {
        call.set_progress(i / n);
        call.send_message(new GLib.Variant('s', `step ${i}`));
        // eslint-disable-next-line no-await-in-loop
        await new Promise(resolve => GLib.idle_add(GLib.PRIORITY_DEFAULT, () => resolve()));
    }
    return Arip.currentCall() === call ? n : -1;
});

Arip.init([System.programInvocationName, ...ARGV]);   // a worker ends here

test('values keep their types', async () => {
    const values = [null, true, false, 0, -1, 5, 1.5, '', 'hé ☃', new Uint8Array([0, 255]),
        [], [1, [2, null]], {}, {a: {b: [new Uint8Array([7])]}}];
    const got = await Arip.runInProcess(echo, ...values);
    assertEquals(got.length, values.length, 'count');
    assert(got[9] instanceof Uint8Array && got[9][1] === 255, `bytes: ${got[9]}`);
    assert(got[13].a.b[0] instanceof Uint8Array && got[13].a.b[0][0] === 7, 'nested bytes');
    got[9] = Array.from(got[9]);
    got[13].a.b[0] = Array.from(got[13].a.b[0]);
    values[9] = [0, 255];
    values[13] = {a: {b: [[7]]}};
    assertEquals(got, values);
});

test('a GLib.Variant arrives as itself', async () => {
    const [got] = await Arip.runInProcess(echo, new GLib.Variant('(ii)', [1, 2]));
    assert(got instanceof GLib.Variant, `${got}`);
    assertEquals(got.get_type_string(), '(ii)');
    assertEquals(got.deepUnpack(), [1, 2]);
});

test('an async function, by name or by function', async () => {
    assertEquals(await Arip.runInProcess(fib, 12), 144);
    assertEquals(await Arip.runInProcess('plain.fib', 10), 55);
});

test('a megabyte of bytes, in one piece', async () => {
    const data = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    const [got] = await Arip.runInProcess(echo, data);
    assert(got instanceof Uint8Array && got.length === data.length, `${got.length}`);
    assert(got.every((b, i) => b === data[i]), 'contents');
    // It is a view of the memfd it came in, and writable as any
    // Uint8Array: the writes are this process's own, and go on with it.
    got[0] = 200;
    got[got.length - 1] = 201;
    const [again] = await Arip.runInProcess(echo, got);
    assertEquals([again[0], again[1], again[again.length - 1]], [200, 1, 201]);
});

test('a built-in error keeps its type, with the worker\'s stack', async () => {
    const error = await rejection(Arip.runInProcess(fail, 'range'));
    assert(error instanceof RangeError, `${error}`);
    assertEquals(error.message, 'out of range');
    assert(error.remoteStack.includes('testPlain.js'), error.remoteStack);
});

test('another error arrives as Arip.RemoteError', async () => {
    const error = await rejection(Arip.runInProcess(fail, 'custom'));
    assert(error instanceof Arip.RemoteError, `${error}`);
    assertEquals([error.typeName, error.remoteMessage], ['Custom', 'mine']);
});

test('what cannot be sent is a TypeError or a RangeError, here', async () => {
    let error = await rejection(Arip.runInProcess(echo, new Map()));
    assert(error instanceof TypeError && error.message.includes('type Map'), `${error}`);
    error = await rejection(Arip.runInProcess(echo, 2n ** 64n));
    assert(error instanceof RangeError && error.message.includes('64 bits'), `${error}`);
    error = await rejection(Arip.runInProcess(() => 1));
    assert(error instanceof TypeError && error.message.includes('registerFunction'), `${error}`);
});

test('a pool runs and maps plain functions, errors keep their type', async () => {
    const pool = Arip.Pool.new(null, 2);
    assertEquals(await pool.run(fib, 12), 144);
    assertEquals(await pool.map(fib, [0, 1, 2, 3, 4, 5, 6]), [0, 1, 1, 2, 3, 5, 8]);
    assertEquals(await pool.map(fib, []), []);
    const error = await rejection(pool.run(fail, 'range'));
    assert(error instanceof RangeError && error.message === 'out of range', `${error}`);
    const mapped = await rejection(pool.map(fail, ['range', 'range']));
    assert(mapped instanceof RangeError, `${mapped}`);
    await pool.close_async(null);
});

test('a process for a plain function: states, then its plain result', async () => {
    const states = [];
    const process = Arip.Process.forFunction(double, [21]);
    process.connect('state-changed', (p, oldState, newState) => states.push(newState));
    await process.start_async(null);
    assertEquals(await process.result(), 42);
    assertEquals(states[states.length - 1], Arip.State.FINISHED);
    const pool = Arip.Pool.new(null, 1);
    const onPool = Arip.Process.forFunction(fail, ['custom'], {pool});
    await onPool.start_async(null);
    const error = await rejection(onPool.result());
    assert(error instanceof Arip.RemoteError && error.typeName === 'Custom', `${error}`);
    await pool.close_async(null);
});

test('Arip.currentCall() in the worker: progress and messages; null here', async () => {
    assertEquals(Arip.currentCall(), null);
    const process = Arip.Process.forFunction(counter, [3]);
    const messages = [];
    process.connect('message', (p, message) => messages.push(message.deepUnpack()));
    await process.start_async(null);
    assertEquals(await process.result(), 3);
    assertEquals(messages, ['step 1', 'step 2', 'step 3']);
    assertEquals(process.get_progress(), 1);
});

await run();
