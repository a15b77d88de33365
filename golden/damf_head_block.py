"""Bit-exact model of the composed head (block ``damf-head``, ``hdl/damf_head.py``).

``X`` (``L x d_model``) goes through the inner-product unit
(:func:`damf.golden.inner_product.inner_product`: ``p = X u^T``, ``q = X v^T``, exact), ``p``
and ``q`` are requantized element by element to ``pq_width`` bits
(:func:`damf.golden.quant.requantize` by ``cfg.pq_shift``: rounding right shift, ties away
from zero, then saturation; ``docs/numerics.md`` section 3a), and ``p``, ``q`` and ``V`` go
through :func:`damf.golden.damf_head.damf_head` (self-attention: as many queries as keys;
``causal=cfg.causal``), or with ``cfg.cross`` ``p`` from ``X`` and ``q`` from a second
sequence ``Y``.  Nothing else: the hardware's composition adds no other rounding.
"""

import numpy as np

from .damf_head import base2_constant, damf_head
from .inner_product import inner_product
from .quant import requantize
from .vector_checks import VectorFileError, VectorSpec, check_keys, check_matrix

__all__ = ["damf_head_block", "head_pq", "weight_vectors", "calibrated_base2", "row_lasts", "head_lengths", "VECTORS"]


def weight_vectors(cfg, rng=None):
    """``(u, v)`` of the head: the fixed ones, or random ``rank x d_model`` for runtime."""
    ip = cfg.inner_product
    if cfg.weights == "fixed":
        return [list(r) for r in ip.fixed_vectors()[0]], [list(r) for r in ip.fixed_vectors()[1]]
    rng = np.random.default_rng(0) if rng is None else rng
    lo, hi = -(1 << (cfg.w_width - 1)), (1 << (cfg.w_width - 1)) - 1
    return tuple(rng.integers(lo, hi, (cfg.rank, cfg.d_model), endpoint=True).tolist() for _ in range(2))


def head_pq(cfg, X, u, v, *, Y=None):
    """``(p_exact, q_exact, p, q)``: the inner-product unit's exact outputs for tokens ``X``
    (``q`` from ``Y`` with ``cfg.cross``) and the head's ``p``, ``q`` after requantization,
    ``requantize(., cfg.pq_shift, cfg.pq_width)``."""
    p_exact, q_exact = inner_product(cfg.inner_product, X, u, v)
    if cfg.cross:
        if Y is None:
            raise ValueError("cross-attention needs the key tokens Y")
        q_exact = inner_product(cfg.inner_product, Y, u, v)[1]
    return (p_exact, q_exact, requantize(p_exact, cfg.pq_shift, cfg.pq_width),
            requantize(q_exact, cfg.pq_shift, cfg.pq_width))


def damf_head_block(cfg, X, V, u, v, *, Y=None, trace=False):
    """``Z`` (``L x d_head``) of tokens ``X`` (``L x d_model``), values ``V`` (``L x d_head``)
    and singular vectors ``u``, ``v`` (``rank x d_model``); ``trace=True`` as in ``damf_head``,
    with ``p_exact``, ``q_exact`` (the inner product's outputs) and ``p``, ``q`` (requantized)
    added to the trace.  Cross-attention (``cfg.cross``): ``p`` from ``X`` (``Lq`` tokens),
    ``q`` from ``Y`` (``Lk`` tokens), ``V`` is ``Lk x d_head``; ``Z`` is ``Lq x d_head``."""
    p_exact, q_exact, p, q = head_pq(cfg, X, u, v, Y=Y)
    out = damf_head(p, q, np.asarray(V, dtype=np.int64).reshape(-1, cfg.d_head), cfg,
                    causal=cfg.causal, trace=trace)
    if trace:
        Z, t = out
        t.update(p_exact=p_exact, q_exact=q_exact, p=p, q=q)
        return Z, t
    return out


def row_lasts(lengths):
    """The ``last`` flag of every ``o`` row of heads of ``lengths`` (``Lq`` each): 1 exactly on
    each head's row ``Lq - 1``."""
    return [int(m == n - 1) for n in lengths for m in range(n)]


