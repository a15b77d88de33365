"""Bit-exact model of the integer softmax unit (``hdl/softmax.py``): one pass over each row.

A row of ``n`` signed scores (``1 <= n <= seq_len``) arrives as beats of at most ``P =
parallel`` scores (:func:`softmax_row` cuts it into full beats and a last partial one;
:func:`softmax_beats` takes any cut).  With ``EF = exp_frac``, ``PW = prob_width``,
``G = guard``, ``F = exp_shift``, ``M = exp_mult``, ``K = recip_shift`` (all from
:class:`~damf.config.SoftmaxConfig`; ``>>`` is a floor shift, on negative numbers too)::

    # per score: -alpha*log2(e)*s = g + x/2**EF + (dropped bits), g an integer
    v     = -s * M                               # F fraction bits
    g     = v >> F                               # integer part (floor)
    x     = top EF fraction bits of v            # (v >> (F-EF)) mod 2**EF  (or << if F < EF)
    p     = 2**EF + ((x * (A1 + ((A2 * x) >> EF))) >> POLY_FRAC)   # ~ 2**-x * 2**EF
    # per beat b (scores of the beat only), the running reference G_b and the running sum S_b
    G_b   = min(g over the beat)                    if b == 0
          = min(G_(b-1), min(g over the beat))      otherwise
    e     = p >> min(g - G_b, EF + 1)            # ~ 2**EF * 2**(-alpha*log2(e)*s - G_b)
    S_b   = sum(e over the beat)                                         if b == 0
          = (S_(b-1) >> min(G_(b-1) - G_b, sum_width)) + sum(e over beat) otherwise
    # per row: G = G_last, S = S_last
    recip = 2**K // S                            # S > 2**(EF-2): recip < 2**recip_width
    prob  = min(((e >> min(G_b - G, EF + 1)) * recip + 2**(EF+G-1)) >> (EF + G), 2**PW - 1)

The reference ``G`` is the smallest ``g`` of the row, an integer in log2 units, so lowering the
reference by ``k`` turns every exponential into itself shifted right by ``k``, exactly:
``e >> min(G_b - G, EF+1) = p >> min(g - G, EF+1)`` whatever the beat (the probabilities'
numerators do not depend on how the row is cut into beats).  The sum does, slightly: a partial
sum shifted right when the reference drops is floored once, not term by term, so
``sum(p >> min(g - G, EF+1)) <= S <= sum(p * 2**-(g - G))`` -- the sum lies between the sum of
the final numerators and its unrounded value, and where in between depends on the cut.  The
score of ``g = G`` has ``e = p >= 2**(EF-1) - 2**(EF-16)``, so ``S > 2**(EF-2)``.

``prob[i] / 2**PW`` approximates ``softmax(alpha * s)[i]``.  Errors (measured by
:func:`accuracy`, reported in ``docs/baseline.md``): the polynomial (1.9e-3 absolute, 3.8e-3
relative, on each ``e``), the truncation of ``e`` to ``EF`` fraction bits (``e`` of the row's
largest score is in ``[1/2, 1]``, so one bit less than a reference at the exact maximum would
give), the rounding of ``prob`` to ``PW`` bits (half an LSB) and the reciprocal (below ``2**-G``
LSB).
"""

import numpy as np

from ..config import SOFTMAX_POLY_A1, SOFTMAX_POLY_A2, SOFTMAX_POLY_FRAC, SoftmaxConfig, signed_range_width
from .inner_product import check_range
from .quant import choose_frac, int_range, quantize

__all__ = ["exp_parts", "exp_poly", "row_beats", "softmax_beats", "softmax_row", "softmax_rows", "split_beats",
           "float_softmax", "accuracy", "realistic_rows", "accuracy_table"]


def exp_poly(cfg, x):
    """``p ~ 2**exp_frac * 2**(-x / 2**exp_frac)`` for ``0 <= x < 2**exp_frac`` (int64 array)."""
    x = np.asarray(x, dtype=np.int64)
    inner = SOFTMAX_POLY_A1 + ((SOFTMAX_POLY_A2 * x) >> cfg.exp_frac)
    return (1 << cfg.exp_frac) + ((x * inner) >> SOFTMAX_POLY_FRAC)


def exp_parts(cfg, s):
    """``(g, p)`` of scores ``s``: the integer part ``g`` of ``-alpha*log2(e)*s`` and the
    polynomial ``p`` of its fraction (int64 arrays)."""
    ef, f = cfg.exp_frac, cfg.exp_shift
    v = -np.asarray(s, dtype=np.int64) * cfg.exp_mult
    g = v >> f
    if f >= ef:
        x = (v >> (f - ef)) & ((1 << ef) - 1)
    else:
        x = (v << (ef - f)) & ((1 << ef) - 1)
    return g, exp_poly(cfg, x)


