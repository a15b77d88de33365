"""Tests of the DAMF head golden model (``golden/damf_head.py``) against ``docs/numerics.md``.

The bit-exact checks compare with :func:`naive_head`, written from the document in a
different style: Python integers and ``Fraction``s, one key at a time, weights as powers of
two instead of shifts, power-of-two rounding by brute-force search.  Every random test prints
its seed on failure (``seed=...`` in the assertion message).
"""

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

from damf.config import (DEFAULT_PQ_WIDTH, MODES, ConfigError, DamfHeadBlockConfig, DamfHeadConfig,
                         InnerProductConfig, pow2_exp, typical_pq_shift)
from damf.golden import damf_head as damf_head_module
from damf.golden.damf_head import (
    accuracy_summary, attention_mask, base2_constant, base2_exponents, count_times, damf_attention_float,
    damf_head, exact_ints, pow2_round, pow2_round_float, realistic_head, realistic_inputs, round_shift,
    row_stats, scores, softmax_attention)
from damf.golden.damf_head_block import damf_head_block

# A small head: windows, drops, fallbacks and saturation all happen on random inputs.
SMALL = DamfHeadConfig(seq_len=7, d_head=3, rank=2, pq_width=6, v_width=5, weight_frac=4,
                       c_int=45, c_frac=11, out_frac=3, out_guard=1)


# ---- naive reference ---------------------------------------------------------------------

def naive_pow2(x):
    """``(sign, exponent)`` of the power of two nearest to ``x`` (ties: larger), by search."""
    x = Fraction(x)
    if x == 0:
        return 0, 0
    mag = abs(x)
    best = None
    # Every power of two from below 1/denominator to above the numerator.
    for k in range(-mag.denominator.bit_length() - 1, mag.numerator.bit_length() + 2):
        dist = abs(mag - Fraction(2) ** k)
        if best is None or dist <= best[0]:   # '<=': a tie goes to the larger power
            best = (dist, k)
    return (1 if x > 0 else -1), best[1]


def round_half_away(x):
    x = Fraction(x)
    mag = math.floor(abs(x) + Fraction(1, 2))
    return mag if x >= 0 else -mag


def naive_head(p, q, V, cfg, causal=False):
    """Z as a list of lists, from the rules of docs/numerics.md written out per key."""
    p, q, V = np.asarray(p).tolist(), np.asarray(q).tolist(), np.asarray(V).tolist()
    F = cfg.weight_frac
    lo, hi = -(1 << (cfg.out_width - 1)), (1 << (cfg.out_width - 1)) - 1
    Z = []
    for m in range(len(p)):
        keys = [n for n in range(len(q)) if not causal or n <= m]
        a = {n: sum(x * y for x, y in zip(p[m], q[n])) for n in keys}
        N = len(keys)
        a_max = max(a.values())
        w = {}
        if cfg.mode == "base2":
            c = Fraction(cfg.c_int, 2 ** cfg.c_frac)
            for n in keys:
                e = math.floor(c * (a_max - a[n]) + Fraction(1, 2))
                if e <= F:
                    w[n] = Fraction(1, 2 ** e)
            den = Fraction(2) ** naive_pow2(sum(w.values()))[1]
        else:
            M = max(abs(v) for v in a.values())
            S = sum(a.values())
            if cfg.mode == "maclaurin" and a_max > 0 and N * a_max + S > 0:
                C = a_max
            else:
                C = M
            D = N * C + S
            if D <= 0:
                w = {n: Fraction(1) for n in keys}
                den = Fraction(2) ** naive_pow2(N)[1]
            else:
                R = naive_pow2(M)[1]
                iC = naive_pow2(C)[1]
                for n in keys:
                    weight = Fraction(2) ** iC if iC >= R - F else Fraction(0)
                    s, i = naive_pow2(a[n])
                    if s != 0 and i >= R - F:
                        weight += s * Fraction(2) ** i
                    w[n] = weight
                den = Fraction(2) ** naive_pow2(D)[1]
        row = []
        for j in range(len(V[0])):
            value = sum(w.get(n, 0) * V[n][j] for n in keys) / den
            row.append(min(max(round_half_away(value * 2 ** cfg.out_frac), lo), hi))
        Z.append(row)
    return Z


def random_inputs(cfg, rng, lq, lk, *, kind="uniform"):
    lo_pq, hi_pq = cfg.pq_range
    lo_v, hi_v = cfg.v_range
    if kind == "uniform":
        p = rng.integers(lo_pq, hi_pq, (lq, cfg.rank), endpoint=True)
        q = rng.integers(lo_pq, hi_pq, (lk, cfg.rank), endpoint=True)
    elif kind == "small":       # many ties, zeros and equal rows
        p = rng.integers(-2, 2, (lq, cfg.rank), endpoint=True)
        q = rng.integers(-2, 2, (lk, cfg.rank), endpoint=True)
    elif kind == "negative":    # scores mostly negative
        p = rng.integers(1, hi_pq, (lq, cfg.rank), endpoint=True)
        q = rng.integers(lo_pq, 1, (lk, cfg.rank), endpoint=True)
    else:                       # edges of the input range
        p = rng.choice([lo_pq, hi_pq, 0, 1, -1], (lq, cfg.rank))
        q = rng.choice([lo_pq, hi_pq, 0, 1, -1], (lk, cfg.rank))
    V = rng.integers(lo_v, hi_v, (lk, cfg.d_head), endpoint=True)
    return p, q, V


# ---- configuration -------------------------------------------------------------------------

