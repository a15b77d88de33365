"""`damf finetune` (damf/models/finetune.py): hand-written gradients, the optimiser, the CLI.

Fast: gradient checks on a tiny random problem; one layer, three heads and a few sentences
of the real model; a tiny CLI run.
"""

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from damf.cli import main
from damf.config import ConfigError
from damf.models import finetune as ft
from damf.golden.damf_float import fused_matrix, singular_vectors
from damf.models.minilm import exact_head
from damf.golden.reference import random_weights


@pytest.fixture(scope="module")
def tiny():
    """Random weights (d_model 6, 2 heads of 3) and three sentences of 2, 5 and 3 tokens (padding)."""
    rng = np.random.default_rng(7)
    w = random_weights(6, 2, rng, scale=0.8)
    hidden = [rng.normal(size=(n, 6)) for n in (2, 5, 3)]
    batch = ft.make_batch(hidden, w)
    A0 = np.stack([ft.head_factors(w, h)[0] for h in range(2)])
    B0 = np.stack([ft.head_factors(w, h)[1] for h in range(2)])
    # a point away from the original, where the task term is not 0
    A, B = A0 + rng.normal(scale=0.4, size=A0.shape), B0 + rng.normal(scale=0.4, size=B0.shape)
    return w, hidden, batch, A, B


