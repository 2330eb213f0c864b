// cancel.js: cancel calls that run in child processes
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Cancelling the GCancellable of a call (or stopping an Arip.Process) stops
// its child politely first: the call's own cancellable
// (call.get_cancellable()) is cancelled in the child; if the child is still
// there after the launcher's interrupt timeout, it gets SIGTERM, and after
// the terminate timeout SIGKILL.
//
//  - "cooperative" notices the interrupt and gives up at once: the call
//    fails with G_IO_ERROR_CANCELLED;
//  - "stubborn" ignores the interrupt and SIGTERM, so stopping its process
//    goes the whole way, to SIGKILL.
//
// Run it with `gjs -m cancel.js`; it exits 0 when both ended that way.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

const SIGTERM = 15, SIGKILL = 9;

// Runs in the child: works in slices from the main loop until interrupted.
// The cancellable is cancelled from a helper thread of the worker, so a JS
// function must not connect to its ::cancelled signal (GJS refuses to call
// JS from another thread): poll is_cancelled(), or attach
// cancellable.source_new() to the main context as here.
Arip.register_function('cooperative', call => {
    const source = call.get_cancellable().source_new();
    source.set_callback(() => {
        call.return_error_literal(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED,
            'cooperative gave up when interrupted');
        return GLib.SOURCE_REMOVE;
    });
    source.attach(null);
});

// Runs in the child: ignores the interrupt and handles SIGTERM by saying so.
Arip.register_function('stubborn', call => {
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, SIGTERM, () => {
        print('  (stubborn ignores SIGTERM)');
        return GLib.SOURCE_CONTINUE;
    });
    call.send_message(new GLib.Variant('s', 'waiting'));
    // Returns without answering: the worker keeps running its main loop.
});

Arip.init([System.programInvocationName, ...ARGV]);   // in a worker: serves the call and exits

function sleep(ms) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

async function cancelACall() {
    const cancellable = new Gio.Cancellable();
    const t0 = GLib.get_monotonic_time();
    sleep(1000).then(() => {
        print('cooperative: cancelling the call');
        cancellable.cancel();
    });
    try {
        await Arip.run_in_process_async('cooperative', null, cancellable);
        print('cooperative: finished?');
        return false;
    } catch (e) {
        print(`cooperative: ${e.message} after ${((GLib.get_monotonic_time() - t0) / 1e6).toFixed(1)} s`);
        return e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    }
}

async function stopAProcess() {
    const launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE);
    // How long to wait after the interrupt, then after SIGTERM (ms).
    launcher.set_stop_timeouts(500, 500);
    // A stubborn function needs neither the network nor the files: a
    // sandbox does not change how it is stopped.
    launcher.set_sandbox(Arip.SandboxFlags.NO_NETWORK | Arip.SandboxFlags.SECCOMP,
        Arip.SandboxPolicy.BEST_EFFORT);
    launcher.set_cpu_limit(30);
    const process = Arip.Process.new(launcher, 'stubborn', null);
    const t0 = GLib.get_monotonic_time();

    const stopped = new Promise((resolve, reject) => {
        process.connect('message', (p, message) => {
            print(`stubborn [pid ${p.pid}]: ${message.deepUnpack()}; stopping it`);
            p.stop_async(null).then(resolve, reject);
        });
    });
    await process.start_async(null);
    await stopped;

    const error = process.get_error();
    print(`stubborn: ${error.message} after ${((GLib.get_monotonic_time() - t0) / 1e6).toFixed(1)} s ` +
        `(term sig ${process.get_term_sig()})`);
    return error.matches(Arip.error_quark(), Arip.Error.PROCESS_KILLED) &&
        process.get_term_sig() === SIGKILL;
}

const ok = await cancelACall();
System.exit(await stopAProcess() && ok ? 0 : 1);
