"""`damf eval` and its NumPy model of all-MiniLM-L6-v2 (damf/models/minilm.py, damf/models/eval.py).

Fast: one model load shared by the module, two short sentences, one layer for the report.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from damf.config import ConfigError

minilm = pytest.importorskip("damf.models.minilm")
pytest.importorskip("tokenizers")
try:
    minilm.model_dir()
except FileNotFoundError as e:  # the optional model package is not installed
    pytest.skip(str(e), allow_module_level=True)

from damf.models import eval as ev  # noqa: E402
from damf.golden.damf_float import damf_scores, fused_matrix, singular_vectors  # noqa: E402

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


@pytest.fixture(scope="module")
def model():
    return minilm.MiniLM()


def damf(*args):
    return subprocess.run([sys.executable, "-m", "damf.cli", *map(str, args)], capture_output=True, text=True)


def test_safetensors_names_shapes_and_config(model):
    t = model.tensors
    assert t["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert t["encoder.layer.5.attention.self.query.weight"].shape == (384, 384)
    assert t["encoder.layer.0.intermediate.dense.weight"].shape == (1536, 384)
    assert t["embeddings.word_embeddings.weight"].dtype == np.float32
    assert (model.n_layers, model.n_heads, model.d_head, model.eps) == (6, 12, 32, 1e-12)
    assert model.normalize  # modules.json has a Normalize module


def test_safetensors_decodes_half_types(tmp_path):
    vals = np.array([1.5, -2.0, 0.333], dtype=np.float32)
    bf16 = (vals.view(np.uint32) >> 16).astype("<u2")
    f16 = vals.astype("<f2")
    header = {"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
              "b": {"dtype": "F16", "shape": [3], "data_offsets": [6, 12]}, "__metadata__": {}}
    h = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(len(h).to_bytes(8, "little") + h + bf16.tobytes() + f16.tobytes())
    t = minilm.read_safetensors(path)
    assert np.allclose(t["a"], vals, rtol=1e-2) and t["a"].dtype == np.float32
    assert np.allclose(t["b"], vals, rtol=1e-3)


def test_erf_error_bound():
    x = np.linspace(-7, 7, 14001)
    ref = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(minilm.erf(x) - ref)) <= minilm.ERF_MAX_ABS_ERROR


def test_embeddings_match_published_similarities(model):
    # sentence-transformers quickstart (sbert.net) prints these cosine similarities for
    # all-MiniLM-L6-v2: [[1, 0.6660, 0.1046], [0.6660, 1, 0.1411], [0.1046, 0.1411, 1]].
    e = model.encode(SENTENCES).embeddings
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0)
    sim = e @ e.T
    assert np.allclose(sim[np.triu_indices(3, 1)], [0.6660, 0.1046, 0.1411], atol=6e-5)
    # the padded batch with the attention mask gives the same embeddings
    assert np.allclose(model.encode(SENTENCES, padded=True).embeddings, e, atol=1e-12)


def test_full_rank_damf_scores_are_exact_on_real_weights(model):
    X = model.encode(SENTENCES[:1], keep_hidden=True).hidden[3][0]
    w = model.layers[3].attn
    for h in (0, 7):
        Wq, bq = w.head("q", h)
        Wk, bk = w.head("k", h)
        u, v, S = singular_vectors(fused_matrix(Wq, bq, Wk, bk), model.d_head)
        A = (X @ Wq + bq) @ (X @ Wk + bk).T
        assert np.max(np.abs(damf_scores(X, u, v) - A)) <= 1e-9 * np.max(np.abs(A))
        assert S[model.d_head:].max() <= 1e-9 * S[0]  # M has rank <= d_head


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """`damf eval` on a small subset: 2 sentences, layer 0, ranks {1, full}, a 2-point sweep.

    Run as a subprocess with one BLAS thread: on a shared machine, BLAS threads fighting over
    the cores make these small matrix products many times slower.
    """
    tmp = tmp_path_factory.mktemp("eval")
    sentences = tmp / "s.txt"
    sentences.write_text("# two short sentences\nThe cat sleeps.\n\nA dog runs in the park.\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "damf.cli", "eval", "--sentences", sentences, "--layers", "0",
                             "--ranks", "full,1", "--x-width", "8,6", "--w-width", "8", "--v-width", "8",
                             "--weight-frac", "12", "--out", tmp / "out"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "[eval" in result.stderr and "layer 0:" in result.stderr  # progress on stderr
    return tmp / "out", json.loads((tmp / "out" / "report.json").read_text())


def test_full_rank_softmax_damf_reproduces_the_model(small_run, model):
    _, res = small_run
    assert res["end_to_end"]["softmax"][-1]["cosine_min"] > 1 - 1e-12
    assert np.max(np.array(res["scores"]["rel_error"])[0, :, -1]) < 1e-9
    assert res["recommendation"]["rank"] in (1, model.d_head)


def test_report_files_on_a_small_subset(small_run):
    out, doc = small_run
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.json", "concentration.png", "error_vs_rank.png",
            "end_to_end_vs_rank.png", "width_sweeps.png"} <= names
    assert doc["ranks"] == [1, 32] and doc["sentences"]["count"] == 2
    md = (out / "report.md").read_text()
    assert "## 5. Recommendation (computed)" in md and "damf eval --ranks full,1" in md


def test_pq_width_sweep_on_a_small_subset(small_run):
    """The requantized width is swept (exact last, shift 0) with its end-to-end cosine, and the
    recommendation names a pq_width."""
    from damf.config import DEFAULT_PQ_WIDTH
    _, doc = small_run
    rows = doc["width_sweeps"]["pq_width"]
    assert [r["value"] for r in rows] == sorted({6, 10, DEFAULT_PQ_WIDTH}) + ["exact"]
    assert rows[-1]["pq_width"] == 24 and rows[-1]["pq_shift_range"] == [0, 0]      # 385 terms of 8 x 8 bits
    assert all(r["pq_shift_range"][0] > 0 and r["pq_width"] == r["value"] for r in rows[:-1])
    assert all(0 < r["end_to_end"]["cosine_mean"] <= 1 + 1e-9 for r in rows)
    assert rows[0]["vs_float"] > rows[-1]["vs_float"]            # 6 bits cost more than exact p and q
    assert doc["baseline_widths"]["pq_width"] == DEFAULT_PQ_WIDTH
    assert doc["recommendation"]["widths"]["pq_width"] in [r["value"] for r in rows]


@pytest.mark.parametrize("args, message", [
    (["--sentences", "/nonexistent/s.txt"], "cannot read sentences file '/nonexistent/s.txt': "),
    (["--ranks", "1,two"], "--ranks must be a comma-separated list of positive integers or 'full', not '1,two'"),
    (["--ranks", "0"], "--ranks must be a comma-separated list of positive integers or 'full', not '0'"),
    (["--x-width", "8,1"], "--x-width values must be in [2, 24], not 1"),
    (["--pq-width", "8,1"], "--pq-width values must be in [2, 32] or 'exact', not 1"),
    (["--limit", "0"], "--limit must be at least 1, not 0"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    result = damf("eval", "--out", tmp_path / "o", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("damf: error: " + message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_rank_above_d_head_is_a_config_error(model):
    with pytest.raises(ConfigError, match=r"^--ranks values must be at most d_head = 32 \(or 'full'\), not 64$"):
        ev.run(ev.EvalOptions(ranks=(64,), limit=1, log=lambda m: None), model=model)
