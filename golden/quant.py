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
"""

import numpy as np

__all__ = ["round_half_away", "quantize", "dequantize", "choose_frac", "int_range"]


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
