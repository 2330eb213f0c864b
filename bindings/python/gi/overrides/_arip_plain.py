# _arip_plain.py: plain Python values and exceptions across processes
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Functions decorated with @Arip.function take and return plain Python
# values. They cross between processes as GVariants of a fixed shape, so
# that each value arrives with the Python type it left with:
#
#   None                 mv (nothing)
#   bool                 b
#   int                  x, or t above the int64 range (beyond 64 bits:
#                        OverflowError, never a wrap)
#   float                d
#   str                  s
#   bytes                ay (built from one copy of the bytes, never byte by
#                        byte; large values then travel in a memfd)
#   bytearray            (sv)  ("bytearray", <ay>)
#   memoryview           (sv)  ("memoryview", <ay>)  (arrives over bytes)
#   tuple                (v...)  one variant per item; () for the empty one
#   list                 av
#   dict with str keys   a{sv}
#   GLib.Variant         (sv)  ("variant", <the value>), arriving as itself
#
# A tagged value is a (sv) pair, which no tuple of plain values is (their
# items are all v). The arguments of a call are the tuple of its positional
# arguments; its result is (v).
#
# An exception crosses as the worker's error: its first line is what
# traceback.format_exception_only() says ("ValueError: bad"), then the
# child's traceback. The parent rebuilds a built-in exception type, with
# the child's traceback as its cause (as concurrent.futures does), and
# raises RemoteError for the others.

import ast
import builtins

from gi.repository import GLib

_TAG_TYPE = GLib.VariantType.new('(sv)')
_VARIANT_TYPE = GLib.VariantType.new('v')
_BYTES_TYPE = GLib.VariantType.new('ay')
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


def _bytes_variant(data):
    # GLib.Variant('ay', data) builds it byte by byte (seconds per MiB).
    return GLib.Variant.new_from_bytes(_BYTES_TYPE, GLib.Bytes.new(bytes(data)), True)


# Set by the override: Arip.Shared, and how a handle becomes an object.
_shared_type = None
_shared_from_variant = None


def set_shared(shared_type, from_variant_func):
    global _shared_type, _shared_from_variant
    _shared_type, _shared_from_variant = shared_type, from_variant_func


def _tagged(tag, value):
    return GLib.Variant.new_tuple(GLib.Variant('s', tag), GLib.Variant.new_variant(value))


def to_variant(value, _depth=0):
    """The GVariant for the plain value @value (see the table above)."""
    if _depth > 64:
        raise ValueError('a value nested more than 64 levels deep (or that contains itself) '
                         'cannot be sent to another process')
    depth = _depth + 1
    # The scalars by their own constructors: GLib.Variant(format, value)
    # parses its format in Python, several times slower.
    if value is None:
        return GLib.Variant.new_maybe(_VARIANT_TYPE, None)
    if isinstance(value, bool):
        return GLib.Variant.new_boolean(value)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return GLib.Variant.new_int64(value)
        if 0 <= value <= _UINT64_MAX:
            return GLib.Variant.new_uint64(value)
        raise OverflowError('the integer %d does not fit in 64 bits, and cannot be sent to '
                            'another process' % value)
    if isinstance(value, float):
        return GLib.Variant.new_double(value)
    if isinstance(value, str):
        return GLib.Variant.new_string(value)
    if isinstance(value, bytes):
        return _bytes_variant(value)
    if isinstance(value, bytearray):
        return _tagged('bytearray', _bytes_variant(value))
    if isinstance(value, memoryview):
        return _tagged('memoryview', _bytes_variant(value.tobytes()))
    if isinstance(value, GLib.Variant):
        return _tagged('variant', value)
    if _shared_type is not None and isinstance(value, _shared_type):
        return _tagged('shared', value.to_variant())
    if isinstance(value, tuple):
        return GLib.Variant.new_tuple(*[GLib.Variant.new_variant(to_variant(item, depth))
                                        for item in value])
    if isinstance(value, list):
        return GLib.Variant.new_array(GLib.VariantType.new('v'),
                                      [GLib.Variant.new_variant(to_variant(item, depth))
                                       for item in value])
    if isinstance(value, dict):
        entries = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError('only dicts with str keys can be sent to another process, '
                                'not a key of type %s' % type(key).__name__)
            entries.append(GLib.Variant.new_dict_entry(GLib.Variant('s', key),
                                                       GLib.Variant.new_variant(to_variant(item, depth))))
        return GLib.Variant.new_array(GLib.VariantType.new('{sv}'), entries)
    raise TypeError('a value of type %s cannot be sent to another process: send None, bool, '
                    'int, float, str, bytes, bytearray, memoryview, tuple, list, dict with str '
                    'keys, or a GLib.Variant' % type(value).__name__)


