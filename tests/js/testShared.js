// The shared objects from GJS: promises, plain values, iteration until
// closed. This module is its own worker.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

import {assert, assertEquals, run, test} from './harness.js';

const produce = Arip.registerFunction('shared.produce', async (queue, n) => {
    for (let i = 0; i < n; i++)
        await queue.put({i});
    return n;
});
const consume = Arip.registerFunction('shared.consume', async queue => {
    const got = [];
    for await (const item of queue)
        got.push(item);
    return got;
});
const dieHolding = Arip.registerFunction('shared.dieHolding', async lock => {
    await lock.acquire();
    const pid = new Gio.Credentials().get_unix_pid();
    Gio.Subprocess.new(['kill', '-KILL', `${pid}`], Gio.SubprocessFlags.NONE).wait(null);
});
const barrierWait = Arip.registerFunction('shared.barrierWait', barrier => barrier.wait());
const dictSet = Arip.registerFunction('shared.dictSet', async (dict, key, value) => {
    await dict.setValue(key, value);
    return true;
});

Arip.init([System.programInvocationName, ...ARGV]);   // a worker ends here

test('a child puts, the parent awaits', async () => {
    const queue = Arip.Queue.new(2);
    const call = Arip.runInProcess(produce, queue, 5);
    const got = [];
    for (let i = 0; i < 5; i++)
        got.push((await queue.get()).i);
    assertEquals(await call, 5);
    assertEquals(got, [0, 1, 2, 3, 4]);
});

test('a child iterates until the queue is closed', async () => {
    const queue = Arip.Queue.new(0);
    for (const value of ['a', [1, 2], null])
        await queue.put(value);
    queue.close();
    assertEquals(await Arip.runInProcess(consume, queue), ['a', [1, 2], null]);
});

test('a lock held by a child that exits is free, and abandoned', async () => {
    const lock = Arip.Lock.new();
    let failed = false;
    try {
        await Arip.runInProcess(dieHolding, lock);
    } catch (e) {
        failed = true;
    }
    assert(failed, 'the call failed');
    await lock.acquire();
    assert(lock.get_abandoned(), 'abandoned');
    lock.release();
});

test('a barrier meets', async () => {
    const barrier = Arip.Barrier.new(3);
    const indexes = await Promise.all([barrier.wait(), Arip.runInProcess(barrierWait, barrier),
        Arip.runInProcess(barrierWait, barrier)]);
    assertEquals(indexes.sort(), [0, 1, 2]);
});

test('a shared dict, compare and set', async () => {
    const dict = Arip.SharedDict.new();
    await dict.setValue('n', 1);
    assert(await dict.compareAndSet('n', 1, 2), 'first wins');
    assert(!await dict.compareAndSet('n', 1, 3), 'second loses');
    assertEquals(await dict.getValue('n'), 2);
    assertEquals(await dict.getValue('none'), undefined);
});

test('a child sets a value: changed is emitted here, with its key', async () => {
    const dict = Arip.SharedDict.new();
    const keys = [];
    const changed = new Promise(resolve => {
        dict.connect('changed', (_dict, key) => {
            keys.push(key);
            resolve();
        });
    });
    assert(await Arip.runInProcess(dictSet, dict, 'from-child', {a: 1}), 'the child set it');
    await changed;
    assertEquals(keys, ['from-child']);
    assertEquals(await dict.getValue('from-child'), {a: 1});
});

await run();
