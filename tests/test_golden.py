"""Golden models against deliberately naive references, and the golden vector files."""

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from damf.config import InnerProductConfig, PRESETS
from damf.blocks import generate_vectors, load_vectors
from damf.golden import damf_float, quant, reference, vectors
from damf.golden.inner_product import inner_product

VECTORS = Path(__file__).resolve().parent.parent / "golden" / "vectors"


def test_round_half_away_and_saturation():
    assert quant.round_half_away([2.5, -2.5, 0.5, -0.5, 1.49, -1.51]).tolist() == [3, -3, 1, -1, 1, -2]
    assert quant.quantize([0.5, -0.5, 10.0, -10.0], width=4, frac=2).tolist() == [2, -2, 7, -8]
    assert quant.quantize([0.125], width=8, frac=2).tolist() == [1]  # 0.5 LSB rounds away


def test_choose_frac_uses_the_range():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.normal(0, 10 ** rng.uniform(-3, 3), 20)
        frac = quant.choose_frac(x, 8)
        q = quant.round_half_away(x * 2.0 ** frac)
        assert q.max() <= 127 and q.min() >= -128                       # no saturation
        q1 = quant.round_half_away(x * 2.0 ** (frac + 1))
        assert q1.max() > 127 or q1.min() < -128                        # one more bit would


def _requantize_fraction(x, shift, width):
    """Naive: x / 2^shift rounded to nearest, ties away from zero, then clamped (Fractions)."""
    v = Fraction(x, 2 ** shift)
    r = math.floor(abs(v) + Fraction(1, 2)) * (1 if v >= 0 else -1)
    return min(max(r, -(1 << (width - 1))), (1 << (width - 1)) - 1)


def test_requantize_matches_fractions():
    xs = list(range(-300, 301))
    for shift in range(0, 10):
        for width in (2, 3, 5, 8, 12):
            want = [_requantize_fraction(x, shift, width) for x in xs]
            got = quant.requantize(np.array(xs), shift, width)
            assert got.dtype == np.int64 and got.tolist() == want, (shift, width)
            assert [quant.requantize(x, shift, width) for x in xs] == want       # Python ints
    # Past int64: object arrays of Python ints, large shifts, int64's extremes.
    big = [(1 << 70) + d for d in (-5, -1, 0, 1, 5)] + [-(1 << 90) - 3, (3 << 63) + (1 << 62), 7]
    big += [-x for x in big]
    for shift, width in ((0, 100), (1, 64), (62, 10), (64, 40), (70, 8), (200, 8)):
        got = quant.requantize(np.array(big, dtype=object), shift, width)
        assert got.dtype == object and got.tolist() == [_requantize_fraction(x, shift, width) for x in big]
    ext = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1, 0, 1])
    for shift in (1, 61, 62, 63, 64, 100):
        got = quant.requantize(ext, shift, 32)
        assert got.dtype == np.int64 and got.tolist() == [_requantize_fraction(int(x), shift, 32) for x in ext]
    # Ties go away from zero, also exactly at the saturation edge.
    assert quant.requantize(np.array([12, -12, 4, -4, 60, -68]), 3, 4).tolist() == [2, -2, 1, -1, 7, -8]


def test_requantize_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"^shift must be an integer of at least 0, not -1$"):
        quant.requantize(np.array([1]), -1, 8)
    with pytest.raises(ValueError, match=r"^width must be an integer of at least 1, not 0$"):
        quant.requantize(np.array([1]), 1, 0)
    with pytest.raises(TypeError, match=r"^requantize needs integers, not float64$"):
        quant.requantize(np.array([1.5]), 1, 8)


def test_choose_shift_is_the_smallest_that_does_not_saturate():
    rng = np.random.default_rng(5)
    for _ in range(200):
        width = int(rng.integers(2, 12))
        x = rng.integers(-(1 << rng.integers(1, 40)), 1 << rng.integers(1, 40), int(rng.integers(1, 20)))
        s = quant.choose_shift(x, width)
        lo, hi = quant.int_range(width)
        unsaturated = [_requantize_fraction(int(v), s, 200) for v in x]
        assert all(lo <= v <= hi for v in unsaturated)                        # no saturation at s
        if s > 0:
            assert not all(lo <= _requantize_fraction(int(v), s - 1, 200) <= hi for v in x)   # s - 1 would
    assert quant.choose_shift(np.array([], dtype=np.int64), 8) == 0
    assert quant.choose_shift(np.array([1 << 80, -(1 << 80)], dtype=object), 8) == 74     # 2^80 / 2^74 = 64 <= 127


def test_mhsa_matches_a_per_token_loop():
    rng = np.random.default_rng(1)
    w = reference.random_weights(12, 3, rng)
    X = rng.normal(size=(5, 12))
    out, probs = reference.mhsa(X, w)
    heads = []
    for i in range(3):
        cols = slice(4 * i, 4 * i + 4)
        Q = [[sum(X[m, j] * w.Wq[j, c] for j in range(12)) + w.bq[c] for c in range(12)[cols]] for m in range(5)]
        K = [[sum(X[m, j] * w.Wk[j, c] for j in range(12)) + w.bk[c] for c in range(12)[cols]] for m in range(5)]
        V = [[sum(X[m, j] * w.Wv[j, c] for j in range(12)) + w.bv[c] for c in range(12)[cols]] for m in range(5)]
        head = []
        for m in range(5):
            s = [sum(a * b for a, b in zip(Q[m], K[n])) / 2.0 for n in range(5)]
            e = [np.exp(x - max(s)) for x in s]
            p = [x / sum(e) for x in e]
            assert np.allclose(p, probs[i][m])
            head.append([sum(p[n] * V[n][c] for n in range(5)) for c in range(4)])
        heads.append(head)
    expect = np.concatenate([np.array(h) for h in heads], axis=1) @ w.Wo + w.bo
    assert np.allclose(out, expect)


