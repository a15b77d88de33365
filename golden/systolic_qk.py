"""Bit-exact model of the systolic score engine (``hdl/systolic_qk.py``).

``S = Q K^T``, i.e. ``S[i, j] = sum_k Q[i, k] * K[j, k]``, computed exactly in int64: the
engine's score width (``SystolicQKConfig.acc_width``) holds every possible sum of ``d_head``
products, so there is no wraparound and no rounding to model.  How the engine tiles ``S``
and orders the accumulation does not change the result (integer addition is associative).

:func:`score_rows` gives the order in which the engine emits ``S``: its ``o`` stream.
"""

import numpy as np

from .inner_product import check_range

__all__ = ["scores", "score_rows", "scores_from_rows", "av_product"]


def scores(cfg, q, k):
    """``S = Q K^T`` (``seq_len x seq_len`` int64) for ``q``, ``k`` of shape ``seq_len x d_head``."""
    q = np.asarray(q, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    shape = (cfg.seq_len, cfg.d_head)
    for name, m in (("q", q), ("k", k)):
        if m.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (seq_len x d_head), not {m.shape}")
    check_range("q", q, cfg.q_width)
    check_range("k", k, cfg.k_width)
    s = q @ k.T
    check_range("s", s, cfg.acc_width)  # cannot fail: acc_width is derived from the bound
    return s


def score_rows(cfg, s):
    """The ``o`` beats for ``S``, each a list of ``cols`` ints: for every tile in stream order,
    its rows inside the sequence; lanes past the end of the sequence are 0."""
    s = np.asarray(s, dtype=np.int64)
    padded = np.zeros((cfg.q_rows, cfg.tile_cols * cfg.cols), dtype=np.int64)
    padded[:, :cfg.k_rows] = s
    return [padded[r0 + r, c0:c0 + cfg.cols].tolist()
            for r0, c0 in cfg.tile_origins() for r in range(cfg.tile_score_rows(r0))]


def scores_from_rows(cfg, rows):
    """Inverse of :func:`score_rows`: ``S`` from ``score_beats`` beats (padding lanes dropped)."""
    if len(rows) != cfg.score_beats:
        raise ValueError(f"an S takes {cfg.score_beats} score rows, not {len(rows)}")
    s = np.zeros((cfg.q_rows, cfg.tile_cols * cfg.cols), dtype=np.int64)
    it = iter(rows)
    for r0, c0 in cfg.tile_origins():
        for r in range(cfg.tile_score_rows(r0)):
            s[r0 + r, c0:c0 + cfg.cols] = next(it)
    return s[:, :cfg.k_rows]


def av_product(cfg, a, v):
    """``Z = A' V`` (``seq_len x d_head`` int64) for a ``systolic-av`` configuration: the same
    engine with ``Q = A'`` (``seq_len x seq_len``) and ``K = V^T`` (``d_head x seq_len``).
    :func:`score_rows` / :func:`scores_from_rows` give and invert its ``o`` stream."""
    a = np.asarray(a, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    for name, m, shape in (("a", a, (cfg.seq_len, cfg.seq_len)), ("v", v, (cfg.seq_len, cfg.d_head))):
        if m.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, not {m.shape}")
    check_range("a", a, cfg.q_width)
    check_range("v", v, cfg.k_width)
    z = a @ v
    check_range("z", z, cfg.acc_width)  # cannot fail: acc_width is derived from the bound
    return z