def head_lengths(tokens, seq_len):
    """The heads a run of ``tokens`` tokens with ``last`` only on the final one makes: the block
    ends a head at its ``seq_len``-th token, so ``seq_len, seq_len, .., rest``."""
    return [seq_len] * (tokens // seq_len) + ([tokens % seq_len] if tokens % seq_len else [])


def heads(cfg, rng, count):
    """Edge heads (``docs/numerics.md`` section 9, as far as ``X`` reaches them) then ``count``
    random heads of random length: ``[(X, V), ...]``.

    Edges: all-zero tokens (every score 0: uniform rows), all-max and all-min tokens (all
    scores equal, the largest ``|A|``) with extreme ``V``, and ``L = 1``.  All-negative scores
    need ``u = -v`` (``tests/test_damf_head_block.py``, ``sim/tb_damf_head.py``).
    """
    xlo, xhi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
    vlo, vhi = cfg.v_range
    L = cfg.seq_len

    def rand_v(n):
        return rng.integers(vlo, vhi, (n, cfg.d_head), endpoint=True).tolist()
    out = [
        ([[0] * cfg.d_model] * L, rand_v(L)),
        ([[xhi] * cfg.d_model] * L, [[vhi] * cfg.d_head] * L),
        ([[xlo] * cfg.d_model] * L, [[vlo] * cfg.d_head] * L),
        ([[xhi] * cfg.d_model], rand_v(1)),
    ]
    for _ in range(count):
        n = int(rng.integers(1, L + 1))
        out.append((rng.integers(xlo, xhi, (n, cfg.d_model), endpoint=True).tolist(), rand_v(n)))
    return out


def calibrated_base2(cfg, seed=0, heads_count=16):
    """``cfg`` in mode ``base2`` with ``c`` chosen so that random heads use every exponent.

    The scores of random integer ``X``, ``u``, ``v`` have no real-valued scale, so there is no
    natural ``c``.  This picks ``c`` (12 significant bits, :func:`base2_constant`) so that the
    median non-zero ``A_max - A`` of the random heads of :func:`heads` (seeded) maps to exponent
    ``F / 2``: the random keys then spread over ``e = 0 .. F`` and past ``F`` (dropped).  For
    tests and demonstrations; a trained model's ``c`` is ``log2(e)`` times its real logit per
    score LSB (``docs/numerics.md`` section 8).
    """
    import dataclasses
    import math
    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(cfg, mode="base2")
    u, v = weight_vectors(cfg, rng)
    deltas = []
    for X, V in heads(cfg, rng, heads_count)[4:]:
        _, t = damf_head_block(cfg, X, V, u, v, Y=X if cfg.cross else None, trace=True)
        d = (t["A_max"][:, None] - t["A"])[t["mask"]]
        deltas += d[d > 0].tolist()
    median = float(np.median(deltas)) if deltas else 1.0
    c = max(cfg.weight_frac, 1) / 2 / median
    c_int, c_frac = base2_constant(c / math.log2(math.e))
    return dataclasses.replace(cfg, c_int=c_int, c_frac=c_frac)


# ---- vector files (golden/vectors.py; VECTORS is the block's VectorSpec) -------------------
#
# inputs.lengths: L of each head (cross: [Lq, Lk] pairs); inputs.x: sum(Lq) tokens of d_model
# integers; inputs.y (cross only): sum(Lk) key tokens; inputs.vals: sum(Lk) value vectors of
# d_head integers; inputs.u, inputs.v: rank x d_model (the ones baked in when weights=fixed).
# expected.z: sum(Lq) rows of d_head integers.

def vectors_generate(cfg, rng, count):
    u, v = weight_vectors(cfg, rng)
    out = {"u": [list(r) for r in u], "v": [list(r) for r in v]}
    if cfg.cross:
        hs = cross_heads(cfg, rng, count)
        out.update(lengths=[[len(X), len(Y)] for X, Y, _ in hs], x=[r for X, _, _ in hs for r in X],
                   y=[r for _, Y, _ in hs for r in Y], vals=[r for _, _, V in hs for r in V])
    else:
        hs = heads(cfg, rng, count)
        out.update(lengths=[len(X) for X, _ in hs], x=[r for X, _ in hs for r in X],
                   vals=[r for _, V in hs for r in V])
    return out


def split_heads(cfg, inputs):
    """``[(X, Y, V), ...]`` of a vector file's inputs (``Y = X`` for self-attention)."""
    out, at, at_k = [], 0, 0
    for n in inputs["lengths"]:
        lq, lk = (n, n) if not cfg.cross else n
        X = inputs["x"][at:at + lq]
        Y = inputs["y"][at_k:at_k + lk] if cfg.cross else X
        out.append((X, Y, inputs["vals"][at_k:at_k + lk]))
        at, at_k = at + lq, at_k + lk
    return out


def vectors_expected(cfg, inputs):
    return {"z": [row for X, Y, V in split_heads(cfg, inputs)
                  for row in damf_head_block(cfg, X, V, inputs["u"], inputs["v"], Y=Y).tolist()]}


def vectors_check(cfg, inputs, expected, where):
    check_keys(inputs, ["lengths", "x", "vals", "u", "v"] + (["y"] if cfg.cross else []), f"{where}: inputs")
    lengths = inputs["lengths"]
    if cfg.cross:
        check_matrix(lengths, None, 2, 32, f"{where}: inputs.lengths")
        flat = [n for pair in lengths for n in pair]
    else:
        flat = lengths if isinstance(lengths, list) else None
    if not flat or any(not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= cfg.seq_len for n in flat):
        raise VectorFileError(f"{where}: inputs.lengths must be a non-empty list of "
                              f"{'[Lq, Lk] pairs' if cfg.cross else 'integers'} in [1, {cfg.seq_len}]")
    total = sum(lengths) if not cfg.cross else sum(lq for lq, _ in lengths)
    keys = total if not cfg.cross else sum(lk for _, lk in lengths)
    check_matrix(inputs["x"], total, cfg.d_model, cfg.x_width, f"{where}: inputs.x")
    if cfg.cross:
        check_matrix(inputs["y"], keys, cfg.d_model, cfg.x_width, f"{where}: inputs.y")
    check_matrix(inputs["vals"], keys, cfg.d_head, cfg.v_width, f"{where}: inputs.vals")
    check_matrix(inputs["u"], cfg.rank, cfg.d_model, cfg.w_width, f"{where}: inputs.u")
    check_matrix(inputs["v"], cfg.rank, cfg.d_model, cfg.w_width, f"{where}: inputs.v")
    if expected is not None:
        check_keys(expected, ["z"], f"{where}: expected")
        check_matrix(expected["z"], total, cfg.d_head, cfg.out_width, f"{where}: expected.z")


def cross_heads(cfg, rng, count):
    """Cross-attention heads ``[(X, Y, V), ...]``: the edge heads of :func:`heads` with
    ``Y = X`` and ``Lq = Lk``, then random ``Lq`` and ``Lk`` drawn apart (including 1)."""
    xlo, xhi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
    out = [(X, X, V) for X, V in heads(cfg, rng, 0)]
    vlo, vhi = cfg.v_range
    for j in range(count):
        lq = 1 if j == 0 else int(rng.integers(1, cfg.seq_len + 1))
        lk = cfg.seq_len if j == 0 else int(rng.integers(1, cfg.seq_len + 1))
        if j == 1:
            lq, lk = cfg.seq_len, 1
        out.append((rng.integers(xlo, xhi, (lq, cfg.d_model), endpoint=True).tolist(),
                    rng.integers(xlo, xhi, (lk, cfg.d_model), endpoint=True).tolist(),
                    rng.integers(vlo, vhi, (lk, cfg.d_head), endpoint=True).tolist()))
    return out


#: the ``damf-head`` vector files (``golden/vectors.py``)
VECTORS = VectorSpec(model=damf_head_block, generate=vectors_generate, expected=vectors_expected,
                     check=vectors_check)
