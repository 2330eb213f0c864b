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

// The call a function runs for (Arip.currentCall()), in a worker.
let _currentCall = null;

// System.exit() ends a JS program from the JS engine's main loop: called
// in a promise's continuation, it only asks that loop to end, which a
// worker does not run (arip's does), and the call would never end. In a
// worker's call, it ends the worker at once with Arip.exit_worker(), as
// it does where GJS can. The 'system' module of ES modules is its own
// object, reached by an import, which completes before the first call
// runs (_serve waits for it).
function _patchExit(system) {
    const originalExit = system.exit;
    system.exit = function (code = 0) {
        if (_currentCall !== null)
            Arip.exit_worker(Number(code) & 0xff);
        return originalExit.call(this, code);
    };
}
_patchExit(imports.system);
let _exitPatched = false;
const _exitPatch = import('system').then(module => {
    _patchExit(module.default);
}).catch(() => {}).finally(() => {
    _exitPatched = true;
});

function _serve(name, func, call, args) {
    if (!_exitPatched) {
        _exitPatch.then(() => _serve(name, func, call, args));
        return;
    }

    // Arip.currentCall() is this call until the function has ended.
    const ended = () => {
        if (_currentCall === call)
            _currentCall = null;
    };
    let result;
    _currentCall = call;
    try {
        result = func(call, args);
    } catch (thrown) {
        ended();
        _answerWithThrown(name, call, thrown);
        return;
    }

    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        result.then(
            value => {
                ended();
                _answerWithResult(name, call, value);
            },
            thrown => {
                ended();
                _answerWithThrown(name, call, thrown);
            });
        return;
    }

    ended();
    _answerWithResult(name, call, result);
}

// Plain values: the same shapes as the Python layer's (see
// bindings/python/gi/overrides/_arip_plain.py), so that each side reads the
// other's. null and undefined: mv (nothing); a boolean: b; a number: x when
// it is a safe integer, d otherwise; a BigInt: x, or t above the int64
// range; a string: s; a Uint8Array: ay (from one copy, never element by
// element); an Array: av (a tuple of v from Python arrives as an Array); an
// object: a{sv}; a GLib.Variant: ("variant", <it>), arriving as itself.
const _INT64_MIN = -(2n ** 63n), _INT64_MAX = 2n ** 63n - 1n, _UINT64_MAX = 2n ** 64n - 1n;

function _bytesVariant(bytes) {
    // A Uint8Array given for a GBytes is copied once by GJS (new
    // GLib.Bytes(bytes) copies twice); arip then writes a large one into a
    // sealed memfd, and the receiver maps it: a received Uint8Array is a
    // view of that mapping (GLib.Bytes.toArray() does not copy).
    return GLib.Variant.new_from_bytes(new GLib.VariantType('ay'), bytes, true);
}

function _toVariant(value, depth = 0) {
    if (depth > 64) {
        throw new RangeError('a value nested more than 64 levels deep (or that contains ' +
            'itself) cannot be sent to another process');
    }
    if (value === null || value === undefined)
        return GLib.Variant.new_maybe(new GLib.VariantType('v'), null);
    if (typeof value === 'boolean')
        return new GLib.Variant('b', value);
    if (typeof value === 'number')
        return Number.isSafeInteger(value) ? new GLib.Variant('x', value) : new GLib.Variant('d', value);
    if (typeof value === 'bigint') {
        if (value >= _INT64_MIN && value <= _INT64_MAX)
            return GLib.Variant.new_int64(value);
        if (value >= 0n && value <= _UINT64_MAX)
            return GLib.Variant.new_uint64(value);
        throw new RangeError(`the integer ${value} does not fit in 64 bits, and cannot be sent ` +
            'to another process');
    }
    if (typeof value === 'string')
        return new GLib.Variant('s', value);
    if (value instanceof Uint8Array)
        return _bytesVariant(value);
    if (value instanceof GLib.Variant) {
        return GLib.Variant.new_tuple([new GLib.Variant('s', 'variant'),
            GLib.Variant.new_variant(value)]);
    }
    // A shared object goes as its handle, and comes out as the live object.
    if (Arip.Shared !== undefined && value instanceof Arip.Shared) {
        return GLib.Variant.new_tuple([new GLib.Variant('s', 'shared'),
            GLib.Variant.new_variant(value.to_variant())]);
    }
    if (Array.isArray(value)) {
        return GLib.Variant.new_array(new GLib.VariantType('v'),
            value.map(item => GLib.Variant.new_variant(_toVariant(item, depth + 1))));
    }
    if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
        return GLib.Variant.new_array(new GLib.VariantType('{sv}'),
            Object.entries(value).map(([key, item]) => GLib.Variant.new_dict_entry(
                new GLib.Variant('s', key), GLib.Variant.new_variant(_toVariant(item, depth + 1)))));
    }
    const what = typeof value === 'object' ? value.constructor?.name ?? 'object' : typeof value;
    throw new TypeError(`a value of type ${what} cannot be sent to another process: send null, ` +
        'a boolean, a number, a BigInt, a string, a Uint8Array, an Array, a plain object or a ' +
        'GLib.Variant');
}

