/* shared.vala: a queue, an event and a lock shared with a child, in Vala
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * aioprocessing's own example, with arip: a worker takes the lock, sets
 * the event and puts its items (blocking calls, in its own process); the
 * parent yields for the event, the lock and the queue, and puts one more
 * item, which the worker answers with. Exits 0 when every item arrived,
 * in order.
 */

/* Runs in the child: ((stt)(stt)(stt)) the queue, the event, the lock. */
void func (Arip.Call call, Variant args) {
    try {
        var queue = (Arip.Queue) call.get_shared (args.get_child_value (0));
        var event = (Arip.Event) call.get_shared (args.get_child_value (1));
        var lock = (Arip.Lock) call.get_shared (args.get_child_value (2));

        lock.acquire_sync (-1, null);
        event.set ();
        for (int item = 1; item <= 5; item++) {
            Thread.usleep (50000);
            queue.put_sync (new Variant.int32 (item + 5), -1, null);
        }
        lock.release ();
        /* What the parent put, once it had the lock. */
        Variant last = queue.get_sync (-1, null);
        call.return_value (new Variant.tuple ({ last }));
    } catch (Error e) {
        call.return_gerror (e);
    }
}

async int[] example (Arip.Queue queue, Arip.Event event, Arip.Lock lock) throws Error {
    int[] got = {};
    while (got.length < 5) {
        Variant item = yield queue.get_async (null);
        got += item.get_int32 ();
        print ("Got result %d\n", item.get_int32 ());
    }
    return got;
}

async void example2 (Arip.Queue queue, Arip.Event event, Arip.Lock lock) throws Error {
    yield event.wait_async (null);
    yield lock.acquire_async (null);
    yield queue.put_async (new Variant.int32 (78), null);
    lock.release ();
}

int main (string[] args) {
    Arip.register_function ("func", func);
    Arip.init (ref args);

    var loop = new MainLoop ();
    var queue = new Arip.Queue (0);
    var event = new Arip.Event ();
    var lock = new Arip.Lock ();
    int[] got = {};
    int worker_got = 0;
    int pending = 3;

    Arip.run_in_process.begin ("func",
                               new Variant.tuple ({ queue.to_variant (), event.to_variant (),
                                                    lock.to_variant () }),
                               null, (obj, res) => {
        try {
            Variant result = Arip.run_in_process.end (res);
            result.get ("(i)", out worker_got);
            print ("The worker got %d\n", worker_got);
        } catch (Error e) {
            printerr ("worker: %s\n", e.message);
        }
        if (--pending == 0)
            loop.quit ();
    });
    example.begin (queue, event, lock, (obj, res) => {
        try {
            got = example.end (res);
        } catch (Error e) {
            printerr ("example: %s\n", e.message);
        }
        if (--pending == 0)
            loop.quit ();
    });
    example2.begin (queue, event, lock, (obj, res) => {
        try {
            example2.end (res);
        } catch (Error e) {
            printerr ("example2: %s\n", e.message);
        }
        if (--pending == 0)
            loop.quit ();
    });
    loop.run ();

    if (worker_got != 78 || got.length != 5)
        return 1;
    for (int i = 0; i < 5; i++)
        if (got[i] != i + 6)
            return 1;
    return 0;
}
