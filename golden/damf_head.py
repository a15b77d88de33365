"""Bit-exact model of one DAMF attention head: scores, softmax approximation and ``A' x V``.

The specification is ``docs/numerics.md``; this module follows it line by line and is the
reference the RTL (``damf-head``) must match with zero mismatches.  Summary:

* Scores ``A[m, n] = sum_k p[m, k] * q[n, k]``, exact (``DamfHeadConfig.score_width``).
* Every row uses only the keys it attends to (all ``Lk`` keys, or ``n <= m`` when causal):
  ``N`` keys, ``A_max``, ``M = max |A|``, ``S = sum A`` and ``SV = sum V_n``.
* Power-of-two rounding :func:`pow2_round` is nearest in the linear domain, ties to the
  larger power: ``P(x) = k + bit[k-1](x)`` with ``k`` the leading-one position of ``|x|``;
  the sign is kept apart and ``P(0)`` is a zero flag.
* ``maclaurin`` (the paper's eq. 13-17): weights ``2^P(C) + sign(A) 2^P(|A|)`` over
  ``2^P(D)``, ``C = A_max`` and ``D = N*C + S``; when ``A_max <= 0`` or ``D <= 0`` the row
  falls back to ``C = M`` (the ``maclaurin-abs`` normaliser), and a row whose scores are all
  equal and ``<= 0`` averages ``V`` uniformly over ``2^P(N)``.
* ``base2``: weights ``2^-e`` with ``e = round(c * (A_max - A))`` (``c = c_int 2^-c_frac``),
  ``e > weight_frac`` dropped, row sum of weights rounded with :func:`pow2_round`.
* Terms are shifted left by ``t = weight_frac + (exponent - row reference)`` in
  ``[0, weight_frac]`` (below 0: dropped); one final shift, rounded half away from zero, and
  saturation to ``out_width`` bits with ``out_frac`` fraction bits.

Integers are exact: int64 with explicit range checks when every intermediate fits in 62 bits
(:func:`exact_ints` is false, the fast path), otherwise NumPy object arrays of Python
integers, with the same code and the same results; no width is limited by the model.  The
float helpers at the end (:func:`damf_attention_float`, :func:`softmax_attention`,
:func:`accuracy_summary`) are for accuracy studies only.

The head's numerics (widths, mode, window, rounding) are a configuration,
:class:`damf.config.DamfHeadConfig`, beside the configurations of the RTL blocks built on it
(``score``, ``row-stats``, ``shift-accumulate``, ``damf-head``) in ``damf/config/damf_head.py``.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from ..config.damf_head import C_FRAC_MAX, MODES, DamfHeadConfig
from .inner_product import check_range
from .damf_float import augment, fused_matrix, singular_vectors
from .quant import choose_frac, choose_shift, int_range, quantize, requantize
from .reference import random_weights

__all__ = [
    "base2_constant", "exact_ints",
    "attention_mask", "scores", "RowStats", "row_stats", "value_sums", "count_times",
    "pow2_round", "maclaurin_normaliser", "base2_exponents", "shift_accumulate",
    "round_shift", "damf_head",
    "pow2_round_float", "damf_attention_float", "softmax_attention", "accuracy_summary",
    "accuracy_report", "format_accuracy",
    "realistic_head", "realistic_inputs",
]

# int64 holds every intermediate exactly when all derived widths are at most this.
_INT64_WIDTH = 62


def exact_ints(cfg):
    """Whether the head needs Python integers: some intermediate (score, ``S``, ``D``, the
    accumulator or ``A_max - A``) may need more than 62 bits, so int64 could overflow.  The
    golden model then works on NumPy object arrays; the results are the same."""
    return max(cfg.score_width, cfg.sum_width, cfg.den_width, cfg.acc_width,
               cfg.delta_width + 1) > _INT64_WIDTH


def base2_constant(scale, bits=12):
    """``(c_int, c_frac)`` with ``c_int * 2^-c_frac ~= log2(e) * scale`` and ``c_int`` of ``bits`` bits.

    ``scale`` is the real logit of one score LSB, e.g. ``2^-(p_frac + q_frac) / sqrt(d_head)``.
    """
    c = float(scale) * math.log2(math.e)
    if not c > 0 or not math.isfinite(c):
        raise ValueError(f"the base2 scale must be a positive number, not {scale!r}")
    c_frac = bits - 1 - math.floor(math.log2(c))
    c_int = int(math.floor(c * 2.0 ** c_frac + 0.5))
    if c_int >= 1 << bits:
        c_frac -= 1
        c_int = int(math.floor(c * 2.0 ** c_frac + 0.5))
    if not 0 <= c_frac <= C_FRAC_MAX:
        raise ValueError(f"the base2 constant {c!r} needs c_frac = {c_frac}, outside [0, {C_FRAC_MAX}]")
    return c_int, c_frac


# ---- integer datapath ----------------------------------------------------------------------

def _cfg(cfg, mode=None):
    cfg = DamfHeadConfig() if cfg is None else cfg
    if not isinstance(cfg, DamfHeadConfig):
        raise TypeError(f"cfg must be a DamfHeadConfig, not {type(cfg).__name__}")
    if mode is not None and mode != cfg.mode:
        cfg = replace(cfg, mode=mode)
    return cfg


def attention_mask(lq, lk, causal=False):
    """``mask[m, n]``: query ``m`` attends to key ``n`` (all, or ``n <= m`` when causal)."""
    if causal and lq != lk:
        raise ValueError(f"causal attention needs as many queries as keys, not Lq={lq} and Lk={lk}")
    if causal:
        return np.tril(np.ones((lq, lk), dtype=bool))
    return np.ones((lq, lk), dtype=bool)


def _ints(x, exact=False):
    """``x`` as exact integers: int64, or an object array of Python ints when ``exact`` or when
    ``x`` is an object array already (so an exact computation stays exact)."""
    x = np.asarray(x)
    if x.dtype == object:
        return np.array(np.frompyfunc(int, 1, 1)(x), dtype=object) if x.size else x
    x = x.astype(np.int64)
    return x.astype(object) if exact else x


def _matrix(name, x, rows, cols, width):
    x = np.asarray(x)
    if x.ndim != 2 or (rows is not None and x.shape[0] != rows) or x.shape[1] != cols:
        want = f"{rows if rows is not None else 'L'} x {cols}"
        raise ValueError(f"{name} must be a {want} matrix, not of shape {x.shape}")
    if x.dtype.kind not in "iub" and not (x.dtype == object and all(
            isinstance(e, (int, np.integer)) for e in x.flat)):
        raise TypeError(f"{name} must hold integers, not {x.dtype}")
    check_range(name, _ints(x), width)
    return x.astype(np.int64)       # at most 32 bits (pq_width, v_width)


def _check_lengths(cfg, lq, lk):
    for name, length in (("Lq", lq), ("Lk", lk)):
        if not 1 <= length <= cfg.seq_len:
            raise ValueError(f"{name} must be in [1, seq_len = {cfg.seq_len}], not {length}")


def scores(p, q, cfg=None):
    """``A = p q^T`` (``Lq x Lk``), exact in ``cfg.score_width`` bits: int64, or an object
    array of Python ints when :func:`exact_ints` (``cfg``)."""
    cfg = _cfg(cfg)
    exact = exact_ints(cfg)
    p = _ints(_matrix("p", p, None, cfg.rank, cfg.pq_width), exact)
    q = _ints(_matrix("q", q, None, cfg.rank, cfg.pq_width), exact)
    A = p @ q.T
    check_range("A", A, cfg.score_width)
    return A


@dataclass(frozen=True)
class RowStats:
    """Per-row statistics over the attended keys (each an ``Lq`` vector; ``A_max``, ``M`` and
    ``S`` are object arrays of Python ints when :func:`exact_ints`)."""
    count: np.ndarray      # N
    a_max: np.ndarray      # A_max = max_n A_mn
    a_absmax: np.ndarray   # M = max_n |A_mn|
    a_sum: np.ndarray      # S = sum_n A_mn


def row_stats(A, mask, cfg=None):
    """``N``, ``A_max``, ``M`` and ``S`` of every row, over the keys ``mask`` selects."""
    cfg = _cfg(cfg)
    A = _ints(A, exact_ints(cfg))
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != A.shape:
        raise ValueError(f"mask must have the shape of A {A.shape}, not {mask.shape}")
    count = mask.sum(axis=1).astype(np.int64)
    if np.any(count == 0):
        raise ValueError(f"every query must attend to at least one key; row {int(np.argmin(count))} attends to none")
    lo = cfg.score_range[0] if A.dtype == object else np.int64(cfg.score_range[0])
    a_max = np.where(mask, A, lo).max(axis=1)
    a_absmax = np.where(mask, np.abs(A), 0).max(axis=1)
    a_sum = np.where(mask, A, 0).sum(axis=1)
    check_range("S", a_sum, cfg.sum_width)
    return RowStats(count, a_max, a_absmax, a_sum)


def value_sums(V, mask, cfg=None):
    """``SV[m] = sum_{n attended by m} V_n`` (``Lq x d_head``): one sum per head, or prefix sums if causal."""
    cfg = _cfg(cfg)
    SV = np.asarray(mask, dtype=np.int64) @ np.asarray(V, dtype=np.int64)   # vsum_width <= 49 bits
    check_range("SV", SV, cfg.vsum_width)
    return SV


def count_times(c, n, n_bits):
    """``n * c`` by shift-add over the ``n_bits`` bits of ``n >= 0`` (no multiplier).

    ``sum_j bit_j(n) * (c << j)``: what the RTL does for ``N * C`` when ``N`` is a run-time
    count (``L`` not a power of two, causal rows).  An object array ``c`` (Python ints) gives
    an object result.
    """
    c = _ints(c)
    n = np.asarray(n, dtype=np.int64)
    if np.any(n < 0) or np.any(n >> n_bits):
        raise ValueError(f"n must be in [0, {(1 << n_bits) - 1}], not {n}")
    total = np.zeros(np.broadcast(c, n).shape, dtype=c.dtype)
    for j in range(n_bits):
        total = total + np.where((n >> j) & 1, c << j, 0)
    return total


def _bit_length(x):
    """Vectorised ``int.bit_length`` of non-negative integers (a leading-one detector)."""
    if np.asarray(x).dtype == object:
        return np.asarray(np.frompyfunc(lambda v: int(v).bit_length(), 1, 1)(x), dtype=np.int64)
    x = np.array(x, dtype=np.int64)
    n = np.zeros(x.shape, dtype=np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (np.int64(1) << s)
        n += np.where(big, s, 0)
        x = np.where(big, x >> s, x)
    return n + (x > 0)


def pow2_round(x):
    """Power-of-two rounding of signed integers: ``(sign, exp)`` with ``x ~= sign * 2^exp``.

    ``exp = P(|x|) = k + bit[k-1](|x|)``, ``k`` the leading-one position of ``|x|``:
    nearest power of two in the linear domain, ties (``|x| = 1.5 * 2^k``) to the larger.
    ``x = 0`` gives ``sign = 0, exp = 0``.  Any integers (int64, or an object array of Python
    ints); ``sign`` and ``exp`` are int64.
    """
    x = _ints(x)
    if x.dtype != object and x.size and x.min() == np.iinfo(np.int64).min:
        x = x.astype(object)                  # |x| = 2^63 is beyond int64
    mag = np.abs(x)
    k = _bit_length(mag) - 1
    nxt = np.asarray((mag >> np.maximum(k - 1, 0)) & 1, dtype=np.int64)
    exp = np.where(mag > 0, k + np.where(k >= 1, nxt, 0), 0)
    return np.asarray(np.sign(x), dtype=np.int64), exp.astype(np.int64)


def maclaurin_normaliser(stats, mode, cfg=None):
    """``(C, D, uniform, abs_fallback)`` per row for the maclaurin modes.

    maclaurin: ``C = A_max`` when ``A_max > 0`` and ``N A_max + S > 0``, else ``C = M``
    (``abs_fallback``).  maclaurin-abs: ``C = M``.  ``D = N C + S`` (shift-add over the bits
    of ``N``).  ``uniform``: ``D <= 0``, only when all attended scores equal ``-M <= 0``.
    """
    cfg = _cfg(cfg)
    if mode not in ("maclaurin", "maclaurin-abs"):
        raise ValueError(f"mode must be maclaurin or maclaurin-abs, not {mode!r}")
    N, a_max, M, S = stats.count, stats.a_max, stats.a_absmax, stats.a_sum
    if mode == "maclaurin":
        d_max = count_times(np.maximum(a_max, 0), N, cfg.count_width) + S
        use_max = (a_max > 0) & (d_max > 0)
        C = np.where(use_max, a_max, M)
        abs_fallback = ~use_max
    else:
        C = M
        abs_fallback = np.zeros(M.shape, dtype=bool)
    D = count_times(C, N, cfg.count_width) + S
    check_range("D", D, cfg.den_width)
    return C, D, np.asarray(D <= 0, dtype=bool), np.asarray(abs_fallback, dtype=bool)


def base2_exponents(A, a_max, mask, cfg=None):
    """``(keep, e)``: base2 exponents ``e = round_half_up(c (A_max - A))`` in ``[0, weight_frac]``.

    ``e = floor((2 c_int delta + 2^c_frac) / 2^(c_frac+1))`` for ``delta = A_max - A``, computed
    without a multiplier as the number of thresholds ``theta_1 .. theta_F`` that ``delta``
    reaches (:attr:`DamfHeadConfig.base2_thresholds`).  ``keep`` is false for masked keys and
    for ``delta >= theta_(F+1) = delta_limit`` (``e > weight_frac``: weight dropped); ``e`` is 0
    there.
    """
    cfg = _cfg(cfg)
    exact = exact_ints(cfg) or np.asarray(A).dtype == object or np.asarray(a_max).dtype == object
    delta = _ints(a_max, exact)[:, None] - _ints(A, exact)
    if np.any(np.asarray(mask, dtype=bool) & (delta < 0)):
        raise ValueError("A_max must be the largest attended score of its row")
    theta = list(cfg.base2_thresholds)
    if not exact:
        # In int64, every delta is below 2^61: larger thresholds are clamped to 2^62, never reached.
        theta = [min(th, 1 << 62) for th in theta]
    keep = np.asarray(mask, dtype=bool) & np.asarray(delta < theta[-1], dtype=bool)
    e = np.zeros(delta.shape, dtype=np.int64)
    for th in theta[:-1]:
        e += np.asarray(delta >= th, dtype=bool)
    return keep, np.where(keep, e, 0)


def shift_accumulate(V, sign, shift, cfg=None, *, vsum=None, vsum_shift=None):
    """``acc[m] = sum_n sign[m,n] (V_n << shift[m,n]) + (SV_m << vsum_shift[m])``.

    A term is present where ``sign != 0`` and ``0 <= shift <= weight_frac``; a negative shift
    drops it (the left shifter has no right shifts).  The same for ``vsum_shift``.  ``acc``
    is an object array of Python ints when ``acc_width`` is above 62 bits.
    """
    cfg = _cfg(cfg)
    F = cfg.weight_frac
    exact = cfg.acc_width > _INT64_WIDTH
    V = _ints(V, exact)
    sign = np.asarray(sign, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    on = (sign != 0) & (shift >= 0)
    if np.any(on & (shift > F)) or (vsum_shift is not None and np.any(np.asarray(vsum_shift) > F)):
        raise ValueError(f"shifts must be at most weight_frac = {F}")
    terms = _ints(np.where(on, sign, 0), exact)[:, :, None] * (V[None, :, :] << np.where(on, shift, 0)[:, :, None])
    acc = terms.sum(axis=1)
    if vsum is not None:
        vsum_shift = np.asarray(vsum_shift, dtype=np.int64)
        on_c = vsum_shift >= 0
        acc = acc + np.where(on_c[:, None], _ints(vsum, exact) << np.where(on_c, vsum_shift, 0)[:, None], 0)
    check_range("acc", acc, cfg.acc_width)
    return acc


def round_shift(acc, sh, width, acc_width=60):
    """``saturate(round_half_away(acc * 2^-sh), width)``; ``sh`` may be negative (left shift).

    Right (``sh > 0``): ``(acc + 2^(sh-1) - [acc < 0]) >> sh`` (arithmetic).  A right shift
    by more than ``acc_width + 1`` equals one by ``acc_width + 1`` (the result is 0), and a
    left shift by ``width`` or more saturates any non-zero ``acc``, so the hardware shifter
    needs only ``[-width, acc_width + 1]``.  Exact for any widths (Python ints past int64);
    the result is int64 for ``width <= 64``.
    """
    exact = np.asarray(acc).dtype == object or acc_width > _INT64_WIDTH or width > 63
    acc = _ints(acc, exact)
    sh = np.broadcast_to(np.asarray(sh, dtype=np.int64), acc.shape)
    right = np.clip(sh, 0, acc_width + 1)
    one = _ints(np.ones(acc.shape, dtype=np.int64), exact)
    bias = np.where(right > 0, (one << np.maximum(right - 1, 0)) - (acc < 0), 0)
    down = (acc + bias) >> right
    lo, hi = int_range(width)
    left = np.clip(-sh, 0, width)
    # acc << left, saturated before it could overflow: |acc| beyond hi >> left saturates.
    hi_l, lo_l = _ints(hi, exact) >> left, _ints(lo, exact) >> left
    up = np.where(acc > hi_l, hi, np.where(acc < lo_l, lo, acc << left))
    out = np.where(sh > 0, down, up)
    out = np.minimum(np.maximum(out, lo), hi)
    return out.astype(np.int64) if width <= 64 else out


def damf_head(p, q, V, cfg=None, *, mode=None, causal=False, trace=False):
    """Bit-exact DAMF head: ``Z`` (``Lq x d_head`` int64, ``out_width`` bits, ``out_frac`` fraction bits).

    ``p`` is ``Lq x rank``, ``q`` is ``Lk x rank`` and ``V`` is ``Lk x d_head`` (cross-attention
    when ``Lq != Lk``); ``causal`` masks keys ``n > m``.  ``mode`` overrides ``cfg.mode``.  With
    ``trace=True`` returns ``(Z, t)``, ``t`` a dict of every intermediate (per row or per
    ``(m, n)``; names as in ``docs/numerics.md``) for debugging the RTL.
    """
    cfg = _cfg(cfg, mode)
    F, of = cfg.weight_frac, cfg.out_frac
    p = _matrix("p", p, None, cfg.rank, cfg.pq_width)
    q = _matrix("q", q, None, cfg.rank, cfg.pq_width)
    V = _matrix("V", V, q.shape[0], cfg.d_head, cfg.v_width)
    _check_lengths(cfg, p.shape[0], q.shape[0])
    A = scores(p, q, cfg)
    mask = attention_mask(p.shape[0], q.shape[0], causal)
    st = row_stats(A, mask, cfg)
    t = {"A": A, "mask": mask, "N": st.count, "A_max": st.a_max, "M": st.a_absmax, "S": st.a_sum}

    if cfg.mode == "base2":
        keep, e = base2_exponents(A, st.a_max, mask, cfg)
        shift = np.where(keep, F - e, -1)
        weights = np.where(keep, np.int64(1) << np.where(keep, F - e, 0), 0)
        W = weights.sum(axis=1)
        check_range("W", W, cfg.wsum_width + 1)
        _, I_W = pow2_round(W)
        acc = shift_accumulate(V, keep.astype(np.int64), shift, cfg)
        sh = I_W - of
        t.update(keep=keep, e=e, W=W, I_W=I_W)
    else:
        C, D, uniform, fallback = maclaurin_normaliser(st, cfg.mode, cfg)
        SV = value_sums(V, mask, cfg)
        s_A, I_A = pow2_round(A)
        _, I_C = pow2_round(C)
        _, R = pow2_round(st.a_absmax)
        _, I_D = pow2_round(np.maximum(D, 1))
        _, I_N = pow2_round(st.count)
        # A uniform row: weight 1 = 2^0 for every key through the SV term, D = N.
        R = np.where(uniform, 0, R)
        I_C = np.where(uniform, 0, I_C)
        I_D = np.where(uniform, I_N, I_D)
        sign = np.where(mask & ~uniform[:, None], s_A, 0)
        shift = np.where(sign != 0, F + I_A - R[:, None], -1)
        c_shift = F + I_C - R
        acc = shift_accumulate(V, sign, shift, cfg, vsum=SV, vsum_shift=c_shift)
        sh = I_D - R + F - of
        on = (sign != 0) & (shift >= 0)
        weights = (np.where(c_shift >= 0, np.int64(1) << np.maximum(c_shift, 0), 0)[:, None]
                   + np.where(on, sign * (np.int64(1) << np.where(on, shift, 0)), 0)) * mask
        t.update(C=C, D=D, uniform=uniform, abs_fallback=fallback, SV=SV, sign=sign,
                 I_A=I_A, I_C=I_C, R=R, I_D=I_D, c_shift=c_shift)
    Z = round_shift(acc, sh[:, None], cfg.out_width, cfg.acc_width)
    if not trace:
        return Z
    t.update(shift=shift, weights=weights, acc=acc, sh=sh, Z=Z)
    return Z, t


# ---- float helpers (accuracy studies; not bit-exact) ----------------------------------------

def pow2_round_float(x):
    """Float twin of :func:`pow2_round`: ``sign(x) 2^P(|x|)`` (0 stays 0), same tie rule."""
    x = np.asarray(x, dtype=np.float64)
    mant, ex = np.frexp(np.abs(x))          # |x| = mant 2^ex, mant in [0.5, 1)
    exp = (ex - 1) + (mant >= 0.75)
    return np.where(x == 0, 0.0, np.sign(x) * np.ldexp(1.0, exp))


def damf_attention_float(A, V, *, mode="maclaurin", causal=False, c=None, pow2=True, max_exp=None):
    """The DAMF approximation in float: ``(out, weights)`` for scores ``A`` and values ``V``.

    Same rules as :func:`damf_head` (normaliser choice, fallbacks, tie rule) but without the
    weight window, the final rounding and saturation.  ``pow2=False`` skips every power-of-two
    rounding: maclaurin then is the paper's linearised softmax (eq. 13), and base2 is exactly
    ``softmax(c ln2 A)``.  ``c`` is the base2 constant (required for base2); ``max_exp``
    drops base2 weights below ``2^-max_exp`` (``None``: keep all).
    """
    A = np.asarray(A, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    mask = attention_mask(A.shape[0], A.shape[1], causal)
    r2 = pow2_round_float if pow2 else (lambda x: np.asarray(x, dtype=np.float64))
    N = mask.sum(axis=1).astype(np.float64)
    a_max = np.where(mask, A, -np.inf).max(axis=1)
    if mode == "base2":
        if c is None:
            raise ValueError("base2 needs the constant c")
        e = c * (a_max[:, None] - A)
        if pow2:
            e = np.floor(e + 0.5)
        w = np.where(mask, 2.0 ** -np.where(mask, e, 0.0), 0.0)
        if max_exp is not None:
            w = np.where(e > max_exp, 0.0, w)
        den = r2(w.sum(axis=1))
    elif mode in ("maclaurin", "maclaurin-abs"):
        M = np.where(mask, np.abs(A), 0.0).max(axis=1)
        S = np.where(mask, A, 0.0).sum(axis=1)
        if mode == "maclaurin":
            use_max = (a_max > 0) & (N * a_max + S > 0)
            C = np.where(use_max, a_max, M)
        else:
            C = M
        D = N * C + S
        uniform = D <= 0
        w = np.where(mask, r2(C)[:, None] + r2(A), 0.0)
        w = np.where(uniform[:, None], mask.astype(np.float64), w)
        den = np.where(uniform, r2(N), r2(np.where(uniform, 1.0, D)))
    else:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    weights = w / den[:, None]
    return weights @ V, weights


def softmax_attention(A, V, scale, *, causal=False):
    """Exact ``softmax(scale * A) V`` (``scale``: a number or one per row): ``(out, probs)``."""
    A = np.asarray(A, dtype=np.float64)
    mask = attention_mask(A.shape[0], A.shape[1], causal)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (A.shape[0],))
    logits = np.where(mask, scale[:, None] * A, -np.inf)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    return probs @ np.asarray(V, dtype=np.float64), probs


def _metrics(got, ref, got_w, ref_w, mask):
    diff = np.linalg.norm(got - ref)
    norm = np.linalg.norm(ref)
    rows = [(g, r) for g, r in zip(got, ref) if np.linalg.norm(g) > 0 and np.linalg.norm(r) > 0]
    cos = [float(g @ r / (np.linalg.norm(g) * np.linalg.norm(r))) for g, r in rows]
    best = np.where(mask, ref_w, -np.inf).argmax(axis=1)
    top = np.where(mask, got_w, -np.inf)
    agree = top[np.arange(len(best)), best] == top.max(axis=1)
    return {
        "rel_error": float(diff / norm) if norm > 0 else float(diff),
        "cosine_mean": float(np.mean(cos)) if cos else 1.0,
        "cosine_min": float(np.min(cos)) if cos else 1.0,
        "argmax_agreement": float(np.mean(agree)),
    }


def accuracy_summary(p, q, V, cfg=None, *, mode=None, causal=False, softmax_scale=None,
                     softmax_scores=None):
    """Compare the integer head (dequantized, ``Z 2^-out_frac``) with float references.

    Returns ``{"float_damf": {...}, "softmax": {...}, "softmax_scale": ...}``, each with
    ``rel_error`` (Frobenius), ``cosine_mean`` / ``cosine_min`` (per output row) and
    ``argmax_agreement`` (share of rows whose reference attention argmax is among the integer
    head's largest weights).  ``float_damf`` is :func:`damf_attention_float` on the same
    integer inputs; ``softmax`` is exact ``softmax(scale A) V`` with ``softmax_scale`` (real
    logit per score LSB), by default the mode's own target: ``c ln2`` for base2, ``1 / C``
    per row (the paper's eq. 10-11) for the maclaurin modes.  ``softmax_scores``: the scores
    of the softmax reference (default: the head's integer ``A``), e.g. those of ``p`` and ``q``
    before their requantization, with ``softmax_scale`` in their units.
    """
    cfg = _cfg(cfg, mode)
    Z, t = damf_head(p, q, V, cfg, causal=causal, trace=True)
    got = Z * 2.0 ** -cfg.out_frac
    A = t["A"].astype(np.float64)
    mask = t["mask"]
    Vf = np.asarray(V, dtype=np.float64)
    c = cfg.c_int * 2.0 ** -cfg.c_frac
    ref_damf, w_damf = damf_attention_float(A, Vf, mode=cfg.mode, causal=causal, c=c,
                                            max_exp=cfg.weight_frac)
    if softmax_scale is None:
        if cfg.mode == "base2":
            softmax_scale = c * math.log(2.0)
        else:
            C = t["C"].astype(np.float64)
            softmax_scale = np.where(C > 0, 1.0 / np.where(C > 0, C, 1.0), 0.0)
    A_sm = A if softmax_scores is None else np.asarray(softmax_scores, dtype=np.float64)
    ref_sm, w_sm = softmax_attention(A_sm, Vf, softmax_scale, causal=causal)
    w_int = t["weights"].astype(np.float64)
    return {
        "float_damf": _metrics(got, ref_damf, w_int, w_damf, mask),
        "softmax": _metrics(got, ref_sm, w_int, w_sm, mask),
        "softmax_scale": softmax_scale,
    }


def realistic_head(cfg, rng, length, *, d_model=None, logit_gain=1.0, exact_width=None):
    """One head of a random float attention layer as the DAMF head's integers, with and
    without the requantization of ``p`` and ``q`` (``docs/numerics.md`` sections 3a and 12).

    Float ``X`` and weights (``golden.reference.random_weights``), fused rank-``cfg.rank``
    singular vectors (``golden.damf_float``); ``V`` quantized to ``v_width`` bits, ``p`` and
    ``q`` each quantized to ``exact_width`` bits with its own power-of-two scale
    (``golden.quant.choose_frac``): the exact outputs of an inner-product unit.  Then, if
    ``exact_width > pq_width``, both are requantized to ``cfg.pq_width`` bits with one shift,
    the smallest that saturates neither (``golden.quant.choose_shift``, calibrated per head);
    otherwise they are quantized to ``pq_width`` bits directly and the shift is 0.

    Returns a dict: ``p``, ``q``, ``V``, ``scale`` (the real logit of one score LSB,
    ``2^-(p_frac + q_frac - 2 pq_shift) / sqrt(d_head)``, times ``logit_gain`` to sharpen the
    attention; ready for :func:`base2_constant`), ``pq_shift``, and ``A_exact`` / ``scale_exact``:
    the scores of the unrequantized ``p``, ``q`` (float) and their scale, for the reference.
    """

    d_model = d_model if d_model is not None else 4 * cfg.d_head
    exact_width = cfg.pq_width if exact_width is None else max(exact_width, cfg.pq_width)
    weights = random_weights(d_model, d_model // cfg.d_head, rng)
    X = rng.normal(0.0, 1.0, (length, d_model))
    Wq, bq = weights.head("q", 0)
    Wk, bk = weights.head("k", 0)
    Wv, bv = weights.head("v", 0)
    u, v, _ = singular_vectors(fused_matrix(Wq, bq, Wk, bk), cfg.rank)
    gain = math.sqrt(logit_gain)
    pf, qf, Vf = gain * augment(X) @ u.T, gain * augment(X) @ v.T, X @ Wv + bv
    fp, fq, fv = choose_frac(pf, exact_width), choose_frac(qf, exact_width), choose_frac(Vf, cfg.v_width)
    pe, qe = quantize(pf, exact_width, fp), quantize(qf, exact_width, fq)
    shift = choose_shift(np.concatenate([pe.ravel(), qe.ravel()]), cfg.pq_width)
    root = math.sqrt(cfg.d_head)
    return {"p": requantize(pe, shift, cfg.pq_width), "q": requantize(qe, shift, cfg.pq_width),
            "V": quantize(Vf, cfg.v_width, fv), "scale": 2.0 ** -(fp + fq - 2 * shift) / root,
            "pq_shift": shift, "A_exact": pe.astype(np.float64) @ qe.T.astype(np.float64),
            "scale_exact": 2.0 ** -(fp + fq) / root}


def realistic_inputs(cfg, rng, length, *, d_model=None, logit_gain=1.0):
    """Integer ``(p, q, V, scale)`` of one head of a random float attention layer:
    :func:`realistic_head` with ``p`` and ``q`` quantized to ``pq_width`` bits directly."""
    h = realistic_head(cfg, rng, length, d_model=d_model, logit_gain=logit_gain)
    return h["p"], h["q"], h["V"], h["scale"]


def accuracy_report(cfg=None, *, length=None, seeds=3, logit_gain=1.0, causal=False, modes=MODES,
                    d_model=None, exact_width=None, progress=None):
    """The head's accuracy in each mode against float DAMF and exact softmax attention.

    For each seed, :func:`realistic_head` (one head of a random float attention layer,
    ``length`` tokens, default ``seq_len``; ``p`` and ``q`` exact at ``exact_width`` bits, then
    requantized to ``pq_width`` with a shift calibrated on the head) is quantized once; each
    mode then runs on the same integers (base2 with ``c = base2_constant(scale)``, the real
    logit per score LSB).  Each mode is compared with its own float model (``float_damf``, the
    same integers), with exact ``softmax(A / sqrt(d_head))`` of the unrequantized scores
    (``softmax``, the standard head) and with the softmax the mode approximates on its own
    integers (``own``: ``softmax(A / C)`` for the maclaurin modes, ``softmax(c ln2 A)`` for
    base2, which without requantization differs from ``softmax`` only by the 12-bit rounding of
    ``c``).  Returns ``{mode: {ref: {metric: mean over seeds}}}``.
    """
    import dataclasses
    cfg = _cfg(cfg)
    length = cfg.seq_len if length is None else length
    _check_lengths(cfg, length, length)
    out = {}
    for seed in range(seeds):
        h = realistic_head(cfg, np.random.default_rng(seed), length, d_model=d_model,
                           logit_gain=logit_gain, exact_width=exact_width)
        p, q, V = h["p"], h["q"], h["V"]
        for mode in modes:
            c_int, c_frac = base2_constant(h["scale"]) if mode == "base2" else (cfg.c_int, cfg.c_frac)
            mcfg = dataclasses.replace(cfg, mode=mode, c_int=c_int, c_frac=c_frac)
            std = accuracy_summary(p, q, V, mcfg, causal=causal, softmax_scale=h["scale_exact"],
                                   softmax_scores=h["A_exact"])
            own = accuracy_summary(p, q, V, mcfg, causal=causal)
            res = {"float_damf": std["float_damf"], "softmax": std["softmax"], "own": own["softmax"]}
            acc = out.setdefault(mode, {})
            for ref, metrics in res.items():
                for k, v in metrics.items():
                    acc.setdefault(ref, {}).setdefault(k, []).append(v)
        if progress:
            progress(f"seed {seed + 1}/{seeds}")
    return {mode: {ref: {k: float(np.mean(v)) for k, v in m.items()} for ref, m in refs.items()}
            for mode, refs in out.items()}


def format_accuracy(report):
    """:func:`accuracy_report` as a Markdown table."""
    lines = ["| mode | vs | rel. error | cosine mean | cosine min | argmax agreement |",
             "|---|---|---|---|---|---|"]
    names = {"float_damf": "float DAMF", "softmax": "exact softmax(A/sqrt(d_head))",
             "own": "the softmax it approximates"}
    for mode, refs in report.items():
        for ref, m in refs.items():
            lines.append(f"| {mode} | {names[ref]} | {m['rel_error']:.4f} | {m['cosine_mean']:.4f} | "
                         f"{m['cosine_min']:.4f} | {m['argmax_agreement']:.3f} |")
    return "\n".join(lines) + "\n"