def numeric_grad(f, X, eps=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += eps
        Xm[idx] -= eps
        g[idx] = (f(Xp) - f(Xm)) / (2 * eps)
    return g


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_batch_targets_are_the_exact_heads(tiny):
    w, hidden, batch, _, _ = tiny
    for s, X in enumerate(hidden):
        for h in range(2):
            assert np.allclose(batch.Z0[h, s, :len(X)], exact_head(0, h, X, w), atol=1e-13)
        assert not batch.Z0[:, s, len(X):].any()  # padding rows are zero and left out


def test_task_gradient_matches_finite_differences(tiny):
    _, _, batch, A, B = tiny
    err, dA, dB = ft.task_loss(A, B, batch)
    assert np.all(err > 1e-2)
    assert rel(dA, numeric_grad(lambda X: ft.task_loss(X, B, batch, grad=False)[0].sum(), A)) < 1e-6
    assert rel(dB, numeric_grad(lambda X: ft.task_loss(A, X, batch, grad=False)[0].sum(), B)) < 1e-6


def test_task_loss_is_zero_with_zero_gradient_at_the_original(tiny):
    w, _, batch, _, _ = tiny
    A0 = np.stack([ft.head_factors(w, h)[0] for h in range(2)])
    B0 = np.stack([ft.head_factors(w, h)[1] for h in range(2)])
    err, dA, dB = ft.task_loss(A0, B0, batch)
    assert not err.any() and not dA.any() and not dB.any()


def test_lms_value_and_gradient(tiny):
    _, _, _, A, B = tiny
    L, dA, dB, S = ft.lms(A, B)
    for h in range(2):
        s = np.linalg.svd(A[h] @ B[h].T, compute_uv=False)
        assert np.allclose(S[h], s[:3], rtol=1e-12) and s[3:].max() < 1e-12 * s[0]
        assert math.isclose(L[h], 1 - s[0] / s.sum(), rel_tol=1e-12)
    assert rel(dA, numeric_grad(lambda X: ft.lms(X, B)[0].sum(), A)) < 1e-6
    assert rel(dB, numeric_grad(lambda X: ft.lms(A, X)[0].sum(), B)) < 1e-6


def test_factor_vectors_match_singular_vectors(tiny):
    w, hidden, _, _, _ = tiny
    Wq, bq = w.head("q", 1)
    Wk, bk = w.head("k", 1)
    A, B = ft.head_factors(w, 1)
    u, v, S = ft.factor_vectors(A, B, 2)
    u0, v0, S0 = singular_vectors(fused_matrix(Wq, bq, Wk, bk), 2)
    assert np.allclose(S, S0[:3]) and np.allclose(u.T @ v, u0.T @ v0, atol=1e-12)  # same rank-2 M


def test_adam_first_step_is_lr_times_sign():
    p = np.array([1.0, -2.0, 3.0])
    opt = ft.Adam([p], lr=0.1)
    opt.step([np.array([0.5, -4.0, 0.0])])
    assert np.allclose(p, [0.9, -1.9, 3.0])


def test_split_is_seeded_disjoint_and_a_quarter():
    train, held = ft.split_sentences(10, seed=3)
    assert len(held) == 3 and sorted(train + held) == list(range(10))
    assert (train, held) == ft.split_sentences(10, seed=3)
    assert held != ft.split_sentences(10, seed=4)[1]
    assert ft.split_sentences(2, seed=0)[1] in ([0], [1])
    with pytest.raises(ConfigError, match=r"^fine-tuning needs at least 2 sentences .*, not 1$"):
        ft.split_sentences(1, seed=0)


def test_parse_lambdas():
    assert ft.parse_lambdas("1, 0,0.1,1") == (0.0, 0.1, 1.0)
    for bad in ("-1", "x", "nan", "inf", ""):
        with pytest.raises(ConfigError, match="^--lambdas must be a comma-separated list of non-negative"):
            ft.parse_lambdas(bad)


# ---- on the real model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_layer():
    minilm = pytest.importorskip("damf.models.minilm")
    pytest.importorskip("tokenizers")
    try:
        model = minilm.MiniLM()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    sentences = ["The weather is lovely today.", "He drove to the stadium.", "A man is playing a guitar.",
                 "Stock markets fell sharply on Monday."]
    hidden = model.encode(sentences, keep_hidden=True).hidden[5]
    w = model.layers[5].attn
    heads = [0, 4, 9]
    b = ft.make_batch(hidden, w)
    batch = dataclasses.replace(b, V=b.V[heads], Z0=b.Z0[heads], den=b.den[heads])
    A0 = np.stack([ft.head_factors(w, h)[0] for h in heads])
    B0 = np.stack([ft.head_factors(w, h)[1] for h in heads])
    return batch, A0, B0


def test_lms_fine_tuning_concentrates_m_on_real_weights(real_layer):
    batch, A0, B0 = real_layer
    L0, _, _, S0 = ft.lms(A0, B0)
    A, B, hist = ft.finetune_layer(A0, B0, batch, lam=0.3, steps=30, lr=3e-3, record=10)
    L1, _, _, S1 = ft.lms(A, B)
    assert hist["step"] == [0, 10, 20, 30]
    assert np.all(np.diff(hist["lms"]) < 0) and np.all(L1 < L0 - 0.02)
    assert np.all(S1[:, 0] / S1.sum(axis=1) > S0[:, 0] / S0.sum(axis=1) + 0.02)
    assert 0 < hist["task"][-1] < 0.5
    # lambda = 0: the original weights are the optimum of the task term and Adam leaves them
    A, B, hist = ft.finetune_layer(A0, B0, batch, lam=0.0, steps=5, lr=1e-3)
    assert np.array_equal(A, A0) and np.array_equal(B, B0) and hist["task"] == [0.0, 0.0]


# ---- command line -------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--lambdas", "0,-1"], "--lambdas must be a comma-separated list of non-negative numbers, not '0,-1'"),
    (["--lambdas", "a"], "--lambdas must be a comma-separated list of non-negative numbers, not 'a'"),
    (["--steps", "0"], "--steps must be in [1, 10000], not 0"),
    (["--steps", "x"], "argument --steps: invalid int value: 'x'"),
    (["--lr", "0"], "--lr must be a positive number of at most 1 (Adam's step), not 0"),
    (["--seed", "-1"], "--seed must be at least 0, not -1"),
    (["--ranks", "0"], "--ranks must be a comma-separated list of positive integers or 'full', not '0'"),
    (["--layers", "a"], "--layers must be a comma-separated list of integers, not 'a'"),
    (["--limit", "1"], "fine-tuning needs at least 2 sentences (1 to train, 1 held out), not 1"),
    (["--sentences", "/nonexistent/s.txt"], "cannot read sentences file '/nonexistent/s.txt': "),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    assert main(["finetune", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("damf: error: " + message) and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_out_must_not_be_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["finetune", "--out", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err == f"damf: error: --out must be a directory, not the file '{tmp_path / 'f'}'\n"


def test_tiny_cli_run_writes_the_report(tmp_path, real_layer):
    sentences = tmp_path / "s.txt"
    sentences.write_text("# four sentences\nThe cat sleeps.\nA dog runs in the park.\n\n"
                         "It is raining.\nShe reads a long book.\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    bad = subprocess.run([sys.executable, "-m", "damf.cli", "finetune", "--sentences", sentences, "--layers", "9",
                          "--out", tmp_path / "bad"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.endswith("damf: error: --layers values must be in [0, 5], not 9\n")
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "damf.cli", "finetune", "--sentences", sentences, "--layers", "5",
                        "--lambdas", "1,0", "--steps", "3", "--ranks", "full,1", "--out", out],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "[finetune" in r.stderr and "lambda 1, layer 5: 3 steps" in r.stderr  # progress on stderr
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "concentration_vs_lambda.png",
                                                "end_to_end_vs_rank.png", "heldout_error_vs_rank.png", "training.png"}
    doc = json.loads((out / "report.json").read_text())
    assert doc["lambdas"] == [0.0, 1.0] and doc["ranks"] == [1, 32] and doc["layers"] == [5]
    assert len(doc["sentences"]["heldout"]) == 1 and len(doc["sentences"]["train"]) == 3
    control, tuned = doc["runs"]
    assert control["end_to_end"]["softmax"][-1]["cosine_min"] > 1 - 1e-9   # lambda 0 is the original model
    assert max(map(max, control["weight_change"])) == 0
    assert np.mean(tuned["concentration"]["sigma_max_share"]) > np.mean(control["concentration"]["sigma_max_share"])
    md = (out / "report.md").read_text()
    assert "damf finetune --lambdas 1,0 --steps 3" in md and "## 3. End to end (held out)" in md
