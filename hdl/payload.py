"""Stream payloads as plain Python values, packed and unpacked by the blocks' own layouts.

Every block describes its stream payloads with :mod:`amaranth.lib.data` layouts (its ports are
``stream.Signature(layout)``; each ``hdl`` module exposes them as ``input_layout(cfg)`` and the
like).  This module is the one place where such a payload becomes an integer and back, for the
RTL (memory initialisers), the testbenches, the Amaranth-simulator tests and the vector replay:

* :func:`pack` ``(layout, value) -> int``: ``value`` is a mapping ``{field: value}`` for a
  :class:`~amaranth.lib.data.StructLayout`, a sequence (list, tuple, NumPy array) of exactly
  ``length`` values for an :class:`~amaranth.lib.data.ArrayLayout`, nested as the layout is,
  with integers (``int``, ``bool``, NumPy integers) at the leaves.  A leaf is wrapped to its
  field's width, two's complement.  The result equals ``layout.const(value).as_bits()``.
* :func:`unpack` ``(layout, word) -> value``: the inverse, dicts and lists of ints, signed
  fields sign-extended -- the values of ``layout.from_bits(word)``.

Every field must be given, and nothing else: a missing or unknown field, an array of the wrong
length or a leaf that is not an integer raises :exc:`ValueError` / :exc:`TypeError` naming
the field (``Layout.const`` would quietly leave a missing field 0).

Speed: ``Layout.const`` and the ``data.Const`` accessors build an Amaranth ``Const`` per field
(about 28 us for eight 8-bit lanes, against 1 us for a shift-and-or loop), too slow for the
millions of words of ``make soak``.  So :func:`packer` / :func:`unpacker` turn a layout, once,
into functions made of its fields' offsets, widths and signedness (cached per layout), and
``tests/test_payload.py`` checks them against ``Layout.const`` / ``Layout.from_bits`` and a
bit-by-bit reference.  Pass the same layout object again (the ``hdl`` layout functions are
cached per configuration) and a call costs about what the old hand-written packers did.
"""

import functools
import operator
from collections.abc import Mapping

from amaranth import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "packer", "unpacker"]


def pack(layout, value):
    """``value`` (dicts / sequences / ints, nested as ``layout``) as one integer, field by field
    at the layout's offsets; equal to ``layout.const(value).as_bits()``."""
    return packer(layout)(value)


def unpack(layout, word):
    """The payload ``word`` (an int of ``layout.size`` bits) as dicts / lists of ints; signed
    fields sign-extended."""
    return unpacker(layout)(word)


# ---- packing ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def packer(layout):
    """The function ``value -> int`` of ``layout`` (made once per layout)."""
    layout = _layout(layout)
    fast = _packer(layout)

    def pack_value(value):
        try:
            word = fast(value)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            _check(layout, value, "payload")    # raises the error that names the field
            raise e                             # (not reached for a value that fails)
        return word
    return pack_value


def _packer(shape):
    """Fast path: no checks beyond what Python does anyway; :func:`_check` explains failures."""
    index = operator.index
    if isinstance(shape, data.ArrayLayout):
        n, elem = shape.length, shape.elem_shape
        if not isinstance(elem, data.Layout):
            width = Shape.cast(elem).width
            mask = (1 << width) - 1

            def pack_leaves(value):
                if len(value) != n:
                    raise ValueError
                word, shift = 0, 0
                for v in value:
                    word |= (index(v) & mask) << shift
                    shift += width
                return word
            return pack_leaves
        sub, width = _packer(elem), elem.size

        def pack_array(value):
            if len(value) != n:
                raise ValueError
            word, shift = 0, 0
            for v in value:
                word |= sub(v) << shift
                shift += width
            return word
        return pack_array
    if isinstance(shape, data.UnionLayout):
        raise TypeError(f"Layout must not contain a UnionLayout (its fields overlap), not {shape!r}")
    if isinstance(shape, data.Layout):
        fields = [(name, field.offset, _packer(field.shape)) for name, field in shape]
        count = len(fields)

        def pack_struct(value):
            if len(value) != count:
                raise ValueError
            word = 0
            for name, offset, sub in fields:
                word |= sub(value[name]) << offset
            return word
        return pack_struct
    mask = (1 << Shape.cast(shape).width) - 1
    return lambda value: index(value) & mask


