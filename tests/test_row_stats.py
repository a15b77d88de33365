"""Fast Amaranth-simulator tests of the row-stats unit, and of its golden model."""

import dataclasses

import numpy as np
import pytest

from damf.config import ConfigError
from damf.golden.damf_head import damf_head
from damf.golden.row_stats import BASE2_FIELDS, FIELDS, fields, row_setup
from damf.head_config import RowStatsConfig
from damf.hdl.row_stats import RowStats, output_layout, unpack_output
from damf.hdl.score import pack_output
from damf.sim.amaranth_bench import run_streams


def special_rows(cfg, length):
    """Rows for every open case of numerics.md section 9 (all modes; base2 keeps N, A_max)."""
    lo, hi = cfg.score_range
    L = length
    rows = [
        [-3] * L,                                  # all equal, negative: uniform
        [0] * L,                                   # all zero: uniform
        [5] * L,                                   # all equal, positive
        [-1 - (n % 3) for n in range(L)],          # A_max <= 0, not all equal: abs fallback
        [1] + [-5] * (L - 1),                      # D_max <= 0 with A_max > 0 (L >= 2)
        [6] + [-8] + [2] * (L - 2),                # a negative weight
        [hi] * L, [lo] * L,                        # extremes: largest M, D, exponents
        [hi] + [lo] * (L - 1), [lo] + [hi] * (L - 1),
        [1] * L,                                   # smallest positive
    ]
    return [r[:L] for r in rows]


def random_rows(cfg, rng, count, length):
    lo, hi = cfg.score_range
    out = []
    for j in range(count):
        scale = [hi, 1000, 20][j % 3]
        out.append(rng.integers(max(lo, -scale), min(hi, scale), length, endpoint=True).tolist())
    return out


def beats(cfg, row, rng, full=False):
    """Split a row into beats of random counts (1..parallel), as a masked score stream may
    (``full``: ``parallel`` per beat, as the score unit sends them)."""
    out, i = [], 0
    while i < len(row):
        c = cfg.parallel if full else int(rng.integers(1, cfg.parallel + 1))
        chunk = row[i:i + c]
        i += len(chunk)
        pad = rng.integers(cfg.score_range[0], cfg.score_range[1], cfg.parallel - len(chunk), endpoint=True)
        word = pack_output(cfg, chunk + pad.tolist(), i >= len(row))
        # count = len(chunk): rewrite the count field (pack_output counted the padding)
        w, P = cfg.score_width, cfg.parallel
        word &= ~(((1 << P.bit_length()) - 1) << (P * w))
        out.append(word | (len(chunk) << (P * w)))
    return out


def simulate(cfg, rows, seed=0, idle=0.3, backpressure=0.3, full=False):
    rng = np.random.default_rng(seed)
    words = [w for row in rows for w in beats(cfg, row, rng, full)]
    log = run_streams(RowStats(cfg), {"i": words}, ["o"], expect={"o": len(rows)},
                      seed=seed, idle=idle, backpressure=backpressure)
    return [unpack_output(cfg, w) for _, w in log["o"]], log


