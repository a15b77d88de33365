"""Fast Amaranth-simulator tests of the shift-accumulate unit, its golden model, its cycle
model, and that its RTL has no multiplier."""

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from damf.verilog import to_verilog
from damf.config import ConfigError
from damf.golden.damf_head import damf_head
from damf.golden.shift_accumulate import beats_of_row, rows_from_trace, shift_accumulate_row
from damf.config import ShiftAccumulateConfig
from damf.hdl.shift_accumulate import (ShiftAccumulate, input_layout, pack_input, pack_row,
                                       unpack_output)
from damf.sim.amaranth_bench import run_streams


def edge_rows(cfg, rng):
    """Rows of the unit's corner cases: extreme V, both signs, shifts 0 and F, t_C < 0,
    rows of 1 key and of seq_len keys, the whole shift range (left shifts that saturate,
    right shifts past the accumulator)."""
    F = cfg.weight_frac
    vlo, vhi = cfg.v_range
    sh_lo, sh_hi = cfg.shift_range
    L = cfg.seq_len
    neg = -1 if cfg.has_sv else 0            # base2: no negative weights
    rows = []
    for n in sorted({1, L}):
        for V, sign, shift in [
            ([[vhi] * cfg.d_head] * n, [1] * n, [F] * n),           # largest acc
            ([[vlo] * cfg.d_head] * n, [1] * n, [F] * n),
            ([[vhi] * cfg.d_head] * n, [neg] * n, [F] * n),         # negative weights
            ([[vlo] * cfg.d_head] * n, [neg] * n, [0] * n),
            ([[0] * cfg.d_head] * n, [0] * n, [0] * n),
            ([[vlo] * cfg.d_head] * n, [1] * n, [0] * n),
        ]:
            for c_shift in ((F, 0, -1, cfg.c_shift_range[0]) if cfg.has_sv else (None,)):
                for sh in sorted({sh_lo, -1, 0, 1, F - cfg.out_frac, sh_hi}):
                    rows.append((V, sign, shift, c_shift, sh))
    # every t_n, and every sh of the range on random rows
    keys = [[int(x) for x in rng.integers(vlo, vhi, cfg.d_head, endpoint=True)] for _ in range(F + 1)]
    for start in range(0, F + 1, L):
        V = keys[start:start + L]
        rows.append((V, [1] * len(V), list(range(start, start + len(V))), F if cfg.has_sv else None, 0))
    for sh in range(sh_lo, sh_hi + 1):
        rows += [(V, sign, shift, c, sh) for V, sign, shift, c, _ in random_rows(cfg, rng, 1)]
    return rows


def random_rows(cfg, rng, count, lengths=None):
    F = cfg.weight_frac
    vlo, vhi = cfg.v_range
    rows = []
    for r in range(count):
        n = lengths[r % len(lengths)] if lengths else int(rng.integers(1, cfg.seq_len + 1))
        V = rng.integers(vlo, vhi, (n, cfg.d_head), endpoint=True).tolist()
        sign = rng.integers(-1 if cfg.has_sv else 0, 1, n, endpoint=True).tolist()
        shift = rng.integers(0, F, n, endpoint=True).tolist()
        c_shift = int(rng.integers(cfg.c_shift_range[0], F, endpoint=True)) if cfg.has_sv else None
        sh = int(rng.integers(max(cfg.shift_range[0], -3), min(cfg.shift_range[1], F + 4), endpoint=True))
        rows.append((V, sign, shift, c_shift, sh))
    return rows


def junk_pad(cfg, rng):
    """Random keys for the slots a beat leaves unused (the unit must ignore them)."""
    vlo, vhi = cfg.v_range
    return lambda j: (rng.integers(vlo, vhi, cfg.d_head, endpoint=True).tolist(),
                      int(rng.integers(-1, 1, endpoint=True)), int(rng.integers(0, cfg.weight_frac, endpoint=True)))