function _fromVariant(variant) {
    const type = variant.get_type_string();
    if (type === 'mv' && variant.get_maybe() === null)
        return null;
    if (type === 'b' || type === 's' || type === 'd' || type === 'x' || type === 't')
        return variant.unpack();
    if (type === 'ay')
        return variant.get_data_as_bytes().toArray();
    if (type === '(sv)') {
        const tag = variant.get_child_value(0).get_string()[0];
        const inner = variant.get_child_value(1).get_variant();
        if (tag === 'variant')
            return inner;
        if (tag === 'shared' && Arip.Shared !== undefined)
            return Arip.Shared.from_variant(inner);
        // A large Python bytes: "bytes", padded (see _arip_plain.py).
        if ((tag === 'bytearray' || tag === 'memoryview' || tag.trimEnd() === 'bytes') &&
            inner.get_type_string() === 'ay')
            return inner.get_data_as_bytes().toArray();
    } else if (type === 'av' || (type.startsWith('(') && /^\(v*\)$/.test(type))) {
        const items = [];
        for (let i = 0; i < variant.n_children(); i++)
            items.push(_fromVariant(variant.get_child_value(i).get_variant()));
        return items;
    } else if (type === 'a{sv}') {
        const object = {};
        for (let i = 0; i < variant.n_children(); i++) {
            const entry = variant.get_child_value(i);
            object[entry.get_child_value(0).get_string()[0]] =
                _fromVariant(entry.get_child_value(1).get_variant());
        }
        return object;
    }
    throw new TypeError(`a GLib.Variant of type ${type} is not a plain value (was it sent by a ` +
        'function not registered with Arip.registerFunction()?)');
}

function _argsVariant(args) {
    return GLib.Variant.new_tuple(args.map(arg => GLib.Variant.new_variant(_toVariant(arg))));
}

function _resultVariant(value) {
    return GLib.Variant.new_tuple([GLib.Variant.new_variant(_toVariant(value))]);
}

/** An exception thrown in a worker whose type cannot be rebuilt here. */
class RemoteError extends Error {
    constructor(typeName, message, remoteStack) {
        super(message ? `${typeName}: ${message}` : typeName);
        this.name = 'RemoteError';
        this.typeName = typeName;
        this.remoteMessage = message;
        this.remoteStack = remoteStack;
    }
}

const _BUILT_IN_ERRORS = {Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError,
    URIError};

// The exception a worker's error stands for: "Name: message", then its
// stack (a JS worker's) or traceback (a Python worker's). A GLib.Error that
// is not such an error stays as it is.
function _plainError(error) {
    if (!(error instanceof GLib.Error) || !error.matches(Arip.error_quark(), Arip.Error.FAILED))
        return error;
    let message = error.message;
    for (let attempt = 0; attempt < 4; attempt++) {
        const [head, ...rest] = message.split('\n\n');
        const colon = head.indexOf(': ');
        const typeName = colon < 0 ? head : head.slice(0, colon);
        if (typeName !== '' && !/[\s:]/.test(typeName)) {
            const text = colon < 0 ? '' : head.slice(colon + 2);
            const stack = rest.join('\n\n');
            const Type = _BUILT_IN_ERRORS[typeName];
            const exc = Type !== undefined ? new Type(text) : new RemoteError(typeName, text, stack);
            exc.remoteStack = stack;
            return exc;
        }
        if (colon < 0 || head.includes('\n'))
            break;
        message = message.slice(colon + 2);   // "Call 3 of the map: ..."
    }
    return error;
}

/** The plain value a call's "(v)" result stands for. */
function _plainValue(result) {
    return _fromVariant(result.get_child_value(0).get_variant());
}

/** What a plain call's promise of a "(v)" result resolves to: its plain
 * value, or what the function threw. */
async function _plainOutcome(promise) {
    let result;
    try {
        result = await promise;
    } catch (error) {
        throw _plainError(error);
    }
    return _plainValue(result);
}

