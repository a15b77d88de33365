"""DAMF scores in float (DAMF paper, eq. 4-8), biases included.

With biases, ``Q = X Wq + bq = [X, 1] [Wq; bq]``.  Augmenting each token with a constant 1
gives the fused quadratic form ``A_mn = [X_m, 1] M [X_n, 1]^T`` with
``M = [Wq; bq] [Wk; bk]^T`` of size ``(d_model + 1) x (d_model + 1)``.

SVD ``M = sum_k sigma_k u_k v_k^T`` (descending sigma).  Decision: sigma is folded in
symmetrically, ``u_k <- sqrt(sigma_k) u_k`` and ``v_k <- sqrt(sigma_k) v_k``, so both
vectors have the same dynamic range and quantize alike.  The rank-r score is then

    A_mn = sum_{k<r} (X_m' . u_k) (X_n' . v_k),   X' = [X, 1]

which equals the exact score for r = rank(M).  In hardware the constant 1 is an ordinary
extra element of ``X'`` (the inner-product unit then has ``d_model + 1`` elements).
"""

import numpy as np

__all__ = ["augment", "fused_matrix", "singular_vectors", "damf_scores", "concentration"]


def augment(X):
    """``[X, 1]``: append the constant-1 element that carries the biases."""
    X = np.asarray(X, dtype=np.float64)
    return np.concatenate([X, np.ones(X.shape[:-1] + (1,))], axis=-1)


def fused_matrix(Wq, bq, Wk, bk):
    """``M = [Wq; bq] [Wk; bk]^T`` for one head ((d_model + 1) square)."""
    Wq_a = np.vstack([Wq, bq[None, :]])
    Wk_a = np.vstack([Wk, bk[None, :]])
    return Wq_a @ Wk_a.T


def singular_vectors(M, rank):
    """Top-``rank`` singular pairs with sqrt(sigma) folded into each: ``(u, v, sigma)``.

    ``u`` and ``v`` are ``rank x n`` (one vector per row); ``sigma`` is the full spectrum.
    """
    n = M.shape[0]
    if not 1 <= rank <= n:
        raise ValueError(f"rank must be in [1, {n}], not {rank}")
    U, S, Vt = np.linalg.svd(M)
    root = np.sqrt(S[:rank])
    return (U[:, :rank] * root).T, Vt[:rank] * root[:, None], S


def damf_scores(X, u, v):
    """Rank-r DAMF scores ``A_mn = sum_k (X_m' . u_k)(X_n' . v_k)`` (L x L)."""
    Xa = augment(X)
    return (Xa @ u.T) @ (Xa @ v.T).T


def concentration(sigma, rank=1):
    """Share of the top ``rank`` singular values in their sum (the paper's sigma_max / sum sigma for rank 1)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    total = sigma.sum()
    return float(sigma[:rank].sum() / total) if total > 0 else 0.0
