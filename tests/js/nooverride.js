// Run by testRun.js without GJS_PATH: the override is not found, and a
// function that throws must fail its call instead of hanging it.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Arip from 'gi://Arip?version=1.0';

Arip.register_function('boom', () => {
    throw new Error('boom');
});
Arip.init(null);

try {
    Arip.run_in_process_sync('boom', null, null);
    print('no error');
} catch (e) {
    print(`error: ${e.message}`);
}
