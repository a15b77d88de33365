"""Fixed-point quantization of float tensors to signed integers.

Rule (used everywhere in this project):

* A tensor is stored as signed two's complement integers of ``width`` bits with ``frac``
  fraction bits: the integer ``q`` stands for ``q * 2**-frac``.
* Rounding is to nearest, ties away from zero (``round_half_away``): 2.5 -> 3, -2.5 -> -3.
  Unlike NumPy's ``np.round`` (ties to even) it is symmetric around zero and is what a
  hardware "add half, truncate magnitude" rounder does.
* Values outside the range saturate to ``-2**(width-1)`` or ``2**(width-1) - 1``.
* :func:`choose_frac` picks, per tensor, the largest ``frac`` for which the tensor's largest
  magnitude does not saturate (a power-of-two scale, so rescaling is a shift).
* :func:`requantize` narrows integers that are already fixed point (the head's ``p`` and ``q``,
  ``docs/numerics.md`` section 3a): a rounding right shift, ties away from zero, then
  saturation; :func:`choose_shift` picks the smallest shift that does not saturate.
"""

import numpy as np

__all__ = ["round_half_away", "quantize", "dequantize", "choose_frac", "int_range",
           "requantize", "choose_shift"]


def int_range(width):
    """``(min, max)`` of a signed two's complement integer of ``width`` bits."""
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def round_half_away(x):
    """Round to the nearest integer, ties away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize(x, width, frac):
    """Float array -> int64 array of ``width``-bit signed integers with ``frac`` fraction bits."""
    lo, hi = int_range(width)
    q = round_half_away(np.asarray(x, dtype=np.float64) * 2.0 ** frac)
    return np.clip(q, lo, hi).astype(np.int64)


def dequantize(q, frac):
    return np.asarray(q, dtype=np.float64) * 2.0 ** -frac


def choose_frac(x, width):
    """Largest fraction-bit count for which ``quantize(x, width, frac)`` does not saturate."""
    peak = float(np.max(np.abs(x))) if np.size(x) else 0.0
    lo, hi = int_range(width)
    if peak == 0.0:
        return width - 1
    frac = width - 1 - int(np.ceil(np.log2(peak)))
    while True:
        q = round_half_away(np.asarray(x, dtype=np.float64) * 2.0 ** frac)
        if q.max(initial=0) <= hi and q.min(initial=0) >= lo:
            return frac
        frac -= 1


def _int_values(x):
    """``x`` as an exact integer array: int64, or object (Python ints) when it is one already or
    holds values beyond int64 (``np.asarray`` of such Python ints gives object or uint64)."""
    x = np.asarray(x)
    if x.dtype == object:
        if not all(isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_)) for e in x.flat):
            raise TypeError("requantize needs integers, not an object array of other values")
        return np.vectorize(int, otypes=[object])(x) if x.size else x
    if x.dtype.kind == "u" and x.dtype.itemsize == 8:
        return x.astype(object)
    if x.dtype.kind not in "iu":
        raise TypeError(f"requantize needs integers, not {x.dtype}")
    return x.astype(np.int64)


def _rnd(x, shift):
    """``x 2^-shift`` rounded half away from zero, for a Python int ``x``."""
    return (x + (1 << (shift - 1)) - (x < 0)) >> shift if shift else x


def requantize(x, shift, width):
    """Exact integers ``x`` shifted right by ``shift`` with rounding, then saturated to ``width`` bits.

    ``sat_width(rnd(x, shift))`` with ``rnd(x, s) = (x + 2^(s-1) - [x < 0]) >> s`` for ``s > 0``
    (``>>`` arithmetic: ``x 2^-s`` rounded to nearest, ties away from zero, as
    :func:`round_half_away`) and ``rnd(x, 0) = x``; ``sat_width`` clamps to
    ``[-2^(width-1), 2^(width-1) - 1]``.  ``x``: a Python int (returns an int) or an integer
    array (int64 in, int64 out; object arrays of Python ints stay object).
    """
    if not isinstance(shift, (int, np.integer)) or isinstance(shift, (bool, np.bool_)) or shift < 0:
        raise ValueError(f"shift must be an integer of at least 0, not {shift!r}")
    if not isinstance(width, (int, np.integer)) or isinstance(width, (bool, np.bool_)) or width < 1:
        raise ValueError(f"width must be an integer of at least 1, not {width!r}")
    shift, width = int(shift), int(width)
    lo, hi = int_range(width)
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return min(max(_rnd(int(x), shift), lo), hi)
    arr = _int_values(x)
    native = arr.dtype == np.int64
    if native and arr.size and (shift > 61 or arr.max() >= 1 << 62 or arr.min() < -(1 << 62)):
        arr = arr.astype(object)         # x + 2^(shift-1) could leave int64
    if shift:
        arr = (arr + (1 << (shift - 1)) - (arr < 0)) >> shift
    out = np.minimum(np.maximum(arr, lo), hi)
    return out.astype(np.int64) if native and width <= 64 else out


def choose_shift(x, width):
    """Smallest ``shift >= 0`` for which ``requantize(x, shift, width)`` saturates no element of
    the exact integers ``x`` (the largest scale that fits: the integer twin of
    :func:`choose_frac`).  ``rnd`` is monotone, so only ``min(x)`` and ``max(x)`` matter."""
    vals = _int_values(x)
    if not vals.size:
        return 0
    lo_x, hi_x = int(vals.min()), int(vals.max())
    lo, hi = int_range(width)
    shift = 0
    while not (lo <= _rnd(lo_x, shift) and _rnd(hi_x, shift) <= hi):
        shift += 1
    return shift
