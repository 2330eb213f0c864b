// A program that uses arip without a launcher: its workers are this module
// run again by gjs. Run by testRun.js.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

// The top level runs in the parent and again in every worker, up to
// Arip.init().
print('top level');

Arip.register_function('times', (call, args) => {
    const [a, b] = args.deepUnpack();
    return new GLib.Variant('(i)', [a * b]);
});

Arip.init([System.programInvocationName, ...ARGV]);   // a worker ends here
print('after init');

const result = await Arip.run_in_process_async('times', new GLib.Variant('(ii)', [2, 3]), null);
print(`async: ${result.deepUnpack()[0]}`);
print(`sync: ${Arip.run_in_process_sync('times', new GLib.Variant('(ii)', [1, 7]), null).deepUnpack()[0]}`);

// GJS runs its engine's threads from the start: its workers are spawned
// even when the fork server is asked for.
const launcher = Arip.Launcher.new(0);
launcher.set_start_method(Arip.StartMethod.FORKSERVER);
const process = Arip.Process.new(launcher, 'times', new GLib.Variant('(ii)', [3, 3]));
await process.start_async(null);
print(`forkserver asked: ${(await process.wait_async(null)).deepUnpack()[0]}, ` +
      `${process.get_start_method() === Arip.StartMethod.SPAWN ? 'spawned' : 'forked'}`);
