"""Fast tests of the conventional attention head (block baseline-head): configuration, golden
model, vector files, and the RTL in Amaranth's simulator (the cocotb ones are in sim/)."""

import numpy as np
import pytest

from damf.config import BaselineHeadConfig, ConfigError
from damf.golden import vectors
from damf.golden.baseline_head import head, probabilities, z_beats, z_from_beats
from damf.golden.softmax import softmax_row
from damf.hdl.baseline_head import BaselineHead
from damf.sim.amaranth_bench import run_streams
from damf.sim.streams import pack, unpack

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
    path.write_text(vectors.dumps(vectors.generate(cfg, seed=2, count=9)))
    loaded, inputs, expected = vectors.load(path, block="baseline-head")
    assert loaded == cfg and len(inputs["v"]) == len(expected["z"]) == 7 * (len(vectors.head_edge_problems(cfg)) + 2)


def test_vector_file_rejects_bad_v(tmp_path):
    cfg = SHAPES["1x1"]
    doc = vectors.generate(cfg, seed=2, count=3)
    doc["inputs"]["v"][1] = [0]
    path = tmp_path / "v.json"
    path.write_text(vectors.dumps(doc))
    with pytest.raises(vectors.VectorFileError, match=r": inputs\.v\[1\] must hold 2 integers, not 1$"):
        vectors.load(path)


# ---- the RTL in Amaranth's simulator --------------------------------------------------------

def _words(cfg, problems):
    D = cfg.d_head
    return [pack(q[t], cfg.q_width) | pack(k[t], cfg.k_width) << (D * cfg.q_width)
            | pack(v[t], cfg.v_width) << (D * (cfg.q_width + cfg.k_width))
            for q, k, v in problems for t in range(cfg.seq_len)]


def _run(cfg, problems, **kw):
    want = [beat for q, k, v in problems for beat in z_beats(cfg, head(cfg, q, k, v))]
    log = run_streams(BaselineHead(cfg), {"i": _words(cfg, problems)}, ["o"], expect={"o": len(want)},
                      max_cycles=50 * cfg.cycles * len(problems), **kw)
    got = [unpack(p, cfg.out_width, cfg.cols) for _, p in log["o"]]
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