def test_config_defaults_and_presets():
    cfg = DamfHeadConfig()
    assert (cfg.mode, cfg.pq_width, cfg.out_width) == ("maclaurin", DEFAULT_PQ_WIDTH, 14)
    assert DamfHeadConfig.from_preset("default") == cfg
    bert = DamfHeadConfig.from_preset("bert-base")
    assert (bert.seq_len, bert.d_head, bert.pq_width) == (128, 64, DEFAULT_PQ_WIDTH)
    assert InnerProductConfig.from_preset("bert-base").out_width == 25
    ip = InnerProductConfig(d_model=16, x_width=8, w_width=8, rank=2)
    assert DamfHeadConfig.for_inner_product(ip).pq_width == DEFAULT_PQ_WIDTH < ip.out_width
    assert DamfHeadConfig.for_inner_product(ip).rank == 2
    # An inner product narrower than the default width keeps its p and q exact.
    small = InnerProductConfig(d_model=3, lanes=3, x_width=3, w_width=3)
    assert DamfHeadConfig.for_inner_product(small).pq_width == small.out_width == 7
    assert '"block": "damf-head"' in cfg.to_json()


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "exp"}, r"^mode must be one of maclaurin, maclaurin-abs, base2, not 'exp'$"),
    ({"weight_frac": 31}, r"^weight_frac must be at most 30, not 31$"),
    ({"pq_width": 33}, r"^pq_width must be at most 32, not 33$"),
    ({"c_frac": 127}, r"^c_frac must be at most 126, not 127$"),
    ({"seq_len": 0}, r"^seq_len must be at least 1, not 0$"),
])
def test_config_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DamfHeadConfig(**kwargs)


def test_score_width_is_exact():
    """Every product of two pq_width-bit integers, times rank: the bounds are reached and tight."""
    for width, rank in ((3, 1), (4, 2), (5, 3)):
        cfg = DamfHeadConfig(pq_width=width, rank=rank)
        values = range(-(1 << (width - 1)), 1 << (width - 1))
        products = [a * b for a in values for b in values]
        assert cfg.score_range == (rank * min(products), rank * max(products))
        lo, hi = cfg.score_range
        w = cfg.score_width
        assert -(1 << (w - 1)) <= lo and hi < (1 << (w - 1))
        assert not (-(1 << (w - 2)) <= lo and hi < (1 << (w - 2)))


def test_extreme_widths_and_exponents_are_reached():
    """All-minimum p, q and V: largest score, D, exponents and accumulator, exactly at their bounds."""
    cfg = DamfHeadConfig(seq_len=4, d_head=2, rank=1, pq_width=4, v_width=4, weight_frac=3,
                         out_frac=0, out_guard=0)
    p = np.full((4, 1), -8)
    V = np.full((4, 2), -8)
    Z, t = damf_head(p, p, V, cfg, trace=True)
    assert (t["A"] == cfg.score_abs_max).all() and (t["I_A"] == cfg.score_exp_max).all()
    assert (t["D"] == cfg.den_range[1]).all() and (t["I_D"] == cfg.den_exp_max).all()
    assert (t["acc"] == cfg.acc_range[0]).all()
    assert (Z == -8).all()                      # the mean of V, exactly
    # Smallest non-zero scores: exponent 0.
    _, t = damf_head(np.ones((4, 1), int), np.array([[1], [-1], [1], [-1]]), V, cfg, trace=True)
    assert (t["I_A"] == 0).all() and (t["R"] == 0).all()


# ---- power-of-two rounding -----------------------------------------------------------------

def test_pow2_round_tie_rule():
    x = np.array([1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 0, -6, -5, 3 << 59, (3 << 59) - 1])
    sign, exp = pow2_round(x)
    assert exp.tolist() == [0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 0, 3, 2, 61, 60]
    assert sign.tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, -1, -1, 1, 1]


def test_pow2_round_matches_brute_force():
    xs = list(range(-2000, 2001))
    for k in range(2, 61):                      # around every tie point 1.5 * 2^k
        t = 3 << (k - 1)
        xs += [t - 1, t, t + 1, (1 << k) - 1, 1 << k, (1 << k) + 1]
    sign, exp = pow2_round(np.array(xs, dtype=np.int64))
    for x, s, e in zip(xs, sign.tolist(), exp.tolist()):
        assert (s, e) == naive_pow2(x), x
        if x > 0:
            assert e == pow2_exp(x)
    exact = [(x, s, e) for x, s, e in zip(xs, sign.tolist(), exp.tolist()) if abs(x) < 1 << 53]
    f = pow2_round_float(np.array([x for x, _, _ in exact], dtype=np.float64))
    assert f.tolist() == [s * 2.0 ** e for _, s, e in exact]


def test_pow2_round_beyond_int64():
    """Python integers past int64 (object arrays), and int64's own extremes."""
    xs = []
    for k in range(55, 101):                    # around every tie point 1.5 * 2^k
        t = 3 << (k - 1)
        xs += [t - 1, t, t + 1, (1 << k) - 1, 1 << k, (1 << k) + 1]
    xs += [-x for x in xs]
    sign, exp = pow2_round(np.array(xs, dtype=object))
    assert sign.dtype == exp.dtype == np.int64
    assert list(zip(sign.tolist(), exp.tolist())) == [naive_pow2(x) for x in xs]
    edge = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, 1 << 62])
    sign, exp = pow2_round(edge)
    assert list(zip(sign.tolist(), exp.tolist())) == [naive_pow2(int(x)) for x in edge]
    with pytest.raises(ValueError, match=r"^pow2_exp needs an integer of at least 1, not 0$"):
        pow2_exp(0)


