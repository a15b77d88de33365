"""Fast Amaranth-simulator tests of the shift-accumulate unit, its golden model, and that
its RTL has no multiplier."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from damf.blocks import to_verilog
from damf.golden.damf_head import damf_head
from damf.golden.shift_accumulate import rows_from_trace, shift_accumulate_row
from damf.head_config import ShiftAccumulateConfig
from damf.hdl.shift_accumulate import ShiftAccumulate, pack_input, unpack_output
from damf.sim.amaranth_bench import run_streams


def edge_rows(cfg, rng):
    """Rows of the unit's corner cases: extreme V, both signs, shifts 0 and F, t_C < 0,
    the whole shift range (left shifts that saturate, right shifts past the accumulator)."""
    F = cfg.weight_frac
    vlo, vhi = cfg.v_range
    sh_lo, sh_hi = cfg.shift_range
    L = cfg.seq_len
    neg = -1 if cfg.has_sv else 0            # base2: no negative weights
    rows = []
    for V, sign, shift in [
        ([[vhi] * cfg.d_head] * L, [1] * L, [F] * L),           # largest acc
        ([[vlo] * cfg.d_head] * L, [1] * L, [F] * L),
        ([[vhi] * cfg.d_head] * L, [neg] * L, [F] * L),         # negative weights
        ([[vlo] * cfg.d_head] * L, [neg] * L, [0] * L),
        ([[0] * cfg.d_head] * L, [0] * L, [0] * L),
        ([[vlo] * cfg.d_head] * L, [1] * L, [0] * L),
    ]:
        for c_shift in ((F, 0, -1, cfg.c_shift_range[0]) if cfg.has_sv else (None,)):
            for sh in sorted({sh_lo, -1, 0, 1, F - cfg.out_frac, sh_hi}):
                rows.append((V, sign, shift, c_shift, sh))
    return rows


def random_rows(cfg, rng, count):
    F = cfg.weight_frac
    vlo, vhi = cfg.v_range
    rows = []
    for _ in range(count):
        n = int(rng.integers(1, cfg.seq_len + 1))
        V = rng.integers(vlo, vhi, (n, cfg.d_head), endpoint=True).tolist()
        sign = rng.integers(-1 if cfg.has_sv else 0, 1, n, endpoint=True).tolist()
        shift = rng.integers(0, F, n, endpoint=True).tolist()
        c_shift = int(rng.integers(cfg.c_shift_range[0], F, endpoint=True)) if cfg.has_sv else None
        sh = int(rng.integers(max(cfg.shift_range[0], -3), min(cfg.shift_range[1], F + 4), endpoint=True))
        rows.append((V, sign, shift, c_shift, sh))
    return rows


def simulate(cfg, rows, seed=0, idle=0.3, backpressure=0.3):
    words = [pack_input(cfg, v, s, t, c, sh, n == len(V) - 1)
             for V, sign, shift, c, sh in rows for n, (v, s, t) in enumerate(zip(V, sign, shift))]
    log = run_streams(ShiftAccumulate(cfg), {"i": words}, ["o"], expect={"o": len(rows)},
                      seed=seed, idle=idle, backpressure=backpressure)
    return [unpack_output(cfg, w) for _, w in log["o"]], log


CONFIGS = [
    ShiftAccumulateConfig(seq_len=5, d_head=3, v_width=4, weight_frac=3, out_frac=2, pq_width=4),
    ShiftAccumulateConfig(seq_len=7, d_head=2, v_width=6, weight_frac=12, out_frac=4, pq_width=5, rank=2),
    ShiftAccumulateConfig(seq_len=12, d_head=1, v_width=3, weight_frac=1, out_frac=3, out_guard=0, pq_width=4),
    # base2: no SV term, weights 0 or 2^t_n, a final shift P(W) - out_frac of either sign
    ShiftAccumulateConfig(seq_len=7, d_head=2, v_width=5, weight_frac=4, out_frac=6, pq_width=5, mode="base2"),
    ShiftAccumulateConfig(seq_len=3, d_head=3, v_width=4, weight_frac=0, out_frac=1, out_guard=0, pq_width=4,
                          mode="base2"),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"L{c.seq_len}-d{c.d_head}-F{c.weight_frac}-{c.mode}")
def test_matches_golden(cfg):
    rng = np.random.default_rng(11)
    rows = edge_rows(cfg, rng) + random_rows(cfg, rng, 60)
    got, _ = simulate(cfg, rows)
    for r, (row, g) in enumerate(zip(rows, got)):
        assert g == shift_accumulate_row(cfg, *row), f"row {r}: {row}"


def test_latency_and_back_to_back_rows():
    cfg = CONFIGS[0]
    rows = random_rows(cfg, np.random.default_rng(1), 6)
    got, log = simulate(cfg, rows, idle=0, backpressure=0)
    ends = np.cumsum([len(r[0]) for r in rows]) - 1
    accepts = [c for c, _ in log["i"]]
    assert [o - accepts[e] for (o, _), e in zip(log["o"], ends)] == [cfg.latency] * len(rows)
    assert accepts == list(range(accepts[0], accepts[0] + len(accepts)))   # one key per cycle
    assert log["o"][-1][0] - accepts[0] + 1 == cfg.cycles([len(r[0]) for r in rows])


def test_golden_rows_equal_the_head():
    """The head's Z, row by row through the unit's golden model (all special rows)."""
    cfg = ShiftAccumulateConfig(seq_len=6, d_head=2, rank=1, pq_width=4, v_width=4, weight_frac=2,
                                out_frac=2)
    rng = np.random.default_rng(4)
    for mode in ("maclaurin", "maclaurin-abs", "base2"):
        for causal in (False, True):
            c = dataclasses.replace(cfg, mode=mode, c_int=5, c_frac=3)
            for _ in range(20):
                p, q = (rng.integers(-8, 7, (6, 1), endpoint=True) for _ in range(2))
                V = rng.integers(-8, 7, (6, 2), endpoint=True)
                Z, t = damf_head(p, q, V, c, causal=causal, trace=True)
                got = [shift_accumulate_row(c, *row) for row in rows_from_trace(t, V)]
                assert got == Z.tolist()


def test_base2_has_no_value_sum():
    """base2 has no SV term: no c_shift field, no SV registers, a narrower accumulator."""
    mac = CONFIGS[0]
    b2 = dataclasses.replace(mac, mode="base2")
    from damf.hdl.shift_accumulate import input_layout
    assert "c_shift" in [n for n, _ in input_layout(mac)]
    assert "c_shift" not in [n for n, _ in input_layout(b2)]
    assert b2.acc_width == mac.acc_width - 1 and b2.weight_range == (0, 1 << b2.weight_frac)
    assert " sv0 " in to_verilog(mac) and " sv0 " not in to_verilog(b2)
    with pytest.raises(ValueError, match=r"^c_shift must be an integer in mode maclaurin, not None$"):
        pack_input(mac, [0] * mac.d_head, 1, 0, None, 0, True)


def test_no_multiplier():
    source = Path(__file__).resolve().parents[1] / "hdl" / "shift_accumulate.py"
    code = re.sub(r'""".*?"""', "", source.read_text(), flags=re.S)
    binary_star = r"[\w)\]]\s*\*\s*[\w($\\]"   # a * b, not *args nor (* attribute *)
    assert not re.search(binary_star, code), "a * operator in hdl/shift_accumulate.py"
    for cfg in CONFIGS:
        verilog = re.sub(r"\(\*.*?\*\)", "", to_verilog(cfg))
        assert "$mul" not in verilog and not re.search(binary_star, verilog), \
            "a multiplication in the generated Verilog"
    # the check itself finds a multiplier where there is one
    from damf.head_config import ScoreConfig
    assert re.search(binary_star, re.sub(r"\(\*.*?\*\)", "", to_verilog(ScoreConfig())))
