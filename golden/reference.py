"""Float reference: multi-head self-attention with biases (Vaswani et al. 2017, eq. 1-3).

Shapes: ``X`` is ``L x d_model``; ``Wq, Wk, Wv, Wo`` are ``d_model x d_model`` with head ``i``
in columns ``i*d_head .. (i+1)*d_head - 1``; biases are ``d_model`` vectors.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["AttentionWeights", "random_weights", "softmax", "mhsa", "head_scores"]


@dataclass(frozen=True)
class AttentionWeights:
    Wq: np.ndarray
    bq: np.ndarray
    Wk: np.ndarray
    bk: np.ndarray
    Wv: np.ndarray
    bv: np.ndarray
    Wo: np.ndarray
    bo: np.ndarray
    n_heads: int

    @property
    def d_model(self):
        return self.Wq.shape[0]

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    def head(self, name, i):
        """Columns of projection ``name`` ('q', 'k' or 'v') belonging to head ``i``: (W, b)."""
        W, b = getattr(self, "W" + name), getattr(self, "b" + name)
        cols = slice(i * self.d_head, (i + 1) * self.d_head)
        return W[:, cols], b[cols]


def random_weights(d_model, n_heads, rng, scale=None):
    """Random weights in the usual initialisation range (for tests and examples)."""
    if d_model % n_heads:
        raise ValueError(f"d_model must be a multiple of n_heads = {n_heads}, not {d_model}")
    scale = scale if scale is not None else 1.0 / np.sqrt(d_model)
    mats = {n: rng.normal(0.0, scale, (d_model, d_model)) for n in ("Wq", "Wk", "Wv", "Wo")}
    bias = {n: rng.normal(0.0, 0.1, d_model) for n in ("bq", "bk", "bv", "bo")}
    return AttentionWeights(n_heads=n_heads, **mats, **bias)


def softmax(a, axis=-1):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def head_scores(X, weights, i):
    """Unscaled scores ``A = Q_i K_i^T`` of head ``i`` (L x L)."""
    Wq, bq = weights.head("q", i)
    Wk, bk = weights.head("k", i)
    return (X @ Wq + bq) @ (X @ Wk + bk).T


def mhsa(X, weights):
    """Multi-head self-attention.  Returns ``(output, [A'_i for each head])``."""
    heads, probs = [], []
    for i in range(weights.n_heads):
        Wv, bv = weights.head("v", i)
        P = softmax(head_scores(X, weights, i) / np.sqrt(weights.d_head))
        probs.append(P)
        heads.append(P @ (X @ Wv + bv))
    return np.concatenate(heads, axis=1) @ weights.Wo + weights.bo, probs
