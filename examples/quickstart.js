// quickstart.js: the smallest complete arip program in JavaScript (GJS)
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Computes fib(30) in a child process while the main loop stays free.
// Run it with `gjs -m quickstart.js`; it exits 0 when the child's answer is
// right.
//
// The worker is this module run again by gjs, with the same command line.
// Its top level runs up to Arip.init(), where a worker serves the call and
// exits: so only imports, definitions and registrations go above it.

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

function computeFib(n) {
    return n < 2 ? n : computeFib(n - 1) + computeFib(n - 2);
}

// Runs in the child: (i) n -> (t) fib(n). Returning a GLib.Variant answers
// the call; a thrown exception would reach the parent as a GLib.Error.
Arip.register_function('fib', (call, args) => {
    const [n] = args.deepUnpack();
    return new GLib.Variant('(t)', [computeFib(n)]);
});

Arip.init([System.programInvocationName, ...ARGV]);   // in a worker: serves the call and exits

// Without a callback, the async methods return a promise (arip's GJS
// override runs Gio._promisify() on them; doing it again is harmless):
//   Gio._promisify(Arip, 'run_in_process_async', 'run_in_process_finish');
let value = null;
try {
    const result = await Arip.run_in_process_async('fib', new GLib.Variant('(i)', [30]), null);
    [value] = result.deepUnpack();
    print(`fib(30) = ${value}, computed in a child process`);
} catch (e) {
    printerr(`fib(30) failed: ${e.message}`);
}

System.exit(value === 832040 ? 0 : 1);
