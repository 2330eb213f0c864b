/* cancel.vala: cancel calls that run in child processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Cancelling the GCancellable of a call (or stopping an Arip.Process) stops
 * its child politely first: the call's own cancellable
 * (call.get_cancellable ()) is cancelled in the child; if the child is still
 * there after the launcher's interrupt timeout, it gets SIGTERM, and after
 * the terminate timeout SIGKILL.
 *
 *  - "cooperative" notices the interrupt and gives up at once: the call
 *    fails with IOError.CANCELLED;
 *  - "stubborn" ignores the interrupt and SIGTERM, so stopping its process
 *    goes the whole way, to SIGKILL.
 *
 * Exits 0 when both ended that way.
 *
 * Build: valac --pkg arip-1.0 --pkg gio-2.0 --pkg posix cancel.vala
 */

/* Runs in the child: counts until interrupted. */
void cooperative (Arip.Call call, Variant args) {
    var cancellable = call.get_cancellable ();
    uint64 count = 0;
    while (!cancellable.is_cancelled ())
        count++;
    call.return_error_literal (IOError.quark (), IOError.CANCELLED,
                              "cooperative gave up after counting to %llu".printf (count));
}

/* Runs in the child: ignores the interrupt, and SIGTERM too. */
void stubborn (Arip.Call call, Variant args) {
    Posix.signal (Posix.Signal.TERM, (sig) => {
        Posix.write (1, "  (stubborn ignores SIGTERM)\n", 29);
    });
    call.send_message (new Variant.string ("waiting"));
    /* Returns without answering: the worker keeps running its main loop. */
}

double seconds_since (int64 t0) {
    return (get_monotonic_time () - t0) / 1e6;
}

async bool cancel_a_call () {
    var cancellable = new Cancellable ();
    var t0 = get_monotonic_time ();
    Timeout.add (1000, () => {
        print ("cooperative: cancelling the call\n");
        cancellable.cancel ();
        return Source.REMOVE;
    });
    try {
        yield Arip.run_in_process ("cooperative", null, cancellable);
        print ("cooperative: finished?\n");
        return false;
    } catch (IOError.CANCELLED e) {
        print ("cooperative: %s after %.1f s\n", e.message, seconds_since (t0));
        return true;
    } catch (Error e) {
        printerr ("cooperative: %s\n", e.message);
        return false;
    }
}

async bool stop_a_process () {
    var launcher = new Arip.Launcher (SubprocessFlags.NONE);
    /* How long to wait after the interrupt, then after SIGTERM (ms). */
    launcher.set_stop_timeouts (500, 500);
    /* A stubborn function needs neither the network nor the files: a
     * sandbox does not change how it is stopped. */
    launcher.set_sandbox (Arip.SandboxFlags.NO_NETWORK | Arip.SandboxFlags.SECCOMP,
                          Arip.SandboxPolicy.BEST_EFFORT);
    launcher.set_cpu_limit (30);
    var process = new Arip.Process (launcher, "stubborn", null);
    var t0 = get_monotonic_time ();

    process.message.connect ((message) => {
        print ("stubborn [pid %d]: %s; stopping it\n", process.pid, message.get_string ());
        process.stop.begin (null, (obj, res) => {
            try {
                process.stop.end (res);
            } catch (Error e) {
                printerr ("stop: %s\n", e.message);
            }
        });
    });

    try {
        yield process.start (null);
        yield process.wait (null);
        print ("stubborn: finished?\n");
        return false;
    } catch (Arip.Error.PROCESS_KILLED e) {
        print ("stubborn: %s after %.1f s (term sig %d)\n", e.message, seconds_since (t0),
               process.get_term_sig ());
        return process.get_term_sig () == Posix.Signal.KILL;
    } catch (Error e) {
        printerr ("stubborn: %s\n", e.message);
        return false;
    }
}

async bool run_both () {
    bool ok = yield cancel_a_call ();
    return (yield stop_a_process ()) && ok;
}

int main (string[] args) {
    Arip.register_function ("cooperative", cooperative);
    Arip.register_function ("stubborn", stubborn);
    Arip.init (ref args);   /* in a worker: serves the call and exits */
    Intl.setlocale ();   /* so that print () writes UTF-8 */

    var loop = new MainLoop ();
    bool ok = false;
    run_both.begin ((obj, res) => {
        ok = run_both.end (res);
        loop.quit ();
    });
    loop.run ();
    return ok ? 0 : 1;
}
