"""Fast tests of the integer softmax unit: configuration, golden model, accuracy, vector files,
and the RTL in Amaranth's simulator (the cocotb ones are in sim/)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from damf.config import ConfigError, SoftmaxConfig
from damf.blocks import generate_vectors, load_vectors
from damf.golden import vectors
from damf.golden.softmax import (accuracy, exp_parts, exp_poly, float_softmax, realistic_rows, row_beats,
                                 softmax_beats, softmax_row, split_beats)
from damf.hdl.softmax import Softmax, pack_input, unpack_output


@pytest.mark.parametrize("kwargs, message", [
    ({"seq_len": 0}, r"^seq_len must be at least 1, not 0$"),
    ({"in_width": 41}, r"^in_width must be at most 40, not 41$"),
    ({"prob_width": 1}, r"^prob_width must be at least 2, not 1$"),
    ({"scale": 0}, r"^scale must be at least 1, not 0$"),
    ({"parallel": 0}, r"^parallel must be at least 1, not 0$"),
    ({"seq_len": 3}, r"^parallel must be at most seq_len = 3, not 4$"),
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


def test_exp_against_float():
    """``p >> (g - G)`` is ``2**exp_frac * exp(alpha * s) * 2**G`` within the polynomial's
    relative error plus one LSB; it is monotone in ``s``."""
    cfg = SoftmaxConfig(scale=1, scale_frac=4)   # alpha = 1/16
    s = np.arange(-400, 1)
    g, p = exp_parts(cfg, s)
    low = g.min()
    e = (p >> np.minimum(g - low, cfg.exp_frac + 1)) * 2.0 ** -cfg.exp_frac
    ref = np.exp(cfg.alpha * s) * 2.0 ** low
    assert 0.5 <= e[-1] <= 1
    assert np.all(np.abs(e - ref) <= 3.9e-3 * ref + 2.0 ** -cfg.exp_frac)
    assert np.all(np.diff(p >> np.minimum(g - low, cfg.exp_frac + 1)) >= 0)


@pytest.mark.parametrize("exp_frac", range(4, 21))
def test_sum_bound(exp_frac):
    """The reference's exponential is at least 2**(EF-1) - 2**(EF-16) > 2**(EF-2), so a row's
    sum exceeds 2**(EF-2) and the reciprocal fits recip_width bits."""
    cfg = SoftmaxConfig(exp_frac=exp_frac)
    p = exp_poly(cfg, np.arange(1 << exp_frac))
    assert p.min() >= (1 << (exp_frac - 1)) - (1 << max(0, exp_frac - 16)) > 1 << (exp_frac - 2)
    assert p.max() == 1 << exp_frac
    assert ((1 << cfg.recip_shift) // ((1 << (exp_frac - 2)) + 1)) < 1 << cfg.recip_width


def test_golden_edges():
    cfg = SoftmaxConfig(seq_len=4, parallel=1)
    assert softmax_row(cfg, [7, 7, 7, 7]).tolist() == [64] * 4          # ties: exactly 1/4
    assert softmax_row(cfg, [5]).tolist() == [255]                      # 1.0 saturates
    lo, hi = -(1 << 18), (1 << 18) - 1
    assert softmax_row(cfg, [hi, lo, lo, lo]).tolist() == [255, 0, 0, 0]
    assert softmax_row(cfg, [lo, lo, lo, hi]).tolist() == [0, 0, 0, 255]
    with pytest.raises(ValueError, match=r"^a row must hold 1 \.\. seq_len = 4 scores, not 5$"):
        softmax_row(cfg, [0] * 5)
    with pytest.raises(ValueError, match=r"^s\[0\] must be in \[-262144, 262143\], not 262144$"):
        softmax_row(cfg, [hi + 1])
    wide = SoftmaxConfig(seq_len=5, parallel=2)
    assert row_beats(wide, [1, 2, 3, 4, 5]) == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError, match=r"^a beat must hold 1 \.\. parallel = 2 scores, not 3$"):
        softmax_beats(wide, [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"^a row must hold 1 \.\. max_beats = 3 beats, not 4$"):
        softmax_beats(wide, [[1]] * 4)
    assert split_beats(wide, [([1], 0), ([2, 3], 1), ([3, 4], 0), ([5], 0), ([6, 7], 0), ([8], 1)]) == \
        [[[1], [2, 3]], [[3, 4], [5], [6, 7]], [[8]]]


def test_golden_against_a_naive_loop():
    """``softmax_beats`` against a plain-Python transcription of the arithmetic, for random
    rows cut into random beats; the numerators do not depend on the cut."""
    rng = random.Random(3)
    for cfg in (SoftmaxConfig(seq_len=9, parallel=3), SoftmaxConfig(seq_len=6, parallel=2, in_width=6, scale=3,
                                                                    scale_frac=0, prob_width=5, exp_frac=6)):
        ef, f, lim = cfg.exp_frac, cfg.exp_shift, (1 << cfg.prob_width) - 1
        lo, hi = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
        for _ in range(200):
            spread = rng.choice([hi, hi >> 3, 3])
            beats = [[rng.randint(max(lo, -spread), min(hi, spread)) for _ in range(rng.randint(1, cfg.parallel))]
                     for _ in range(rng.randint(1, cfg.max_beats))]
            G = S = 0
            refs, ps, gs = [], [], []
            for b, beat in enumerate(beats):
                parts = []
                for s in beat:
                    v = -s * cfg.exp_mult
                    x = (v >> (f - ef)) % (1 << ef) if f >= ef else (v << (ef - f)) % (1 << ef)
                    parts.append((v >> f, (1 << ef) + ((x * (-32768 - 11281 + ((11281 * x) >> ef))) >> 16)))
                low = min(g for g, _ in parts) if b == 0 else min([G] + [g for g, _ in parts])
                es = sum(p >> min(g - low, ef + 1) for g, p in parts)
                S = es if b == 0 else (S >> min(G - low, cfg.sum_width)) + es
                G = low
                refs.append(low)
                gs.append([g for g, _ in parts])
                ps.append([p for _, p in parts])
            recip = (1 << cfg.recip_shift) // S
            sh = ef + cfg.guard
            want = [[min(((p >> min(g - G, ef + 1)) * recip + (1 << (sh - 1))) >> sh, lim) for g, p in zip(gb, pb)]
                    for gb, pb in zip(gs, ps)]
            assert softmax_beats(cfg, beats) == want


def test_streamed_sum_between_floored_and_exact():
    """The running sum, shifted when the reference drops, lies between the sum of the final
    numerators ``p >> (g - G)`` and its unrounded value, whatever the cut into beats."""
    rng = random.Random(2)
    cfg = SoftmaxConfig(seq_len=64, parallel=3)
    ef = cfg.exp_frac
    for _ in range(500):
        row = [rng.randint(-(1 << 18), (1 << 18) - 1) >> rng.randint(0, 18) for _ in range(rng.randint(1, 64))]
        beats, i = [], 0
        while i < len(row):
            c = 3 if len(beats) == cfg.max_beats - 1 else rng.randint(1, 3)
            beats.append(row[i:i + c])
            i += c
        G = S = 0
        for b, beat in enumerate(beats):
            g, p = exp_parts(cfg, beat)
            low = int(g.min()) if b == 0 else min(G, int(g.min()))
            e = int((p >> np.minimum(g - low, ef + 1)).sum())
            S, G = (e if b == 0 else (S >> min(G - low, cfg.sum_width)) + e), low
        g, p = exp_parts(cfg, row)
        assert int((p >> np.minimum(g - G, ef + 1)).sum()) <= S <= float((p * 2.0 ** -(g - G).astype(float)).sum())


def test_accuracy_bounds():
    rng = np.random.default_rng(7)
    cfg = SoftmaxConfig(seq_len=16)
    rows = [rng.integers(-(1 << 18), 1 << 18, 16) for _ in range(200)]
    worst, _ = accuracy(cfg, rows)
    assert worst <= 2.0 ** -cfg.prob_width * 1.01   # the 1.0 -> 255/256 saturation dominates
    wide, rows = realistic_rows(SoftmaxConfig(seq_len=32, prob_width=16), rng, 200, d_head=64)
    worst, mean = accuracy(wide, rows)
    assert worst < 2e-3 and mean < 1e-4
    assert abs(float_softmax(wide, rows[0]).sum() - 1) < 1e-12


def test_vector_file_round_trip(tmp_path):
    cfg = SoftmaxConfig(seq_len=5)
    doc = generate_vectors(cfg, seed=2, count=7)
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(doc))
    loaded, inputs, expected = load_vectors(path, block="softmax")
    assert loaded == cfg
    assert len(inputs["s"]) == len(expected["p"])
    assert all(len(r) == len(p) for r, p in zip(inputs["s"], expected["p"]))
    doc["inputs"]["s"][0] = [0] * 6
    path.write_text(vectors.dumps(doc))
    with pytest.raises(vectors.VectorFileError,
                       match=r"^vector file '.*': inputs\.s\[0\] must hold 1 \.\. 5 integers, not 6$"):
        load_vectors(path)


def test_payload_packing():
    """``pack_input`` / ``unpack_output`` put lane j at bits j*width, then count, then last."""
    cfg = SoftmaxConfig(seq_len=8, parallel=3, in_width=6, prob_width=5)
    w = pack_input(cfg, [1, -2], True, pad=[-32])
    assert w == 1 | (62 << 6) | (32 << 12) | (2 << 18) | (1 << 20)
    assert unpack_output(cfg, 7 | (9 << 5) | (2 << 15) | (1 << 17)) == ([7, 9], 2, 1, [7, 9, 0])


def simulate(cfg, rows, *, seed=0, stall=0.3):
    """Drive rows (each a list of beats) with random gaps and backpressure; return the output
    beats ``(values, last)`` and the cycles of every input and output handshake."""
    dut = Softmax(cfg)
    rng = random.Random(seed)
    words = [pack_input(cfg, beat, b == len(r) - 1) for r in rows for b, beat in enumerate(r)]
    want = len(words)
    out, ins, outs = [], [], []

    async def bench(ctx):
        cycle = 0
        while len(out) < want:
            offer = bool(words) and rng.random() >= stall
            if offer:
                ctx.set(dut.i.payload.as_value(), words[0])
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.o.ready, rng.random() >= stall)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.as_value())
            cycle += 1
            if offer and i_ready:
                words.pop(0)
                ins.append(cycle)
            if o_valid and o_ready:
                values, count, last, lanes = unpack_output(cfg, payload)
                assert lanes[count:] == [0] * (cfg.parallel - count), f"lanes past count {count}: {lanes}"
                out.append((values, last))
                outs.append(cycle)
            assert cycle < 20 * sum(cfg.row_cycles(cfg.seq_len) for r in rows), "stalled"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert [last for _, last in out] == [int(b == len(r) - 1) for r in rows for b in range(len(r))]
    return split_beats(cfg, out), ins, outs


@pytest.mark.parametrize("cfg", [
    SoftmaxConfig(seq_len=5, parallel=1),
    SoftmaxConfig(seq_len=7, parallel=3),
    SoftmaxConfig(seq_len=3, parallel=2, in_width=6, scale=1, scale_frac=2, prob_width=4, exp_frac=6),
    SoftmaxConfig(seq_len=1, parallel=1),
    SoftmaxConfig(seq_len=4, parallel=4, in_width=5, scale=3, scale_frac=0),   # exp_shift < exp_frac
    SoftmaxConfig(seq_len=16, parallel=5, in_width=12, scale=1, scale_frac=6, prob_width=12),  # 2 tree stages
    SoftmaxConfig(seq_len=3, parallel=1, in_width=9),       # exp_shift > v_width: x needs v's sign bits
], ids=repr)
def test_rtl_matches_golden(cfg):
    rng = np.random.default_rng(5)
    lo, hi = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    rows = [[hi] * cfg.seq_len, [lo] * cfg.seq_len, [hi] + [lo] * (cfg.seq_len - 1),
            [lo] * (cfg.seq_len - 1) + [hi], [0]]
    rows += [rng.integers(lo >> k, hi >> k, rng.integers(1, cfg.seq_len, endpoint=True), endpoint=True).tolist()
             for k in (0, cfg.in_width // 2, cfg.in_width - 3) for _ in range(3)]
    cut = [row_beats(cfg, r) for r in rows]
    # and rows cut into beats of random counts (lanes past count ignored)
    pyrng = random.Random(1)
    for r in rows[-4:]:
        beats, i = [], 0
        while i < len(r) and len(beats) < cfg.max_beats - 1:
            c = pyrng.randint(1, cfg.parallel)
            beats.append(r[i:i + c])
            i += c
        if i < len(r):
            beats.append(r[i:i + cfg.parallel])
        cut.append(beats)
    got, _, _ = simulate(cfg, cut)
    assert got == [softmax_beats(cfg, b) for b in cut]


@pytest.mark.parametrize("cfg", [SoftmaxConfig(seq_len=6, parallel=1), SoftmaxConfig(seq_len=8, parallel=4),
                                 SoftmaxConfig(seq_len=9, parallel=9)], ids=repr)
def test_rtl_cycles(cfg):
    """Rows back to back: inputs never wait, each row's first output comes row_latency after
    its last input (or right after the previous row's outputs), outputs back to back."""
    rng = np.random.default_rng(2)
    lengths = [cfg.seq_len, cfg.seq_len, 1, 1, max(1, cfg.seq_len // 2), cfg.seq_len, 1]
    rows = [row_beats(cfg, rng.integers(-1000, 1000, n).tolist()) for n in lengths]
    got, ins, outs = simulate(cfg, rows, stall=0)
    assert got == [softmax_beats(cfg, b) for b in rows]
    assert ins == list(range(ins[0], ins[0] + len(ins)))           # one beat per cycle, rows back to back
    start, prev_out = 0, None
    for r, beats in enumerate(rows):
        nb = len(beats)
        first_in, last_in = ins[start], ins[start + nb - 1]
        first_out, last_out = outs[start], outs[start + nb - 1]
        expect = last_in + cfg.row_latency if prev_out is None else max(last_in + cfg.row_latency, prev_out + 1)
        assert first_out == expect, f"row {r}: first output at {first_out}, expected {expect}"
        assert outs[start:start + nb] == list(range(first_out, first_out + nb))
        if r == 0:
            assert last_out - first_in == cfg.row_cycles(lengths[0])
        prev_out, start = last_out, start + nb
    assert ins[len(rows[0])] - ins[0] == cfg.row_interval(lengths[0])
