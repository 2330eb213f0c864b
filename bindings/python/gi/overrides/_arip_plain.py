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
#   bytes                ay (never built byte by byte: a small one from one
#                        copy of its bytes; from 256 KiB, they are written
#                        once into a sealed memfd that travels as it is)
#   bytearray            (sv)  ("bytearray", <ay>)
#   memoryview           (sv)  ("memoryview", <ay>)  (a large one arrives as a
#                        read-only view of the sender's memfd: no copy at all)
#   tuple                (v...)  one variant per item; () for the empty one
#   list                 av
#   dict with str keys   a{sv}
#   GLib.Variant         (sv)  ("variant", <the value>), arriving as itself
#   anything else        (sv)  ("pickle", <ay>), only for a function decorated
#                        with pickle=True (both sides refuse it otherwise:
#                        unpickling runs the sender's code)
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
import fcntl
import mmap
import os
import pickle

from gi.repository import GLib

_TAG_TYPE = GLib.VariantType.new('(sv)')
_VARIANT_TYPE = GLib.VariantType.new('v')
_BYTES_TYPE = GLib.VariantType.new('ay')
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
# The types that cross as themselves (their subclasses too, unless pickled).
_PLAIN_TYPES = frozenset([type(None), bool, int, float, str, bytes, bytearray, memoryview,
                          tuple, list, dict])
# The commonest values, made once (a GVariant never changes).
_NOTHING = GLib.Variant.new_maybe(_VARIANT_TYPE, None)
_UNIT = GLib.Variant.new_tuple()


# From this size, bytes travel in a memfd (as arip's own values do).
_MEMFD_MIN_SIZE = 256 * 1024
_MEMFD_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
_WRITE_CHUNK = 16 << 20

# Set by the override: the Arip introspection module.
_arip = None


def set_library(arip):
    global _arip
    _arip = arip


def _memfd_variant(type_string, prefix, view, suffix):
    """A value of @type_string whose serialized form is @prefix, @view's
    bytes and @suffix, written once into a sealed memfd: the value maps
    it, and travels as it. arip checks that it is the normal form."""
    fd = os.memfd_create('arip-value', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        done = 0
        if prefix:
            os.pwrite(fd, prefix, 0)
        while done < view.nbytes:
            done += os.pwrite(fd, view[done:done + _WRITE_CHUNK], len(prefix) + done)
        if suffix:
            os.pwrite(fd, suffix, len(prefix) + done)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _MEMFD_SEALS)
        return _arip.variant_new_from_memfd(fd, GLib.VariantType.new(type_string))
    finally:
        os.close(fd)


def _byte_view(data):
    """@data (bytes, bytearray, memoryview) as a flat view of bytes."""
    view = memoryview(data)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.ndim != 1 or view.format != 'B':
        view = view.cast('B')
    return view


def _bytes_variant(data):
    """The ay of a bytes, bytearray or memoryview."""
    view = _byte_view(data)
    if view.nbytes >= _MEMFD_MIN_SIZE and _arip is not None:
        try:
            return _memfd_variant('ay', b'', view, b'')
        except OSError:
            pass   # no memfds here: the copy below, which arip sends as it can
    # GLib.Variant('ay', data) builds it byte by byte (seconds per MiB).
    return GLib.Variant.new_from_bytes(_BYTES_TYPE, GLib.Bytes.new(view), True)


def _offset_size(size):
    """GVariant's framing offsets for a container of @size bytes."""
    return 1 if size <= 0xff else 2 if size <= 0xffff else 4 if size <= 0xffffffff else 8


def _single_bytes_variant(value):
    """The (v) holding one large bytes, bytearray or memoryview, laid out
    by hand in one memfd, or None for other values. A call's result and a
    lone argument are this tuple: so the whole of it travels as the memfd,
    instead of being serialized again (a second copy of the bytes)."""
    # Exactly these types: a subclass goes the general way (pickled, with
    # pickle=True, to keep its type).
    if _arip is None or type(value) not in (bytes, bytearray, memoryview):
        return None
    view = _byte_view(value)
    if view.nbytes < _MEMFD_MIN_SIZE:
        return None
    # "v" is the child's bytes, a zero byte and its type; "(v)" is its only
    # member's bytes.
    if type(value) is bytes:
        prefix, suffix = b'', b'\0ay'
    else:
        # "(sv)": the tag's string, zeros up to 8-byte alignment, the "v",
        # then where the string ends, in as few bytes as the size allows.
        tag = (b'bytearray' if type(value) is bytearray else b'memoryview') + b'\0'
        prefix = tag + bytes(-len(tag) % 8)
        body = len(prefix) + view.nbytes + 3
        for width in (1, 2, 4, 8):
            size = body + width
            if _offset_size(size) == width:
                break
        suffix = b'\0ay' + len(tag).to_bytes(width, 'little') + b'\0(sv)'
    try:
        return _memfd_variant('(v)', prefix, view, suffix)
    except OSError:
        return None


def _read_bytes(variant, kind):
    """The bytes of an ay as @kind (bytes, bytearray or memoryview), copied
    once (bytes and bytearray), or, for a memoryview of a value in a memfd,
    not at all: a read-only view of a mapping of that memfd."""
    fd = -1
    if kind is not bytes and variant.get_size() >= _MEMFD_MIN_SIZE and _arip is not None:
        fd, offset = _arip.variant_dup_memfd(variant)
    if fd < 0:
        data = variant.get_data_as_bytes().get_data()
        return data if kind is bytes else kind(data)
    try:
        size = variant.get_size()
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        mapping = mmap.mmap(fd, size + offset - start, mmap.MAP_SHARED, mmap.PROT_READ,
                            offset=start)
    finally:
        os.close(fd)
    view = memoryview(mapping)[offset - start:]
    return view if kind is memoryview else bytearray(view)

