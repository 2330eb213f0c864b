/* watch-states.vala: open a process and watch it go through its states
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An Arip.Process is one child running one call. It moves through
 * INITIALIZING -> INITIALIZED -> WAIT_EXEC_DATA -> BOOTING -> STARTED ->
 * EXECUTING -> FINISHED, emitting ::state-changed for each step; the
 * function's progress and messages arrive as notify::progress and ::message.
 * Exits 0 when every state was seen once, in order, and the result is right.
 *
 * Build: valac --pkg arip-1.0 --pkg gio-2.0 watch-states.vala
 */

const uint32 N = 2000000;

/* Runs in the child: (u) n -> (t) the sum of 0..n-1, in ten steps, telling
 * the parent how far it is. */
void sum_below (Arip.Call call, Variant args) {
    uint32 n;
    args.get ("(u)", out n);
    uint64 total = 0;
    for (uint step = 0; step < 10; step++) {
        for (uint64 i = (uint64) n * step / 10; i < (uint64) n * (step + 1) / 10; i++)
            total += i;
        call.set_progress ((step + 1) / 10.0);
    }
    call.send_message (new Variant.string ("all steps done"));
    call.return_value (new Variant ("(t)", total));
}

string state_name (Arip.State state) {
    return ((EnumClass) typeof (Arip.State).class_ref ()).get_value (state).value_nick;
}

async bool watch () {
    var process = new Arip.Process (null, "sum_below", new Variant ("(u)", N));
    Arip.State[] seen = { process.state };

    process.state_changed.connect ((old_state, new_state) => {
        /* The pid is known from INITIALIZED on. */
        print ("[pid %d] %s -> %s\n", process.pid, state_name (old_state), state_name (new_state));
        seen += new_state;
    });
    process.notify["progress"].connect (() => {
        print ("[pid %d] progress %3.0f %%\n", process.pid, process.progress * 100);
    });
    process.message.connect ((message) => {
        print ("[pid %d] says: %s\n", process.pid, message.get_string ());
    });

    uint64 total = 0;
    try {
        yield process.start (null);   /* returns once the function executes */
        print ("[pid %d] the function is executing\n", process.pid);
        Variant result = yield process.wait (null);
        result.get ("(t)", out total);
        print ("sum = %" + uint64.FORMAT + "; exit status %d\n", total, process.get_exit_status ());
    } catch (Error e) {
        printerr ("failed: %s\n", e.message);
        return false;
    }

    Arip.State[] every_state = {
        Arip.State.INITIALIZING, Arip.State.INITIALIZED, Arip.State.WAIT_EXEC_DATA,
        Arip.State.BOOTING, Arip.State.STARTED, Arip.State.EXECUTING, Arip.State.FINISHED
    };
    if (seen.length != every_state.length)
        return false;
    for (int i = 0; i < seen.length; i++)
        if (seen[i] != every_state[i])
            return false;
    return total == (uint64) N * (N - 1) / 2 && process.progress == 1.0;
}

int main (string[] args) {
    Arip.register_function ("sum_below", sum_below);
    Arip.init (ref args);   /* in a worker: serves the call and exits */
    Intl.setlocale ();   /* so that print () writes UTF-8 */

    var loop = new MainLoop ();
    bool ok = false;
    watch.begin ((obj, res) => {
        ok = watch.end (res);
        loop.quit ();
    });
    loop.run ();
    return ok ? 0 : 1;
}
