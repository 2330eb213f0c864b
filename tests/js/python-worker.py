# A Python worker for the GJS tests: plain functions that a JS parent runs
# through a launcher (tests/js/testCrossLanguage.js), to check that the
# two layers read each other's plain values.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import sys

import gi

gi.require_version('Arip', '1.0')

from gi.repository import Arip  # noqa: E402


@Arip.function
def values():
    return {'none': None, 'true': True, 'int': -5, 'big': 1 << 40, 'float': 1.5, 'str': 'hé ☃',
            'list': [1, 'a'], 'tuple': (2, 3), 'bytes': b'\x00\xff', 'bytearray': bytearray(b'ab'),
            'nested': {'deep': [{'x': None}]}}


@Arip.function
def blob(size):
    """@size bytes: 0, 1, ... 255, 0, ..."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


@Arip.function
def describe(*args):
    """The Python types and values of what JS sent."""
    return [[type(arg).__name__, arg if not isinstance(arg, bytes) else len(arg)] for arg in args]


@Arip.function
def fail():
    raise KeyError('missing')


Arip.init(sys.argv)