# ---- scores, statistics, shift-add, final rounding -----------------------------------------

def test_scores_match_python_integers():
    cfg = DamfHeadConfig(rank=3, pq_width=20)
    rng = np.random.default_rng(5)
    p, q, _ = random_inputs(cfg, rng, 6, 5, kind="edges")
    p[0] = -(1 << 19)
    q[0] = -(1 << 19)
    A = scores(p, q, cfg)
    want = [[sum(int(a) * int(b) for a, b in zip(pr, qr)) for qr in q] for pr in p]
    assert A.dtype == np.int64 and A.tolist() == want


@pytest.mark.parametrize("args, message", [
    (([[8]], [[1]]), r"^p\[0, 0\] must be in \[-8, 7\], not 8$"),
    (([[1]], [[-9]]), r"^q\[0, 0\] must be in \[-8, 7\], not -9$"),
    (([[1, 2]], [[1]]), r"^p must be a L x 1 matrix, not of shape \(1, 2\)$"),
    (([[0.5]], [[1]]), r"^p must hold integers, not float64$"),
])
def test_scores_reject(args, message):
    cfg = DamfHeadConfig(pq_width=4)
    with pytest.raises((ValueError, TypeError), match=message):
        scores(*args, cfg)


def test_row_stats_causal_and_cross():
    rng = np.random.default_rng(7)
    for causal, (lq, lk) in ((False, (3, 7)), (True, (5, 5))):
        p, q, _ = random_inputs(SMALL, rng, lq, lk)
        A = scores(p, q, SMALL)
        st = row_stats(A, attention_mask(lq, lk, causal), SMALL)
        for m in range(lq):
            row = [int(A[m, n]) for n in range(lk) if not causal or n <= m]
            assert (st.count[m], st.a_max[m], st.a_absmax[m], st.a_sum[m]) == \
                (len(row), max(row), max(map(abs, row)), sum(row))


def test_count_times_is_a_multiplier():
    n = np.arange(16)
    for c in (0, 1, 7, 12345, -3, (1 << 40) + 5):
        assert count_times(c, n, 4).tolist() == [c * k for k in range(16)]
    with pytest.raises(ValueError, match=r"^n must be in \[0, 15\]"):
        count_times(1, 16, 4)


def test_round_shift_matches_fractions():
    width = 5
    lo, hi = -16, 15
    acc = np.arange(-70, 71)
    for sh in range(-7, 10):
        got = round_shift(acc, sh, width, acc_width=8).tolist()
        want = [min(max(round_half_away(Fraction(int(a), 1) / Fraction(2) ** sh), lo), hi) for a in acc]
        assert got == want, sh
    # Shifts beyond the hardware shifter's range: 0, or saturation.
    aw = 8
    a = np.array([-(1 << (aw - 1)), (1 << (aw - 1)) - 1, 1, -1, 0])
    assert round_shift(a, aw + 7, width, aw).tolist() == [0, 0, 0, 0, 0]
    assert round_shift(a, aw, width, aw).tolist() == [-1, 0, 0, 0, 0]
    assert round_shift(a, -40, width, aw).tolist() == [lo, hi, hi, lo, 0]


def test_base2_exponent_rounding_and_limit():
    cfg = dataclasses.replace(SMALL, c_int=1, c_frac=1, weight_frac=3)   # c = 1/2
    assert cfg.delta_limit == 7                     # 7/2 = 3.5 rounds to 4 > weight_frac
    A = np.array([[10, 9, 8, 7, 5, 4, 3]])
    keep, e = base2_exponents(A, np.array([10]), np.ones_like(A, bool), cfg)
    assert e.tolist() == [[0, 1, 1, 2, 3, 3, 0]]    # 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (half up)
    assert keep.tolist() == [[True] * 6 + [False]]
    rng = np.random.default_rng(8)
    for c_int, c_frac, F in ((45, 11, 4), (3, 0, 5), (1000, 3, 12), (7, 5, 0), (2955, 58, 12), (1, 62, 30)):
        cfg = dataclasses.replace(SMALL, c_int=c_int, c_frac=c_frac, weight_frac=F)
        c = Fraction(c_int, 2 ** c_frac)
        lim = cfg.delta_limit
        assert math.floor(c * lim + Fraction(1, 2)) > F
        assert math.floor(c * (lim - 1) + Fraction(1, 2)) <= F
        # Every threshold, one below it, and random deltas: exponent = round_half_up(c delta).
        deltas = sorted({d for th in cfg.base2_thresholds for d in (th - 1, th) if 0 <= d < 1 << 61}
                        | set(rng.integers(0, min(lim + 5, 1 << 61), 40).tolist()))
        keep, e = base2_exponents(-np.array([deltas]), np.array([0]), np.ones((1, len(deltas)), bool), cfg)
        for d, k, x in zip(deltas, keep[0].tolist(), e[0].tolist()):
            want = math.floor(c * d + Fraction(1, 2))
            assert (k, x) == ((True, want) if want <= F else (False, 0)), (c_int, c_frac, d)


def test_base2_constant():
    c_int, c_frac = base2_constant(2.0 ** -40 / 8)
    assert 2048 <= c_int < 4096
    assert abs(c_int * 2.0 ** -c_frac / (math.log2(math.e) * 2.0 ** -43) - 1) < 2 ** -11
    with pytest.raises(ValueError, match=r"^the base2 scale must be a positive number, not -1$"):
        base2_constant(-1)
    assert base2_constant(2.0 ** -62)[1] == 73                 # beyond int64's 62 bits: fine
    with pytest.raises(ValueError, match=r"needs c_frac = 141, outside \[0, 126\]$"):
        base2_constant(2.0 ** -130)


