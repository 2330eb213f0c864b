// GJS overrides for Arip: what a JavaScript function needs to be a good
// citizen of a worker process, and promises for the async methods.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GJS loads this file when a program imports Arip (`import Arip from
// 'gi://Arip'` or `imports.gi.Arip`), from the `overrides` directory of any
// directory on its search path: it is installed in
// $datadir/gjs-1.0/overrides/, which GJS searches through XDG_DATA_DIRS;
// GJS_PATH=/path/to/bindings/gjs uses it uninstalled.
//
// A worker serves one call and exits, and it only exits once the call is
// answered. GJS logs an exception thrown by a callback and returns to C,
// which would leave the call unanswered and the worker waiting forever. The
// wrapper Arip.register_function() puts around every function answers for
// it instead:
//
//   - a thrown exception becomes an error for the parent: a GLib.Error
//     keeps its domain and code, anything else is ARIP_ERROR_FAILED; the
//     message starts with "Name: message" and carries the JS stack;
//   - a GLib.Variant returned by the function is its answer;
//   - an async function (one returning a promise) is answered with what
//     its promise resolves to, or with the error it rejects with.
//
// The async methods (Arip.run_in_process_async, Arip.Launcher.run_async,
// Arip.Process.start_async, wait_async, wait_for_state_async, stop_async,
// Arip.Pool.run_async, close_async) return a promise when called without a
// callback, as Gio._promisify() makes them.

const {GLib, Gio} = imports.gi;

let Arip;

function _describeThrown(thrown) {
    if (thrown instanceof Error)
        return `${thrown.name}: ${thrown.message}`;
    if (thrown instanceof GLib.Error)
        return thrown.message;
    const type = thrown === null ? 'null' : typeof thrown;
    return `${type === 'object' && thrown.constructor ? thrown.constructor.name : type} thrown: ${String(thrown)}`;
}

// This file's name as it appears in stack traces.
const _OWN_FILE = (new Error().stack.split('\n')[0].match(/@(.*):\d+:\d+$/) || [])[1];

// The stack from where it was thrown down to the function: the frames of
// this wrapper and below it (Arip.init(), the program's top level) say
// nothing about the error.
function _userStack(thrown) {
    if (thrown === null || typeof thrown !== 'object' || typeof thrown.stack !== 'string')
        return '';
    const frames = [];
    for (const frame of thrown.stack.trimEnd().split('\n')) {
        if (_OWN_FILE !== undefined && frame.includes(`@${_OWN_FILE}:`))
            break;
        frames.push(frame);
    }
    return frames.join('\n').trimEnd();
}

function _errorForParent(thrown) {
    const head = _describeThrown(thrown);
    const stack = _userStack(thrown);
    const message = stack ? `${head}\n\nStack trace (most recent call first):\n${stack}` : head;

    if (thrown instanceof GLib.Error)
        return [thrown.domain, thrown.code, message];
    return [Arip.error_quark(), Arip.Error.FAILED, message];
}

function _answerWithThrown(name, call, thrown) {
    if (call.has_returned()) {
        // The answer was given; it stands. Show what happened after it.
        logError(thrown, `arip: “${name}” threw after it answered its call`);
        return;
    }
    const [domain, code, message] = _errorForParent(thrown);
    call.return_error_literal(domain, code, message);
}

function _answerWithResult(name, call, result) {
    if (result === undefined || result === null)
        return;   // the function answers by itself, now or later
    if (call.has_returned()) {
        printerr(`arip: “${name}” answered its call and also returned ${result}; the answer stands`);
    } else if (result instanceof GLib.Variant) {
        call.return_value(result);
    } else {
        _answerWithThrown(name, call, new TypeError(
            `the function registered as “${name}” returned ${typeof result}; return a ` +
            'GLib.Variant, or nothing and answer with call.return_value()'));
    }
}

function _serve(name, func, call, args) {
    let result;
    try {
        result = func(call, args);
    } catch (thrown) {
        _answerWithThrown(name, call, thrown);
        return;
    }

    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        result.then(
            value => _answerWithResult(name, call, value),
            thrown => _answerWithThrown(name, call, thrown));
        return;
    }

    _answerWithResult(name, call, result);
}

function _init() {
    Arip = this;

    const originalRegister = Arip.register_function;
    /**
     * Offers func to run in worker processes under name. func(call, args)
     * answers with call.return_value(), by returning a GLib.Variant, or by
     * resolving to one (an async function). What it throws, or rejects
     * with, reaches the parent as an error.
     */
    Arip.register_function = function (name, func) {
        if (typeof func !== 'function')
            throw new TypeError(`Arip.register_function: ${name}: not a function`);
        originalRegister(name, (call, args) => _serve(name, func, call, args));
    };

    const originalInit = Arip.init;
    /**
     * Serves the call in a worker (never returning); returns argv otherwise.
     * argv may be left out.
     */
    Arip.init = function (argv = null) {
        // This layer answers for JS functions: without it, every call fails
        // with an error saying where this file is.
        Arip.set_language_binding('gjs');
        return originalInit(argv);
    };

    Gio._promisify(Arip, 'run_in_process_async', 'run_in_process_finish');
    Gio._promisify(Arip.Launcher.prototype, 'run_async', 'run_finish');
    Gio._promisify(Arip.Launcher.prototype, 'spawn_command_async', 'spawn_command_finish');
    for (const method of ['start', 'wait', 'wait_for_state', 'stop'])
        Gio._promisify(Arip.Process.prototype, `${method}_async`, `${method}_finish`);
    if (Arip.Pool !== undefined) {
        Gio._promisify(Arip.Pool.prototype, 'run_async', 'run_finish');
        Gio._promisify(Arip.Pool.prototype, 'close_async', 'close_finish');
        Gio._promisify(Arip.Pool.prototype, 'map_async', 'map_finish');
    }
}
