"""Fast Amaranth-simulator tests of the composed head (``damf-head``): X and V in, Z out,
against :func:`damf.golden.damf_head_block.damf_head_block`."""

import dataclasses

import numpy as np
import pytest

from damf.config import ConfigError, InnerProductConfig
from damf.blocks import generate_vectors, load_vectors
from damf.golden.damf_head_block import calibrated_base2, damf_head_block, weight_vectors
from damf.golden.damf_head_block import cross_heads, heads as golden_heads
from damf.config import DamfHeadBlockConfig
from damf.hdl.damf_head import DamfHead, unpack_output, v_words, x_beats
from damf.hdl.inner_product import pack_weight_words
from damf.sim.amaranth_bench import run_streams


def make(**kw):
    ip = {k: kw.pop(k) for k in ("d_model", "lanes", "rank", "x_width", "w_width", "weights") if k in kw}
    return DamfHeadBlockConfig.for_inner_product(InnerProductConfig(**ip), **kw)


CONFIGS = {
    # rank 1, two scores per beat, L = seq_len = 4 (a power of two) and shorter
    "r1-p2": make(d_model=6, lanes=4, rank=1, x_width=4, w_width=4, seq_len=4, d_head=2, v_width=5,
                  weight_frac=4, out_frac=2, parallel=2),
    # rank 2, three scores per beat, seq_len 7 (partial beats), maclaurin-abs
    "r2-p3-abs": make(d_model=5, lanes=2, rank=2, x_width=3, w_width=3, seq_len=7, d_head=3, v_width=4,
                      weight_frac=6, out_frac=3, parallel=3, mode="maclaurin-abs"),
    # one score per beat, fixed weights
    "r1-p1-fixed": make(d_model=3, lanes=3, rank=1, x_width=3, w_width=3, seq_len=5, d_head=1, v_width=3,
                        weight_frac=3, out_frac=1, parallel=1, weights="fixed"),
    # causal: rows of 1..L keys, partial and dropped beats (seq_len 6, parallel 4)
    "r2-p4-causal": make(d_model=4, lanes=2, rank=2, x_width=3, w_width=3, seq_len=6, d_head=2, v_width=4,
                         weight_frac=5, out_frac=2, parallel=4, causal=True),
    "r1-p1-causal-abs": make(d_model=3, lanes=2, rank=1, x_width=4, w_width=3, seq_len=5, d_head=2,
                             v_width=4, weight_frac=4, out_frac=2, parallel=1, causal=True,
                             mode="maclaurin-abs"),
    # base2, c chosen so random heads use every exponent 0..F and drop keys past F
    "r2-p3-base2": calibrated_base2(make(d_model=5, lanes=2, rank=2, x_width=3, w_width=3, seq_len=7, d_head=3,
                                         v_width=4, weight_frac=6, out_frac=3, parallel=3)),
    "r1-p2-base2-causal": calibrated_base2(make(d_model=6, lanes=4, rank=1, x_width=4, w_width=4, seq_len=6,
                                                d_head=2, v_width=5, weight_frac=3, out_frac=5, parallel=2,
                                                causal=True)),
    "r1-p1-base2-fixed-F0": calibrated_base2(make(d_model=3, lanes=3, rank=1, x_width=3, w_width=3, seq_len=5,
                                                  d_head=1, v_width=3, weight_frac=0, out_frac=1, parallel=1,
                                                  weights="fixed")),
    # requantization that saturates: p and q rounded by 2 bits into 4 (exact: 9 bits)
    "r2-p3-rq4": make(d_model=5, lanes=2, rank=2, x_width=4, w_width=4, seq_len=7, d_head=3, v_width=4,
                      weight_frac=6, out_frac=3, parallel=3, pq_width=4, pq_shift=2),
}


def test_requantization_saturates_and_rounds():
    """The ``r2-p3-rq4`` heads drive ``requantize`` into saturation both ways and round ties."""
    from damf.golden.damf_head_block import head_pq
    cfg = CONFIGS["r2-p3-rq4"]
    rng = np.random.default_rng(7)
    u, v = weight_vectors(cfg, rng)
    exact = np.concatenate([np.concatenate([np.ravel(a) for a in head_pq(cfg, X, u, v)[:2]])
                            for X, _ in heads_for(cfg, rng, u, v, 12)])
    assert (exact >= 7 * 4 + 2).any() and (exact < -8 * 4 - 2).any()
    assert ((exact % 4) == 2).any()