# ---- the head, bit for bit ------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("causal, lq, lk", [(False, 7, 7), (False, 3, 5), (False, 6, 2),
                                            (True, 7, 7), (True, 5, 5), (False, 1, 1)])
def test_head_matches_naive(mode, causal, lq, lk):
    cfg = dataclasses.replace(SMALL, mode=mode)
    seen = {"drop": 0, "sat": 0, "fallback": 0, "uniform": 0, "negative": 0}
    for seed in range(24):
        rng = np.random.default_rng(seed)
        kind = ("uniform", "small", "negative", "edges")[seed % 4]
        p, q, V = random_inputs(cfg, rng, lq, lk, kind=kind)
        Z, t = damf_head(p, q, V, cfg, causal=causal, trace=True)
        assert Z.dtype == np.int64 and Z.shape == (lq, cfg.d_head)
        assert Z.tolist() == naive_head(p, q, V, cfg, causal), f"seed={seed} kind={kind}"
        # The shift-and-add accumulator equals the weight numerators applied to V.
        assert (t["acc"] == t["weights"] @ V).all(), f"seed={seed}"
        seen["drop"] += int(((t["shift"] < 0) & t["mask"]).sum())
        seen["sat"] += int(np.isin(Z, cfg.out_range).sum())
        seen["negative"] += int((t["weights"] < 0).sum())
        if mode != "base2":
            seen["fallback"] += int((t["abs_fallback"] & ~t["uniform"]).sum())
            seen["uniform"] += int(t["uniform"].sum())
    # The random cases exercise the special rules the naive model checks.
    if lk > 2:
        assert seen["drop"] > 0
        if mode != "base2":
            assert seen["uniform"] > 0
        if mode == "maclaurin":
            assert seen["fallback"] > 0 and seen["negative"] > 0 and seen["sat"] > 0
    if mode != "maclaurin":
        assert seen["negative"] == 0      # maclaurin-abs and base2 never weigh negatively
    if mode == "base2":
        assert seen["sat"] == 0           # base2 weights sum to at most 4/3: out_guard = 1 suffices


def test_worked_example_of_the_document():
    """The numbers printed in docs/numerics.md, section 'Worked example'."""
    cfg = DamfHeadConfig(seq_len=4, d_head=2, rank=1, pq_width=4, v_width=4, weight_frac=3,
                         c_int=3, c_frac=2, out_frac=2, out_guard=2)
    p, q, V = [[2], [-1], [3], [0]], [[3], [-4], [1]], [[5, -3], [-7, 2], [1, 6]]
    Z, t = damf_head(p, q, V, cfg, trace=True)
    assert t["weights"].tolist() == [[16, 0, 10], [0, 16, 6], [8, -4, 6], [8, 8, 8]]
    assert t["sh"].tolist() == [2, 3, 2, 3]
    assert Z.tolist() == [[23, 3], [-13, 9], [19, 1], [-1, 5]]
    assert damf_head(p, q, V, cfg, mode="maclaurin-abs").tolist() == [[11, 2], [-13, 9], [18, 6], [-1, 5]]
    assert damf_head(p, q, V, cfg, mode="base2").tolist() == [[21, -9], [-28, 8], [20, -12], [-1, 5]]
    assert damf_head(p[:3], q, V, cfg, causal=True).tolist() == [[20, -12], [-28, 8], [19, 1]]


# A head whose scores, S, D, deltas and accumulator all need more than 62 bits.
WIDE = DamfHeadConfig(seq_len=1024, d_head=2, rank=64, pq_width=31, v_width=32, weight_frac=30,
                      out_frac=8, out_guard=2)


def test_wide_configuration_is_exact():
    """Widths past int64 are accepted and computed with Python integers, bit for bit as the naive model."""
    cfg = WIDE
    assert (cfg.score_width, cfg.sum_width, cfg.den_width, cfg.delta_width, cfg.acc_width) == (68, 78, 79, 67, 73)
    assert exact_ints(cfg) and not exact_ints(SMALL)
    rng = np.random.default_rng(31)
    lo, hi = cfg.pq_range
    vlo, vhi = cfg.v_range
    lk = 160                                     # keys of the run (the naive model is slow)
    q = rng.integers(lo, hi, (lk, cfg.rank), endpoint=True)
    q[:4] = lo                                   # the largest scores: rank * 2^60 = 2^66
    V = rng.integers(vlo, vhi, (lk, cfg.d_head), endpoint=True)
    p = np.stack([np.full(cfg.rank, lo), rng.integers(lo, hi, cfg.rank, endpoint=True),
                  rng.integers(-3, 4, cfg.rank)])
    # base2 with c at the scale of these scores: c_frac well past 62
    c_int, c_frac = base2_constant(2.0 ** -58)
    for mode in MODES:
        mcfg = dataclasses.replace(cfg, mode=mode, c_int=c_int, c_frac=c_frac)
        Z, t = damf_head(p, q, V, mcfg, trace=True)
        assert Z.dtype == np.int64 and t["A"].dtype == object
        assert max(abs(int(a)) for a in t["A"].ravel()) == cfg.score_abs_max > 1 << 62
        assert Z.tolist() == naive_head(p, q, V, mcfg), mode
        assert (t["acc"] == t["weights"] @ V.astype(object)).all()
        if mode == "base2":
            assert c_frac > 62 and 0 < t["keep"].sum() < t["keep"].size    # some keys dropped
    # causal, all three modes, on a shorter head of the same configuration
    for mode in MODES:
        mcfg = dataclasses.replace(cfg, mode=mode, c_int=c_int, c_frac=c_frac)
        pc, qc, Vc = p[[0, 1, 2, 1, 0, 2]], q[:6], V[:6]
        assert damf_head(pc, qc, Vc, mcfg, causal=True).tolist() == naive_head(pc, qc, Vc, mcfg, causal=True)


