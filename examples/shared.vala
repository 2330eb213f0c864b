/* shared.vala: a queue, an event and a lock shared with a child, in Vala
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * aioprocessing's own example, with arip: a worker takes the lock, sets
 * the event and puts its items (blocking calls, in its own process); the
 * parent yields for the event and then the lock, puts one more item and
 * closes the queue, while it reads the queue until it is closed. Exits 0
 * when every item arrived, in order.
 */

/* Runs in the child: ((stt)(stt)(stt)) the queue, the event, the lock. */
void func (Arip.Call call, Variant args) {
    try {
        var queue = (Arip.Queue) call.get_shared (args.get_child_value (0));
        var event = (Arip.Event) call.get_shared (args.get_child_value (1));
        var mutex = (Arip.Lock) call.get_shared (args.get_child_value (2));

        mutex.acquire_sync (-1, null);
        event.set ();
        try {
            for (int item = 1; item <= 5; item++) {
                Thread.usleep (50000);
                queue.put_sync (new Variant.int32 (item + 5), -1, null);
            }
        } finally {
            mutex.release ();
        }
        call.return_value (null);
    } catch (Error e) {
        call.return_gerror (e);
    }
}

/* Reads the queue until example2 closes it. */
async int[] example (Arip.Queue queue) throws Error {
    int[] got = {};
    for (;;) {
        Variant item;
        try {
            item = yield queue.get_async (null);
        } catch (Arip.Error.CLOSED e) {
            return got;
        }
        got += item.get_int32 ();
        print ("Got result %d\n", item.get_int32 ());
    }
}

async void example2 (Arip.Queue queue, Arip.Event event, Arip.Lock mutex) throws Error {
    yield event.wait_async (null);
    yield mutex.acquire_async (null);   /* the worker has put all its items */
    try {
        yield queue.put_async (new Variant.int32 (78), null);
        queue.close ();
    } finally {
        mutex.release ();
    }
}

int main (string[] args) {
    Arip.register_function ("func", func);
    Arip.init (ref args);

    var loop = new MainLoop ();
    var queue = new Arip.Queue (0);
    var event = new Arip.Event ();
    var mutex = new Arip.Lock ();
    int[] got = {};
    bool failed = false;
    int pending = 3;

    Arip.run_in_process.begin ("func",
                               new Variant.tuple ({ queue.to_variant (), event.to_variant (),
                                                    mutex.to_variant () }),
                               null, (obj, res) => {
        try {
            Arip.run_in_process.end (res);
        } catch (Error e) {
            printerr ("worker: %s\n", e.message);
            failed = true;
        }
        if (--pending == 0)
            loop.quit ();
    });
    example.begin (queue, (obj, res) => {
        try {
            got = example.end (res);
        } catch (Error e) {
            printerr ("example: %s\n", e.message);
            failed = true;
        }
        if (--pending == 0)
            loop.quit ();
    });
    example2.begin (queue, event, mutex, (obj, res) => {
        try {
            example2.end (res);
        } catch (Error e) {
            printerr ("example2: %s\n", e.message);
            failed = true;
        }
        if (--pending == 0)
            loop.quit ();
    });
    loop.run ();

    int[] expected = { 6, 7, 8, 9, 10, 78 };
    if (failed || got.length != expected.length)
        return 1;
    for (int i = 0; i < expected.length; i++)
        if (got[i] != expected[i])
            return 1;
    return 0;
}
