"""Bit-exact model of the inner-product unit (``hdl/inner_product.py``).

``p[m, k] = sum_i x[m, i] * u[k, i]`` and ``q[m, k] = sum_i x[m, i] * v[k, i]``, computed
exactly in int64: the unit's output width (``InnerProductConfig.out_width``) holds every
possible sum, so there is no wraparound and no rounding to model.  How the hardware splits
a token into beats does not change the result (integer addition is associative).
"""

import numpy as np

from .quant import int_range

__all__ = ["inner_product", "check_range"]


def check_range(name, values, width):
    lo, hi = int_range(width)
    values = np.asarray(values)
    if values.size and (values.min() < lo or values.max() > hi):
        bad = np.argwhere((values < lo) | (values > hi))[0]
        raise ValueError(f"{name}{list(map(int, bad))} must be in [{lo}, {hi}], "
                         f"not {int(values[tuple(bad)])}")


def inner_product(cfg, x, u, v):
    """``(p, q)``, each ``N x rank`` int64, for tokens ``x`` (``N x d_model``)."""
    x = np.asarray(x, dtype=np.int64).reshape(-1, cfg.d_model)
    u = np.asarray(u, dtype=np.int64).reshape(cfg.rank, cfg.d_model)
    v = np.asarray(v, dtype=np.int64).reshape(cfg.rank, cfg.d_model)
    check_range("x", x, cfg.x_width)
    check_range("u", u, cfg.w_width)
    check_range("v", v, cfg.w_width)
    p, q = x @ u.T, x @ v.T
    check_range("p", p, cfg.out_width)  # cannot fail: out_width is derived from the bound
    check_range("q", q, cfg.out_width)
    return p, q