def split_row(cfg, row, rng):
    """``row`` sent as beats of random counts ``1..parallel`` (not only the last beat short)."""
    V, sign, shift, c_shift, sh = row
    pad = junk_pad(cfg, rng)
    words, n = [], 0
    while n < len(V):
        count = int(rng.integers(1, min(cfg.parallel, len(V) - n), endpoint=True))
        keys = [(V[n + j], sign[n + j], shift[n + j]) for j in range(count)]
        keys += [pad(j) for j in range(count, cfg.parallel)]
        v, s, t = zip(*keys)
        n += count
        words.append(pack_input(cfg, v, s, t, count, c_shift, sh, n == len(V)))
    return words


def simulate(cfg, rows, seed=0, idle=0.3, backpressure=0.3, split=False):
    """Run ``rows``; return ``(Z rows, log, beats per row)``."""
    rng = np.random.default_rng(seed)
    beats = [split_row(cfg, row, rng) if split else pack_row(cfg, *row, pad=junk_pad(cfg, rng))
             for row in rows]
    log = run_streams(ShiftAccumulate(cfg), {"i": [w for b in beats for w in b]}, ["o"],
                      expect={"o": len(rows)}, seed=seed, idle=idle, backpressure=backpressure)
    return [unpack_output(cfg, w) for _, w in log["o"]], log, [len(b) for b in beats]


def check(cfg, rows, got):
    assert len(got) == len(rows)
    for r, (row, g) in enumerate(zip(rows, got)):
        assert g == shift_accumulate_row(cfg, *row), f"row {r}: {row}"


CONFIGS = {
    # one key per beat
    "L5-d3-F3-p1": ShiftAccumulateConfig(seq_len=5, d_head=3, v_width=4, weight_frac=3, out_frac=2,
                                         pq_width=4, parallel=1),
    # parallel not dividing seq_len; 2 rounders for 2 lanes (G = 1)
    "L7-d2-F12-p3": ShiftAccumulateConfig(seq_len=7, d_head=2, v_width=6, weight_frac=12, out_frac=4,
                                          pq_width=5, rank=2, parallel=3),
    # d_head 3, one lane rounded per cycle (G = 3 > 2 beats: short rows wait)
    "L6-d3-F2-p3-r1": ShiftAccumulateConfig(seq_len=6, d_head=3, v_width=4, weight_frac=2, out_frac=2,
                                            pq_width=4, parallel=3, round_lanes=1),
    # d_head 3, two lanes per cycle (the second group has one lane)
    "L6-d3-F3-p2-r2": ShiftAccumulateConfig(seq_len=6, d_head=3, v_width=4, weight_frac=3, out_frac=2,
                                            pq_width=4, parallel=2, round_lanes=2),
    # a narrow window and no output guard (saturation is frequent), 4 keys per beat
    "L12-d1-F1-p4": ShiftAccumulateConfig(seq_len=12, d_head=1, v_width=3, weight_frac=1, out_frac=3,
                                          out_guard=0, pq_width=4, parallel=4),
    # base2: no SV term, weights 0 or 2^t_n, a final shift P(W) - out_frac of either sign
    "L7-d2-F4-p2-base2": ShiftAccumulateConfig(seq_len=7, d_head=2, v_width=5, weight_frac=4, out_frac=6,
                                               pq_width=5, mode="base2"),
    "L3-d3-F0-p3-r1-base2": ShiftAccumulateConfig(seq_len=3, d_head=3, v_width=4, weight_frac=0, out_frac=1,
                                                  out_guard=0, pq_width=4, mode="base2", parallel=3,
                                                  round_lanes=1),
}
STALLS = {"steady": (0.0, 0.0), "gaps": (0.4, 0.0), "backpressure": (0.0, 0.5), "both": (0.3, 0.3)}


@pytest.mark.parametrize("stalls", STALLS)
@pytest.mark.parametrize("name", CONFIGS)
def test_matches_golden(name, stalls):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(11)
    rows = edge_rows(cfg, rng) + random_rows(cfg, rng, 60)
    got, _, _ = simulate(cfg, rows, seed=len(rows), idle=STALLS[stalls][0], backpressure=STALLS[stalls][1])
    check(cfg, rows, got)


