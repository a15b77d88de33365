"""Fast Amaranth-simulator tests of the row-stats unit, and of its golden model."""

import dataclasses

import numpy as np
import pytest
from amaranth import Const, Module, Signal
from amaranth.sim import Simulator

from damf.config import ConfigError
from damf.golden.damf_head import damf_head
from damf.config import pow2_exp as golden_pow2_exp
from damf.golden.row_stats import BASE2_FIELDS, FIELDS, fields, row_setup
from damf.config import RowStatsConfig
from damf.hdl.row_stats import RowStats, output_layout, pow2_exp, pow2_exp_latency, unpack_output
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
        out.append(pack_output(cfg, chunk, i >= len(row), pad=pad.tolist()))
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
    # five lanes (an odd node in the lane tree), count_width 6 (7 leaves in the N C trees)
    RowStatsConfig(seq_len=40, rank=16, pq_width=8, parallel=5),
    RowStatsConfig(seq_len=1, rank=1, pq_width=8, parallel=1, mode="maclaurin-abs"),
    # base2: N and A_max only, the accumulators are the output register
    RowStatsConfig(seq_len=7, rank=2, pq_width=5, parallel=3, mode="base2"),
    RowStatsConfig(seq_len=5, rank=1, pq_width=4, parallel=1, mode="base2", weight_frac=2),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"L{c.seq_len}-r{c.rank}-P{c.parallel}-{c.mode}")
def test_matches_golden(cfg):
    rng = np.random.default_rng(5)
    rows = []
    for length in sorted({cfg.seq_len, 1, max(1, cfg.seq_len - 1), 2 if cfg.seq_len >= 2 else 1}):
        rows += special_rows(cfg, length) + random_rows(cfg, rng, 12, length)
    rows = [rows[j] for j in rng.permutation(len(rows))]     # rows of every length back to back
    got, _ = simulate(cfg, rows)
    assert len(got) == len(rows)
    for r, (row, g) in enumerate(zip(rows, got)):
        want = {k: int(v[0]) for k, v in row_setup(cfg, [row]).items()}
        assert g == want, f"row {r} = {row}"


CYCLE_CONFIGS = [CONFIGS[0], CONFIGS[2], CONFIGS[4], CONFIGS[6],
                 RowStatsConfig(seq_len=7, rank=2, pq_width=5, parallel=3, mode="maclaurin"),
                 RowStatsConfig(seq_len=9, rank=1, pq_width=4, parallel=8, mode="base2")]


@pytest.mark.parametrize("cfg", CYCLE_CONFIGS, ids=lambda c: f"L{c.seq_len}-P{c.parallel}-{c.mode}")
def test_setup_cycles(cfg):
    """Rows back to back (single-beat rows among them): a beat accepted every cycle, each
    result ``setup_cycles`` after its row's last beat, ``cycles(lengths)`` in all."""
    L, P = cfg.seq_len, cfg.parallel
    lengths = [L, 1, 1, min(P, L), L, 1, max(1, L - 1), 1]
    rng = np.random.default_rng(9)
    rows = random_rows(cfg, rng, 1, L) * len(lengths)
    rows = [row[:n] for row, n in zip(rows, lengths)]
    got, log = simulate(cfg, rows, idle=0, backpressure=0, full=True)
    assert got == [{k: int(v[0]) for k, v in row_setup(cfg, [row]).items()} for row in rows]
    ins = [c for c, _ in log["i"]]
    assert ins == list(range(ins[0], ins[0] + len(ins))), "a gap on the input"
    ends = np.cumsum([cfg.row_cycles(n) for n in lengths]) - 1
    assert [o - ins[e] for (o, _), e in zip(log["o"], ends)] == [cfg.setup_cycles] * len(rows)
    assert log["o"][-1][0] - ins[0] + 1 == cfg.cycles(lengths)


def test_setup_cycles_values():
    assert [c.setup_cycles for c in CYCLE_CONFIGS] == [1 + 1 + 2 + 2, 0 + 1 + 3 + 2, 3 + 1 + 3 + 2, 2 + 1,
                                                       2 + 1 + 2 + 2, 3 + 1]
    assert CONFIGS[0].row_cycles(5) == 3 and CONFIGS[0].cycles([5, 1, 4]) == 3 + 1 + 2 + 6


@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize("bits", [1, 2, 5, 8, 13])
def test_pow2_exp(bits, pipelined):
    """P(x) of the tree helper for every x of ``bits`` bits (pipelined: one x per cycle)."""
    width = max(1, bits.bit_length())
    x = Signal(bits)
    m = Module()
    lps = 2
    exp = pow2_exp(m, x, width, "p", en=Const(1) if pipelined else None, levels_per_stage=lps)
    delay = pow2_exp_latency(bits, lps) if pipelined else 0
    tick = Signal()
    m.d.sync += tick.eq(~tick)          # a clock domain for the combinational case too
    got = []

    async def bench(ctx):
        for v in list(range(1 << bits)) + [0] * delay:
            ctx.set(x, v)
            got.append(ctx.get(exp))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got[delay:] == [0] + [golden_pow2_exp(v) for v in range(1, 1 << bits)]


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