const _plainNames = new WeakMap();

/** A plain call's arguments: a Gio.Cancellable last (never a plain value)
 * is the call's cancellable, not an argument. */
function _splitCancellable(args) {
    const last = args[args.length - 1];
    if (last instanceof Gio.Cancellable)
        return [args.slice(0, -1), last];
    return [args, null];
}

function _plainName(fnOrName) {
    if (typeof fnOrName === 'string')
        return fnOrName;
    const name = _plainNames.get(fnOrName);
    if (name === undefined)
        throw new TypeError(`${fnOrName?.name ?? fnOrName} is not registered with Arip.registerFunction()`);
    return name;
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

    /**
     * Offers fn to run in worker processes under name, with plain values:
     * fn(...args) returns (or resolves to) a plain value; what it throws
     * reaches the caller of Arip.runInProcess() with its name and message.
     * Returns fn.
     */
    Arip.registerFunction = function (name, fn) {
        if (typeof fn !== 'function')
            throw new TypeError(`Arip.registerFunction: ${name}: not a function`);
        Arip.register_function(name, (call, args) => {
            const values = args === null ? [] : _fromVariant(args);
            if (!Array.isArray(values))
                throw new TypeError(`the arguments of “${name}” are not a tuple of plain values`);
            const result = fn(...values);
            if (result !== null && typeof result === 'object' && typeof result.then === 'function')
                return result.then(_resultVariant);
            return _resultVariant(result);
        });
        _plainNames.set(fn, name);
        return fn;
    };

    /**
     * Runs fnOrName (a function given to Arip.registerFunction(), or the
     * name it was registered under) in a new worker process with the plain
     * values args; resolves to its plain result, or rejects with what it
     * threw (a built-in error type as itself, others as Arip.RemoteError;
     * the worker's stack in remoteStack). A Gio.Cancellable last in args
     * is not sent: cancelling it cancels the call (the worker is
     * interrupted, then stopped as the launcher says), as everywhere in
     * GIO; the same holds for pool.run() and Arip.openInProcess().
     */
    Arip.runInProcess = async function (fnOrName, ...args) {
        const name = _plainName(fnOrName);
        const [values, cancellable] = _splitCancellable(args);
        return _plainOutcome(Arip.run_in_process_async(name, _argsVariant(values), cancellable));
    };
    Arip.RemoteError = RemoteError;

    /**
     * In a worker, the Arip.Call the running plain function serves (for
     * its cancellable, progress and messages); null elsewhere.
     */
    Arip.currentCall = function () {
        return _currentCall;
    };

    /**
     * In a worker: resolves once the running plain call is interrupted
     * (process.interrupt(), a cancelled cancellable, the first step of a
     * stop). A function that wants to end then throws
     * `new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, ...)`
     * (the caller gets Arip.Error.CHILD_CANCELLED), or returns what it
     * has; one that ignores it is stopped by the escalation. Never
     * resolves outside a call.
     */
    Arip.interrupted = function () {
        const call = _currentCall;
        if (call === null)
            return new Promise(() => {});
        // The call's cancellable is cancelled from a helper thread, where
        // GJS runs no JS: a cancellable source on the main context is how
        // to hear it.
        return new Promise(resolve => {
            const source = call.get_cancellable().source_new();
            source.set_callback(() => {
                resolve();
                return GLib.SOURCE_REMOVE;
            });
            source.attach(null);
        });
    };

    /**
     * Starts fnOrName (see Arip.runInProcess()) with the plain values args
     * in a new worker process; resolves to its Arip.Process once the
     * function runs (pid, state and signals known). `await
     * process.result()` then gives its plain result or throws what it
     * threw; process.interrupt(), terminate() and kill() reach it. A
     * Gio.Cancellable last in args cancels the start (the process is
     * stopped). A process nobody waits for is still reaped.
     */
    Arip.openInProcess = async function (fnOrName, ...args) {
        const [values, cancellable] = _splitCancellable(args);
        const process = Arip.Process.forFunction(fnOrName, values);
        await process.start_async(cancellable);
        return process;
    };

    /**
     * A process that will run fnOrName (see Arip.runInProcess()) with the
     * plain values args, on the default worker, or, with {pool}, on a warm
     * worker of that pool; with {launcher}, as that launcher says. Watch
     * it with its signals, start it with `await process.start_async(null)`;
     * `await process.result()` then resolves to the plain value it
     * returned, or rejects with what it threw.
     */
    Arip.Process.forFunction = function (fnOrName, args = [], {launcher = null, pool = null} = {}) {
        const name = _plainName(fnOrName);
        const process = pool !== null
            ? Arip.Process.new_for_pool(pool, name, _argsVariant(args))
            : Arip.Process.new(launcher, name, _argsVariant(args));
        process._aripPlain = true;
        return process;
    };

    /** The plain result of a process from Arip.Process.forFunction(), once
     * it has ended (it waits for that). */
    Arip.Process.prototype.result = async function () {
        return this._aripPlain ? _plainOutcome(this.wait_async(null)) : this.wait_async(null);
    };

    if (Arip.Pool !== undefined) {
        /** Runs fnOrName on a warm worker of the pool with the plain values
         * args; resolves to its plain result (see Arip.runInProcess()). */
        Arip.Pool.prototype.run = async function (fnOrName, ...args) {
            const name = _plainName(fnOrName);
            const [values, cancellable] = _splitCancellable(args);
            return _plainOutcome(this.run_async(name, _argsVariant(values), cancellable));
        };

        /** Runs fnOrName once per element of iterable (its one argument), on
         * the pool's workers at once; resolves to the results in order, or
         * rejects with the first error (the other calls are cancelled).
         * A cancellable cancels them all. */
        Arip.Pool.prototype.map = async function (fnOrName, iterable, cancellable = null) {
            const name = _plainName(fnOrName);
            const items = Array.from(iterable, item => _argsVariant([item]));
            if (items.length === 0)
                return [];
            let results;
            try {
                results = await this.map_async(name, GLib.Variant.new_array(null, items), cancellable);
            } catch (error) {
                throw _plainError(error);
            }
            const values = [];
            for (let i = 0; i < results.n_children(); i++)
                values.push(_plainValue(results.get_child_value(i).get_variant()));
            return values;
        };
    }

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
    if (Arip.Shared !== undefined)
        _overrideShared();
}