_SCALAR_GETTERS = {
    'x': GLib.Variant.get_int64,
    't': GLib.Variant.get_uint64,
    'b': GLib.Variant.get_boolean,
    'd': GLib.Variant.get_double,
    's': GLib.Variant.get_string,
}


def from_variant(variant):
    """The plain value @variant stands for (see the table above)."""
    type_string = variant.get_type_string()
    # The scalars by their own getters: unpack() works in Python.
    getter = _SCALAR_GETTERS.get(type_string)
    if getter is not None:
        return getter(variant)
    if type_string == 'mv':
        if variant.get_maybe() is None:
            return None
    elif type_string == 'ay':
        return variant.get_data_as_bytes().get_data()
    elif type_string == '(sv)':
        tag = variant.get_child_value(0).get_string()
        inner = variant.get_child_value(1).get_variant()
        if tag == 'variant':
            return inner
        if tag == 'shared' and _shared_from_variant is not None:
            return _shared_from_variant(inner)
        if tag in ('bytearray', 'memoryview') and inner.get_type_string() == 'ay':
            data = inner.get_data_as_bytes().get_data()
            return bytearray(data) if tag == 'bytearray' else memoryview(data)
    elif type_string.startswith('(') and set(type_string[1:-1]) <= {'v'}:
        return tuple(from_variant(variant.get_child_value(i).get_variant())
                     for i in range(variant.n_children()))
    elif type_string == 'av':
        return [from_variant(variant.get_child_value(i).get_variant())
                for i in range(variant.n_children())]
    elif type_string == 'a{sv}':
        result = {}
        for i in range(variant.n_children()):
            entry = variant.get_child_value(i)
            result[entry.get_child_value(0).get_string()] = \
                from_variant(entry.get_child_value(1).get_variant())
        return result
    raise TypeError('a GLib.Variant of type %s is not a plain value (was it sent by a function '
                    'that is not decorated with @Arip.function?)' % type_string)


class RemoteError(Exception):
    """An exception raised in a worker, whose type cannot be rebuilt here.

    type_name is the exception's type as the worker named it (module and
    qualified name), message what str() gave there, and remote_traceback
    the worker's traceback.
    """

    def __init__(self, type_name, message, remote_traceback=''):
        super().__init__('%s: %s' % (type_name, message) if message else type_name)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (its __cause__)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return '\n\n"""\n%s\n"""' % self.text


def _is_type_name(name):
    # "ValueError", "module.Error", "f.<locals>.Error": one word.
    return name != '' and not any(c.isspace() or c == ':' for c in name)


def exception_from_message(message):
    """The exception a worker's error message describes, or None.

    @message is what the worker answered with for an exception: its
    format_exception_only() line, a blank line, its traceback.
    """
    head, _, trace = message.partition('\n\n')
    type_name, sep, text = head.partition(': ')
    if not sep and not _is_type_name(head):
        return None
    if not sep:
        type_name, text = head, ''
    if not _is_type_name(type_name):
        return None

    exc_type = getattr(builtins, type_name, None) if '.' not in type_name else None
    if (isinstance(exc_type, type) and issubclass(exc_type, Exception) and
            not issubclass(exc_type, GLib.Error)):
        try:
            if issubclass(exc_type, KeyError) and text:
                # str(KeyError('k')) is "'k'": the key's repr.
                try:
                    text = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    pass
            exc = exc_type(text) if text != '' else exc_type()
        except Exception:
            exc = RemoteError(type_name, text, trace)
    else:
        exc = RemoteError(type_name, text, trace)
    if trace:
        exc.__cause__ = RemoteTraceback(trace.strip())
    # Raised where the GLib.Error is handled: that is not what happened.
    exc.__suppress_context__ = True
    return exc
