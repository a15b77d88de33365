"""Fast tests of the conventional attention head (block baseline-head): configuration, golden
model, vector files, and the RTL in Amaranth's simulator (the cocotb ones are in sim/)."""

import dataclasses
import json
import random

import numpy as np
import pytest

from damf.config import BaselineHeadConfig, ConfigError, typical_shift
from damf.blocks import generate_vectors, load_vectors
from damf.golden import vectors
from damf.golden.baseline_head import (head, head_x, probabilities, projection, random_x_head, weights,
                                       x_edge_problems, z_beats, z_from_beats)
from damf.config import typical_pq_shift
from damf.golden.softmax import softmax_row
from damf.hdl.baseline_head import BaselineHead, qkv_words, unpack_output, v_words, w_words, x_words
from damf.sim.amaranth_bench import run_streams

SHAPES = {
    "default": BaselineHeadConfig(),
    # L a multiple of neither R nor C, d_head not a multiple of C: padding everywhere
    "ragged": BaselineHeadConfig(rows=3, cols=2, d_head=5, seq_len=7, q_width=5, k_width=6, v_width=4,
                                 scale=1, scale_frac=3, prob_width=6),
    "1x1": BaselineHeadConfig(rows=1, cols=1, d_head=2, seq_len=3),
}


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 9}, r"^rows must be at most seq_len = 8, not 9$"),
    ({"cols": 5, "seq_len": 4}, r"^cols must be at most seq_len = 4, not 5$"),
    ({"cols": 4, "d_head": 3}, r"^cols must be at most d_head = 3, not 4$"),
    ({"v_width": 1}, r"^v_width must be at least 2, not 1$"),
    ({"prob_width": 25}, r"^prob_width must be at most 24, not 25$"),
    ({"q_width": 20, "k_width": 20}, r"^q_width \+ k_width \+ log2\(d_head\) must give at most 40 score bits "
                                     r"\(softmax in_width\), not 43 \(q_width=20, k_width=20, d_head=8\)$"),
    ({"scale": 1 << 20, "scale_frac": 0}, r"^alpha \* log2\(e\) = .* must be below 2\*\*16, not "),
])
def test_invalid(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BaselineHeadConfig(**kwargs)


def test_component_wants_its_config():
    with pytest.raises(TypeError, match=r"^Config must be a BaselineHeadConfig, not 3$"):
        BaselineHead(3)


def test_sub_configurations_agree():
    cfg = BaselineHeadConfig.from_preset("bert-base")
    assert cfg.softmax.in_width == cfg.qk.acc_width == 22
    assert cfg.av.q_width == cfg.prob_width + 1
    assert cfg.out_width == cfg.av.acc_width == 24
    assert (cfg.qk.seq_len, cfg.av.seq_len, cfg.av.d_head) == (128, 128, 64)
    assert cfg.tile_row_sizes() == [4] * 32
    assert SHAPES["ragged"].tile_row_sizes() == [3, 3, 1]


def test_cycle_formula_by_hand():
    cfg = BaselineHeadConfig()          # 4 x 4, L = 8, d_head = 8: 2 tile rows of 4 query rows
    # softmax (parallel = C = 4): rows of 2 beats; latency = sum_stage 11 (v in 2 stages, 2 tree
    # stages) + div_stages 8 (16 reciprocal bits) + 7 = 26
    assert (cfg.softmax.parallel, cfg.softmax.row_latency, cfg.qk.latency, cfg.av.latency) == (4, 26, 7, 7)
    # tile row 0: load 0..7; Q K^T feed starts at 8, beats 10..25 (2 tiles of 8), scores written
    # by 25 + 7 + 3 = 35; softmax feed starts 36, beats 38..45 (4 rows of 2), rows' outputs at
    # 65-66, 67-68, 69-70, 71-72; A' V feed starts 73, beats 75..90
    # tile row 1: Q K^T feed starts 26 (after its own last beat 25), beats 28..43, scores 53;
    # softmax feed 54, beats 56..63, outputs 83..90; A' V feed 91 (after 90), beats 93..108
    assert cfg.schedule() == [
        {"qk_fed": 25, "scores": 35, "sm_fed": 45, "probs": 72, "av_fed": 90},
        {"qk_fed": 43, "scores": 53, "sm_fed": 63, "probs": 90, "av_fed": 108}]
    assert cfg.head_interval == 109
    assert cfg.cycles == 108 + 7 + 4 - 1


def _naive(cfg, q, k, v):
    """Loops, and one golden softmax row per row of S."""
    L, D = cfg.seq_len, cfg.d_head
    s = [[sum(q[i][e] * k[j][e] for e in range(D)) for j in range(L)] for i in range(L)]
    a = [softmax_row(cfg.softmax, row).tolist() for row in s]
    return [[sum(a[i][t] * v[t][e] for t in range(L)) for e in range(D)] for i in range(L)]


@pytest.mark.parametrize("name", SHAPES)
def test_golden_against_naive(name):
    cfg = SHAPES[name]
    rng = np.random.default_rng(3)
    for q, k, v in vectors.head_edge_problems(cfg) + [vectors.random_head(cfg, rng) for _ in range(3)]:
        z = head(cfg, q, k, v)
        assert z.tolist() == _naive(cfg, q, k, v)
        assert z_from_beats(cfg, z_beats(cfg, z)).tolist() == z.tolist()
    assert probabilities(cfg, q, k).shape == (cfg.seq_len, cfg.seq_len)


def test_vector_file_round_trip(tmp_path):
    cfg = SHAPES["ragged"]
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(generate_vectors(cfg, seed=2, count=9)))
    loaded, inputs, expected = load_vectors(path, block="baseline-head")
    assert loaded == cfg and len(inputs["v"]) == len(expected["z"]) == 7 * (len(vectors.head_edge_problems(cfg)) + 2)


