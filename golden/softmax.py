"""Bit-exact model of the integer softmax unit (``hdl/softmax.py``).

For a row ``s[0 .. n-1]`` of signed scores (``1 <= n <= seq_len``), with ``EF = exp_frac``,
``P = prob_width``, ``G = guard``, ``F = exp_shift``, ``M = exp_mult`` (all from
:class:`~damf.config.SoftmaxConfig`; ``>>`` is a floor shift)::

    d[i]  = max(s) - s[i]                       # >= 0
    u[i]  = d[i] * M                            # alpha*log2(e)*d[i] with F fraction bits
    z[i]  = u[i] >> F                           # integer part
    x[i]  = top EF fraction bits of u[i]        # (u >> (F-EF)) mod 2**EF  (or << if F < EF)
    p[i]  = 2**EF + ((x * (A1 + ((A2 * x) >> EF))) >> POLY_FRAC)   # ~ 2**-x * 2**EF
    e[i]  = p[i] >> min(z[i], EF + 1)           # ~ 2**EF * exp(-alpha * d[i])
    total = sum(e)                              # >= 2**EF: the maximum has e = 2**EF
    recip = 2**(EF + P + G) // total            # the one division of the row
    prob  = min((e * recip + 2**(EF+G-1)) >> (EF + G), 2**P - 1)

``prob[i] / 2**P`` approximates ``softmax(alpha * s)[i]``.  Errors (measured by
:func:`accuracy`, reported in ``docs/baseline.md``): the polynomial (1.9e-3 absolute, 3.8e-3 relative, on each
``e``), the truncation of ``e`` to ``EF`` fraction bits, the rounding of ``prob`` to ``P`` bits
(half an LSB) and the reciprocal (below ``2**-G`` LSB).
"""

import numpy as np

from ..config import SOFTMAX_POLY_A1, SOFTMAX_POLY_A2, SOFTMAX_POLY_FRAC
from .inner_product import check_range

__all__ = ["exp_int", "softmax_row", "softmax_rows", "split_rows", "float_softmax", "accuracy", "realistic_rows",
           "accuracy_table"]


def exp_int(cfg, d):
    """Integer exponential: ``e ~ 2**exp_frac * exp(-alpha * d)`` for ``d >= 0`` (int64 array)."""
    d = np.asarray(d, dtype=np.int64)
    if np.any(d < 0):
        raise ValueError("exp_int needs d = max - s >= 0")
    ef, f = cfg.exp_frac, cfg.exp_shift
    u = d * cfg.exp_mult
    z = u >> f
    if f >= ef:
        x = (u >> (f - ef)) & ((1 << ef) - 1)
    else:
        x = (u << (ef - f)) & ((1 << ef) - 1)
    inner = SOFTMAX_POLY_A1 + ((SOFTMAX_POLY_A2 * x) >> ef)
    p = (1 << ef) + ((x * inner) >> SOFTMAX_POLY_FRAC)
    return p >> np.minimum(z, ef + 1)


def softmax_row(cfg, row):
    """Probabilities (int64, ``prob_width`` fraction bits) of one row, as the unit computes them."""
    s = np.asarray(row, dtype=np.int64)
    if s.ndim != 1 or not 1 <= s.size <= cfg.seq_len:
        raise ValueError(f"a row must hold 1 .. seq_len = {cfg.seq_len} scores, not {s.size}")
    check_range("s", s, cfg.in_width)
    e = exp_int(cfg, s.max() - s)
    total = int(e.sum())
    recip = (1 << cfg.recip_shift) // total
    shift = cfg.exp_frac + cfg.guard
    prob = (e * recip + (1 << (shift - 1))) >> shift
    return np.minimum(prob, (1 << cfg.prob_width) - 1)