@pytest.mark.parametrize("mode", MODES)
def test_exact_integer_path_equals_int64_path(mode, monkeypatch):
    """The Python-integer path, forced on a narrow head, gives the int64 path's results and trace."""
    cfg = dataclasses.replace(SMALL, mode=mode)
    runs = []
    for forced in (False, True):
        if forced:
            monkeypatch.setattr(damf_head_module, "_INT64_WIDTH", 0)
        assert exact_ints(cfg) == forced
        out = []
        for seed in range(12):
            rng = np.random.default_rng(seed)
            causal = seed % 2 == 1
            lq, lk = (7, 7) if causal else (3, 6)
            p, q, V = random_inputs(cfg, rng, lq, lk, kind=("uniform", "small", "negative", "edges")[seed % 4])
            out.append(damf_head(p, q, V, cfg, causal=causal, trace=True))
        runs.append(out)
    for (Z0, t0), (Z1, t1) in zip(*runs):
        assert Z0.dtype == Z1.dtype == np.int64 and Z0.tolist() == Z1.tolist()
        assert t1["A"].dtype == object and t1["acc"].dtype == object
        for name in t0:
            assert np.asarray(t0[name]).tolist() == np.asarray(t1[name]).tolist(), name


# ---- requantized p and q (damf-head block) ------------------------------------------------

def test_block_presets_requantize_p_and_q():
    """from_preset / for_inner_product: pq_width min(DEFAULT_PQ_WIDTH, out_width) and the typical shift."""
    assert DamfHeadBlockConfig() == DamfHeadBlockConfig.from_preset("default")
    for name, out_width, shift in (("default", 20, 10), ("bert-base", 25, 13)):
        cfg = DamfHeadBlockConfig.from_preset(name)
        assert cfg.inner_product.out_width == out_width
        assert (cfg.pq_width, cfg.pq_shift) == (DEFAULT_PQ_WIDTH, shift)
        assert cfg._numerics() == dataclasses.asdict(DamfHeadConfig.from_preset(name))
    # The rule: the smallest shift with 4 sigma <= 2^(shift + pq_width - 1), sigma of a d_model-term sum.
    for d_model, x_width, w_width, pq_width in ((16, 8, 8, 10), (768, 8, 8, 10), (385, 8, 8, 6), (100, 4, 12, 12)):
        ip = InnerProductConfig(d_model=d_model, x_width=x_width, w_width=w_width, lanes=1)
        sigma = math.sqrt(d_model * ((4 ** x_width - 1) / 12) * ((4 ** w_width - 1) / 12))
        s = typical_pq_shift(ip, pq_width)
        assert 4 * sigma <= 2 ** (s + pq_width - 1) and (s == 0 or 4 * sigma > 2 ** (s + pq_width - 2))
        cfg = DamfHeadBlockConfig.for_inner_product(ip, pq_width=pq_width)
        assert cfg.pq_shift == s
    # Narrow units stay exact; an explicit pq_shift wins.
    small = DamfHeadBlockConfig.for_inner_product(InnerProductConfig(d_model=3, lanes=3, x_width=3, w_width=3))
    assert (small.pq_width, small.pq_shift) == (7, 0)
    assert DamfHeadBlockConfig.for_inner_product(InnerProductConfig(), pq_shift=3).pq_shift == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"pq_shift": 20}, r"^pq_shift must be at most the inner-product out_width - 1 = 19, not 20$"),
    ({"pq_shift": -1}, r"^pq_shift must be at least 0, not -1$"),
    ({"pq_width": 1}, r"^pq_width must be at least 2, not 1$"),
])
def test_block_config_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DamfHeadBlockConfig(**kwargs)


def test_block_requantizes_the_inner_product():
    """damf_head_block = damf_head of the inner product rounded (half away) by pq_shift and saturated,
    written out with Python integers and Fractions; every case saturates some p or q."""
    rng = np.random.default_rng(40)
    for pq_width, pq_shift, mode in ((5, 3, "maclaurin"), (4, 3, "base2"), (6, 0, "maclaurin-abs")):
        saturated = False
        cfg = DamfHeadBlockConfig(d_model=6, lanes=2, rank=2, x_width=4, w_width=4, seq_len=5, d_head=2,
                                  v_width=4, weight_frac=4, out_frac=2, parallel=1, mode=mode,
                                  pq_width=pq_width, pq_shift=pq_shift, c_int=3, c_frac=3)
        lo, hi = -(1 << (pq_width - 1)), (1 << (pq_width - 1)) - 1
        for _ in range(6):
            X = rng.integers(-8, 8, (5, 6))
            u, v = rng.integers(-8, 8, (2, 6)), rng.integers(-8, 8, (2, 6))
            V = rng.integers(-8, 8, (5, 2))
            Z, t = damf_head_block(cfg, X, V, u, v, trace=True)

            def rq(vec):
                return [[min(max(round_half_away(Fraction(sum(int(a) * int(b) for a, b in zip(x, w)),
                                                          2 ** pq_shift)), lo), hi) for w in vec] for x in X]
            p, q = rq(u), rq(v)
            assert t["p"].tolist() == p and t["q"].tolist() == q
            assert Z.tolist() == naive_head(p, q, V, cfg)
            saturated |= bool(np.isin(np.concatenate([t["p"], t["q"]]), (lo, hi)).any())
        assert saturated, (pq_width, pq_shift)


