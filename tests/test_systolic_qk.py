"""Fast tests of the systolic score engine: configuration, golden model, vector files, and the
RTL in Amaranth's simulator (the cocotb ones are in sim/)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from damf.config import PRESETS, ConfigError, SystolicQKConfig
from damf.blocks import generate_vectors, load_vectors
from damf.golden import vectors
from damf.golden.systolic_qk import score_rows, scores, scores_from_rows
from damf.hdl.systolic_qk import SystolicQK, pack_input_beats, unpack_output


def test_presets():
    for name in PRESETS:
        cfg = SystolicQKConfig.from_preset(name)
        assert (cfg.d_head, cfg.seq_len) == (PRESETS[name].d_head, PRESETS[name].seq_len)
        assert (cfg.rows, cfg.cols, cfg.q_width, cfg.k_width) == (4, 4, 8, 8)
    bert = SystolicQKConfig.from_preset("bert-base")
    assert (bert.tiles, bert.acc_width, bert.cycles_per_tile) == (32 * 32, 22, 64)


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 0}, r"^rows must be at least 1, not 0$"),
    ({"cols": 65}, r"^cols must be at most 64, not 65$"),
    ({"d_head": 0}, r"^d_head must be at least 1, not 0$"),
    ({"q_width": 1}, r"^q_width must be at least 2, not 1$"),
    ({"k_width": 33}, r"^k_width must be at most 32, not 33$"),
    ({"seq_len": "8"}, r"^seq_len must be an integer, not '8'$"),
    ({"rows": True}, r"^rows must be an integer, not True$"),
    ({"rows": 9}, r"^rows must be at most seq_len = 8, not 9$"),
    ({"cols": 5, "seq_len": 4, "rows": 2}, r"^cols must be at most seq_len = 4, not 5$"),
    ({"q_width": 32, "k_width": 32}, r"^q_width \+ k_width \+ log2\(d_head\) must give at most 62 score bits, "
                                     r"not 67 \(q_width=32, k_width=32, d_head=8\)$"),
])
def test_invalid(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SystolicQKConfig(**kwargs)


def test_component_wants_its_config():
    with pytest.raises(TypeError, match=r"^Config must be a SystolicQKConfig, not 3$"):
        SystolicQK(3)


@pytest.mark.parametrize("q_width, k_width, d_head", [(2, 2, 1), (8, 8, 64), (5, 7, 6), (16, 3, 1000)])
def test_acc_width_is_exact(q_width, k_width, d_head):
    cfg = SystolicQKConfig(q_width=q_width, k_width=k_width, d_head=d_head, rows=1, cols=1, seq_len=1)
    qlo, qhi = -(1 << (q_width - 1)), (1 << (q_width - 1)) - 1
    klo, khi = -(1 << (k_width - 1)), (1 << (k_width - 1)) - 1
    extremes = [d_head * qlo * klo, d_head * qlo * khi, d_head * qhi * klo]
    width = cfg.acc_width
    assert all(-(1 << (width - 1)) <= e <= (1 << (width - 1)) - 1 for e in extremes)
    # one bit less would overflow on the largest magnitude
    assert not all(-(1 << (width - 2)) <= e <= (1 << (width - 2)) - 1 for e in extremes)


def test_derived_counts():
    cfg = SystolicQKConfig(rows=3, cols=5, d_head=2, seq_len=11)
    assert (cfg.tile_rows, cfg.tile_cols, cfg.last_rows, cfg.last_cols) == (4, 3, 2, 1)
    assert cfg.tile_origins()[:4] == [(0, 0), (0, 5), (0, 10), (3, 0)]
    assert (cfg.hold, cfg.cycles_per_tile, cfg.latency) == (3, 5, 8)
    assert cfg.score_beats == 11 * 3
    assert cfg.cycles == 11 * 5 + 2 + 5 + 2 + 1
    assert cfg.tile_cycles == 2 + 3 + 5 + 1


def test_golden_matches_naive_sum_and_stream_order():
    cfg = SystolicQKConfig(rows=3, cols=2, d_head=4, seq_len=5, q_width=4, k_width=6)
    rng = np.random.default_rng(3)
    q, k = vectors.random_qk(cfg, rng)
    s = scores(cfg, q, k)
    naive = [[sum(q[i][t] * k[j][t] for t in range(cfg.d_head)) for j in range(5)] for i in range(5)]
    assert s.tolist() == naive
    rows = score_rows(cfg, s)
    # tile (0, 0) rows 0..2, then tile (0, 2), then (0, 4) whose second lane is padding
    assert rows[0] == naive[0][0:2] and rows[3] == naive[0][2:4] and rows[6] == [naive[0][4], 0]
    assert len(rows) == cfg.score_beats
    assert scores_from_rows(cfg, rows).tolist() == naive


def test_golden_range_checks():
    cfg = SystolicQKConfig(rows=1, cols=1, d_head=2, seq_len=2, q_width=4, k_width=4)
    with pytest.raises(ValueError, match=r"^q\[1, 0\] must be in \[-8, 7\], not 8$"):
        scores(cfg, [[0, 0], [8, 0]], [[0, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"^k must have shape \(2, 2\) \(seq_len x d_head\), not \(2, 3\)$"):
        scores(cfg, [[0, 0], [0, 0]], [[0, 0, 0], [0, 0, 0]])


def test_edge_problems_pair_every_edge_row():
    for seq_len in (1, 3, 5, 8):
        cfg = SystolicQKConfig(rows=1, cols=1, d_head=4, seq_len=seq_len, q_width=3, k_width=5)
        qe, ke = vectors.edge_rows(3, 4), vectors.edge_rows(5, 4)
        pairs = {(qe.index(qr), ke.index(kr)) for q, k in vectors.qk_edge_problems(cfg) for qr in q for kr in k}
        assert pairs == {(a, b) for a in range(5) for b in range(5)}


def test_vector_file_round_trip(tmp_path):
    cfg = SystolicQKConfig(rows=2, cols=3, d_head=3, seq_len=4)
    doc = generate_vectors(cfg, seed=2, count=5)
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(doc))
    loaded, inputs, expected = load_vectors(path, block="systolic-qk")
    assert loaded == cfg
    assert len(inputs["q"]) == len(expected["s"]) == 4 * (len(vectors.qk_edge_problems(cfg)) + 2)
    doc["inputs"]["q"] = doc["inputs"]["q"][:-1]
    doc["inputs"]["k"] = doc["inputs"]["k"][:-1]
    path.write_text(vectors.dumps(doc))
    with pytest.raises(vectors.VectorFileError,
                       match=r"^vector file '.*': inputs\.q must hold a positive multiple of seq_len = 4 rows, not 23$"):
        load_vectors(path)


def simulate(cfg, problems, *, seed=0, stall=0.3):
    """Drive the problems with random gaps and backpressure; return the o beats as lists."""
    dut = SystolicQK(cfg)
    rng = random.Random(seed)
    beats = [w for q, k in problems for w in pack_input_beats(cfg, q, k, pad=lambda: rng.randint(-2, 1))]
    want = len(problems) * cfg.score_beats
    results = []

    async def bench(ctx):
        cycles = 0
        while len(results) < want:
            offer = bool(beats) and rng.random() >= stall
            if offer:
                ctx.set(dut.i.payload.as_value(), beats[0])
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.o.ready, rng.random() >= stall)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.as_value())
            if offer and i_ready:
                beats.pop(0)
            if o_valid and o_ready:
                results.append(unpack_output(cfg, payload))
            cycles += 1
            assert cycles < 20 * (len(problems) * cfg.tiles * cfg.cycles_per_tile + cfg.tile_cycles), "stalled"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("cfg", [
    SystolicQKConfig(rows=2, cols=3, d_head=4, seq_len=5, q_width=4, k_width=3),
    SystolicQKConfig(rows=2, cols=2, d_head=1, seq_len=3, q_width=3, k_width=3),
], ids=repr)
def test_rtl_matches_golden(cfg):
    rng = np.random.default_rng(5)
    problems = vectors.qk_edge_problems(cfg) + [vectors.random_qk(cfg, rng) for _ in range(3)]
    expected = [row for q, k in problems for row in score_rows(cfg, scores(cfg, q, k))]
    assert simulate(cfg, problems) == expected