def test_vector_file_rejects_bad_v(tmp_path):
    cfg = SHAPES["1x1"]
    doc = generate_vectors(cfg, seed=2, count=3)
    doc["inputs"]["v"][1] = [0]
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(doc))
    with pytest.raises(vectors.VectorFileError, match=r": inputs\.v\[1\] must hold 2 integers, not 1$"):
        load_vectors(path)


# ---- the RTL in Amaranth's simulator --------------------------------------------------------

def _words(cfg, problems):
    return [w for q, k, v in problems for w in qkv_words(cfg, q, k, v)]


def _run(cfg, problems, **kw):
    want = [beat for q, k, v in problems for beat in z_beats(cfg, head(cfg, q, k, v))]
    log = run_streams(BaselineHead(cfg), {"i": _words(cfg, problems)}, ["o"], expect={"o": len(want)},
                      max_cycles=50 * cfg.cycles * len(problems), **kw)
    got = [unpack_output(cfg, p) for _, p in log["o"]]
    return log, got, want


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("stalls", [0.0, 0.3])
def test_rtl_bit_exact(name, stalls):
    cfg = SHAPES[name]
    rng = np.random.default_rng(5)
    problems = vectors.head_edge_problems(cfg)[:2] + [vectors.random_head(cfg, rng) for _ in range(2)]
    _, got, want = _run(cfg, problems, seed=11, idle=stalls, backpressure=stalls)
    assert got == want


@pytest.mark.parametrize("name", SHAPES)
def test_rtl_cycles(name):
    cfg = SHAPES[name]
    rng = np.random.default_rng(6)
    log, got, want = _run(cfg, [vectors.random_head(cfg, rng) for _ in range(2)], idle=0.0, backpressure=0.0)
    assert got == want
    ins, outs = [c for c, _ in log["i"]], [c for c, _ in log["o"]]
    assert outs[cfg.out_beats - 1] - ins[0] == cfg.cycles
    assert ins[cfg.seq_len] - ins[0] == cfg.head_interval
    assert outs[-1] - ins[cfg.seq_len] == cfg.cycles


# ---- inputs=x: the head computes Q = X W_Q and K = X W_K ---------------------------------------

X_SHAPES = {
    # the default preset's head taking X: d_model 16 in 4 beats of 4, qk_shift 10 (typical_shift)
    "x-default": dataclasses.replace(BaselineHeadConfig.from_preset("default"), inputs="x"),
    # ragged arrays as above; 2 beats per token with 2 padding lanes; Q and K of different widths
    # requantized by 2 bits from 10: saturation both ways and rounding ties are frequent
    "x-ragged": BaselineHeadConfig(rows=3, cols=2, d_head=5, seq_len=7, q_width=5, k_width=4, v_width=4,
                                   scale=1, scale_frac=3, prob_width=6, inputs="x", d_model=6, lanes=4,
                                   x_width=4, w_width=4, qk_shift=2),
    # weights baked into the Verilog (random from weight_seed), one beat per token, no shift
    # (saturation only: 7 exact bits into 5), a 1 x 1 array
    "x-fixed-1x1": BaselineHeadConfig(rows=1, cols=1, d_head=2, seq_len=3, inputs="x", d_model=3, lanes=3,
                                      x_width=3, w_width=3, weights="fixed", weight_seed=5, qk_shift=0,
                                      q_width=5, k_width=5),
}


