"""Bit-exact model of the conventional attention head (``hdl/baseline_head.py``).

``Z = A' V`` with ``A' = softmax(alpha * Q K^T)`` row by row, composed of the models of its
blocks with the sub-configurations of :class:`~damf.config.BaselineHeadConfig`::

    S  = golden.systolic_qk.scores(cfg.qk, Q, K)          # exact, qk.acc_width bits
    A' = golden.softmax.softmax_rows(cfg.softmax, S)      # prob_width-bit probabilities
    Z  = golden.systolic_qk.av_product(cfg.av, A', V)     # exact, out_width bits

The head's ``o`` stream is the ``A' V`` array's: :func:`z_beats` gives it in order.
"""

import numpy as np

from .softmax import softmax_rows
from .systolic_qk import av_product, score_rows, scores, scores_from_rows

__all__ = ["head", "probabilities", "z_beats", "z_from_beats"]


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