def test_realistic_head_requantizes_with_the_calibrated_shift():
    cfg = DamfHeadConfig(seq_len=16, d_head=8, pq_width=8)
    h = realistic_head(cfg, np.random.default_rng(2), 16, exact_width=20)
    pq = np.concatenate([h["p"].ravel(), h["q"].ravel()])
    assert h["pq_shift"] > 0 and pq.max() <= 127 and pq.min() >= -128
    assert max(pq.max(), -pq.min()) >= 64            # one more bit would not be used
    # the scale follows the shift: A * scale ~ A_exact * scale_exact
    A = scores(h["p"], h["q"], cfg).astype(float)
    assert np.allclose(A * h["scale"], h["A_exact"] * h["scale_exact"], rtol=0.2, atol=0.1 * np.abs(
        h["A_exact"] * h["scale_exact"]).max())
    # without requantization it is realistic_inputs
    p, q, V, scale = realistic_inputs(cfg, np.random.default_rng(2), 16)
    h0 = realistic_head(cfg, np.random.default_rng(2), 16)
    assert h0["pq_shift"] == 0 and (h0["p"] == p).all() and h0["scale"] == scale


# ---- special cases --------------------------------------------------------------------------

CASES = DamfHeadConfig(seq_len=8, d_head=2, rank=1, pq_width=5, v_width=5, weight_frac=4,
                       out_frac=4, out_guard=3)


def head_row(a, V, mode="maclaurin", cfg=CASES):
    """Run one query whose scores are ``a`` (p = 1, q = a)."""
    q = np.array(a).reshape(-1, 1)
    Z, t = damf_head([[1]], q, V, cfg, mode=mode, trace=True)
    assert Z.tolist() == naive_head([[1]], q, V, dataclasses.replace(cfg, mode=mode))
    return Z[0], {k: (v[0] if isinstance(v, np.ndarray) and v.ndim else v) for k, v in t.items()}


V4 = np.array([[5, -3], [-7, 2], [1, 6], [9, -16]])


def test_negative_weight_when_score_below_minus_a_max():
    F = CASES.weight_frac
    _, t = head_row([4, -8, 0, 1], V4)
    assert (t["C"], t["D"], t["R"], t["I_C"], t["I_D"]) == (4, 13, 3, 2, 4)
    assert t["weights"].tolist() == [1 << F, -(1 << (F - 1)), 1 << (F - 1), (1 << (F - 1)) + (1 << (F - 3))]
    _, t = head_row([4, -8, 0, 1], V4, "maclaurin-abs")
    assert t["C"] == 8 and (t["weights"] >= 0).all() and t["weights"][1] == 0


@pytest.mark.parametrize("a", [[-1, -2, -3, -4], [0, -5, -1, 0], [-3, -12, -7, -1]])
def test_a_max_not_positive_uses_max_abs(a):
    Z, t = head_row(a, V4)
    assert t["abs_fallback"] and not t["uniform"] and t["C"] == max(map(abs, a))
    assert (t["weights"] >= 0).all()
    Z_abs, _ = head_row(a, V4, "maclaurin-abs")
    assert Z.tolist() == Z_abs.tolist()


@pytest.mark.parametrize("a", [[1, -3, -1, -1], [1, -5, -5, -5], [2, -11, 1, -1]])
def test_zero_or_negative_maclaurin_denominator_uses_max_abs(a):
    N, S, a_max = len(a), sum(a), max(a)
    assert a_max > 0 and N * a_max + S <= 0
    _, t = head_row(a, V4)
    M = max(map(abs, a))
    assert t["abs_fallback"] and (t["C"], t["D"]) == (M, N * M + S) and t["D"] > 0