@pytest.mark.parametrize("name", CONFIGS)
def test_any_split_into_beats(name):
    """Beats of any count 1..parallel, not only a short last beat; unused slots hold junk."""
    cfg = CONFIGS[name]
    rows = random_rows(cfg, np.random.default_rng(5), 40)
    got, _, _ = simulate(cfg, rows, seed=3, split=True)
    check(cfg, rows, got)


def test_default_preset():
    cfg = ShiftAccumulateConfig.from_preset("default")
    assert (cfg.parallel, cfg.d_head, cfg.seq_len, cfg.rounders, cfg.round_cycles) == (2, 8, 8, 2, 4)
    rng = np.random.default_rng(2)
    rows = random_rows(cfg, rng, 30) + edge_rows(cfg, rng)[:40]
    got, _, _ = simulate(cfg, rows, seed=2, backpressure=0.6)
    check(cfg, rows, got)


@pytest.mark.parametrize("name", CONFIGS)
def test_latency_and_cycles(name):
    """Rows of at least ``round_cycles`` beats: a beat per cycle, ``Z`` ``latency`` after its
    row's last beat.  Any rows (shorter ones wait): ``Z_m - Z_(m-1) = max(b_m, round_cycles)``
    and :meth:`cycles` exact."""
    cfg = CONFIGS[name]
    G, P = cfg.round_cycles, cfg.parallel
    rng = np.random.default_rng(7)
    long_keys = [n for n in range(1, cfg.seq_len + 1) if cfg.row_beats(n) >= G] or [cfg.seq_len]
    cases = [random_rows(cfg, rng, 8, long_keys),
             random_rows(cfg, rng, 12),
             random_rows(cfg, rng, 6, [1]),
             random_rows(cfg, rng, 6, [cfg.seq_len, 1, P + 1, 1, cfg.seq_len])]
    for k, rows in enumerate(cases):
        _, log, beats = simulate(cfg, rows, idle=0, backpressure=0)
        accepts = [c for c, _ in log["i"]]
        outs = [c for c, _ in log["o"]]
        assert outs[-1] - accepts[0] + 1 == cfg.cycles(beats), f"case {k}: beats {beats}"
        assert [b - a for a, b in zip(outs, outs[1:])] == [max(b, G) for b in beats[1:]], f"case {k}"
        if all(b >= G for b in beats[1:]):
            ends = np.cumsum(beats) - 1
            assert accepts == list(range(accepts[0], accepts[0] + len(accepts)))   # a beat per cycle
            assert [o - accepts[e] for o, e in zip(outs, ends)] == [cfg.latency] * len(rows)


def test_cycle_model_values():
    cfg = ShiftAccumulateConfig.from_preset("default")
    assert cfg.latency == cfg.tree_levels + cfg.round_cycles + 7 == 12
    assert dataclasses.replace(cfg, mode="base2").latency == 11
    assert cfg.cycles([4] * 8) == 32 + 12 and cfg.cycles([1, 1, 1]) == 1 + 4 + 4 + 12
    d = cfg.derived()
    assert (d["rounders"], d["round_cycles"], d["latency"], d["cycles_full"]) == (2, 4, 12, 44)
    bert = dataclasses.replace(ShiftAccumulateConfig.from_preset("bert-base"), parallel=8, mode="base2")
    assert (bert.rounders, bert.round_cycles, bert.tree_levels) == (4, 16, 3)
    assert ShiftAccumulateConfig(d_head=8, seq_len=8, parallel=8).rounders == 8
    assert ShiftAccumulateConfig(d_head=8, seq_len=8, parallel=1, round_lanes=3).round_cycles == 3


def test_config_errors():
    with pytest.raises(ConfigError, match=r"^parallel must be at most seq_len = 8, not 9$"):
        ShiftAccumulateConfig(parallel=9)
    with pytest.raises(ConfigError, match=r"^round_lanes must be 0 \(auto\) or at most d_head = 8, not 9$"):
        ShiftAccumulateConfig(round_lanes=9)
    with pytest.raises(ConfigError, match=r"^parallel must be at least 1, not 0$"):
        ShiftAccumulateConfig(parallel=0)


