"""Fast tests of the integer softmax unit: configuration, golden model, accuracy, vector files,
and the RTL in Amaranth's simulator (the cocotb ones are in sim/)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from damf.config import ConfigError, SoftmaxConfig
from damf.golden import vectors
from damf.golden.softmax import (accuracy, exp_int, float_softmax, realistic_rows, softmax_row,
                                 split_rows)
from damf.hdl.softmax import Softmax


@pytest.mark.parametrize("kwargs, message", [
    ({"seq_len": 0}, r"^seq_len must be at least 1, not 0$"),
    ({"in_width": 41}, r"^in_width must be at most 40, not 41$"),
    ({"prob_width": 1}, r"^prob_width must be at least 2, not 1$"),
    ({"scale": 0}, r"^scale must be at least 1, not 0$"),
    ({"scale": 1 << 20, "scale_frac": 0},
     r"^alpha \* log2\(e\) = scale \* 2\*\*-scale_frac \* log2\(e\) must be below 2\*\*16, "
     r"not 1\.51278e\+06 \(scale=1048576, scale_frac=0\)$"),
])
def test_invalid(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SoftmaxConfig(**kwargs)


def test_component_wants_its_config():
    with pytest.raises(TypeError, match=r"^Config must be a SoftmaxConfig, not 3$"):
        Softmax(3)


def test_exp_mult_is_alpha_log2e():
    for scale, frac in ((181, 19), (1, 0), (3, 40), (12345, 7)):
        cfg = SoftmaxConfig(scale=scale, scale_frac=frac)
        assert 1 << 15 <= cfg.exp_mult <= 1 << 16
        assert abs(cfg.exp_mult * 2.0 ** -cfg.exp_shift / (cfg.alpha * np.log2(np.e)) - 1) < 2 ** -15


def test_exp_int_against_float():
    cfg = SoftmaxConfig(scale=1, scale_frac=4)   # alpha = 1/16
    d = np.arange(0, 400)
    e = exp_int(cfg, d) * 2.0 ** -cfg.exp_frac
    ref = np.exp(-cfg.alpha * d)
    assert e[0] == 1.0
    assert np.all(np.abs(e - ref) <= 3.9e-3 * ref + 2.0 ** -cfg.exp_frac)
    assert np.all(np.diff(exp_int(cfg, d)) <= 0)   # monotone


def test_golden_edges():
    cfg = SoftmaxConfig(seq_len=4)
    assert softmax_row(cfg, [7, 7, 7, 7]).tolist() == [64] * 4          # ties: exactly 1/4
    assert softmax_row(cfg, [5]).tolist() == [255]                      # 1.0 saturates
    lo, hi = -(1 << 18), (1 << 18) - 1
    assert softmax_row(cfg, [hi, lo, lo, lo]).tolist() == [255, 0, 0, 0]
    with pytest.raises(ValueError, match=r"^a row must hold 1 \.\. seq_len = 4 scores, not 5$"):
        softmax_row(cfg, [0] * 5)
    with pytest.raises(ValueError, match=r"^s\[0\] must be in \[-262144, 262143\], not 262144$"):
        softmax_row(cfg, [hi + 1])
    assert split_rows(cfg, [(1, 0), (2, 1), (3, 0), (4, 0), (5, 0), (6, 0), (7, 1)]) == \
        [[1, 2], [3, 4, 5, 6], [7]]


def test_accuracy_bounds():
    rng = np.random.default_rng(7)
    cfg = SoftmaxConfig(seq_len=16)
    rows = [rng.integers(-(1 << 18), 1 << 18, 16) for _ in range(200)]
    worst, _ = accuracy(cfg, rows)
    assert worst <= 2.0 ** -cfg.prob_width * 1.01   # the 1.0 -> 255/256 saturation dominates
    wide, rows = realistic_rows(SoftmaxConfig(seq_len=32, prob_width=16), rng, 200, d_head=64)
    worst, mean = accuracy(wide, rows)
    assert worst < 1e-3 and mean < 1e-4
    assert abs(float_softmax(wide, rows[0]).sum() - 1) < 1e-12


def test_vector_file_round_trip(tmp_path):
    cfg = SoftmaxConfig(seq_len=5)
    doc = vectors.generate(cfg, seed=2, count=7)
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(doc))
    loaded, inputs, expected = vectors.load(path, block="softmax")
    assert loaded == cfg
    assert len(inputs["s"]) == len(expected["p"])
    assert all(len(r) == len(p) for r, p in zip(inputs["s"], expected["p"]))
    doc["inputs"]["s"][0] = [0] * 6
    path.write_text(vectors.dumps(doc))
    with pytest.raises(vectors.VectorFileError,
                       match=r"^vector file '.*': inputs\.s\[0\] must hold 1 \.\. 5 integers, not 6$"):
        vectors.load(path)


def simulate(cfg, rows, *, seed=0, stall=0.3):
    """Drive rows with random gaps and backpressure; return the output rows and the cycles of
    every input and output handshake."""
    dut = Softmax(cfg)
    rng = random.Random(seed)
    beats = [(s & ((1 << cfg.in_width) - 1)) | (int(i == len(r) - 1) << cfg.in_width)
             for r in rows for i, s in enumerate(r)]
    want = len(beats)
    out, ins, outs = [], [], []

    async def bench(ctx):
        cycle = 0
        while len(out) < want:
            offer = bool(beats) and rng.random() >= stall
            if offer:
                ctx.set(dut.i.payload.as_value(), beats[0])
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.o.ready, rng.random() >= stall)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.as_value())
            cycle += 1
            if offer and i_ready:
                beats.pop(0)
                ins.append(cycle)
            if o_valid and o_ready:
                out.append((payload & ((1 << cfg.prob_width) - 1), payload >> cfg.prob_width))
                outs.append(cycle)
            assert cycle < 20 * sum(cfg.row_interval(len(r)) for r in rows), "stalled"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    got = split_rows(cfg, out)
    assert [p[1] for p in out] == [int(i == len(r) - 1) for r in rows for i in range(len(r))]
    return got, ins, outs


@pytest.mark.parametrize("cfg", [
    SoftmaxConfig(seq_len=5),
    SoftmaxConfig(seq_len=3, in_width=6, scale=1, scale_frac=2, prob_width=4, exp_frac=6),
    SoftmaxConfig(seq_len=1),
    SoftmaxConfig(seq_len=4, in_width=5, scale=3, scale_frac=0),   # exp_shift < exp_frac
], ids=repr)
def test_rtl_matches_golden(cfg):
    rng = np.random.default_rng(5)
    lo, hi = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    rows = [[hi] * cfg.seq_len, [lo] * cfg.seq_len, [hi] + [lo] * (cfg.seq_len - 1), [0]]
    rows += [rng.integers(lo, hi, rng.integers(1, cfg.seq_len, endpoint=True), endpoint=True).tolist()
             for _ in range(6)]
    got, _, _ = simulate(cfg, rows)
    assert got == [softmax_row(cfg, r).tolist() for r in rows]


def test_rtl_cycles():
    cfg = SoftmaxConfig(seq_len=6)
    rows = [[1, 2, 3, 4, 5, 6], [3, -3, 0]]
    got, ins, outs = simulate(cfg, rows, stall=0)
    assert got == [softmax_row(cfg, r).tolist() for r in rows]
    assert outs[5] - ins[0] == cfg.row_cycles(6)
    assert outs[0] - ins[5] == cfg.row_latency(6)
    assert ins[6] - ins[0] == cfg.row_interval(6)
    assert outs[8] - ins[6] == cfg.row_cycles(3)