CONFIGS = [
    RowStatsConfig(seq_len=5, rank=1, pq_width=6, parallel=2),
    RowStatsConfig(seq_len=7, rank=2, pq_width=5, parallel=3, mode="maclaurin-abs"),
    RowStatsConfig(seq_len=12, rank=1, pq_width=4, parallel=1, weight_frac=1, out_frac=3),
    RowStatsConfig(seq_len=3, rank=3, pq_width=8, parallel=3, weight_frac=4, out_frac=0),
    # base2: N and A_max only, registered with the last beat
    RowStatsConfig(seq_len=7, rank=2, pq_width=5, parallel=3, mode="base2"),
    RowStatsConfig(seq_len=5, rank=1, pq_width=4, parallel=1, mode="base2", weight_frac=2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"L{c.seq_len}-r{c.rank}-P{c.parallel}-{c.mode}")
def test_matches_golden(cfg):
    rng = np.random.default_rng(5)
    rows = []
    for length in sorted({cfg.seq_len, 1, max(1, cfg.seq_len - 1), 2 if cfg.seq_len >= 2 else 1}):
        rows += special_rows(cfg, length) + random_rows(cfg, rng, 12, length)
    got, _ = simulate(cfg, rows)
    for r, (row, g) in enumerate(zip(rows, got)):
        want = {k: int(v[0]) for k, v in row_setup(cfg, [row]).items()}
        assert g == want, f"row {r} = {row}"


@pytest.mark.parametrize("mode", ["maclaurin-abs", "base2"])
def test_setup_cycles(mode):
    cfg = dataclasses.replace(CONFIGS[1], mode=mode)
    rows = [[3, -2, 9, 1, 0, 4, -7]] * 3
    got, log = simulate(cfg, rows, idle=0, backpressure=0, full=True)
    per_row = -(-7 // cfg.parallel)
    last_beats = [c for c, _ in log["i"]][per_row - 1::per_row]
    assert cfg.setup_cycles == (1 if mode == "base2" else 4)
    assert [o - i for (o, _), i in zip(log["o"], last_beats)] == [cfg.setup_cycles] * 3
    assert {b - a for (a, _), (b, _) in zip(log["o"], log["o"][1:])} == {cfg.row_cycles(7)}


def test_golden_equals_the_head_trace():
    cfg = RowStatsConfig(seq_len=6, rank=2, pq_width=5)
    rng = np.random.default_rng(2)
    for mode in ("maclaurin", "maclaurin-abs"):
        for causal in (False, True):
            c = dataclasses.replace(cfg, mode=mode)
            p, q = (rng.integers(-16, 15, (6, 2), endpoint=True) for _ in range(2))
            V = rng.integers(-128, 127, (6, c.d_head), endpoint=True)
            _, t = damf_head(p, q, V, c, causal=causal, trace=True)
            got = row_setup(c, t["A"], t["mask"])
            names = {"n": "N", "a_max": "A_max", "m": "M", "s": "S", "c": "C", "d": "D",
                     "uniform": "uniform", "fallback": "abs_fallback", "i_c": "I_C", "r": "R",
                     "i_d": "I_D", "c_shift": "c_shift", "sh": "sh"}
            assert set(names) == set(FIELDS)
            for k, name in names.items():
                assert np.array_equal(got[k], np.asarray(t[name], dtype=np.int64)), (mode, causal, k)


def test_base2_golden_equals_the_head_trace():
    cfg = RowStatsConfig(seq_len=6, rank=2, pq_width=5, mode="base2")
    rng = np.random.default_rng(3)
    for causal in (False, True):
        p, q = (rng.integers(-16, 15, (6, 2), endpoint=True) for _ in range(2))
        V = rng.integers(-128, 127, (6, cfg.d_head), endpoint=True)
        _, t = damf_head(p, q, V, cfg, causal=causal, trace=True)
        got = row_setup(cfg, t["A"], t["mask"])
        assert tuple(got) == BASE2_FIELDS == fields(cfg)
        assert np.array_equal(got["n"], t["N"]) and np.array_equal(got["a_max"], t["A_max"])


def test_base2_output_has_only_n_and_a_max():
    cfg = RowStatsConfig(seq_len=7, rank=2, pq_width=5, mode="base2")
    assert [name for name, _ in output_layout(cfg)] == list(BASE2_FIELDS)
    assert output_layout(cfg).size == cfg.count_width + cfg.score_width


def test_config_errors():
    with pytest.raises(ConfigError, match=r"^parallel must be at most seq_len = 4, not 5$"):
        RowStatsConfig(seq_len=4, parallel=5, mode="base2")
    with pytest.raises(TypeError, match=r"^Config must be a RowStatsConfig, not 3$"):
        RowStats(3)
