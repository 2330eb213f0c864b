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
#                        once into a sealed memfd that travels as it is);
#                        a large lone argument or result: (sv) ("bytes"
#                        padded with spaces, <ay>), the padding placing the
#                        bytes where the receiver's new bytes object keeps
#                        its data within a page, so that it maps the
#                        memfd's pages instead of copying them (_map_bytes)
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
import struct
import sys

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


# Where CPython keeps a bytes object's data (ob_sval), from the object's
# address, and where glibc puts an allocation it makes with mmap() (the
# large ones) within its first page: after its two-word chunk header.
_BYTES_DATA = sys.getsizeof(b'') - 1
_GLIBC_MMAP_CHUNK_HEADER = 2 * struct.calcsize('N')
# A large bytes's data starts this far into a page, in both processes.
_BYTES_PAGE_OFFSET = _BYTES_DATA + _GLIBC_MMAP_CHUNK_HEADER
# The tag of a large bytes: "bytes" and spaces, so that in "(sv)" the "v",
# hence the bytes, starts at _BYTES_PAGE_OFFSET (a string ends with a zero
# byte; the "v" after it is 8-byte aligned).
_MAPPABLE_BYTES_TAG = 'bytes'.ljust(_BYTES_PAGE_OFFSET - 1)
_mapper = None


class _Mapper:
    """Makes a bytes object whose data pages are a memfd's, mapped
    copy-on-write over the pages of a new bytes object's own data: no copy,
    whatever the size. Only where it is sure what it maps over: CPython's
    bytes with its data in one mmap() of glibc's malloc, which free()
    unmaps whole (taking these mappings with it)."""

    MAP_FIXED = 0x10

    def __init__(self):
        import ctypes
        self.ctypes = ctypes
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long)
        self.new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
        self.new_bytes.restype = ctypes.py_object
        self.new_bytes.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)

        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks',
                'uordblks', 'fordblks', 'keepcost')]
        self.mallinfo2 = getattr(libc, 'mallinfo2', None)
        if self.mallinfo2 is not None:
            self.mallinfo2.restype = MallInfo2
            self.mallinfo2.argtypes = ()
        # No debugging allocator puts its own header before objects.
        self.usable = (self.mallinfo2 is not None and
                       os.environ.get('PYTHONMALLOC', '') in ('', 'malloc', 'pymalloc') and
                       not sys.flags.dev_mode and not hasattr(sys, 'gettotalrefcount'))

    def _own_mapping(self, address, size):
        """True if the object at @address is the one allocation in a mapping
        of glibc's malloc: its chunk header says so (IS_MMAPPED, nothing
        before it in the mapping, room for @size)."""
        word = self.ctypes.c_size_t
        header = address - _GLIBC_MMAP_CHUNK_HEADER
        prev_size = word.from_address(header).value
        chunk_size = word.from_address(header + _GLIBC_MMAP_CHUNK_HEADER // 2).value
        return (header % mmap.PAGESIZE == 0 and prev_size == 0 and chunk_size & 2 and
                not chunk_size & 4 and chunk_size & ~7 >= size + _BYTES_PAGE_OFFSET)

    def bytes_from(self, fd, offset, size):
        """The @size bytes at @offset in the sealed memfd @fd: mapped where
        it can, else read into the new object (one copy)."""
        page = mmap.PAGESIZE
        # glibc's malloc made it (its count of bytes in mappings of their
        # own grew: not a preloaded allocator's), in a mapping of its own.
        before = self.mallinfo2().hblkhd
        value = self.new_bytes(None, size)
        ours = self.mallinfo2().hblkhd - before >= size
        data = id(value) + _BYTES_DATA
        first = -(-data // page) * page
        last = (data + size) // page * page
        mapped = False
        if (ours and data % page == offset % page and first < last and
                self._own_mapping(id(value), size)):
            rw = mmap.PROT_READ | mmap.PROT_WRITE
            mapped = self.mmap(first, last - first, rw, mmap.MAP_PRIVATE | self.MAP_FIXED, fd,
                               offset + first - data) == first
            # A MAP_FIXED that fails may have unmapped the range already:
            # fresh zero pages take its place again (what the new object
            # had there), and all of it is read.
            if not mapped and self.mmap(first, last - first, rw,
                                        mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | self.MAP_FIXED,
                                        -1, 0) != first:
                raise MemoryError('no memory to map a value of %d bytes' % size)
        # Not mapped, or the partial pages at both ends: the object's own,
        # read into it.
        view = memoryview((self.ctypes.c_char * size).from_address(data)).cast('B')
        for start, end in ((0, first - data), (last - data, size)) if mapped else ((0, size),):
            while start < end:
                got = os.preadv(fd, [view[start:end]], offset + start)
                if got == 0:
                    raise OSError('a memfd shorter than its value')
                start += got
        return value


def _map_bytes(fd, offset, size):
    global _mapper
    if _mapper is None:
        _mapper = _Mapper()
    if not _mapper.usable:
        return None
    try:
        return _mapper.bytes_from(fd, offset, size)
    except OSError:
        return None


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
    if type(value) is bytes and _BYTES_PAGE_OFFSET % 8:
        prefix, suffix = b'', b'\0ay'   # no layout that _map_bytes() can use
    else:
        # "(sv)": the tag's string, zeros up to 8-byte alignment, the "v",
        # then where the string ends, in as few bytes as the size allows.
        name = {bytes: _MAPPABLE_BYTES_TAG, bytearray: 'bytearray', memoryview: 'memoryview'}
        tag = name[type(value)].encode() + b'\0'
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


def _read_bytes(variant, kind, mappable=False):
    """The bytes of an ay as @kind (bytes, bytearray or memoryview), copied
    once (bytes and bytearray), or, for a memoryview of a value in a memfd,
    not at all: a read-only view of a mapping of that memfd; so too for a
    @mappable bytes where _map_bytes() can."""
    fd = -1
    if ((kind is not bytes or mappable) and variant.get_size() >= _MEMFD_MIN_SIZE and
            _arip is not None):
        fd, offset = _arip.variant_dup_memfd(variant)
    if fd >= 0 and kind is bytes:
        try:
            value = _map_bytes(fd, offset, variant.get_size())
        finally:
            os.close(fd)
        fd = -1
        if value is not None:
            return value
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
        if tag.rstrip(' ') == 'bytes' and inner.get_type_string() == 'ay':
            return _read_bytes(inner, bytes, mappable=True)
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