def heads_for(cfg, rng, u, v, count):
    """Edge heads and random heads (:func:`damf.golden.damf_head_block.heads`)."""
    return golden_heads(cfg, rng, count)


def simulate(cfg, u, v, heads, *, seed=0, idle=0.3, backpressure=0.3):
    inputs = {"x": [w for X, _ in heads for w in x_beats(cfg, X)],
              "v": [w for _, V in heads for w in v_words(cfg, V)]}
    hold = None
    if cfg.weights == "runtime":
        ip = cfg.inner_product
        inputs["w"] = pack_weight_words(ip, u, v)
        hold = lambda name, counts: name == "x" and counts["w"] < ip.beats  # noqa: E731
    expect = sum(len(X) for X, _ in heads)
    log = run_streams(DamfHead(cfg), inputs, ["o"], expect={"o": expect}, seed=seed, idle=idle,
                      backpressure=backpressure, hold=hold)
    return [unpack_output(cfg, w) for _, w in log["o"]], log


def expected(cfg, u, v, heads):
    return [row for X, V in heads for row in damf_head_block(cfg, X, V, u, v).tolist()]


@pytest.mark.parametrize("name", CONFIGS)
def test_matches_golden(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(7)
    u, v = weight_vectors(cfg, rng)
    heads = heads_for(cfg, rng, u, v, 12)
    got, _ = simulate(cfg, u, v, heads)
    want = expected(cfg, u, v, heads)
    assert len(got) == len(want)
    for r, (g, e) in enumerate(zip(got, want)):
        assert g == e, f"{name}: Z row {r}: {g}, expected {e}"


def test_negative_scores_and_modes():
    """u = -v: every score A = -(X.u)^2 <= 0 (maclaurin's abs fallback and uniform rows)."""
    for mode, causal in (("maclaurin", False), ("maclaurin-abs", False), ("maclaurin", True), ("base2", False)):
        cfg = dataclasses.replace(CONFIGS["r2-p3-abs"], mode=mode, causal=causal)
        rng = np.random.default_rng(3)
        u = rng.integers(-3, 3, (cfg.rank, cfg.d_model), endpoint=True).tolist()
        v = [[-a for a in row] for row in u]
        heads = heads_for(cfg, rng, u, v, 6)
        got, _ = simulate(cfg, u, v, heads, seed=5)
        assert got == expected(cfg, u, v, heads)


@pytest.mark.parametrize("name", CONFIGS)
def test_cycles_per_head(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(2)
    u, v = weight_vectors(cfg, rng)
    for L in sorted({1, 2, cfg.seq_len - 1, cfg.seq_len} - {0}):
        heads = [(rng.integers(-2, 2, (L, cfg.d_model), endpoint=True).tolist(),
                  rng.integers(-2, 2, (L, cfg.d_head), endpoint=True).tolist())]
        got, log = simulate(cfg, u, v, heads, idle=0, backpressure=0)
        assert got == expected(cfg, u, v, heads)
        measured = log["o"][-1][0] - log["x"][0][0] + 1
        assert measured == cfg.cycles_per_head(L), f"L = {L}: {measured} cycles"


def causal_head(seq_len, parallel, beats, rank, mode="maclaurin"):
    return make(d_model=2 * beats, lanes=2, rank=rank, x_width=3, w_width=3, seq_len=seq_len, d_head=2,
                v_width=4, weight_frac=4, out_frac=2, parallel=parallel, causal=True, mode=mode)


CAUSAL_SWEEP = {
    # one key per beat: every row but the first keeps 2 or more beats
    "s7-p1": causal_head(7, 1, 1, 1),
    # short prefix of one-beat rows, then 2..4 beats per row
    "s8-p2": causal_head(8, 2, 2, 2),
    # B = 3: the rows keep 1, 2 or 3 of them
    "s9-p3": causal_head(9, 3, 1, 1, "maclaurin-abs"),
    "s9-p4": causal_head(9, 4, 3, 2),
    # B = 1 for every L: one-beat rows only, the serialiser the bottleneck from row 5 on
    "s8-p8": causal_head(8, 8, 1, 2),
    # base2: row-stats set-up of 1 cycle instead of 4
    "s8-p3-base2": causal_head(8, 3, 2, 1, "base2"),
}


@pytest.mark.parametrize("name", CAUSAL_SWEEP)
def test_causal_cycles_sweep(name):
    """Causal heads of every length: the last ``Z`` at ``cycles_per_head(L)`` and every row
    ``row_period(L, m)`` after the one before (the closed form is exact, not a bound)."""
    cfg = CAUSAL_SWEEP[name]
    rng = np.random.default_rng(4)
    u, v = weight_vectors(cfg, rng)
    for L in range(1, cfg.seq_len + 1):
        heads = [(rng.integers(-2, 2, (L, cfg.d_model), endpoint=True).tolist(),
                  rng.integers(-2, 2, (L, cfg.d_head), endpoint=True).tolist())]
        _, log = simulate(cfg, u, v, heads, idle=0, backpressure=0)
        z = [cycle - log["x"][0][0] + 1 for cycle, _ in log["o"]]
        assert z[-1] == cfg.cycles_per_head(L), f"L = {L}: {z[-1]} cycles"
        assert z == cfg.schedule([(L, L)])[0], f"L = {L}"


@pytest.mark.parametrize("name", [*CONFIGS, *CAUSAL_SWEEP])
def test_back_to_back_schedule(name):
    """Heads queued back to back (the next load during the current query phase, banks
    alternating): every ``Z`` at the cycle :meth:`DamfHeadBlockConfig.schedule` gives; four
    heads of ``seq_len`` give ``head_interval`` and ``row_period``; mixed lengths too."""
    cfg = {**CONFIGS, **CAUSAL_SWEEP}[name]
    rng = np.random.default_rng(5)
    u, v = weight_vectors(cfg, rng)
    n = cfg.seq_len
    for lengths in ([n] * 5, [n, 1, n, 2, max(1, n - 1), 1]):
        heads = [(rng.integers(-2, 2, (L, cfg.d_model), endpoint=True).tolist(),
                  rng.integers(-2, 2, (L, cfg.d_head), endpoint=True).tolist()) for L in lengths]
        got, log = simulate(cfg, u, v, heads, idle=0, backpressure=0)
        assert got == expected(cfg, u, v, heads)
        z = [cycle - log["x"][0][0] + 1 for cycle, _ in log["o"]]
        want = cfg.schedule([(L, L) for L in lengths])
        assert z == [c for zs in want for c in zs], f"lengths {lengths}"
        if lengths[0] == lengths[-1] == n:
            ends = [zs[-1] for zs in want]
            assert (ends[4] - ends[2]) / 2 == cfg.head_interval or n == 1
            if not cfg.causal:
                assert all(b - a == cfg.row_period() for a, b in zip(want[-1], want[-1][1:]))


@pytest.mark.parametrize("name", [n for n in CONFIGS if "base2" in n])
def test_base2_heads_use_every_exponent(name):
    """The base2 configurations' random heads reach every exponent 0..F, drop keys past F and
    round W both ways (so test_matches_golden exercises the whole t_n stage)."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(7)
    u, v = weight_vectors(cfg, rng)
    traces = [damf_head_block(cfg, X, V, u, v, trace=True)[1] for X, V in heads_for(cfg, rng, u, v, 12)]
    e = np.concatenate([t["e"][t["keep"]] for t in traces])
    assert set(e.tolist()) == set(range(cfg.weight_frac + 1))
    assert sum(int((t["mask"] & ~t["keep"]).sum()) for t in traces) > 0
    W = np.concatenate([t["W"] for t in traces])
    pw = np.concatenate([t["I_W"] for t in traces])
    assert ((1 << pw) > W).any() and ((1 << pw) < W).any()


def test_config_errors():
    with pytest.raises(ConfigError, match=r"^pq_shift must be at most the inner-product out_width - 1 = 19, not 20$"):
        DamfHeadBlockConfig(pq_shift=20)
    with pytest.raises(ConfigError, match=r"^causal needs self-attention: causal and cross cannot both be true$"):
        DamfHeadBlockConfig(mode="base2", causal=True, cross=True)
    with pytest.raises(ConfigError, match=r"^parallel must be at most seq_len = 8, not 9$"):
        DamfHeadBlockConfig(parallel=9)
    with pytest.raises(ConfigError, match=r"^lanes must be at most d_model = 16, not 17$"):
        DamfHeadBlockConfig(lanes=17)
    with pytest.raises(TypeError, match=r"^Config must be a DamfHeadBlockConfig, not "):
        DamfHead(InnerProductConfig())


CROSS = {
    "cross-r2-p3": make(d_model=5, lanes=2, rank=2, x_width=3, w_width=3, seq_len=7, d_head=3, v_width=4,
                        weight_frac=6, out_frac=3, parallel=3, cross=True),
    "cross-r1-p1-fixed": make(d_model=3, lanes=3, rank=1, x_width=3, w_width=3, seq_len=5, d_head=1, v_width=3,
                              weight_frac=3, out_frac=1, parallel=1, weights="fixed", cross=True,
                              mode="maclaurin-abs"),
}


def simulate_cross(cfg, u, v, heads, *, seed=0, idle=0.3, backpressure=0.3):
    inputs = {"x": [w for X, _, _ in heads for w in x_beats(cfg, X)],
              "y": [w for _, Y, _ in heads for w in x_beats(cfg, Y)],
              "v": [w for _, _, V in heads for w in v_words(cfg, V)]}
    hold = None
    if cfg.weights == "runtime":
        ip = cfg.inner_product
        inputs["w"] = pack_weight_words(ip, u, v)
        hold = lambda name, counts: name in ("x", "y") and counts["w"] < ip.beats  # noqa: E731
    log = run_streams(DamfHead(cfg), inputs, ["o"], expect={"o": sum(len(X) for X, _, _ in heads)},
                      seed=seed, idle=idle, backpressure=backpressure, hold=hold)
    return [unpack_output(cfg, w) for _, w in log["o"]], log


def expected_cross(cfg, u, v, heads):
    return [row for X, Y, V in heads for row in damf_head_block(cfg, X, V, u, v, Y=Y).tolist()]


CROSS["cross-r2-p3-base2"] = calibrated_base2(CROSS["cross-r2-p3"])


@pytest.mark.parametrize("name", CROSS)
def test_cross_matches_golden(name):
    cfg = CROSS[name]
    rng = np.random.default_rng(9)
    u, v = weight_vectors(cfg, rng)
    heads = cross_heads(cfg, rng, 12)
    got, _ = simulate_cross(cfg, u, v, heads)
    assert got == expected_cross(cfg, u, v, heads)


@pytest.mark.parametrize("name", CROSS)
def test_cross_cycles_per_head(name):
    cfg = CROSS[name]
    rng = np.random.default_rng(2)
    u, v = weight_vectors(cfg, rng)
    for lq, lk in sorted({(1, cfg.seq_len), (cfg.seq_len, 1), (2, cfg.seq_len - 1), (cfg.seq_len, cfg.seq_len)}):
        heads = [(rng.integers(-2, 2, (lq, cfg.d_model), endpoint=True).tolist(),
                  rng.integers(-2, 2, (lk, cfg.d_model), endpoint=True).tolist(),
                  rng.integers(-2, 2, (lk, cfg.d_head), endpoint=True).tolist())]
        got, log = simulate_cross(cfg, u, v, heads, idle=0, backpressure=0)
        assert got == expected_cross(cfg, u, v, heads)
        measured = log["o"][-1][0] - log["x"][0][0] + 1
        assert measured == cfg.cycles_per_head(lq, lk), f"Lq = {lq}, Lk = {lk}: {measured} cycles"


def test_cross_config_error():
    with pytest.raises(ConfigError, match=r"^causal needs self-attention: causal and cross cannot both be true$"):
        DamfHeadBlockConfig(causal=True, cross=True)


@pytest.mark.parametrize("cfg", [CONFIGS["r1-p2"], CROSS["cross-r2-p3"]], ids=["self", "cross"])
def test_vector_file_round_trip(cfg, tmp_path):
    from damf.golden import vectors
    path = tmp_path / "damf-head.json"
    path.write_text(vectors.dumps(generate_vectors(cfg, seed=3, count=4)))
    loaded, inputs, expected = load_vectors(path, block="damf-head")
    assert loaded == cfg and len(expected["z"]) == sum(n if not cfg.cross else n[0] for n in inputs["lengths"])
    doc = generate_vectors(cfg, seed=3, count=4)
    doc["inputs"]["vals"][0] = doc["inputs"]["vals"][0][:-1]
    path.write_text(vectors.dumps(doc))
    with pytest.raises(vectors.VectorFileError, match=rf": inputs\.vals\[0\] must hold {cfg.d_head} integers, not {cfg.d_head - 1}$"):
        load_vectors(path)
