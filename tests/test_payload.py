"""hdl/payload.py: the one packer of stream payloads, checked against a deliberately naive
bit-by-bit reference and against Amaranth's own ``Layout.const`` / ``Layout.from_bits``."""

import random

import numpy as np
import pytest
from amaranth import Shape, signed, unsigned
from amaranth.lib import data

from damf.hdl.payload import pack, packer, unpack, unpacker

VEC = data.ArrayLayout(signed(5), 3)
STRUCT = data.StructLayout({"a": signed(4), "b": unsigned(3), "c": 1, "d": signed(1)})
NESTED = data.StructLayout({
    "v": data.ArrayLayout(data.ArrayLayout(signed(6), 2), 3),
    "sign": data.ArrayLayout(signed(2), 3),
    "shift": data.ArrayLayout(unsigned(4), 3),
    "inner": data.StructLayout({"x": signed(7), "y": data.ArrayLayout(unsigned(2), 2)}),
    "last": unsigned(1),
})
ARRAY_OF_STRUCTS = data.ArrayLayout(data.StructLayout({"re": signed(3), "im": signed(3)}), 4)
LAYOUTS = [VEC, STRUCT, NESTED, ARRAY_OF_STRUCTS, data.ArrayLayout(unsigned(1), 1)]


# ---- the naive reference: one bit at a time ----------------------------------------------------

def leaves(layout, value, offset=0):
    """``(offset, shape, int)`` of every leaf of ``value``, walking ``layout`` field by field."""
    if isinstance(layout, data.ArrayLayout):
        size = Shape.cast(layout.elem_shape).width
        for i in range(layout.length):
            yield from leaves(layout.elem_shape, value[i], offset + i * size)
    elif isinstance(layout, data.Layout):
        for name, field in layout:
            yield from leaves(field.shape, value[name], offset + field.offset)
    else:
        yield offset, Shape.cast(layout), value


def naive_pack(layout, value):
    word = 0
    for offset, shape, v in leaves(layout, value):
        for bit in range(shape.width):
            if (v >> bit) & 1:                  # Python's >> of a negative int: two's complement
                word |= 1 << (offset + bit)
    return word


def naive_unpack(layout, word):
    if isinstance(layout, data.ArrayLayout):
        size = Shape.cast(layout.elem_shape).width
        return [naive_unpack(layout.elem_shape, word >> (i * size)) for i in range(layout.length)]
    if isinstance(layout, data.Layout):
        return {name: naive_unpack(field.shape, word >> field.offset) for name, field in layout}
    shape = Shape.cast(layout)
    v = 0
    for bit in range(shape.width):
        v |= ((word >> bit) & 1) << bit
    if shape.signed and v >= 1 << (shape.width - 1):
        v -= 1 << shape.width
    return v


def random_value(layout, rng, wide=False):
    """A value of ``layout``: random ints in the field's range (``wide``: past it, to wrap)."""
    if isinstance(layout, data.ArrayLayout):
        return [random_value(layout.elem_shape, rng, wide) for _ in range(layout.length)]
    if isinstance(layout, data.Layout):
        return {name: random_value(field.shape, rng, wide) for name, field in layout}
    shape = Shape.cast(layout)
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed else (0, (1 << shape.width) - 1)
    if wide:
        lo, hi = lo - 100, hi + 100
    return rng.randint(lo, hi)


def amaranth_value(const):
    """The Python value of an Amaranth ``data.Const`` (or a field's int)."""
    if not isinstance(const, data.Const):
        return const
    layout = const.shape()
    if isinstance(layout, data.ArrayLayout):
        return [amaranth_value(const[i]) for i in range(layout.length)]
    return {name: amaranth_value(const[name]) for name, _ in layout}


def edges(layout):
    """All-min, all-max and zero values of ``layout``."""
    def fill(shape, pick):
        if isinstance(shape, data.ArrayLayout):
            return [fill(shape.elem_shape, pick) for _ in range(shape.length)]
        if isinstance(shape, data.Layout):
            return {name: fill(field.shape, pick) for name, field in shape}
        s = Shape.cast(shape)
        return pick(-(1 << (s.width - 1)) if s.signed else 0, (1 << (s.width - 1 if s.signed else s.width)) - 1)
    return [fill(layout, lambda lo, hi: lo), fill(layout, lambda lo, hi: hi), fill(layout, lambda lo, hi: 0)]


# ---- round trips and agreement -----------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS, ids=["array", "struct", "nested", "array-of-structs", "one-bit"])
def test_round_trip_and_agreement(layout):
    rng = random.Random(13)
    for value in edges(layout) + [random_value(layout, rng) for _ in range(300)]:
        word = pack(layout, value)
        assert word == naive_pack(layout, value) == layout.const(value).as_bits()
        assert unpack(layout, word) == value == naive_unpack(layout, word)
        assert unpack(layout, word) == amaranth_value(layout.from_bits(word))


@pytest.mark.parametrize("layout", LAYOUTS, ids=["array", "struct", "nested", "array-of-structs", "one-bit"])
def test_every_word_unpacks_as_amaranth_does(layout):
    rng = random.Random(7)
    for word in [0, (1 << layout.size) - 1] + [rng.getrandbits(layout.size) for _ in range(300)]:
        value = unpack(layout, word)
        assert value == naive_unpack(layout, word) == amaranth_value(layout.from_bits(word))
        assert pack(layout, value) == word


