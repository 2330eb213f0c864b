// The worker program of the GJS tests: the functions the tests run in
// child processes. Started by the tests' launcher as `gjs -m worker.js`.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Only imports and registrations happen before Arip.init(): in a worker,
// Arip.init() serves the call and exits.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

const SIGTERM = 15;

function ready(call) {
    call.send_message(new GLib.Variant('s', 'ready'));
}

// Calls back once the call is interrupted. The call's cancellable is
// cancelled from a helper thread of the worker, and GJS refuses to run JS
// there: connecting to ::cancelled would not work; a cancellable source
// attached to the main context does.
function onInterrupt(call, callback) {
    const source = call.get_cancellable().source_new();
    source.set_callback(() => {
        callback();
        return GLib.SOURCE_REMOVE;
    });
    source.attach(null);
}

const functions = {
    add(call, args) {
        const [a, b] = args.deepUnpack();
        call.return_value(new GLib.Variant('(i)', [a + b]));
    },

    add_returned(call, args) {
        const [a, b] = args.deepUnpack();
        return new GLib.Variant('(i)', [a + b]);
    },

    async add_async(call, args) {
        const [a, b] = args.deepUnpack();
        await new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
            resolve();
            return GLib.SOURCE_REMOVE;
        }));
        return new GLib.Variant('(i)', [a + b]);
    },

    add_later(call, args) {
        const [a, b] = args.deepUnpack();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
            call.return_value(new GLib.Variant('(i)', [a + b]));
            return GLib.SOURCE_REMOVE;
        });
    },

    throw_error(call, args) {
        const [message] = args.deepUnpack();
        throw new RangeError(message);
    },

    async reject(call, args) {
        await null;
        throw new TypeError('rejected in an async function');
    },

    throw_gerror() {
        throw new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.NOT_FOUND, 'no such thing');
    },

    throw_string() {
        throw 'a plain string';   // eslint-disable-line no-throw-literal
    },

    return_wrong_type() {
        return 42;
    },

    exit_with(call, args) {
        const [status] = args.deepUnpack();
        System.exit(status);
    },

    get_env(call, args) {
        const [name] = args.deepUnpack();
        return new GLib.Variant('(ms)', [GLib.getenv(name)]);
    },

    // (s): the file's text, or the error's message.
    read_file(call, args) {
        const [path] = args.deepUnpack();
        try {
            const [, bytes] = GLib.file_get_contents(path);
            return new GLib.Variant('(s)', [new TextDecoder().decode(bytes)]);
        } catch (e) {
            return new GLib.Variant('(s)', [e.message]);
        }
    },

    // (s): a field of /proc/self/status.
    status_field(call, args) {
        const [name] = args.deepUnpack();
        const [, bytes] = GLib.file_get_contents('/proc/self/status');
        const line = new TextDecoder().decode(bytes).split('\n').find(l => l.startsWith(`${name}:`));
        return new GLib.Variant('(s)', [line ? line.split(':')[1].trim() : '']);
    },

    get_pid() {
        return new GLib.Variant('(i)', [new Gio.Credentials().get_unix_pid()]);
    },

    // Uses CPU time until it is stopped.
    spin() {
        for (;;)
            ;
    },

    // Ignores interrupts; SIGTERM ends it.
    wait_forever(call) {
        ready(call);
    },

    // Gives up when interrupted: the parent gets ARIP_ERROR_CHILD_CANCELLED.
    wait_for_interrupt(call) {
        onInterrupt(call, () => {
            call.return_error_literal(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED,
                'gave up when interrupted');
        });
        ready(call);
    },

    // Notices the interrupt and still answers with a value.
    handle_interrupt(call) {
        onInterrupt(call, () => call.return_value(new GLib.Variant('(s)', ['interrupted, and fine'])));
        ready(call);
    },

    // A busy function that polls its cancellable, and throws when told.
    busy_until_interrupted(call) {
        const cancellable = call.get_cancellable();
        ready(call);
        const t0 = GLib.get_monotonic_time();
        // eslint-disable-next-line no-empty
        while (!cancellable.is_cancelled() && GLib.get_monotonic_time() - t0 < 60e6) {}
        cancellable.set_error_if_cancelled();
        return new GLib.Variant('(s)', ['never interrupted']);
    },

    // Ignores interrupts and SIGTERM, and writes each down: only SIGKILL
    // ends it.
    stubborn(call, args) {
        const [path] = args.deepUnpack();
        const note = what => {
            const file = Gio.File.new_for_path(path);
            const stream = file.append_to(Gio.FileCreateFlags.NONE, null);
            stream.write_all(`${what}\n`, null);
            stream.close(null);
        };
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, SIGTERM, () => {
            note('terminate');
            return GLib.SOURCE_CONTINUE;
        });
        onInterrupt(call, () => note('interrupt'));
        note('ready');
        ready(call);
    },

    // Echoes each message; answers with the one that says 'quit'.
    wait_for_message(call) {
        call.connect('message', (c, message) => {
            if (message.deepUnpack() === 'quit')
                call.return_value(new GLib.Variant('(s)', ['quit']));
            else
                call.send_message(message);
        });
        ready(call);
    },

    progress(call) {
        call.set_progress(0.25);
        call.send_message(new GLib.Variant('s', 'halfway'));
        call.set_progress(1.0);
        return new GLib.Variant('(s)', ['done']);
    },
};

for (const [name, func] of Object.entries(functions))
    Arip.register_function(name, func);

Arip.init([System.programInvocationName, ...ARGV]);
printerr('worker.js is the worker of the arip GJS tests; run the tests instead');
System.exit(2);
