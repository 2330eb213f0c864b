// pool.js: warm workers for many small calls, in GJS
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Counts the primes below 200,000 in ten ranges on a pool of two workers
// (map: the results come in the order of the ranges), then runs one more
// count as a process on the pool, to watch its progress. Exits 0 when
// every count is right.

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';
import System from 'system';

function countPrimes(start, end) {
    let n = 0;
    for (let x = Math.max(start, 2); x < end; x++) {
        let prime = true;
        for (let d = 2; d * d <= x && prime; d++)
            prime = x % d !== 0;
        n += prime ? 1 : 0;
    }
    return n;
}

// (uu) from, to -> (u) how many primes; reports its progress.
Arip.register_function('count', (call, args) => {
    const [start, end] = args.deepUnpack();
    let total = 0;
    for (let lo = start; lo < end; lo += 10000) {
        total += countPrimes(lo, Math.min(lo + 10000, end));
        call.set_progress((Math.min(lo + 10000, end) - start) / (end - start));
    }
    return new GLib.Variant('(u)', [total]);
});

Arip.init(null);

const pool = Arip.Pool.new(null, 2);
const ranges = new GLib.Variant('a(uu)', Array.from({length: 10}, (_, i) => [i * 20000, (i + 1) * 20000]));
const results = await pool.map_async('count', ranges, null);
const counts = results.deepUnpack().map(v => v.deepUnpack()[0]);
counts.forEach((n, i) => print(`primes in [${i * 20000}, ${(i + 1) * 20000}): ${n}`));

const process = Arip.Process.new_for_pool(pool, 'count', new GLib.Variant('(uu)', [200000, 260000]));
process.connect('notify::progress', p => print(`  progress ${Math.round(100 * p.get_progress())}%`));
await process.start_async(null);
const [last] = (await process.wait_async(null)).deepUnpack();
print(`primes in [200000, 260000): ${last}, on worker ${process.get_pid()}`);

await pool.close_async(null);
const total = counts.reduce((a, b) => a + b, 0);
System.exit(total === 17984 && last === 4853 ? 0 : 1);