def test_out_of_range_ints_wrap_twos_complement():
    rng = random.Random(3)
    for _ in range(200):
        value = random_value(NESTED, rng, wide=True)
        assert pack(NESTED, value) == naive_pack(NESTED, value)
    assert pack(VEC, [-1, 16, 32]) == 0b00000_10000_11111       # -1 -> 31, 16 -> -16, 32 -> 0
    assert unpack(VEC, pack(VEC, [-1, 16, 32])) == [-1, -16, 0]


def test_element_zero_in_the_least_significant_bits():
    assert pack(VEC, [1, 2, -1]) == 1 | 2 << 5 | 31 << 10
    assert pack(STRUCT, {"a": -1, "b": 5, "c": 1, "d": -1}) == 0xF | 5 << 4 | 1 << 7 | 1 << 8


def test_sequences_numpy_and_bools():
    """Tuples, NumPy arrays and NumPy integers are values too; ``True`` is 1."""
    value = {"v": np.array([[1, -2], [3, -4], [5, -6]]), "sign": (1, -1, 0), "shift": np.arange(3),
             "inner": {"x": np.int64(-3), "y": [True, 2]}, "last": True}
    plain = {"v": [[1, -2], [3, -4], [5, -6]], "sign": [1, -1, 0], "shift": [0, 1, 2],
             "inner": {"x": -3, "y": [1, 2]}, "last": 1}
    assert pack(NESTED, value) == pack(NESTED, plain) == naive_pack(NESTED, plain)
    assert unpack(NESTED, pack(NESTED, value)) == plain
    assert unpack(VEC, np.int64(pack(VEC, [1, 2, 3]))) == [1, 2, 3]


def test_compiled_once_per_layout():
    assert packer(NESTED) is packer(NESTED) and unpacker(NESTED) is unpacker(NESTED)


# ---- wrong values: errors naming the field -------------------------------------------------------

def good():
    return {"v": [[0, 0]] * 3, "sign": [0] * 3, "shift": [0] * 3, "inner": {"x": 0, "y": [0, 0]}, "last": 0}


def test_missing_field():
    value = good()
    del value["last"]
    with pytest.raises(ValueError, match=r"^payload has no value for field\(s\) 'last' \(the layout's fields: "
                                         r"'v', 'sign', 'shift', 'inner', 'last'\)$"):
        pack(NESTED, value)
    value = good()
    del value["inner"]["y"]
    with pytest.raises(ValueError, match=r"^payload\.inner has no value for field\(s\) 'y' "
                                         r"\(the layout's fields: 'x', 'y'\)$"):
        pack(NESTED, value)


def test_unknown_field():
    with pytest.raises(ValueError, match=r"^payload has unknown field\(s\) 'first' \(the layout's fields: "
                                         r"'a', 'b', 'c', 'd'\)$"):
        pack(STRUCT, {"a": 0, "b": 0, "c": 0, "d": 0, "first": 1})


def test_wrong_length():
    with pytest.raises(ValueError, match=r"^payload must have 3 elements, not 2: \[1, 2\]$"):
        pack(VEC, [1, 2])
    value = good()
    value["v"][1] = [1, 2, 3]
    with pytest.raises(ValueError, match=r"^payload\.v\[1\] must have 2 elements, not 3: \[1, 2, 3\]$"):
        pack(NESTED, value)


def test_wrong_types():
    with pytest.raises(TypeError, match=r"^payload must be a mapping of the fields 'a', 'b', 'c', 'd', "
                                        r"not \[0, 0, 0, 0\]$"):
        pack(STRUCT, [0, 0, 0, 0])
    with pytest.raises(TypeError, match=r"^payload must be a sequence of 3 values \(ArrayLayout of length 3\), "
                                        r"not 7$"):
        pack(VEC, 7)
    value = good()
    value["inner"]["x"] = 1.5
    with pytest.raises(TypeError, match=r"^payload\.inner\.x must be an integer \(signed\(7\)\), not 1\.5$"):
        pack(NESTED, value)
    with pytest.raises(TypeError, match=r"^payload\[2\] must be an integer \(signed\(5\)\), not '3'$"):
        pack(VEC, [1, 2, "3"])


def test_bad_words_and_layouts():
    with pytest.raises(ValueError, match=r"^payload must be an integer of 15 bits \(0 \.\. 2\*\*15 - 1\), not 32768$"):
        unpack(VEC, 1 << 15)
    with pytest.raises(ValueError, match=r"^payload must be an integer of 15 bits \(0 \.\. 2\*\*15 - 1\), not -1$"):
        unpack(VEC, -1)
    with pytest.raises(TypeError, match=r"^payload must be an integer of 15 bits, not 1\.0$"):
        unpack(VEC, 1.0)
    with pytest.raises(TypeError, match=r"^Layout must be a StructLayout or an ArrayLayout, not signed\(8\)$"):
        pack(signed(8), 1)
    union = data.StructLayout({"u": data.UnionLayout({"a": 4, "b": 8})})
    with pytest.raises(TypeError, match=r"^Layout must not contain a UnionLayout \(its fields overlap\), not "):
        pack(union, {"u": {"a": 1}})
