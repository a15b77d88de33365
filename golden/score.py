"""Bit-exact model of the score unit (``hdl/score.py``): ``A = p q^T``, exact.

A thin wrapper of :func:`damf.golden.damf_head.scores` (the head's own definition, so the
block and the head cannot disagree), plus the split of a score row into the unit's beats.
"""

import numpy as np

from .damf_head import scores

__all__ = ["score_matrix", "row_beats"]


def score_matrix(cfg, p, q):
    """``A`` (``Lq x Lk`` int64) for queries ``p`` (``Lq x rank``) and keys ``q`` (``Lk x rank``)."""
    return scores(np.asarray(p, dtype=np.int64).reshape(-1, cfg.rank),
                  np.asarray(q, dtype=np.int64).reshape(-1, cfg.rank), cfg)


def row_beats(cfg, row):
    """The beats of one score row: ``[(scores, count, last), ...]``, ``parallel`` per beat.

    ``scores`` holds the ``count`` valid lanes only (the others are undefined in the RTL).
    """
    row = [int(a) for a in row]
    P = cfg.parallel
    chunks = [row[i:i + P] for i in range(0, len(row), P)]
    return [(c, len(c), i == len(chunks) - 1) for i, c in enumerate(chunks)]
