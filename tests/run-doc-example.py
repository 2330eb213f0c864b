#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a document's first code block as it is written, and checks its output.

    run-doc-example.py DOC LANG FILENAME EXPECTED COMMAND...

saves the first ```LANG block of DOC as FILENAME in a directory of its
own (the program's workers are that file again), runs COMMAND... with the
file's path appended, and checks that it exits 0 and prints the lines of
EXPECTED (separated by "|") and nothing else.
"""

import os
import re
import subprocess
import sys
import tempfile


def main():
    doc, lang, filename, expected = sys.argv[1:5]
    command = sys.argv[5:]
    with open(doc, encoding='utf-8') as f:
        block = re.search(r'```%s\n(.*?)```' % re.escape(lang), f.read(), re.S)
    if block is None:
        sys.exit('run-doc-example: %s has no ```%s block' % (doc, lang))
    path = os.path.join(tempfile.mkdtemp(), filename)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(block.group(1))
    out = subprocess.run(command + [path], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        sys.exit('run-doc-example: %s exited with %d:\n%s' % (doc, out.returncode, out.stderr))
    if out.stdout.splitlines() != expected.split('|'):
        sys.exit('run-doc-example: %s printed %r, not %r' % (doc, out.stdout, expected))


if __name__ == '__main__':
    main()