def _check(shape, value, where):
    """Raise a clear error for the first part of ``value`` that does not fit ``shape``."""
    if isinstance(shape, data.ArrayLayout):
        if isinstance(value, (Mapping, str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(f"{where} must be a sequence of {shape.length} values "
                            f"(ArrayLayout of length {shape.length}), not {value!r}")
        if len(value) != shape.length:
            raise ValueError(f"{where} must have {shape.length} elements, not {len(value)}: {value!r}")
        for i, v in enumerate(value):
            _check(shape.elem_shape, v, f"{where}[{i}]")
    elif isinstance(shape, data.Layout):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where} must be a mapping of the fields {_names(shape)}, not {value!r}")
        missing = [name for name, _ in shape if name not in value]
        if missing:
            raise ValueError(f"{where} has no value for field(s) {', '.join(map(repr, missing))} "
                             f"(the layout's fields: {_names(shape)})")
        unknown = [key for key in value if key not in {name for name, _ in shape}]
        if unknown:
            raise ValueError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))} "
                             f"(the layout's fields: {_names(shape)})")
        for name, field in shape:
            _check(field.shape, value[name], f"{where}.{name}")
    else:
        try:
            operator.index(value)
        except TypeError:
            raise TypeError(f"{where} must be an integer ({Shape.cast(shape)!r}), "
                            f"not {value!r}") from None


def _names(layout):
    return ", ".join(repr(name) for name, _ in layout)


# ---- unpacking --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def unpacker(layout):
    """The function ``int -> value`` of ``layout`` (made once per layout)."""
    layout = _layout(layout)
    fast, size = _unpacker(layout), layout.size

    def unpack_word(word):
        try:
            word = operator.index(word)
        except TypeError:
            raise TypeError(f"payload must be an integer of {size} bits, not {word!r}") from None
        if word < 0 or word >> size:
            raise ValueError(f"payload must be an integer of {size} bits (0 .. 2**{size} - 1), not {word}")
        return fast(word)
    return unpack_word


def _unpacker(shape):
    """``word -> value`` of ``shape``, reading the bits from bit 0 of ``word`` up (the
    caller shifts a field down to bit 0; bits above the shape are ignored)."""
    if isinstance(shape, data.ArrayLayout):
        n, elem = shape.length, shape.elem_shape
        if not isinstance(elem, data.Layout):
            elem = Shape.cast(elem)
            width, mask = elem.width, (1 << elem.width) - 1
            shifts = range(0, n * width, width)
            if elem.signed and width:
                sign = 1 << (width - 1)
                return lambda word: [((word >> s) & mask ^ sign) - sign for s in shifts]
            return lambda word: [(word >> s) & mask for s in shifts]
        sub, shifts = _unpacker(elem), range(0, n * elem.size, elem.size)
        return lambda word: [sub(word >> s) for s in shifts]
    if isinstance(shape, data.UnionLayout):
        raise TypeError(f"Layout must not contain a UnionLayout (its fields overlap), not {shape!r}")
    if isinstance(shape, data.Layout):
        fields = [(name, field.offset, _unpacker(field.shape)) for name, field in shape]
        return lambda word: {name: sub(word >> offset) for name, offset, sub in fields}
    shape = Shape.cast(shape)
    mask = (1 << shape.width) - 1
    if shape.signed and shape.width:
        sign = 1 << (shape.width - 1)
        return lambda word: ((word & mask) ^ sign) - sign
    return lambda word: word & mask


def _layout(layout):
    if not isinstance(layout, (data.StructLayout, data.ArrayLayout)):
        raise TypeError(f"Layout must be a StructLayout or an ArrayLayout, not {layout!r}")
    return layout
