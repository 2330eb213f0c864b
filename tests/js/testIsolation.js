// Limits and the sandbox from GJS (issue 13): a GJS worker is spawned and
// runs the engine's helper threads; what its sandbox got is reported.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';

import {assert, assertEquals, makeLauncher, newProcess, run, test} from './harness.js';

const F = Arip.SandboxFlags;
const EVERY = F.NO_NEW_PRIVS | F.NO_NETWORK | F.RESTRICT_FILESYSTEM | F.SECCOMP | F.CLEAR_ENV;

const outside = GLib.build_filenamev([GLib.dir_make_tmp('arip-js-XXXXXX'), 'secret']);
GLib.file_set_contents(outside, 'secret');

async function runProcess(launcher, func, args) {
    const process = newProcess(launcher, func, args);
    await process.start_async(null);
    const value = await process.wait_async(null);
    return [process, value.deepUnpack()];
}

test('without a sandbox the worker reads the file and has privileges to gain', async () => {
    const launcher = makeLauncher();
    const [, [text]] = await runProcess(launcher, 'read_file', new GLib.Variant('(s)', [outside]));
    assertEquals(text, 'secret');
    const [, [nnp]] = await runProcess(launcher, 'status_field', new GLib.Variant('(s)', ['NoNewPrivs']));
    assertEquals(nnp, '0');
    const [, [secret]] = await runProcess(launcher, 'get_env', new GLib.Variant('(s)', ['ARIP_TEST_JS_SECRET']));
    assertEquals(secret, 'secret');
});

test('a sandboxed GJS worker reports what it applied, and each piece holds', async () => {
    const launcher = makeLauncher();
    launcher.set_sandbox(EVERY, Arip.SandboxPolicy.BEST_EFFORT);
    const [process, [text]] = await runProcess(launcher, 'read_file', new GLib.Variant('(s)', [outside]));
    const applied = process.get_sandbox();
    print(`# applied: ${applied} of ${EVERY}`);
    assertEquals(applied & F.CLEAR_ENV, F.CLEAR_ENV, 'cleared environment');
    assertEquals(applied & F.NO_NEW_PRIVS, F.NO_NEW_PRIVS, 'no new privileges');
    if (applied & F.RESTRICT_FILESYSTEM)
        assert(text.includes('Permission denied'), text);
    const [, [nnp]] = await runProcess(launcher, 'status_field', new GLib.Variant('(s)', ['NoNewPrivs']));
    assertEquals(nnp, '1');
    const [, [secret]] = await runProcess(launcher, 'get_env', new GLib.Variant('(s)', ['ARIP_TEST_JS_SECRET']));
    assertEquals(secret, null);
});

test('a CPU limit names itself', async () => {
    const launcher = makeLauncher();
    launcher.set_cpu_limit(1);
    const process = newProcess(launcher, 'spin', null);
    await process.start_async(null);
    try {
        await process.wait_async(null);
        assert(false, 'the spin returned');
    } catch (e) {
        assert(e.matches(Arip.error_quark(), Arip.Error.SIGNALED), e.message);
        assert(e.message.includes('exceeded its CPU time limit of 1 s'), e.message);
    }
});

await run();
