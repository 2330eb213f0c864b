// A JS parent and Python workers: the plain values of the two layers are
// one format, read the same way on both sides (the large Python bytes that
// travel mapped included), and a Python exception reaches JS by its name.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

import {assert, assertEquals, rejection, run, test} from './harness.js';

Arip.init([System.programInvocationName, ...ARGV]);   // (no worker of its own)

const HERE = GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]);
const PYTHON = GLib.getenv('ARIP_TEST_PYTHON');

function pythonLauncher() {
    const launcher = Arip.Launcher.new(Gio.SubprocessFlags.NONE);
    launcher.set_worker_argv([PYTHON, GLib.build_filenamev([HERE, 'python-worker.py'])]);
    return launcher;
}

async function inPython(name, ...args) {
    const process = Arip.Process.forFunction(`__main__.${name}`, args, {launcher: pythonLauncher()});
    await process.start_async(null);
    return process.result();
}

test('Python\'s plain values arrive as JS values', async () => {
    const got = await inPython('values');
    assert(got.bytes instanceof Uint8Array && got.bytearray instanceof Uint8Array, 'bytes');
    got.bytes = Array.from(got.bytes);
    got.bytearray = Array.from(got.bytearray);
    assertEquals(got, {
        none: null, true: true, int: -5, big: 2 ** 40, float: 1.5, str: 'hé ☃', list: [1, 'a'],
        tuple: [2, 3], bytes: [0, 255], bytearray: [97, 98], nested: {deep: [{x: null}]},
    });
});

test('JS values arrive as Python values', async () => {
    const got = await inPython('describe', null, true, 7, 2.5, 's', [1], {k: 'v'},
        new Uint8Array([1, 2, 3]));
    assertEquals(got, [['NoneType', null], ['bool', true], ['int', 7], ['float', 2.5],
        ['str', 's'], ['list', [1]], ['dict', {k: 'v'}], ['bytes', 3]]);
});

test('a large Python bytes arrives as a Uint8Array, whole', async () => {
    for (const size of [300 * 1024, 4 * 1024 * 1024 + 1]) {
        // eslint-disable-next-line no-await-in-loop
        const got = await inPython('blob', size);
        assert(got instanceof Uint8Array, `${got}`);
        assertEquals(got.length, size, 'size');
        assert([0, 1, 255, 256, size - 1].every(i => got[i] === i % 256), 'contents');
    }
});

test('a Python exception arrives by its name', async () => {
    const error = await rejection(inPython('fail'));
    assert(error instanceof Arip.RemoteError, `${error}`);
    assertEquals(error.typeName, 'KeyError');
    assert(error.remoteStack.includes('python-worker.py'), error.remoteStack);
});

await run();
