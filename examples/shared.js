// shared.js: a queue, an event and a lock shared with a child, in GJS
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// aioprocessing's own example, with arip: a worker takes the lock, sets
// the event and puts its items; the parent awaits the event and then the
// lock, puts one more item and closes the queue, while it reads the queue
// until it is closed. Exits 0 when every item arrived, in order.

import Arip from 'gi://Arip?version=1.0';
import System from 'system';

const func = Arip.registerFunction('func', async (queue, event, lock, items) => {
    await lock.acquire();
    event.set();
    for (const item of items)
        await queue.put(item + 5);
    lock.release();
});

Arip.init([System.programInvocationName, ...ARGV]);   // a worker ends here

async function example(queue, event, lock) {
    const worker = Arip.runInProcess(func, queue, event, lock, [1, 2, 3, 4, 5]);
    const got = [];
    for await (const result of queue) {   // until example2 closes it
        print(`Got result ${result}`);
        got.push(result);
    }
    await worker;
    return got;
}

async function example2(queue, event, lock) {
    await event.wait();
    await lock.acquire();                 // the worker has put all its items
    await queue.put(78);
    queue.close();
    lock.release();
}

const queue = Arip.Queue.new(0), event = Arip.Event.new(), lock = Arip.Lock.new();
const [got] = await Promise.all([example(queue, event, lock), example2(queue, event, lock)]);
System.exit(JSON.stringify(got) === '[6,7,8,9,10,78]' ? 0 : 1);