def test_beats_of_row():
    cfg = CONFIGS["L7-d2-F12-p3"]
    V = [[n, -n] for n in range(7)]
    beats = beats_of_row(cfg, V, [1] * 7, list(range(7)))
    assert [b[3] for b in beats] == [3, 3, 1]
    assert beats[2] == ([[6, -6], [0, 0], [0, 0]], [1, 0, 0], [6, 0, 0], 1)
    with pytest.raises(ValueError, match=r"^a row needs 1 or more keys and as many signs and shifts, "
                                         r"not 2 keys, 1 signs and 2 shifts$"):
        beats_of_row(cfg, V[:2], [1], [0, 0])


def test_input_layout():
    """Fields lsb first: v (key j in v[j]), sign, shift, count, c_shift (not in base2), sh, last."""
    cfg = CONFIGS["L7-d2-F12-p3"]
    lay = input_layout(cfg)
    assert [n for n, _ in lay] == ["v", "sign", "shift", "count", "c_shift", "sh", "last"]
    word = pack_input(cfg, [[1, 2], [3, 4], [5, -1]], [1, -1, 0], [12, 0, 3], 2, -1, 5, True)
    view = lay.from_bits(word)
    assert [list(view.v[j]) for j in range(3)] == [[1, 2], [3, 4], [5, -1]]
    assert list(view.sign) == [1, -1, 0] and list(view.shift) == [12, 0, 3]
    assert (view.count, view.c_shift, view.sh, view.last) == (2, -1, 5, 1)
    assert word & ((1 << cfg.v_width) - 1) == 1 and word >> (lay.size - 1) == 1


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
    mac = CONFIGS["L6-d3-F3-p2-r2"]
    b2 = dataclasses.replace(mac, mode="base2")
    assert "c_shift" in [n for n, _ in input_layout(mac)]
    assert "c_shift" not in [n for n, _ in input_layout(b2)]
    assert b2.acc_width == mac.acc_width - 1 and b2.weight_range == (0, 1 << b2.weight_frac)
    assert " sv0 " in to_verilog(mac) and " sv0 " not in to_verilog(b2)
    with pytest.raises(ValueError, match=r"^c_shift must be an integer in mode maclaurin, not None$"):
        pack_input(mac, [[0] * 3] * 2, [1, 1], [0, 0], 2, None, 0, True)


def test_rounding_is_shared():
    """The end-of-row work exists ``rounders`` times, not once per lane."""
    for cfg in (CONFIGS["L6-d3-F2-p3-r1"], CONFIGS["L6-d3-F3-p2-r2"], ShiftAccumulateConfig()):
        verilog = to_verilog(cfg)
        units = {int(n) for n in re.findall(r"\br2_y(\d+)\b", verilog)}
        assert units == set(range(cfg.rounders)) and cfg.rounders < cfg.d_head


def test_no_multiplier():
    source = Path(__file__).resolve().parents[1] / "hdl" / "shift_accumulate.py"
    code = re.sub(r'""".*?"""', "", source.read_text(), flags=re.S)
    binary_star = r"[\w)\]]\s*\*\s*[\w($\\]"   # a * b, not *args nor (* attribute *)
    assert not re.search(binary_star, code), "a * operator in hdl/shift_accumulate.py"
    for cfg in itertools.chain(CONFIGS.values(), [ShiftAccumulateConfig()]):
        verilog = re.sub(r"\(\*.*?\*\)", "", to_verilog(cfg))
        assert "$mul" not in verilog and not re.search(binary_star, verilog), \
            "a multiplication in the generated Verilog"
    # the check itself finds a multiplier where there is one
    from damf.config import ScoreConfig
    assert re.search(binary_star, re.sub(r"\(\*.*?\*\)", "", to_verilog(ScoreConfig())))