// The shared objects: every _async method returns a promise, and the
// plain forms take and give plain values: `await queue.put({a: 1})`,
// `await queue.get()`, `for await (const item of queue)` until it is
// closed, `await lock.acquire()`, `await event.wait()`.
function _isCode(error, code) {
    return error instanceof GLib.Error && error.matches(Arip.error_quark(), code);
}

function _decode(variant) {
    try {
        return _fromVariant(variant);
    } catch (e) {
        return variant;   // put by C code: the GLib.Variant as it is
    }
}

function _overrideShared() {
    const pairs = [
        ['Queue', ['put', 'get']],
        ['Lock', ['acquire']],
        ['Event', ['wait']],
        ['Semaphore', ['acquire']],
        ['Condition', ['wait']],
        ['Barrier', ['wait']],
        ['SharedDict', ['set', 'lookup', 'replace']],
    ];
    for (const [type, methods] of pairs) {
        for (const method of methods)
            Gio._promisify(Arip[type].prototype, `${method}_async`, `${method}_finish`);
    }

    Object.assign(Arip.Queue.prototype, {
        put(value, cancellable = null) {
            return this.put_async(_toVariant(value), cancellable);
        },
        async get(cancellable = null) {
            return _decode(await this.get_async(cancellable));
        },
        async *[Symbol.asyncIterator]() {
            for (;;) {
                let item;
                try {
                    item = await this.get_async(null);
                } catch (e) {
                    if (_isCode(e, Arip.Error.CLOSED))
                        return;
                    throw e;
                }
                yield _decode(item);
            }
        },
    });
    Arip.Lock.prototype.acquire = function (cancellable = null) {
        return this.acquire_async(cancellable);
    };
    Arip.Semaphore.prototype.acquire = function (cancellable = null) {
        return this.acquire_async(cancellable);
    };
    Arip.Event.prototype.wait = function (cancellable = null) {
        return this.wait_async(cancellable);
    };
    Arip.Condition.prototype.wait = function (cancellable = null) {
        return this.wait_async(cancellable);
    };
    Arip.Barrier.prototype.wait = async function (cancellable = null) {
        // GJS leaves out the boolean that only says "no error".
        const result = await this.wait_async(cancellable);
        return Array.isArray(result) ? result[result.length - 1] : result;
    };
    Object.assign(Arip.SharedDict.prototype, {
        async setValue(key, value) {
            await this.set_async(key, _toVariant(value), null);
        },
        async getValue(key) {
            const value = await this.lookup_async(key, null);
            return value === null ? undefined : _decode(value);
        },
        compareAndSet(key, expected, value) {
            return this.replace_async(key, expected === undefined ? null : _toVariant(expected),
                _toVariant(value), null);
        },
    });
}
