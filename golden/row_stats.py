"""Bit-exact model of the row statistics and row set-up unit (``hdl/row_stats.py``).

For the maclaurin modes of ``docs/numerics.md`` (sections 4, 6.1, 6.2 and 6.4's ``sh``):
``N``, ``A_max``, ``M``, ``S``, the normaliser ``C`` and denominator ``D``, the uniform and
abs-fallback flags, the exponents ``I_C``, ``R``, ``I_D`` (uniform rows: 0, 0, ``P(N)``), the
normaliser shift ``t_C = F + I_C - R`` and the final shift ``sh = I_D - R + F - of``.
For mode ``base2`` (section 8) only ``N`` and ``A_max``: the exponents, the weight sum and
the final shift depend on every key's ``A_max - A`` and are made in the second pass.

Built from the functions of :mod:`damf.golden.damf_head` in the same order as
:func:`~damf.golden.damf_head.damf_head`; ``tests/test_row_stats.py`` checks that every value
equals the head's trace.
"""

import numpy as np

from .damf_head import maclaurin_normaliser, pow2_round, row_stats

__all__ = ["FIELDS", "BASE2_FIELDS", "fields", "row_setup"]

# The output fields of the unit, in payload order (least significant first).
FIELDS = ("n", "a_max", "m", "s", "c", "d", "uniform", "fallback", "i_c", "r", "i_d", "c_shift", "sh")
BASE2_FIELDS = ("n", "a_max")


def fields(cfg):
    """The output fields of the unit in ``cfg.mode``: :data:`BASE2_FIELDS` or :data:`FIELDS`."""
    return BASE2_FIELDS if cfg.mode == "base2" else FIELDS


def row_setup(cfg, A, mask=None):
    """``{field: int64 vector per row}`` for scores ``A`` (rows) over the keys ``mask`` selects."""
    A = np.asarray(A, dtype=np.int64)
    mask = np.ones(A.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    F, of = cfg.weight_frac, cfg.out_frac
    st = row_stats(A, mask, cfg)
    if cfg.mode == "base2":
        return {"n": st.count.astype(np.int64), "a_max": st.a_max.astype(np.int64)}
    C, D, uniform, fallback = maclaurin_normaliser(st, cfg.mode, cfg)
    _, I_C = pow2_round(C)
    _, R = pow2_round(st.a_absmax)
    _, I_D = pow2_round(np.maximum(D, 1))
    _, I_N = pow2_round(st.count)
    R = np.where(uniform, 0, R)
    I_C = np.where(uniform, 0, I_C)
    I_D = np.where(uniform, I_N, I_D)
    out = {"n": st.count, "a_max": st.a_max, "m": st.a_absmax, "s": st.a_sum, "c": C, "d": D,
           "uniform": uniform, "fallback": fallback, "i_c": I_C, "r": R, "i_d": I_D,
           "c_shift": F + I_C - R, "sh": I_D - R + F - of}
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
