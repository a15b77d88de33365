"""Cost model of MHSA vs DAMF (damf/cost_model.py) against brute-force counts.

The reference here is deliberately naive: attention computed with Python loops that bump a
counter at every multiply-accumulate, bias addition, shift-add and shift, stage by stage
through a memory that counts every word loaded and stored.  The analytic formulas must
agree with it exactly on small shapes.  Then: the readings of the paper's Table II, the
``damf cost`` command and its errors, and the figures pasted into docs/cost-model.md.
"""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from damf.cli import main
from damf.config import PRESETS, ConfigError
from damf import cost_model as cm
from damf.golden.reference import AttentionWeights, mhsa

DOC = Path(__file__).resolve().parents[1] / "docs" / "cost-model.md"


# ---- the naive reference --------------------------------------------------------------------

class Memory:
    """Named arrays; counts the words of every load and store."""

    def __init__(self):
        self.data, self.reads, self.writes = {}, Counter(), Counter()

    def store(self, name, array):
        array = np.asarray(array)
        self.data[name] = array
        self.writes[name] += array.size

    def load(self, name):
        self.reads[name] += self.data[name].size
        return self.data[name]

    def total(self, counter, names=None):
        return sum(v for k, v in counter.items() if names is None or k in names)


def matmul(A, B, ops, kind):
    """``A @ B`` by three loops, one ``ops[kind]`` per multiply-accumulate."""
    n, k = A.shape
    k2, m = B.shape
    assert k == k2
    C = np.zeros((n, m), dtype=np.result_type(A, B))
    for i in range(n):
        for j in range(m):
            acc = 0
            for t in range(k):
                acc += A[i, t] * B[t, j]
                ops[kind] += 1
            C[i, j] = acc
    return C


def add_bias(C, b, ops):
    C = C.copy()
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            C[i, j] += b[j]
            ops["bias_adds"] += 1
    return C