def test_damf_full_rank_is_exact_and_rank1_is_the_top_pair():
    rng = np.random.default_rng(2)
    w = reference.random_weights(8, 2, rng)
    X = rng.normal(size=(6, 8))
    for i in range(2):
        M = damf_float.fused_matrix(*w.head("q", i), *w.head("k", i))
        u, v, sigma = damf_float.singular_vectors(M, 9)
        assert np.allclose(damf_float.damf_scores(X, u, v), reference.head_scores(X, w, i))
        u1, v1, _ = damf_float.singular_vectors(M, 1)
        U, S, Vt = np.linalg.svd(M)
        assert np.allclose(np.outer(u1[0], v1[0]), S[0] * np.outer(U[:, 0], Vt[0]))
        assert 0 < damf_float.concentration(sigma, 1) <= damf_float.concentration(sigma, 2) <= 1
    with pytest.raises(ValueError, match=r"^rank must be in \[1, 9\], not 10$"):
        damf_float.singular_vectors(M, 10)


def test_inner_product_matches_python_ints():
    cfg = InnerProductConfig(d_model=7, lanes=3, rank=2, x_width=5, w_width=4)
    rng = np.random.default_rng(3)
    x = rng.integers(-16, 16, (20, 7))
    u, v = rng.integers(-8, 8, (2, 7)), rng.integers(-8, 8, (2, 7))
    p, q = inner_product(cfg, x, u, v)
    for m in range(20):
        for k in range(2):
            assert p[m, k] == sum(int(a) * int(b) for a, b in zip(x[m], u[k]))
            assert q[m, k] == sum(int(a) * int(b) for a, b in zip(x[m], v[k]))
    with pytest.raises(ValueError, match=r"^x\[0, 0\] must be in \[-16, 15\], not 16$"):
        inner_product(cfg, np.full((1, 7), 16), u, v)


@pytest.mark.parametrize("preset", PRESETS)
def test_generation_is_deterministic(preset):
    cfg = InnerProductConfig.from_preset(preset)
    a = vectors.dumps(generate_vectors(cfg, seed=1, count=8))
    b = vectors.dumps(generate_vectors(cfg, seed=1, count=8))
    assert a == b
    assert a != vectors.dumps(generate_vectors(cfg, seed=2, count=8))


def test_committed_vectors_match_the_model():
    """Every committed vector file is exactly what `make golden` would write now."""
    files = sorted(VECTORS.glob("*/*.json"))
    assert files, "no committed golden vectors"
    for path in files:
        doc = json.loads(path.read_text())
        cfg, inputs, expected = load_vectors(path)
        regenerated = generate_vectors(cfg, seed=doc["seed"], count=doc["count"])
        assert vectors.dumps(regenerated) == path.read_text(), f"{path} is stale: run `make golden`"


def _write(tmp_path, doc):
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc))
    return path


def _doc():
    return json.loads(vectors.dumps(generate_vectors(InnerProductConfig(d_model=4, lanes=2), seed=1, count=2)))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("expected"), r" must have a 'expected' member; it has: block, config, count, format, inputs, seed$"),
    (lambda d: d.update(format="v0"), r" must have format 'damf-vectors/1', not 'v0'$"),
    (lambda d: d.update(block="nope"), r": unknown block 'nope'; expected one of: "),
    (lambda d: d["config"].update(lanes=9), r": config: lanes must be at most d_model = 4, not 9$"),
    (lambda d: d["inputs"]["x"][1].pop(), r": inputs.x\[1\] must hold 4 integers, not 3$"),
    (lambda d: d["inputs"]["u"][0].__setitem__(2, 300), r": inputs.u\[0\]\[2\] must be an integer in \[-128, 127\], not 300$"),
    (lambda d: d["inputs"]["x"][0].__setitem__(0, "7"), r": inputs.x\[0\]\[0\] must be an integer in \[-128, 127\], not '7'$"),
    (lambda d: d["expected"]["p"].pop(), r": expected.p must hold 7 rows, not 6$"),
    (lambda d: d["inputs"].pop("v"), r": inputs must have a 'v' member; it has: u, x$"),
])
def test_malformed_vector_files(tmp_path, edit, message):
    doc = _doc()
    edit(doc)
    with pytest.raises(vectors.VectorFileError, match=r"^vector file '.*v\.json'" + message):
        load_vectors(_write(tmp_path, doc))


def test_vector_file_for_another_block(tmp_path):
    with pytest.raises(vectors.VectorFileError, match=r"holds vectors for block 'inner-product', not 'score'$"):
        load_vectors(_write(tmp_path, _doc()), block="score")


def test_compare_reports_first_mismatches():
    expected = {"p": [[1], [2], [3]], "q": [[4], [5], [6]]}
    got = {"p": [[1], [9], [3]], "q": [[4], [5]]}
    matches, total, first = vectors.compare(expected, got)
    assert (matches, total) == (1, 3)
    assert first == [(1, "p", [2], [9]), (2, "q", [6], None)]