# Set by the override: Arip.Shared, and how a handle becomes an object.
_shared_type = None
_shared_from_variant = None


def set_shared(shared_type, from_variant_func):
    global _shared_type, _shared_from_variant
    _shared_type, _shared_from_variant = shared_type, from_variant_func


def _tagged(tag, value):
    return GLib.Variant.new_tuple(GLib.Variant('s', tag), GLib.Variant.new_variant(value))


def _pickled(value):
    return _tagged('pickle', _bytes_variant(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)))


def to_variant(value, _depth=0, pickle_ok=False):
    """The GVariant for the plain value @value (see the table above); with
    @pickle_ok, the others are pickled, and so are subclasses of the plain
    types (an IntEnum, a namedtuple), which then keep their type."""
    if _depth > 64:
        raise ValueError('a value nested more than 64 levels deep (or that contains itself) '
                         'cannot be sent to another process')
    depth = _depth + 1
    if pickle_ok and type(value) not in _PLAIN_TYPES and not isinstance(value, GLib.Variant) and \
            not (_shared_type is not None and isinstance(value, _shared_type)):
        return _pickled(value)
    # The scalars by their own constructors: GLib.Variant(format, value)
    # parses its format in Python, several times slower.
    if value is None:
        return _NOTHING
    if isinstance(value, bool):
        return GLib.Variant.new_boolean(value)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return GLib.Variant.new_int64(value)
        if 0 <= value <= _UINT64_MAX:
            return GLib.Variant.new_uint64(value)
        if pickle_ok:
            return _pickled(value)
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
        return _tagged('memoryview', _bytes_variant(value))
    if isinstance(value, GLib.Variant):
        return _tagged('variant', value)
    if _shared_type is not None and isinstance(value, _shared_type):
        return _tagged('shared', value.to_variant())
    if isinstance(value, tuple):
        if not value:
            return _UNIT
        if len(value) == 1:
            single = _single_bytes_variant(value[0])
            if single is not None:
                return single
        return GLib.Variant.new_tuple(*[GLib.Variant.new_variant(to_variant(item, depth, pickle_ok))
                                        for item in value])
    if isinstance(value, list):
        return GLib.Variant.new_array(GLib.VariantType.new('v'),
                                      [GLib.Variant.new_variant(to_variant(item, depth, pickle_ok))
                                       for item in value])
    if isinstance(value, dict):
        if pickle_ok and not all(type(key) is str for key in value):
            return _pickled(value)
        entries = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError('only dicts with str keys can be sent to another process, '
                                'not a key of type %s (or decorate the function with '
                                '@Arip.function(pickle=True))' % type(key).__name__)
            entries.append(GLib.Variant.new_dict_entry(
                GLib.Variant('s', key), GLib.Variant.new_variant(to_variant(item, depth, pickle_ok))))
        return GLib.Variant.new_array(GLib.VariantType.new('{sv}'), entries)
    raise TypeError('a value of type %s cannot be sent to another process: send None, bool, '
                    'int, float, str, bytes, bytearray, memoryview, tuple, list, dict with str '
                    'keys, or a GLib.Variant (or decorate the function with '
                    '@Arip.function(pickle=True))' % type(value).__name__)


_SCALAR_GETTERS = {
    'x': GLib.Variant.get_int64,
    't': GLib.Variant.get_uint64,
    'b': GLib.Variant.get_boolean,
    'd': GLib.Variant.get_double,
    's': GLib.Variant.get_string,
}


def from_variant(variant, pickle_ok=False):
    """The plain value @variant stands for (see the table above); a pickled
    one only with @pickle_ok."""
    type_string = variant.get_type_string()
    # The scalars by their own getters: unpack() works in Python.
    getter = _SCALAR_GETTERS.get(type_string)
    if getter is not None:
        return getter(variant)
    if type_string == 'mv':
        if variant.get_maybe() is None:
            return None
    elif type_string == 'ay':
        return _read_bytes(variant, bytes)
    elif type_string == '(sv)':
        tag = variant.get_child_value(0).get_string()
        inner = variant.get_child_value(1).get_variant()
        if tag == 'variant':
            return inner
        if tag == 'shared' and _shared_from_variant is not None:
            return _shared_from_variant(inner)
        if tag in ('bytearray', 'memoryview') and inner.get_type_string() == 'ay':
            return _read_bytes(inner, bytearray if tag == 'bytearray' else memoryview)
        if tag == 'pickle' and inner.get_type_string() == 'ay':
            if not pickle_ok:
                raise TypeError('refusing a pickled value: unpickling runs the sender\'s code; '
                                'decorate the function with @Arip.function(pickle=True) '
                                'where both sides trust each other')
            return pickle.loads(_read_bytes(inner, memoryview))
    elif type_string.startswith('(') and set(type_string[1:-1]) <= {'v'}:
        return tuple(from_variant(variant.get_child_value(i).get_variant(), pickle_ok)
                     for i in range(variant.n_children()))
    elif type_string == 'av':
        return [from_variant(variant.get_child_value(i).get_variant(), pickle_ok)
                for i in range(variant.n_children())]
    elif type_string == 'a{sv}':
        result = {}
        for i in range(variant.n_children()):
            entry = variant.get_child_value(i)
            result[entry.get_child_value(0).get_string()] = \
                from_variant(entry.get_child_value(1).get_variant(), pickle_ok)
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
