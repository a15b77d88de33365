"""Bit-exact model of the conventional attention head (``hdl/baseline_head.py``).

``Z = A' V`` with ``A' = softmax(alpha * Q K^T)`` row by row, composed of the models of its
blocks with the sub-configurations of :class:`~damf.config.BaselineHeadConfig`::

    S  = golden.systolic_qk.scores(cfg.qk, Q, K)          # exact, qk.acc_width bits
    A' = golden.softmax.softmax_rows(cfg.softmax, S)      # prob_width-bit probabilities
    Z  = golden.systolic_qk.av_product(cfg.av, A', V)     # exact, out_width bits

With ``cfg.inputs == "x"`` the head takes tokens ``X`` (``L x d_model``) and computes ``Q`` and
``K`` first (:func:`projection`)::

    Q = requantize(X W_Q, cfg.qk_shift, cfg.q_width)      # golden.inner_product, exact, then
    K = requantize(X W_K, cfg.qk_shift, cfg.k_width)      # golden.quant.requantize

(``W_Q`` and ``W_K`` given transposed, ``d_head x d_model``, as ``wq`` and ``wk``: the
inner-product unit's ``u`` and ``v``.)  The head's ``o`` stream is the ``A' V`` array's:
:func:`z_beats` gives it in order.
"""

import numpy as np

from .inner_product import inner_product
from .quant import int_range, requantize
from .softmax import softmax_rows
from .systolic_qk import av_product, score_rows, scores, scores_from_rows

__all__ = ["head", "probabilities", "z_beats", "z_from_beats", "projection", "head_x", "weights",
           "x_edge_problems", "random_x_head"]


def probabilities(cfg, q, k):
    """``A'`` (``seq_len x seq_len`` int64): the softmax unit's output for every row of ``S``."""
    return np.asarray(softmax_rows(cfg.softmax, scores(cfg.qk, q, k).tolist()), dtype=np.int64)


def head(cfg, q, k, v):
    """``Z`` (``seq_len x d_head`` int64) for ``q``, ``k``, ``v`` of shape ``seq_len x d_head``."""
    return av_product(cfg.av, probabilities(cfg, q, k), v)


def z_beats(cfg, z):
    """The ``o`` beats for ``Z`` (lists of ``cols`` ints), in stream order."""
    return score_rows(cfg.av, z)


def z_from_beats(cfg, beats):
    """Inverse of :func:`z_beats`."""
    return scores_from_rows(cfg.av, beats)


# ---- inputs=x: the Q/K projection -------------------------------------------------------------

def projection(cfg, x, wq, wk):
    """``(Q, K)`` (each ``seq_len x d_head`` int64) of tokens ``x`` (``seq_len x d_model``):
    ``X W_Q`` and ``X W_K`` exactly (the inner-product unit ``cfg.projection``, ``wq`` = ``W_Q^T``
    and ``wk`` = ``W_K^T``, ``d_head x d_model``), then shifted right by ``cfg.qk_shift`` with
    rounding half away from zero and saturated to ``q_width`` / ``k_width`` bits."""
    q_exact, k_exact = inner_product(cfg.projection, x, wq, wk)
    return requantize(q_exact, cfg.qk_shift, cfg.q_width), requantize(k_exact, cfg.qk_shift, cfg.k_width)


def head_x(cfg, x, v, wq, wk):
    """``Z`` of tokens ``x`` and values ``v`` (``seq_len x d_head``): :func:`projection`, then
    :func:`head`."""
    q, k = projection(cfg, x, wq, wk)
    return head(cfg, q, k, v)


def weights(cfg, rng=None):
    """``(wq, wk)`` (``d_head x d_model`` lists): the fixed ones of ``cfg.projection``, or random
    ones over the whole ``w_width`` range (``rng``, default seed 0) for runtime weights."""
    ip = cfg.projection
    if cfg.weights == "fixed":
        return tuple([list(r) for r in w] for w in ip.fixed_vectors())
    rng = np.random.default_rng(0) if rng is None else rng
    lo, hi = int_range(cfg.w_width)
    return tuple(rng.integers(lo, hi, (cfg.d_head, cfg.d_model), endpoint=True).tolist() for _ in range(2))


def x_edge_problems(cfg):
    """Edge heads ``(X, V)`` for inputs=x: zero tokens (``Q = K = 0``: every score 0, uniform
    rows), all-max and all-min tokens (``Q``, ``K`` the extreme sums of the weights, saturating
    when ``qk_shift`` is small) with extreme ``V``, and alternating ones (``X`` rows of ``xhi``,
    ``xlo`` in turn: the largest scores of both signs)."""
    xlo, xhi = int_range(cfg.x_width)
    vlo, vhi = int_range(cfg.v_width)
    L, M, D = cfg.seq_len, cfg.d_model, cfg.d_head
    alt = [[xhi if (t + i) % 2 else xlo for i in range(M)] for t in range(L)]
    return [
        ([[0] * M] * L, [[(t * D + e) % (vhi - vlo + 1) + vlo for e in range(D)] for t in range(L)]),
        ([[xhi] * M] * L, [[vhi] * D] * L),
        ([[xlo] * M] * L, [[vlo] * D] * L),
        (alt, [[vhi if (t + e) % 2 else vlo for e in range(D)] for t in range(L)]),
    ]


def random_x_head(cfg, rng):
    """One random ``(X, V)``: ``X`` uses a random number of its bits (from a few to all, so
    ``Q`` and ``K`` range from small to saturated), ``V`` all of its range."""
    bits = int(rng.integers(1, cfg.x_width, endpoint=True))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    vlo, vhi = int_range(cfg.v_width)
    return (rng.integers(lo, hi, (cfg.seq_len, cfg.d_model), endpoint=True).tolist(),
            rng.integers(vlo, vhi, (cfg.seq_len, cfg.d_head), endpoint=True).tolist())
