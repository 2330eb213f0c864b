// Running functions from GJS: results, thrown exceptions, exit statuses,
// the environment, the default worker, pools.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';

import {assert, assertEquals, assertRejects, makeLauncher, run, test} from './harness.js';

const ARIP_ERROR = Arip.error_quark();

Gio._promisify(Gio.Subprocess.prototype, 'communicate_utf8_async');

const launcher = makeLauncher();
const runIt = (func, args = null) => launcher.run_async(func, args, null);

for (const func of ['add', 'add_returned', 'add_async', 'add_later']) {
    test(`result of ${func}`, async () => {
        const result = await runIt(func, new GLib.Variant('(ii)', [40, 2]));
        assertEquals(result.get_type_string(), '(i)', 'type');
        assertEquals(result.deepUnpack(), [42], 'result');
    });
}

test('run_sync', () => {
    const result = launcher.run_sync('add', new GLib.Variant('(ii)', [1, 2]), null);
    assertEquals(result.deepUnpack(), [3]);
});

test('callback style', () => new Promise((resolve, reject) => {
    launcher.run_async('add', new GLib.Variant('(ii)', [2, 2]), null, (l, res) => {
        try {
            assertEquals(l.run_finish(res).deepUnpack(), [4]);
            resolve();
        } catch (e) {
            reject(e);
        }
    });
}));

test('a thrown exception arrives as an error', async () => {
    const error = await assertRejects(runIt('throw_error', new GLib.Variant('(s)', ['out of range'])),
        ARIP_ERROR, Arip.Error.FAILED);
    assert(error.message.startsWith('RangeError: out of range\n'), error.message);
    assert(error.message.includes('Stack trace'), error.message);
    assert(error.message.includes('worker.js'), error.message);
});

test('a rejected promise arrives as an error', async () => {
    const error = await assertRejects(runIt('reject'), ARIP_ERROR, Arip.Error.FAILED);
    assert(error.message.startsWith('TypeError: rejected in an async function'), error.message);
});

test('a thrown GLib.Error keeps its domain and code', async () => {
    const error = await assertRejects(runIt('throw_gerror'), Gio.io_error_quark(),
        Gio.IOErrorEnum.NOT_FOUND);
    assert(error.message.startsWith('no such thing'), error.message);
});

test('a thrown string arrives as an error', async () => {
    const error = await assertRejects(runIt('throw_string'), ARIP_ERROR, Arip.Error.FAILED);
    assertEquals(error.message, 'string thrown: a plain string', 'message');
});

test('returning something else than a GLib.Variant', async () => {
    const error = await assertRejects(runIt('return_wrong_type'), ARIP_ERROR, Arip.Error.FAILED);
    assert(error.message.startsWith('TypeError: '), error.message);
});

test('System.exit() gives the exit status', async () => {
    const process = Arip.Process.new(launcher, 'exit_with', new GLib.Variant('(i)', [7]));
    await process.start_async(null);
    await assertRejects(process.wait_async(null), ARIP_ERROR, Arip.Error.EXITED);
    assert(process.get_if_exited(), 'exited');
    assertEquals(process.get_exit_status(), 7, 'exit status');
});

test('unknown function', async () => {
    const error = await assertRejects(runIt('no_such_function'), ARIP_ERROR,
        Arip.Error.UNKNOWN_FUNCTION);
    assert(error.message.includes('no_such_function'), error.message);
});

test('environment', async () => {
    const custom = makeLauncher();
    custom.setenv('ARIP_TEST_SET', 'from the launcher', true);
    const get = async name =>
        (await custom.run_async('get_env', new GLib.Variant('(s)', [name]), null)).deepUnpack()[0];
    assertEquals(await get('ARIP_TEST_SET'), 'from the launcher', 'set variable');
    assertEquals(await get('ARIP_WORKER'), null, 'channel variable');
    custom.unsetenv('ARIP_TEST_SET');
    assertEquals(await get('ARIP_TEST_SET'), null, 'unset variable');
});

test('Arip.run_in_process_async re-runs the program', async () => {
    // selfrun.js uses the default worker: itself, run again by gjs.
    const here = GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]);
    const gjs = GLib.file_read_link('/proc/self/exe');
    const subprocess = Gio.Subprocess.new([gjs, '-m', GLib.build_filenamev([here, 'selfrun.js'])],
        Gio.SubprocessFlags.STDOUT_PIPE);
    const [stdout] = await subprocess.communicate_utf8_async(null, null);
    assert(subprocess.get_successful(), `selfrun.js failed: ${stdout}`);
    const lines = stdout.trim().split('\n');
    assertEquals(lines.filter(line => line === 'top level').length, 4, 'top levels');
    assert(lines.includes('forkserver asked: 9, spawned'), stdout);
    assertEquals(lines.filter(line => line === 'after init').length, 1, 'after init');
    assert(lines.includes('async: 6') && lines.includes('sync: 7'), stdout);
});

test('without the override, a call fails instead of hanging', async () => {
    const here = GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]);
    const gjs = GLib.file_read_link('/proc/self/exe');
    const launcher = new Gio.SubprocessLauncher({flags: Gio.SubprocessFlags.STDOUT_PIPE});
    launcher.unsetenv('GJS_PATH');
    const subprocess = launcher.spawnv([gjs, '-m', GLib.build_filenamev([here, 'nooverride.js'])]);
    const [stdout] = await subprocess.communicate_utf8_async(null, null);
    assert(subprocess.get_successful(), `nooverride.js failed: ${stdout}`);
    assert(stdout.startsWith('error: This program runs in GJS, but the GJS override of Arip'), stdout);
    assert(stdout.includes('GJS_PATH='), stdout);
});

test('a pool reuses its worker, also after an exception', async () => {
    const pool = Arip.Pool.new(launcher, 1);
    const pid = async () => (await pool.run_async('get_pid', null, null)).deepUnpack()[0];
    const first = await pid();
    await assertRejects(pool.run_async('throw_error', new GLib.Variant('(s)', ['in a pool']), null),
        ARIP_ERROR, Arip.Error.FAILED);
    assertEquals(await pid(), first, 'pid after an exception');
    assertEquals((await pool.run_async('add_async', new GLib.Variant('(ii)', [1, 1]), null)).deepUnpack(),
        [2], 'async result');
    assertEquals(pool.get_n_workers(), 1, 'workers');
    await pool.close_async(null);
    assertEquals(pool.get_n_workers(), 0, 'workers after close');
});

await run();