@pytest.mark.parametrize("kwargs, message", [
    ({"inputs": "xq"}, r"^inputs must be one of qk, x, not 'xq'$"),
    ({"inputs": "x", "d_head": 65, "cols": 4}, r"^d_head must be at most 64 with inputs=x \(the projection's "
                                                r"rank\), not 65$"),
    ({"inputs": "x", "lanes": 17}, r"^lanes must be at most d_model = 16, not 17$"),
    ({"inputs": "x", "qk_shift": 20}, r"^qk_shift must be at most the projection's out_width - 1 = 19, not 20$"),
    ({"qk_shift": 62}, r"^qk_shift must be at most 61, not 62$"),
    ({"wq": ((0,) * 16,) * 8}, r"^wq may only be given with inputs=x, not inputs=qk$"),
    ({"inputs": "x", "wk": ((0,) * 16,) * 8}, r"^wk may only be given with weights=fixed, not weights=runtime$"),
    ({"inputs": "x", "weights": "fixed", "wq": ((0,) * 16,) * 7},
     r"^wq must hold 8 vectors \(one per column of Q or K: d_head\), not 7$"),
    ({"inputs": "x", "weights": "fixed", "wq": ((0,) * 15,) * 8}, r"^wq\[0\] must hold d_model = 16 integers, not 15$"),
    ({"inputs": "x", "weights": "fixed", "wk": ((0,) * 16,) * 7 + ((0,) * 15 + (128,),)},
     r"^wk\[7\]\[15\] must be an integer in \[-128, 127\] \(w_width = 8\), not 128$"),
])
def test_invalid_x(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BaselineHeadConfig(**kwargs)


def test_projection_is_an_inner_product_of_rank_d_head():
    with pytest.raises(ConfigError, match=r"^projection needs inputs=x, not inputs=qk$"):
        BaselineHeadConfig().projection
    cfg = X_SHAPES["x-ragged"]
    ip = cfg.projection
    assert (ip.rank, ip.d_model, ip.lanes, ip.x_width, ip.w_width, ip.beats, ip.last_lanes) == (5, 6, 4, 4, 4, 2, 2)
    fixed = X_SHAPES["x-fixed-1x1"]
    wq, wk = weights(fixed)
    assert (fixed.projection.u, fixed.projection.v) == (None, None)
    assert fixed.projection.fixed_vectors() == (tuple(map(tuple, wq)), tuple(map(tuple, wk)))
    # fixed weights travel in the JSON next to the Verilog: reading it back gives the same head
    again = BaselineHeadConfig.from_dict(json.loads(fixed.to_json())["config"])
    assert again.wq == tuple(map(tuple, wq)) and weights(again) == (wq, wk)


def test_typical_shift_is_damf_rule():
    """``typical_shift`` is ``golden.damf_head.typical_pq_shift`` (one rule for DAMF's p, q and the
    baseline's Q, K), and the presets use it."""
    for cfg in list(X_SHAPES.values()) + [dataclasses.replace(BaselineHeadConfig.from_preset("bert-base"),
                                                              inputs="x")]:
        for width in (2, 4, 8, 12):
            assert typical_shift(cfg.d_model, cfg.x_width, cfg.w_width, width) == \
                typical_pq_shift(cfg.projection, width)
    assert BaselineHeadConfig.from_preset("bert-base").qk_shift == 13
    assert BaselineHeadConfig.from_preset("default").qk_shift == BaselineHeadConfig().qk_shift == 10


def test_derived_bert_base_x():
    """inputs=x at bert-base: 48 beats per token, the projection's MACs and weights, the ports."""
    qk = BaselineHeadConfig.from_preset("bert-base")
    cfg = dataclasses.replace(qk, inputs="x")
    d = cfg.derived()
    assert d["projection_macs"] == 2 * 128 * 768 * 64 == 12_582_912
    assert d["projection_weight_bits"] == 2 * 768 * 64 * 8
    assert d["memory_bits"] == qk.memory_bits + 2 * 768 * 64 * 8
    assert d["ports"] == {"x__payload": 16 * 8 + 1, "v__payload": 64 * 8 + 1, "w__payload": 2 * 64 * 16 * 8,
                          "o__payload": 4 * 24}
    assert d["load_end"] == 128 * 48 - 1 + 4 + 1
    assert "projection_macs" not in qk.derived() and qk.derived()["ports"] == {"i__payload": 64 * 24,
                                                                               "o__payload": 96}
    fixed = dataclasses.replace(cfg, weights="fixed").derived()["ports"]
    assert "w__payload" not in fixed


@pytest.mark.parametrize("name", SHAPES)
def test_x_schedule_is_qk_schedule_after_the_projection(name):
    """The engines do not care where Q and K came from: with inputs=x every edge of the schedule
    moves by the load's extra length, ``L beats - 1 + projection latency - (L - 1)``."""
    qk = SHAPES[name]
    cfg = dataclasses.replace(qk, inputs="x", d_model=10, lanes=3, qk_shift=3)   # 4 beats per token
    shift = qk.seq_len * 4 - 1 + (4 + 1) - (qk.seq_len - 1)
    assert cfg.load_end - qk.load_end == shift
    assert cfg.schedule() == [{k: e + shift for k, e in row.items()} for row in qk.schedule()]
    assert (cfg.cycles, cfg.head_interval) == (qk.cycles + shift, qk.head_interval + shift)


def _naive_requantize(x, shift, width):
    """Round half away from zero by magnitude, then clamp: written independently of golden.quant."""
    if shift:
        mag = (abs(x) + (1 << (shift - 1))) >> shift
        x = mag if x >= 0 else -mag
    return min(max(x, -(1 << (width - 1))), (1 << (width - 1)) - 1)


def _naive_x(cfg, X, V, wq, wk):
    def proj(w, width):
        return [[_naive_requantize(sum(x * wi for x, wi in zip(row, w[e])), cfg.qk_shift, width)
                 for e in range(cfg.d_head)] for row in X]
    return _naive(cfg, proj(wq, cfg.q_width), proj(wk, cfg.k_width), V)


def _x_problems(cfg, rng, count):
    return x_edge_problems(cfg) + [random_x_head(cfg, rng) for _ in range(count)]


@pytest.mark.parametrize("name", X_SHAPES)
def test_golden_x_against_naive(name):
    cfg = X_SHAPES[name]
    rng = np.random.default_rng(4)
    wq, wk = weights(cfg, rng)
    for X, V in _x_problems(cfg, rng, 4):
        assert head_x(cfg, X, V, wq, wk).tolist() == _naive_x(cfg, X, V, wq, wk)


def test_x_requantization_saturates_and_rounds():
    """The ``x-ragged`` heads drive the requantization into saturation both ways and round ties
    of both signs (so the tests above and below can see a wrong rule)."""
    from damf.golden.inner_product import inner_product
    cfg = X_SHAPES["x-ragged"]
    rng = np.random.default_rng(8)
    wq, wk = weights(cfg, rng)
    exact = np.concatenate([np.ravel(inner_product(cfg.projection, X, wq, wk)) for X, _ in _x_problems(cfg, rng, 2)])
    top = (1 << (min(cfg.q_width, cfg.k_width) - 1)) << cfg.qk_shift
    assert (exact >= top).any() and (exact < -top).any()
    assert ((exact % 4 == 2) & (exact > 0)).any() and ((exact % 4 == 2) & (exact < 0)).any()
    q, k = projection(cfg, _x_problems(cfg, rng, 0)[1][0], wq, wk)
    assert np.abs(q).max() <= 16 and np.abs(k).max() <= 8


def _run_x(cfg, heads, *, seed=0, idle=0.3, backpressure=0.3, reload=None, order=None):
    """Simulate heads ``[(X, V, wq, wk)]``: with runtime weights every change of ``(wq, wk)`` is a
    load on ``w`` between the heads; ``order`` "x" (or "v") holds ``v`` (or ``x``) of each head
    until the other stream of that head is in.  Padding lanes of ``x`` carry noise."""
    L, beats = cfg.seq_len, cfg.projection.beats
    noise = random.Random(seed)
    xlo, xhi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
    inputs = {"x": [w for X, *_ in heads for w in x_words(cfg, X, lambda: noise.randint(xlo, xhi))],
              "v": [w for _, V, *_ in heads for w in v_words(cfg, V)]}
    loads, current = [], None       # (first head, first w word, end w word) of each load
    if cfg.weights == "runtime":
        inputs["w"] = []
        wlo, whi = -(1 << (cfg.w_width - 1)), (1 << (cfg.w_width - 1)) - 1
        for h, (_, _, wq, wk) in enumerate(heads):
            if (wq, wk) != current:
                first = len(inputs["w"])
                inputs["w"] += w_words(cfg, wq, wk, lambda: noise.randint(wlo, whi))
                loads.append((h, first, len(inputs["w"])))
                current = (wq, wk)

    def hold(name, counts):
        head_x, head_v = counts["x"] // (L * beats), counts["v"] // L
        if name == "w":     # a load once the tokens of the heads before it are all in
            return counts["x"] < next(h for h, first, end in loads if first <= counts["w"] < end) * L * beats
        if name == "x" and loads:   # a head's tokens once its weights are in
            return counts["w"] < max(end for h, first, end in loads if h <= head_x)
        if order == "x" and name == "v":
            return counts["x"] < (head_v + 1) * L * beats
        if order == "v" and name == "x":
            return counts["v"] < (head_x + 1) * L
        return False

    want = [b for X, V, wq, wk in heads for b in z_beats(cfg, head_x(cfg, X, V, wq, wk))]
    log = run_streams(BaselineHead(cfg), inputs, ["o"], expect={"o": len(want)}, seed=seed, idle=idle,
                      backpressure=backpressure, hold=hold, max_cycles=50 * cfg.cycles * len(heads))
    return log, [unpack_output(cfg, p) for _, p in log["o"]], want


@pytest.mark.parametrize("name", X_SHAPES)
@pytest.mark.parametrize("stalls", [0.0, 0.3])
def test_rtl_x_bit_exact(name, stalls):
    cfg = X_SHAPES[name]
    rng = np.random.default_rng(9)
    wq, wk = weights(cfg, rng)
    heads = [(X, V, wq, wk) for X, V in _x_problems(cfg, rng, 2)]
    _, got, want = _run_x(cfg, heads, seed=12, idle=stalls, backpressure=stalls)
    assert got == want


@pytest.mark.parametrize("order", ["x", "v"])
def test_rtl_x_one_stream_first(order):
    """A head's ``v`` rows all before its ``x`` tokens, or after: the load ends with the later."""
    cfg = X_SHAPES["x-ragged"]
    rng = np.random.default_rng(10)
    wq, wk = weights(cfg, rng)
    heads = [(X, V, wq, wk) for X, V in [random_x_head(cfg, rng) for _ in range(3)]]
    _, got, want = _run_x(cfg, heads, seed=13, order=order)
    assert got == want


@pytest.mark.parametrize("banks", [1, 2])
def test_rtl_x_new_weights_between_heads(banks):
    """Runtime weights loaded on ``w`` while the previous head computes: the next head uses them."""
    cfg = dataclasses.replace(X_SHAPES["x-ragged"], banks=banks)
    rng = np.random.default_rng(11)
    sets = [weights(cfg, rng) for _ in range(3)]
    heads = [(X, V, *sets[min(h, 2)]) for h, (X, V) in enumerate(random_x_head(cfg, rng) for _ in range(4))]
    _, got, want = _run_x(cfg, heads, seed=14, idle=0.2, backpressure=0.2)
    assert got == want


@pytest.mark.parametrize("name", X_SHAPES)
def test_rtl_x_cycles(name):
    """Sources always valid, sink always ready: first ``x`` handshake to last ``Z`` handshake is
    ``cycles``, heads ``head_interval`` apart, the ``x`` beats of a head back to back."""
    cfg = X_SHAPES[name]
    rng = np.random.default_rng(12)
    wq, wk = weights(cfg, rng)
    log, got, want = _run_x(cfg, [(*random_x_head(cfg, rng), wq, wk) for _ in range(2)], idle=0.0, backpressure=0.0)
    assert got == want
    n = cfg.in_beats
    ins, outs = [c for c, _ in log["x"]], [c for c, _ in log["o"]]
    assert ins[:n] == list(range(ins[0], ins[0] + n))
    assert outs[cfg.out_beats - 1] - ins[0] == cfg.cycles
    assert ins[n] - ins[0] == cfg.head_interval
    assert outs[-1] - ins[n] == cfg.cycles


# ---- banks=2: the next head loads while this one computes ------------------------------------

def test_heads_schedule_by_hand():
    one = BaselineHeadConfig()              # load edges 0..7, last A' V beat 108 (see above)
    two = dataclasses.replace(one, banks=2)
    assert one.compute_span == two.compute_span == 108 - 7
    # one bank: each head loads after the last A' V beat of the one before
    assert [h["start"] for h in one.heads_schedule(3)] == [0, 109, 218] and one.head_interval == 109
    # two banks: head 1 loads at once into bank 1 (edges 8..15) and computes from edge 108 on;
    # head 2 loads into bank 0 once head 0 has left it (edge 109), and so on: 101 apart
    hs = two.heads_schedule(4)
    assert [h["start"] for h in hs] == [0, 8, 109, 210]
    assert [h["compute"] for h in hs] == [7, 108, 209, 310]
    assert [h["end"] for h in hs] == [118, 219, 320, 421] and two.head_interval == 101
    # the memory: Q, K, V twice
    assert two.memory_bits - one.memory_bits == 8 * 8 * 24
    # a load longer than the computation sets the pace: the loads follow each other
    slow = dataclasses.replace(X_SHAPES["x-ragged"], d_model=40, lanes=1, banks=2)
    assert slow.load_end + 1 > slow.compute_span and slow.head_interval == slow.load_end + 1


TWO_BANKS = {**{name: dataclasses.replace(cfg, banks=2) for name, cfg in {**SHAPES, **X_SHAPES}.items()},
             # inputs=x with 40 beats per token: the loads, not the engines, set the pace
             "x-load-bound": dataclasses.replace(X_SHAPES["x-ragged"], d_model=40, lanes=1, banks=2)}


@pytest.mark.parametrize("name", TWO_BANKS)
def test_rtl_two_banks(name):
    """Five heads back to back on two banks: bit-exact with stalls, and with sources always valid
    and the sink always ready every head starts and ends at the edge ``heads_schedule`` gives, so
    heads are ``head_interval`` apart in steady state."""
    cfg = TWO_BANKS[name]
    rng = np.random.default_rng(13)
    count = 5
    if cfg.inputs == "qk":
        problems = [vectors.random_head(cfg, rng) for _ in range(count)]
        _, got, want = _run(cfg, problems, seed=15, idle=0.3, backpressure=0.3)
        assert got == want
        log, got, want = _run(cfg, problems, idle=0.0, backpressure=0.0)
        ins = [c for c, _ in log["i"]]
    else:
        wq, wk = weights(cfg, rng)
        heads = [(*random_x_head(cfg, rng), wq, wk) for _ in range(count)]
        _, got, want = _run_x(cfg, heads, seed=15, idle=0.3, backpressure=0.3)
        assert got == want
        log, got, want = _run_x(cfg, heads, idle=0.0, backpressure=0.0)
        ins = [c for c, _ in log["x"]]
    assert got == want
    outs = [c for c, _ in log["o"]]
    starts = [ins[h * cfg.in_beats] - ins[0] for h in range(count)]
    ends = [outs[(h + 1) * cfg.out_beats - 1] - ins[0] for h in range(count)]
    schedule = cfg.heads_schedule(count)
    assert starts == [h["start"] for h in schedule]
    assert ends == [h["end"] for h in schedule]
    assert starts[-1] - starts[-2] == ends[-1] - ends[-2] == cfg.head_interval
    assert cfg.head_interval < dataclasses.replace(cfg, banks=1).head_interval


def test_cli_generates_inputs_x(tmp_path):
    """``damf generate baseline-head --set inputs=x`` writes the Verilog and its JSON (the preset's
    projection keys and qk_shift); the JSON of fixed weights, fed back, gives the same Verilog."""
    import subprocess
    import sys

    def damf(*args):
        result = subprocess.run([sys.executable, "-m", "damf.cli", *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    damf("generate", "baseline-head", "--set", "inputs=x", "--set", "weights=fixed", "--out", tmp_path / "a")
    doc = json.loads((tmp_path / "a" / "baseline-head.json").read_text())
    assert (doc["config"]["d_model"], doc["config"]["lanes"], doc["config"]["qk_shift"]) == (16, 4, 10)
    assert len(doc["config"]["wq"]) == 8 and doc["derived"]["ports"]["x__payload"] == 33
    assert "module damf_baseline_head" in (tmp_path / "a" / "baseline-head.v").read_text()
    damf("generate", "baseline-head", "--config", tmp_path / "a" / "baseline-head.json", "--out", tmp_path / "b")
    assert (tmp_path / "b" / "baseline-head.v").read_text() == (tmp_path / "a" / "baseline-head.v").read_text()
