// Cancelling from GJS: a cancelled call escalates from the interrupt to
// SIGTERM to SIGKILL; stop_async does the same for a process.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';

import {
    assert, assertEquals, assertRejects, makeLauncher, newProcess, run, test, waitMessage, waitUntil
} from './harness.js';

const SIGKILL = 9;

function tempPath(name) {
    const dir = GLib.dir_make_tmp('arip-js-XXXXXX');
    return GLib.build_filenamev([dir, name]);
}

function readNotes(path) {
    try {
        const [, contents] = GLib.file_get_contents(path);
        return new TextDecoder().decode(contents).trim().split('\n');
    } catch (e) {
        return [];
    }
}

test('cancelling a call that gives up', async () => {
    const launcher = makeLauncher();
    const cancellable = new Gio.Cancellable();
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 300, () => {
        cancellable.cancel();
        return GLib.SOURCE_REMOVE;
    });
    await assertRejects(launcher.run_async('wait_for_interrupt', null, cancellable),
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('cancelling a call escalates to SIGTERM and SIGKILL', async () => {
    const launcher = makeLauncher();
    const notes = tempPath('notes');
    const cancellable = new Gio.Cancellable();
    const done = launcher.run_async('stubborn', new GLib.Variant('(s)', [notes]), cancellable);
    await waitUntil(() => readNotes(notes).includes('ready'), 'the function to be ready');
    cancellable.cancel();
    await assertRejects(done, Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
    assertEquals(readNotes(notes), ['ready', 'interrupt', 'terminate'], 'what the child saw');
});

test('Arip.run_in_process_async with a cancelled cancellable', async () => {
    const cancellable = new Gio.Cancellable();
    cancellable.cancel();
    // Never starts a worker: this test program has no functions.
    await assertRejects(Arip.run_in_process_async('add', null, cancellable),
        Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED);
});

test('stopping a stubborn process kills it', async () => {
    const launcher = makeLauncher();
    const notes = tempPath('notes');
    const process = newProcess(launcher, 'stubborn', new GLib.Variant('(s)', [notes]));
    await process.start_async(null);
    await waitMessage(process);
    assert(await process.stop_async(null), 'stopped');
    assertEquals(process.get_state(), Arip.State.FINISHED, 'state');
    assertEquals(process.get_term_sig(), SIGKILL, 'term sig');
    assert(process.get_error().matches(Arip.error_quark(), Arip.Error.PROCESS_KILLED),
        process.get_error().message);
    assertEquals(readNotes(notes), ['ready', 'interrupt', 'terminate'], 'what the child saw');
});

test('stopping a cooperative process keeps its answer', async () => {
    const launcher = makeLauncher();
    const process = newProcess(launcher, 'handle_interrupt');
    await process.start_async(null);
    await waitMessage(process);
    await process.stop_async(null);
    assertEquals(process.get_result().deepUnpack(), ['interrupted, and fine'], 'result');
});

await run();
