// pool.vala: warm workers for many small calls, in Vala
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Counts the primes below 200,000 in ten ranges on a pool of two workers
// (map: the results come in the order of the ranges), then runs one more
// count as a process on the pool, to watch its progress. Exits 0 when
// every count is right.

uint32 count_primes (uint32 from, uint32 to) {
    uint32 n = 0;
    for (uint32 x = uint32.max (from, 2); x < to; x++) {
        bool prime = true;
        for (uint32 d = 2; d * d <= x && prime; d++)
            prime = x % d != 0;
        if (prime)
            n++;
    }
    return n;
}

// (uu) from, to -> (u) how many primes; reports its progress.
void count (Arip.Call call, Variant args) {
    uint32 from, to, total = 0;
    args.get ("(uu)", out from, out to);
    for (uint32 lo = from; lo < to; lo += 10000) {
        total += count_primes (lo, uint32.min (lo + 10000, to));
        call.set_progress ((double) (uint32.min (lo + 10000, to) - from) / (to - from));
    }
    call.return_value (new Variant ("(u)", total));
}

async int run () throws Error {
    var pool = new Arip.Pool (null, 2);
    var builder = new VariantBuilder (new VariantType ("a(uu)"));
    for (uint32 i = 0; i < 10; i++)
        builder.add ("(uu)", i * 20000, (i + 1) * 20000);
    var results = yield pool.map ("count", builder.end ());
    uint32 total = 0;
    for (size_t i = 0; i < results.n_children (); i++) {
        uint32 n;
        results.get_child_value (i).get_variant ().get ("(u)", out n);
        print ("primes in [%u, %u): %u\n", (uint) i * 20000, (uint) (i + 1) * 20000, n);
        total += n;
    }

    var process = new Arip.Process.for_pool (pool, "count", new Variant ("(uu)", 200000, 260000));
    process.notify["progress"].connect (() => print ("  progress %3.0f%%\n", 100 * process.get_progress ()));
    yield process.start ();
    uint32 last;
    (yield process.wait ()).get ("(u)", out last);
    print ("primes in [200000, 260000): %u, on worker %d\n", last, (int) process.get_pid ());

    yield pool.close ();
    return total == 17984 && last == 4853 ? 0 : 1;
}

int main (string[] args) {
    Arip.register_function ("count", count);
    Arip.init (ref args);

    var loop = new MainLoop ();
    int status = 1;
    run.begin ((obj, res) => {
        try {
            status = run.end (res);
        } catch (Error e) {
            printerr ("%s\n", e.message);
        }
        loop.quit ();
    });
    loop.run ();
    return status;
}