def row_beats(cfg, row):
    """The beats of a row as the unit takes them: full beats of ``parallel`` scores and a last
    partial one."""
    P = cfg.parallel
    return [list(row[b:b + P]) for b in range(0, len(row), P)]


def softmax_beats(cfg, beats):
    """Probabilities of one row given as beats (lists of 1 .. ``parallel`` scores, at most
    ``max_beats`` of them): a list of int lists, one per beat."""
    if not 1 <= len(beats) <= cfg.max_beats:
        raise ValueError(f"a row must hold 1 .. max_beats = {cfg.max_beats} beats, not {len(beats)}")
    ef = cfg.exp_frac
    refs, exps = [], []
    total = ref = 0
    for b, beat in enumerate(beats):
        s = np.asarray(beat, dtype=np.int64)
        if s.ndim != 1 or not 1 <= s.size <= cfg.parallel:
            raise ValueError(f"a beat must hold 1 .. parallel = {cfg.parallel} scores, not {s.size}")
        check_range("s", s, cfg.in_width)
        g, p = exp_parts(cfg, s)
        low = int(g.min()) if b == 0 else min(ref, int(g.min()))
        e = p >> np.minimum(g - low, ef + 1)
        total = int(e.sum()) if b == 0 else (total >> min(ref - low, cfg.sum_width)) + int(e.sum())
        ref = low
        refs.append(low)
        exps.append(e)
    recip = (1 << cfg.recip_shift) // total
    shift = ef + cfg.guard
    limit = (1 << cfg.prob_width) - 1
    return [np.minimum(((e >> min(r - ref, ef + 1)) * recip + (1 << (shift - 1))) >> shift, limit).tolist()
            for r, e in zip(refs, exps)]


def softmax_row(cfg, row):
    """Probabilities (int64, ``prob_width`` fraction bits) of one row, as the unit computes them
    when the row arrives in full beats (:func:`row_beats`)."""
    s = np.asarray(row, dtype=np.int64)
    if s.ndim != 1 or not 1 <= s.size <= cfg.seq_len:
        raise ValueError(f"a row must hold 1 .. seq_len = {cfg.seq_len} scores, not {s.size}")
    return np.asarray(sum(softmax_beats(cfg, row_beats(cfg, s.tolist())), []), dtype=np.int64)


def split_beats(cfg, beats):
    """Rows as the unit delimits them: ``beats`` are ``(values, last)`` pairs (``values`` the
    beat's valid lanes); a row ends at a beat with ``last`` set or at its ``max_beats``-th beat.
    Returns a list of rows, each a list of beats."""
    rows, row = [], []
    for values, last in beats:
        row.append(list(values))
        if last or len(row) == cfg.max_beats:
            rows.append(row)
            row = []
    if row:
        raise ValueError(f"the beats end inside a row ({len(row)} beats without last)")
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


def random_score_rows(cfg, rng, count):
    """``count`` rows of random length ``1 .. seq_len``; each row's scores are spread over a
    random fraction of the input range, so the probabilities are neither all one-hot nor flat."""
    lo, hi = int_range(cfg.in_width)
    rows = []
    for _ in range(count):
        n = int(rng.integers(1, cfg.seq_len, endpoint=True))
        span = max(1, int(hi * 2.0 ** -rng.integers(0, cfg.in_width)))
        centre = int(rng.integers(lo + span, hi - span, endpoint=True)) if hi - span >= lo + span else 0
        rows.append(np.clip(rng.integers(centre - span, centre + span, n, endpoint=True), lo, hi).tolist())
    return rows


def accuracy_table(seed=2026):
    """The accuracy table of ``docs/baseline.md`` (markdown rows), computed, not typed:
    ``python -c "from damf.golden.softmax import accuracy_table; print(accuracy_table())"``.

    Random rows: :func:`random_score_rows` (random length, random spread) with the
    default ``alpha``; realistic rows: :func:`realistic_rows` (Gaussian ``Q``, ``K``, 8-bit,
    ``d_head = 64``).
    """
    rng = np.random.default_rng(seed)
    lines = ["| L | parallel | prob_width | random: max abs | random: mean abs | realistic: max abs "
             "| realistic: mean abs |",
             "|---|---|---|---|---|---|---|"]
    for length, parallel, width in ((8, 4, 8), (128, 4, 8), (128, 16, 8), (128, 4, 16)):
        cfg = SoftmaxConfig(seq_len=length, parallel=parallel, prob_width=width)
        a = accuracy(cfg, random_score_rows(cfg, rng, 2000))
        b = accuracy(*realistic_rows(cfg, rng, 500, d_head=64))
        lines.append(f"| {length} | {parallel} | {width} | {a[0]:.2e} | {a[1]:.2e} | {b[0]:.2e} | {b[1]:.2e} |")
    return "\n".join(lines)
