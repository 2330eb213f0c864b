// watch-states.js: open a process and watch it go through its states
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// An Arip.Process is one child running one call. It moves through
// INITIALIZING -> INITIALIZED -> WAIT_EXEC_DATA -> BOOTING -> STARTED ->
// EXECUTING -> FINISHED, emitting ::state-changed for each step; the
// function's progress and messages arrive as notify::progress and ::message.
// Run it with `gjs -m watch-states.js`; it exits 0 when every state was seen
// once, in order, and the result is right.

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

// Runs in the child: (u) n -> (d) the sum of 0..n-1, in ten steps, telling
// the parent how far it is.
Arip.register_function('sum_below', (call, args) => {
    const [n] = args.deepUnpack();
    let total = 0;
    for (let step = 0; step < 10; step++) {
        for (let i = Math.floor(n * step / 10); i < Math.floor(n * (step + 1) / 10); i++)
            total += i;
        call.set_progress((step + 1) / 10);
    }
    call.send_message(new GLib.Variant('s', 'all steps done'));
    return new GLib.Variant('(d)', [total]);
});

Arip.init([System.programInvocationName, ...ARGV]);   // in a worker: serves the call and exits

const stateName = state => Object.keys(Arip.State).find(key => Arip.State[key] === state);

const n = 2000000;
const process = Arip.Process.new(null, 'sum_below', new GLib.Variant('(u)', [n]));
const seen = [process.get_state()];

process.connect('state-changed', (p, oldState, newState) => {
    // The pid is known from INITIALIZED on.
    print(`[pid ${p.pid}] ${stateName(oldState)} -> ${stateName(newState)}`);
    seen.push(newState);
});
process.connect('notify::progress', p => {
    print(`[pid ${p.pid}] progress ${Math.round(p.progress * 100)} %`);
});
process.connect('message', (p, message) => {
    print(`[pid ${p.pid}] says: ${message.deepUnpack()}`);
});

let total = null;
try {
    await process.start_async(null);   // resolves once the function executes
    print(`[pid ${process.pid}] the function is executing`);
    [total] = (await process.wait_async(null)).deepUnpack();
    print(`sum = ${total}; exit status ${process.get_exit_status()}`);
} catch (e) {
    printerr(`failed: ${e.message}`);
}

const everyState = ['INITIALIZING', 'INITIALIZED', 'WAIT_EXEC_DATA', 'BOOTING', 'STARTED',
    'EXECUTING', 'FINISHED'].map(name => Arip.State[name]);
const ok = JSON.stringify(seen) === JSON.stringify(everyState) &&
    total === n * (n - 1) / 2 && process.progress === 1.0;
System.exit(ok ? 0 : 1);
