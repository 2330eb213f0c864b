// A small test harness for the GJS tests of arip: TAP output, async tests,
// a timeout per test, and launchers whose workers run worker.js.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// meson test runs each test file as `gjs -m testFoo.js` against the
// uninstalled library: GI_TYPELIB_PATH and LD_LIBRARY_PATH point into the
// build tree, and GJS_PATH to bindings/gjs, where GJS finds the
// overrides/Arip.js override.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

// Generous: a test only fails on this when something hangs.
const TIMEOUT_MS = 60000;

const HERE = GLib.path_get_dirname(GLib.filename_from_uri(import.meta.url)[0]);
export const WORKER = GLib.build_filenamev([HERE, 'worker.js']);
// The gjs that runs this test runs the workers too.
const GJS = GLib.file_read_link('/proc/self/exe');

const tests = [];

export function test(name, func) {
    tests.push({name, func});
}

export class AssertionError extends Error {
    constructor(message) {
        super(message);
        this.name = 'AssertionError';
    }
}

export function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new AssertionError(message);
}

export function assertEquals(actual, expected, what = 'value') {
    const a = JSON.stringify(actual), e = JSON.stringify(expected);
    if (a !== e)
        throw new AssertionError(`${what}: expected ${e}, got ${a}`);
}

/** Awaits @promise, which must reject with a GLib.Error of @domain/@code. */
export async function assertRejects(promise, domain, code) {
    let error = null;
    try {
        await promise;
    } catch (e) {
        error = e;
    }
    assert(error !== null, 'expected an error, got a result');
    assert(error instanceof GLib.Error, `expected a GLib.Error, got ${error}`);
    assert(error.matches(domain, code),
        `expected ${GLib.quark_to_string(domain)} ${code}, got ` +
        `${GLib.quark_to_string(error.domain)} ${error.code}: ${error.message}`);
    return error;
}

/** What @promise rejects with, or null if it resolves. */
export async function rejection(promise) {
    try {
        await promise;
    } catch (e) {
        return e;
    }
    return null;
}

export function sleep(ms) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

/** Resolves once @predicate() is true, checking every 10 ms. */
export function waitUntil(predicate, what = 'the condition') {
    return new Promise((resolve, reject) => {
        const t0 = GLib.get_monotonic_time();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
            if (predicate()) {
                resolve();
                return GLib.SOURCE_REMOVE;
            }
            if (GLib.get_monotonic_time() - t0 > TIMEOUT_MS * 1000) {
                reject(new AssertionError(`timed out waiting for ${what}`));
                return GLib.SOURCE_REMOVE;
            }
            return GLib.SOURCE_CONTINUE;
        });
    });
}

/** A launcher whose workers run tests/js/worker.js, quick to stop. */
export function makeLauncher(flags = Gio.SubprocessFlags.NONE) {
    const launcher = Arip.Launcher.new(flags);
    launcher.set_worker_argv([GJS, '-m', WORKER]);
    launcher.set_stop_timeouts(300, 300);
    return launcher;
}

/**
 * A process that records its child's messages from the start (a message
 * sent at once can arrive before start_async() completes).
 */
export function newProcess(launcher, func, args = null) {
    const process = Arip.Process.new(launcher, func, args);
    process.messages = [];
    process.connect('message', (p, message) => p.messages.push(message.deepUnpack()));
    return process;
}

export function waitMessage(process, expected = 'ready') {
    return waitUntil(() => process.messages.includes(expected), `the message “${expected}”`);
}

function withTimeout(promise, name) {
    let id = 0;
    const timeout = new Promise((resolve, reject) => {
        id = GLib.timeout_add(GLib.PRIORITY_DEFAULT, TIMEOUT_MS, () => {
            id = 0;
            reject(new AssertionError(`${name} timed out after ${TIMEOUT_MS} ms`));
            return GLib.SOURCE_REMOVE;
        });
    });
    return Promise.race([promise, timeout]).finally(() => {
        if (id !== 0)
            GLib.source_remove(id);
    });
}

/** Runs the tests in order, prints TAP, runs @cleanup if given, and
 * exits. */
export async function run(cleanup = null) {
    print(`1..${tests.length}`);
    let failures = 0;
    for (const [i, {name, func}] of tests.entries()) {
        try {
            // eslint-disable-next-line no-await-in-loop
            await withTimeout(Promise.resolve().then(func), name);
            print(`ok ${i + 1} ${name}`);
        } catch (e) {
            failures++;
            print(`not ok ${i + 1} ${name}`);
            const text = e instanceof Error || e instanceof GLib.Error
                ? `${e}\n${e.stack ?? ''}` : String(e);
            for (const line of text.trimEnd().split('\n'))
                print(`# ${line}`);
        }
    }
    if (cleanup !== null)
        cleanup();
    System.exit(failures > 0 ? 1 : 0);
}
