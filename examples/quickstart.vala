/* quickstart.vala: the smallest complete arip program in Vala
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Computes fib (30) in a child process while the main loop stays free.
 * Exits 0 when the child's answer is right.
 *
 * Build: valac --pkg arip-1.0 --pkg gio-2.0 quickstart.vala
 */

uint64 compute_fib (int n) {
    return n < 2 ? (uint64) n : compute_fib (n - 1) + compute_fib (n - 2);
}

/* Runs in the child: (i) n -> (t) fib (n). */
void fib (Arip.Call call, Variant args) {
    int n;
    args.get ("(i)", out n);
    call.return_value (new Variant ("(t)", compute_fib (n)));
}

/* Runs in the parent: the async methods of the VAPI are Vala async
 * methods, so the call reads as `yield Arip.run_in_process (...)`. */
async uint64 compute () throws Error {
    Variant result = yield Arip.run_in_process ("fib", new Variant ("(i)", 30), null);
    uint64 value;
    result.get ("(t)", out value);
    return value;
}

int main (string[] args) {
    /* Only registrations go before Arip.init (): a worker is this program
     * started again, and in a worker Arip.init () serves the call and exits. */
    Arip.register_function ("fib", fib);
    Arip.init (ref args);
    Intl.setlocale ();   /* so that print () writes UTF-8 */

    var loop = new MainLoop ();
    uint64 answer = 0;
    compute.begin ((obj, res) => {
        try {
            answer = compute.end (res);
            print ("fib (30) = %" + uint64.FORMAT + ", computed in a child process\n", answer);
        } catch (Error e) {
            printerr ("fib (30) failed: %s\n", e.message);
        }
        loop.quit ();
    });
    loop.run ();

    return answer == 832040 ? 0 : 1;
}