def softmax_rows(A):  # not counted (convention)
    e = np.exp(A - A.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def naive_mhsa(mem, n_heads, ops):
    """Standard MHSA stage by stage; the caller has stored X, W*, b*."""
    # stage: Q, K, V = X [Wq Wk Wv] + [bq bk bv]
    X = mem.load("X")
    for n in "qkv":
        mem.store(n.upper(), add_bias(matmul(X, mem.load("W" + n), ops, "static"), mem.load("b" + n), ops))
    d = X.shape[1]
    dh = d // n_heads
    heads = [slice(i * dh, (i + 1) * dh) for i in range(n_heads)]
    # stage: A_i = Q_i K_i^T
    Q, K = mem.load("Q"), mem.load("K")
    mem.store("A", np.stack([matmul(Q[:, c], K[:, c].T, ops, "dynamic") for c in heads]))
    # stage: A'_i = softmax(A_i / sqrt(d_head))
    mem.store("A'", np.stack([softmax_rows(a / np.sqrt(dh)) for a in mem.load("A")]))
    # stage: Z_i = A'_i V_i
    P, V = mem.load("A'"), mem.load("V")
    mem.store("Z", np.concatenate([matmul(P[i], V[:, c], ops, "dynamic") for i, c in enumerate(heads)], axis=1))
    # stage: Y = Z Wo + bo
    mem.store("Y", add_bias(matmul(mem.load("Z"), mem.load("Wo"), ops, "static"), mem.load("bo"), ops))
    return mem.data["Y"]


def naive_damf(mem, n_heads, rank, ops):
    """DAMF stage by stage in integers; the caller has stored X, u, v (h x r x (d+1)), Wv, bv, Wo, bo."""
    # stage: p, q = X' [u v], V = X Wv + bv
    X, u, v = mem.load("X"), mem.load("u"), mem.load("v")
    L, d = X.shape
    pq = np.zeros((2, n_heads, rank, L), dtype=np.int64)
    for s, vec in enumerate((u, v)):
        for i in range(n_heads):
            for k in range(rank):
                w = vec[i, k]
                col = matmul(X, w[:d, None], ops, "static")[:, 0]
                pq[s, i, k] = add_bias(col[:, None], w[d:], ops)[:, 0]  # the constant-1 element
    mem.store("p", pq[0])
    mem.store("q", pq[1])
    mem.store("V", add_bias(matmul(X, mem.load("Wv"), ops, "static"), mem.load("bv"), ops))
    # stage: A_i = p_i q_i^T (r products per score)
    p, q = mem.load("p"), mem.load("q")
    mem.store("A", np.stack([matmul(p[i].T, q[i], ops, "dynamic") for i in range(n_heads)]))
    # stage: shift factors (any rule will do for counting; this one is cheap and varied)
    A = mem.load("A")
    sign = np.sign(A)
    shift = np.abs(A) % 4
    mem.store("I_mn", sign * (shift + 1))                 # sign and exponent in one word
    mem.store("I_max", A.max(axis=2) % 3)
    mem.store("I_d", np.abs(A).sum(axis=2) % 5)
    # stage: Z_i = ((SV_i << I_max) + sum_n +-(V_n << I_mn)) >> I_d   (eq. 17, factored)
    I, Imax, Id, V = mem.load("I_mn"), mem.load("I_max"), mem.load("I_d"), mem.load("V")
    dh = d // n_heads
    Z = np.zeros((L, d), dtype=np.int64)
    for i in range(n_heads):
        for j in range(dh):
            col = i * dh + j
            sv = 0
            for n in range(L):
                sv += int(V[n, col])
                ops["shift_adds"] += 1
            for m in range(L):
                acc = sv << int(Imax[i, m])
                ops["shift_adds"] += 1
                for n in range(L):
                    s, e = int(np.sign(I[i, m, n])), abs(int(I[i, m, n])) - 1
                    acc += s * (int(V[n, col]) << e) if s else 0
                    ops["shift_adds"] += 1
                Z[m, col] = acc >> int(Id[i, m])
                ops["shifts"] += 1
    mem.store("Z", Z)
    # stage: Y = Z Wo + bo
    mem.store("Y", add_bias(matmul(mem.load("Z"), mem.load("Wo"), ops, "static"), mem.load("bo"), ops))
    # cross-check the loops against eq. 17 written directly
    Vh = V.reshape(L, n_heads, dh).transpose(1, 0, 2)
    terms = (Vh[:, None, :, :] << Imax[:, :, None, None]) + np.where(
        I != 0, np.sign(I) * 1, 0)[..., None] * (Vh[:, None, :, :] << np.maximum(np.abs(I) - 1, 0)[..., None])
    direct = terms.sum(axis=2) >> Id[:, :, None]
    assert np.array_equal(Z, direct.transpose(1, 0, 2).reshape(L, d))
    return mem.data["Y"]


WEIGHT_NAMES = {"Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo", "u", "v"}
SHAPES = [(4, 1, 3, 1), (4, 2, 3, 2), (6, 3, 5, 1), (8, 2, 4, 3), (6, 2, 1, 2), (2, 2, 2, 1)]


@pytest.mark.parametrize("d, h, L, r", SHAPES, ids=[f"d{d}-h{h}-L{L}-r{r}" for d, h, L, r in SHAPES])
def test_mhsa_matches_brute_force(d, h, L, r):
    rng = np.random.default_rng(d * 1000 + h * 100 + L * 10 + r)
    shape = cm.AttentionShape(d, h, L, r)
    w = {n: rng.normal(size=(d, d)) for n in ("Wq", "Wk", "Wv", "Wo")}
    b = {n: rng.normal(size=d) for n in ("bq", "bk", "bv", "bo")}
    X = rng.normal(size=(L, d))
    mem, ops = Memory(), Counter()
    for name, value in {"X": X, **w, **b}.items():
        mem.data[name] = value  # inputs and parameters are in memory already: not writes
    Y = naive_mhsa(mem, h, ops)
    # the naive loops really compute MHSA
    assert np.allclose(Y, mhsa(X, AttentionWeights(n_heads=h, **w, **b))[0])

    cost = cm.mhsa_cost(shape)
    assert (cost.weights, cost.biases) == (sum(w[n].size for n in w), sum(b[n].size for n in b))
    assert (ops["static"], ops["dynamic"], ops["bias_adds"]) == (cost.static_macs, cost.dynamic_macs, cost.bias_adds)
    assert cost.shift_adds == cost.shifts == 0
    assert mem.total(mem.reads) == cost.memory["reads"]
    assert mem.total(mem.writes) == cost.memory["writes"]
    assert mem.total(mem.reads, WEIGHT_NAMES) == cost.memory["by_category"]["weights"]["reads"]
    assert mem.total(mem.reads, {"A", "A'"}) == cost.memory["by_category"]["scores"]["reads"]
    assert max(mem.reads.values()) == max(mem.data[k].size for k in mem.reads)  # every tensor read once


@pytest.mark.parametrize("d, h, L, r", SHAPES, ids=[f"d{d}-h{h}-L{L}-r{r}" for d, h, L, r in SHAPES])
def test_damf_matches_brute_force(d, h, L, r):
    rng = np.random.default_rng(d * 1000 + h * 100 + L * 10 + r + 7)
    shape = cm.AttentionShape(d, h, L, r)
    params = {"u": rng.integers(-3, 4, (h, r, d + 1)), "v": rng.integers(-3, 4, (h, r, d + 1)),
              "Wv": rng.integers(-3, 4, (d, d)), "bv": rng.integers(-3, 4, d),
              "Wo": rng.integers(-3, 4, (d, d)), "bo": rng.integers(-3, 4, d)}
    mem, ops = Memory(), Counter()
    mem.data.update(params, X=rng.integers(-4, 5, (L, d)))
    naive_damf(mem, h, r, ops)

    cost = cm.damf_cost(shape)
    assert cost.params == sum(p.size for p in params.values())
    assert cost.biases == params["bv"].size + params["bo"].size + 2 * h * r  # last element of u_k, v_k
    assert (ops["static"], ops["dynamic"], ops["bias_adds"]) == (cost.static_macs, cost.dynamic_macs, cost.bias_adds)
    assert (ops["shift_adds"], ops["shifts"]) == (cost.shift_adds, cost.shifts)
    assert mem.total(mem.reads) == cost.memory["reads"]
    assert mem.total(mem.writes) == cost.memory["writes"]
    assert mem.total(mem.reads, WEIGHT_NAMES) == cost.memory["by_category"]["weights"]["reads"]
    assert mem.total(mem.writes, {"A", "I_mn", "I_max", "I_d"}) == cost.memory["by_category"]["scores"]["writes"]


def test_head_subsets_add_up():
    """g heads cost X once plus g times one head's share (no output projection)."""
    s = cm.AttentionShape.from_preset("bert-base", rank=2)
    for method in ("mhsa", "damf"):
        x = s.seq_len * s.d_model
        one = cm.memory_words(s, method, heads=1, output_projection=False) - x
        for g in (2, 5, s.n_heads):
            assert cm.memory_words(s, method, heads=g, output_projection=False) == x + g * one
        full = cm.memory_words(s, method)
        out = 2 * s.seq_len * s.d_model + s.d_model ** 2 + s.d_model  # Z, Y, Wo, bo
        assert full == x + s.n_heads * one + out


def test_bert_base_counts():
    s = cm.AttentionShape.from_preset("bert-base")
    m, f, ratios = cm.compare(s)
    d, L = 768, 128
    assert (s.d_model, s.n_heads, s.d_head, s.seq_len, s.rank) == (768, 12, 64, 128, 1)
    assert m.weights == 4 * d * d and m.static_macs == 4 * L * d * d
    assert m.dynamic_macs == 2 * L * L * d and f.dynamic_macs == 12 * L * L
    assert ratios["dynamic_macs"] == 2 * 64  # 2 L^2 d / (h L^2) = 2 d_head / r
    assert f.shift_adds == L * L * d + 2 * L * d


def test_rank_is_linear_and_exact_at_d_head():
    s1 = cm.AttentionShape(64, 4, 32, 1)
    for r in (2, 16):
        sr = cm.AttentionShape(64, 4, 32, r)
        f1, fr = cm.damf_cost(s1), cm.damf_cost(sr)
        assert fr.dynamic_macs == r * f1.dynamic_macs
        assert fr.params - f1.params == (r - 1) * 2 * 4 * 65
    # at r = d_head DAMF score products equal those of Q K^T
    s = cm.AttentionShape(64, 4, 32, 16)
    assert cm.damf_cost(s).dynamic_macs == cm.mhsa_cost(s).dynamic_macs // 2


SHAPE_ERRORS = [
    (dict(d_model=0, n_heads=1, seq_len=1), "d_model must be at least 1, not 0"),
    (dict(d_model=8, n_heads=-2, seq_len=1), "n_heads must be at least 1, not -2"),
    (dict(d_model=8, n_heads=2, seq_len=0), "seq_len must be at least 1, not 0"),
    (dict(d_model=8, n_heads=2, seq_len=4, rank=0), "rank must be at least 1, not 0"),
    (dict(d_model=10, n_heads=4, seq_len=4), "d_model must be a multiple of n_heads = 4, not 10"),
    (dict(d_model=8, n_heads=2, seq_len=4, rank=5), r"rank must be at most d_head = 4 \(the rank"),
    (dict(d_model=8.0, n_heads=2, seq_len=4), "d_model must be an integer, not 8.0"),
    (dict(d_model=8, n_heads=True, seq_len=4), "n_heads must be an integer, not True"),
]


@pytest.mark.parametrize("kwargs, message", SHAPE_ERRORS)
def test_shape_errors(kwargs, message):
    with pytest.raises(ConfigError, match="^" + message):
        cm.AttentionShape(**kwargs)


# ---- the paper's Table II -------------------------------------------------------------------

def test_paper_figures_as_quoted():
    assert cm.PAPER_TABLE2 == {
        "MHSA": ("9.00", "12.78", "314.77", "4.06%"),
        "BERTsmall": ("4.00", "8.52", "142.74", "5.97%"),
        "DAMF": ("4.51", "0.03", "153.39", "0.02%"),
    }
    assert cm.PAPER_RATIOS == {"params": "1.99", "dynamic_284": "284", "dynamic_426": "426",
                               "macs": "2.21", "memory": "2.71"}


MATCHING = {
    "MHSA Param.": {"weights-fp32-MiB"},
    "BERTsmall Param.": {"weights-fp32-MiB"},
    "DAMF Param.": {"one-pair-fp32-MiB", "one-pair-biases-fp32-MiB"},
    "MHSA Dyn. MACs": {"one-dmm-plus-score-op", "one-dmm-plus-2Ld"},
    "BERTsmall Dyn. MACs": {"one-dmm-plus-score-op", "one-dmm-plus-2Ld"},
    "DAMF Dyn. MACs": {"one-head-two-mults"},
    "MHSA MACs": {"projections-plus-paper-dyn"},
    "BERTsmall MACs": {"projections-plus-paper-dyn"},
    "DAMF MACs": {"per-head-pairs-two-mults", "per-head-pairs-bias-element-two-mults"},
    "MHSA Dyn. ratio": {"table"},
    "BERTsmall Dyn. ratio": {"table"},
    "DAMF Dyn. ratio": {"table"},
    "Param. ratio": {"table-truncated", "one-pair-biases"},
    "Dyn. MACs ratio (284)": {"table-bertsmall-damf"},
    "Dyn. MACs ratio (426)": {"table-mhsa-damf"},
    "MACs ratio": {"table-mhsa-bertsmall"},
    "Mem. ratio": set(),
}


def test_paper_reconciliation():
    cands = cm.paper_candidates()
    got = {}
    for c in cands:
        got.setdefault(c.quantity, set())
        if c.matches:
            got[c.quantity].add(c.key)
    assert got == MATCHING
    # our own conventions reproduce none of the paper's figures
    assert not [c for c in cands if c.key.startswith("ours") and c.matches]


def test_paper_arithmetic_independently():
    """The matching readings, recomputed here by hand."""
    d, h, L = 768, 12, 128
    assert 4 * d * d * 4 / 2 ** 20 == 9.0                                        # 9.00 MiB
    assert round((2 * d * d + 2 * d) * 4 / 2 ** 20, 2) == 4.51
    assert round((2 * d * d + 2 * h * d) * 4 / 2 ** 20, 2) != 4.51               # 12 pairs do not fit
    assert round((L * L * d + h * L * L) / 1e6, 2) == 12.78
    assert L * L * d + h * L * L == L * L * d + 2 * L * d                         # because L = 2 d_head
    assert round((4 * L * d * d + L * L * d + h * L * L) / 1e6, 2) == 314.77
    assert round(2 * L * L / 1e6, 2) == 0.03
    assert round((2 * L * d * d + 2 * h * L * d + 2 * L * L) / 1e6, 2) == 153.39
    assert round(12.78 / 0.03) == 426 and round(8.52 / 0.03) == 284
    assert round(314.77 / 142.74, 2) == 2.21 and round(314.77 / 153.39, 2) == 2.05


# ---- the command line -----------------------------------------------------------------------

def run(capsys, *args):
    status = main(["cost", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_table(capsys):
    status, out, err = run(capsys, "--preset", "bert-base")
    assert status == 0 and err == ""
    assert out == cm.format_table(cm.AttentionShape.from_preset("bert-base"))
    m, f, ratios = cm.compare(cm.AttentionShape.from_preset("bert-base"))
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("MHSA", "DAMF"))}
    for name, c in (("MHSA", m), ("DAMF", f)):
        assert rows[name] == [f"{c.params / 1e6:.2f}", f"{c.dynamic_macs / 1e6:.2f}", f"{c.macs / 1e6:.2f}",
                              f"{c.dynamic_ratio:.2%}", f"{c.memory_total / 1e6:.2f}"]
    assert rows["MHSA/DAMF"] == [f"{ratios[k]:.2f}x" for k in ("params", "dynamic_macs", "macs", "memory")]
    assert re.search(r"^parameters \(MiB at 32 bit\) +9\.01 +4\.58$", out, re.M)


def test_cli_json_and_overrides(capsys):
    status, out, _ = run(capsys, "--preset", "bert-base", "--seq-len", 512, "--rank", 4, "--bits", 8, "--json")
    assert status == 0
    doc = json.loads(out)
    shape = cm.AttentionShape(768, 12, 512, 4)
    assert doc["shape"] == shape.to_dict() and doc["bits"] == 8
    assert doc["damf"]["macs"]["dynamic"] == cm.damf_cost(shape).dynamic_macs == 4 * 12 * 512 ** 2
    assert doc["mhsa"]["params"]["bytes"] == cm.mhsa_cost(shape).params
    assert doc["ratios"]["memory"] == pytest.approx(cm.compare(shape)[2]["memory"])
    assert [s["name"] for s in doc["stages"]["damf"]][0] == "p, q = X' [u v], V = X Wv + bv"
    status, out, _ = run(capsys, "--d-model", 32, "--n-heads", 4, "--json")
    assert json.loads(out)["shape"] == {"d_model": 32, "n_heads": 4, "d_head": 8, "seq_len": 8, "rank": 1}


def test_cli_paper(capsys):
    status, out, _ = run(capsys, "--paper")
    assert status == 0 and out == cm.format_candidates()
    assert len(out.splitlines()) == 4 + len(cm.paper_candidates())


CLI_ERRORS = [
    (["--preset", "huge"], f"unknown preset 'huge'; expected one of: {', '.join(PRESETS)}"),
    (["--d-model", "0"], "d_model must be at least 1, not 0"),
    (["--preset", "bert-base", "--n-heads", "5"], "d_model must be a multiple of n_heads = 5, not 768"),
    (["--preset", "bert-base", "--rank", "65"], "rank must be at most d_head = 64 (the rank of a head's fused matrix M), not 65"),
    (["--seq-len", "-1"], "seq_len must be at least 1, not -1"),
    (["--seq-len", "many"], "argument --seq-len: invalid int value: 'many'"),
    (["--bits", "0"], "--bits must be at least 1, not 0"),
    (["--paper", "--preset", "huge"], "unknown preset 'huge'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize("args, message", CLI_ERRORS, ids=[" ".join(a) for a, _ in CLI_ERRORS])
def test_cli_errors(capsys, args, message):
    status, out, err = run(capsys, *args)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("damf: error: " + message)


def test_cli_error_subprocess():
    """The installed entry point: one line, exit status 2, no traceback."""
    result = subprocess.run([sys.executable, "-m", "damf.cli", "cost", "--d-model", "100", "--n-heads", "12"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "damf: error: d_model must be a multiple of n_heads = 12, not 100\n"


# ---- the document ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--preset", "bert-base"], ["--paper"]], ids=["bert-base", "paper"])
def test_doc_quotes_current_output(capsys, args):
    """docs/cost-model.md pastes the command's output verbatim; regenerate it when this fails."""
    status, out, _ = run(capsys, *args)
    assert status == 0
    assert out in DOC.read_text(), f"paste the output of `damf cost {' '.join(args)}` into {DOC}"


def test_qk_projection_counted_alike():
    """The Q/K projections (MHSA) and the u/v inner products (DAMF) are counted by one rule:
    equal at full rank, the rank-1 share 1/d_head of it, and part of the static MACs."""
    full = cm.AttentionShape(d_model=768, n_heads=12, seq_len=128, rank=64)
    assert cm.mhsa_cost(full).qk_macs == cm.damf_cost(full).qk_macs == 2 * 128 * 768 * 768
    one = cm.AttentionShape(d_model=768, n_heads=12, seq_len=128, rank=1)
    assert cm.mhsa_cost(one).qk_macs == 64 * cm.damf_cost(one).qk_macs
    for cost in (cm.mhsa_cost(one), cm.damf_cost(one)):
        assert 0 < cost.qk_macs < cost.static_macs
        assert cost.to_dict()["macs"]["qk_projection"] == cost.qk_macs