@pytest.mark.parametrize("value", [-7, -1, 0])
@pytest.mark.parametrize("mode", MODES)
def test_equal_non_positive_scores_average_uniformly(value, mode):
    Z, t = head_row([value] * 4, V4, mode)
    if mode != "base2":
        assert t["uniform"] and t["D"] == 0
    # N = 4 is a power of two: exactly the mean of V (here a multiple of 2^-4).
    assert Z.tolist() == (V4.sum(axis=0) * (1 << CASES.out_frac) // 4).tolist()


@pytest.mark.parametrize("mode", MODES)
def test_equal_positive_scores_average_exactly(mode):
    for value in (1, 3, 6, 15):
        Z, t = head_row([value] * 4, V4, mode)
        assert Z.tolist() == (V4.sum(axis=0) * (1 << CASES.out_frac) // 4).tolist(), value
        if mode != "base2":
            assert not t["uniform"]


@pytest.mark.parametrize("n", [3, 5, 6, 7])
@pytest.mark.parametrize("mode", MODES)
def test_length_not_a_power_of_two(n, mode):
    rng = np.random.default_rng(n)
    a = rng.integers(-15, 16, n)
    V = rng.integers(-16, 16, (n, 2))
    _, t = head_row(a, V, mode)
    if mode != "base2":
        assert t["D"] == n * t["C"] + a.sum()
    # Uniform rows divide by 2^P(N), the power of two nearest N.
    Z, t = head_row([0] * n, V, mode)
    want = [round_half_away(Fraction(int(s) << CASES.out_frac, 1 << pow2_exp(n))) for s in V.sum(axis=0)]
    assert Z.tolist() == want


def test_weight_window_edge():
    cfg = dataclasses.replace(CASES, weight_frac=2)
    # Exponents 4, 2, 1, 1 with R = 4: shifts 2, 0, -1, -1.
    _, t = head_row([15, 4, 2, -2], V4, cfg=cfg)
    assert t["R"] == 4 and t["shift"].tolist() == [2, 0, -1, -1]
    assert t["weights"].tolist() == [8, 5, 4, 4]


def test_normaliser_term_window():
    # weight_frac = 1 is below floor(log2 seq_len) + 2: C = 1 (I_C = 0) falls out of the window
    # of R = P(8) = 3, and so do the scores 1; only the -8 term is left.
    cfg = DamfHeadConfig(seq_len=12, d_head=2, rank=1, pq_width=5, v_width=5, weight_frac=1,
                         out_frac=4, out_guard=3)
    _, t = head_row([1] * 11 + [-8], np.tile([3, -2], (12, 1)), cfg=cfg)
    assert (t["C"], t["D"], t["c_shift"]) == (1, 15, -2)
    assert t["weights"].tolist() == [0] * 11 + [-2]
    # From weight_frac = floor(log2 seq_len) + 2 on, C's term is never dropped (docs/numerics.md).
    rng = np.random.default_rng(21)
    for seq in (3, 8, 12):
        cfg = DamfHeadConfig(seq_len=seq, d_head=1, rank=1, pq_width=6, v_width=3,
                             weight_frac=seq.bit_length() + 1)
        for _ in range(150):
            n = int(rng.integers(1, seq + 1))
            a_max = int(rng.integers(1, 8))
            a = rng.integers(-32, a_max + 1, n)
            a[0] = a_max
            a[1:] = np.where(rng.random(n - 1) < 0.7, a_max, a[1:])
            _, t = head_row(a, np.ones((n, 1), int), cfg=cfg)
            assert t["c_shift"] >= 0, a.tolist()


def test_final_left_shift_and_saturation():
    cfg = dataclasses.replace(CASES, weight_frac=0, out_frac=0, out_guard=0)
    # D = 3*4 - 7 = 5 -> 2^2 while R = P(7) = 3: the final shift is one to the left.
    Z, t = head_row([4, -7, -4], V4[:3], cfg=cfg)
    assert t["sh"] == -1 and t["weights"].tolist() == [0, -1, 0]
    assert Z.tolist() == (-V4[1] * 2).tolist()
    Z, t = head_row([4, -7, -4], np.array([[15, -16], [-16, 15], [0, 0]]), cfg=cfg)
    assert t["acc"].tolist() == [16, -15] and Z.tolist() == [15, -16]     # 32, -30 saturated


def test_rounded_numerators_can_sum_past_the_guard():
    """maclaurin-abs: C = 12 -> 16 and -11 -> -8, so each weight 1/31 becomes 8/32."""
    q = [12] + [-11] * 7
    V = np.tile([15, -16], (8, 1))
    Z, t = head_row(q, V, "maclaurin-abs")
    assert t["D"] == 31 and t["weights"].sum() / 2.0 ** (t["sh"] + CASES.out_frac) == 2.75
    Z, t = head_row(q, V, "maclaurin-abs", cfg=dataclasses.replace(CASES, out_guard=1))
    assert Z.tolist() == [511, -512]                                     # saturated


# ---- causal and cross-attention -------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_causal_rows_see_only_their_prefix(mode):
    cfg = dataclasses.replace(SMALL, mode=mode)
    rng = np.random.default_rng(11)
    p, q, V = random_inputs(cfg, rng, 7, 7)
    Z = damf_head(p, q, V, cfg, causal=True)
    for m in range(7):
        alone = damf_head(p[m:m + 1], q[:m + 1], V[:m + 1], cfg)
        assert Z[m].tolist() == alone[0].tolist(), m
    # The first row attends only to key 0: its output is V_0 exactly.
    assert Z[0].tolist() == (V[0] << cfg.out_frac).tolist()
    # Changing the future changes nothing.
    q2, V2 = q.copy(), V.copy()
    q2[4:], V2[4:] = -q2[4:], -V2[4:]
    assert damf_head(p, q2, V2, cfg, causal=True)[:4].tolist() == Z[:4].tolist()


@pytest.mark.parametrize("mode", MODES)
def test_cross_attention_rows_are_independent(mode):
    cfg = dataclasses.replace(SMALL, mode=mode)
    rng = np.random.default_rng(12)
    p, q, V = random_inputs(cfg, rng, 3, 6)
    Z = damf_head(p, q, V, cfg)
    assert Z.shape == (3, cfg.d_head)
    for m in range(3):
        assert Z[m].tolist() == damf_head(p[m:m + 1], q, V, cfg)[0].tolist()


def test_head_rejects_causal_cross_attention():
    p, q, V = random_inputs(SMALL, np.random.default_rng(0), 3, 5)
    with pytest.raises(ValueError, match=r"^causal attention needs as many queries as keys, not Lq=3 and Lk=5$"):
        damf_head(p, q, V, SMALL, causal=True)


def test_head_rejects_bad_shapes_and_lengths():
    rng = np.random.default_rng(0)
    p, q, V = random_inputs(SMALL, rng, 3, 5)
    with pytest.raises(ValueError, match=r"^V must be a 5 x 3 matrix, not of shape \(4, 3\)$"):
        damf_head(p, q, V[:4], SMALL)
    with pytest.raises(ValueError, match=r"^V\[0, 0\] must be in \[-16, 15\], not 16$"):
        damf_head(p, q, np.where(np.arange(3) == 0, 16, V), SMALL)
    p8, q8, V8 = random_inputs(SMALL, rng, 8, 8)
    with pytest.raises(ValueError, match=r"^Lq must be in \[1, seq_len = 7\], not 8$"):
        damf_head(p8, q8, V8, SMALL)


# ---- float references -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_integer_head_is_float_damf_rounded(mode):
    """Wide window, no saturation: Z is the float DAMF output rounded to out_frac bits."""
    cfg = dataclasses.replace(SMALL, mode=mode, weight_frac=20, out_guard=8)
    c = cfg.c_int * 2.0 ** -cfg.c_frac
    for seed in range(12):
        rng = np.random.default_rng(seed)
        for causal, (lq, lk) in ((False, (5, 7)), (True, (6, 6))):
            p, q, V = random_inputs(cfg, rng, lq, lk, kind=("uniform", "small", "negative")[seed % 3])
            Z = damf_head(p, q, V, cfg, causal=causal)
            ref, _ = damf_attention_float(scores(p, q, cfg), V, mode=mode, causal=causal, c=c,
                                          max_exp=cfg.weight_frac)
            err = np.abs(Z * 2.0 ** -cfg.out_frac - ref).max()
            assert err <= 2.0 ** -(cfg.out_frac + 1) + 1e-12, f"seed={seed} causal={causal}"


def test_maclaurin_without_rounding_error_is_the_linearised_softmax():
    """Scores, A_max and D all powers of two: Z is eq. (13) of the paper, rounded."""
    cfg = DamfHeadConfig(seq_len=8, d_head=4, rank=1, pq_width=6, v_width=8, out_frac=6)
    q = np.array([[8], [4], [-4], [-8], [2], [-2], [1], [-1]])
    p = np.array([[1], [2], [-1], [4], [-2]])
    V = np.random.default_rng(3).integers(-128, 128, (8, 4))
    Z, t = damf_head(p, q, V, cfg, trace=True)
    A = t["A"]
    s, e = pow2_round(A)
    assert (s * (1 << e) == A).all() and (t["D"] == 1 << t["I_D"]).all()
    assert (t["C"] == 1 << t["I_C"]).all() and not t["abs_fallback"].any()
    # Eq. (13), written out independently in exact rationals.
    for m in range(len(p)):
        a = [int(x) for x in A[m]]
        den = len(a) * max(a) + sum(a)
        for j in range(4):
            value = Fraction(sum((max(a) + a[n]) * int(V[n, j]) for n in range(8)), den)
            assert Z[m, j] == round_half_away(value * 2 ** cfg.out_frac)
    lin, _ = damf_attention_float(A, V, mode="maclaurin", pow2=False)
    assert np.abs(Z * 2.0 ** -cfg.out_frac - lin).max() <= 2.0 ** -(cfg.out_frac + 1)


def test_base2_without_rounding_is_softmax():
    rng = np.random.default_rng(4)
    A = rng.normal(0, 40, (5, 9))
    V = rng.normal(0, 1, (9, 3))
    c = 0.07
    for causal, AA, VV in ((False, A, V), (True, A[:5, :5], V[:5])):
        out, w = damf_attention_float(AA, VV, mode="base2", c=c, pow2=False, causal=causal)
        ref, probs = softmax_attention(AA, VV, c * math.log(2), causal=causal)
        assert np.allclose(out, ref, atol=1e-12) and np.allclose(w, probs, atol=1e-12)


def test_base2_is_closer_to_softmax_than_maclaurin():
    """Realistic inputs (a random float attention layer, quantized): standard softmax(A / sqrt(d))."""
    cfg0 = DamfHeadConfig(seq_len=32, d_head=16)
    for seed in range(3):
        for gain in (1.0, 4.0):
            p, q, V, scale = realistic_inputs(cfg0, np.random.default_rng(seed), 32, logit_gain=gain)
            cfg = dataclasses.replace(cfg0, **dict(zip(("c_int", "c_frac"), base2_constant(scale))))
            res = {mode: accuracy_summary(p, q, V, cfg, mode=mode, softmax_scale=scale) for mode in MODES}
            tag = f"seed={seed} gain={gain}"
            for mode in MODES:   # the integer head follows its float model closely
                assert res[mode]["float_damf"]["rel_error"] < 0.01, tag
                assert res[mode]["float_damf"]["cosine_min"] > 0.999, tag
            b2, mac = res["base2"]["softmax"], res["maclaurin"]["softmax"]
            assert b2["rel_error"] < mac["rel_error"], tag
            assert b2["cosine_mean"] > mac["cosine_mean"], tag
            assert b2["cosine_mean"] > 0.97 and b2["argmax_agreement"] >= 0.9, tag


def test_accuracy_summary_default_targets():
    cfg = DamfHeadConfig(seq_len=16, d_head=8)
    p, q, V, _ = realistic_inputs(cfg, np.random.default_rng(9), 16)
    res = accuracy_summary(p, q, V, cfg)
    _, t = damf_head(p, q, V, cfg, trace=True)
    C = t["C"].astype(float)
    assert np.allclose(res["softmax_scale"], np.where(C > 0, 1.0 / np.maximum(C, 1), 0.0))   # eq. (10)-(11)
    assert set(res["softmax"]) == {"rel_error", "cosine_mean", "cosine_min", "argmax_agreement"}
    assert res["softmax"]["cosine_mean"] > 0.95