def split_rows(cfg, beats):
    """Rows as the unit delimits them: ``beats`` are ``(score, last)`` pairs; a row ends at a
    beat with ``last`` set or at its ``seq_len``-th beat."""
    rows, row = [], []
    for score, last in beats:
        row.append(score)
        if last or len(row) == cfg.seq_len:
            rows.append(row)
            row = []
    if row:
        raise ValueError(f"the beats end inside a row ({len(row)} scores without last)")
    return rows


def softmax_rows(cfg, rows):
    """:func:`softmax_row` of each row (rows may differ in length): a list of int lists."""
    return [softmax_row(cfg, r).tolist() for r in rows]


def float_softmax(cfg, row):
    """The float reference ``softmax(alpha * s)``."""
    x = cfg.alpha * np.asarray(row, dtype=np.float64)
    x = np.exp(x - x.max())
    return x / x.sum()


def accuracy(cfg, rows):
    """Largest and mean absolute error of ``prob / 2**prob_width`` against :func:`float_softmax`
    over ``rows``: ``(max_abs, mean_abs)``."""
    errs = np.concatenate([np.abs(softmax_row(cfg, r) * 2.0 ** -cfg.prob_width - float_softmax(cfg, r))
                           for r in rows])
    return float(errs.max()), float(errs.mean())


def realistic_rows(cfg, rng, count, *, d_head=8, width=8):
    """Score rows of ``Q K^T`` for Gaussian ``Q``, ``K`` (``count`` rows of length ``seq_len``),
    each quantized to ``width``-bit integers with the per-tensor fraction bits of
    :func:`golden.quant.choose_frac`, with ``alpha`` set to ``2**-(fq+fk) / sqrt(d_head)``.

    Returns ``(cfg', rows)`` where ``cfg'`` is ``cfg`` with that ``scale`` (``scale_frac`` kept)
    and a wide enough ``in_width``.
    """
    import dataclasses

    from ..config import signed_range_width
    from .quant import choose_frac, quantize
    rows = []
    L = cfg.seq_len
    q = rng.standard_normal((count, d_head))
    k = rng.standard_normal((L, d_head))
    fq, fk = choose_frac(q, width), choose_frac(k, width)
    s = quantize(q, width, fq) @ quantize(k, width, fk).T
    alpha = 2.0 ** -(fq + fk) / np.sqrt(d_head)
    frac = 40
    scale = int(np.floor(alpha * 2.0 ** frac + 0.5))
    while scale >= 1 << 20:
        scale, frac = (scale + 1) >> 1, frac - 1
    wide = max(cfg.in_width, signed_range_width(int(s.min()), int(s.max())))
    new = dataclasses.replace(cfg, scale=scale, scale_frac=frac, in_width=wide)
    rows = [r for r in s]
    return new, rows


def accuracy_table(seed=2026):
    """The accuracy table of ``docs/baseline.md`` (markdown rows), computed, not typed:
    ``python -c "from damf.golden.softmax import accuracy_table; print(accuracy_table())"``.

    Random rows: ``golden.vectors.random_score_rows`` (random length, random spread) with the
    default ``alpha``; realistic rows: :func:`realistic_rows` (Gaussian ``Q``, ``K``, 8-bit,
    ``d_head = 64``).
    """
    from ..config import SoftmaxConfig
    from .vectors import random_score_rows
    rng = np.random.default_rng(seed)
    lines = ["| L | prob_width | random: max abs | random: mean abs | realistic: max abs | realistic: mean abs |",
             "|---|---|---|---|---|---|"]
    for length, width in ((8, 8), (128, 8), (128, 16)):
        cfg = SoftmaxConfig(seq_len=length, prob_width=width)
        a = accuracy(cfg, random_score_rows(cfg, rng, 2000))
        b = accuracy(*realistic_rows(cfg, rng, 500, d_head=64))
        lines.append(f"| {length} | {width} | {a[0]:.2e} | {a[1]:.2e} | {b[0]:.2e} | {b[1]:.2e} |")
    return "\n".join(lines)
