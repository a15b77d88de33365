"""Bit-exact model of the ``A' x V`` unit (``hdl/shift_accumulate.py``).

A thin wrapper of :func:`damf.golden.damf_head.shift_accumulate` and
:func:`~damf.golden.damf_head.round_shift` for one row at a time: the row's keys
``(V_n, s_n, t_n)``, its ``t_C`` and ``sh``.  ``SV`` is the sum of the row's ``V_n``.
In mode ``base2`` there is no ``SV`` term (``t_C`` is ``None``) and ``s_n`` is 0 or 1.
:func:`beats_of_row` cuts a row into the unit's input beats of ``parallel`` keys.
"""

import numpy as np

from .damf_head import round_shift, shift_accumulate

__all__ = ["shift_accumulate_row", "beats_of_row", "rows_from_trace"]


def shift_accumulate_row(cfg, V, sign, shift, c_shift, sh):
    """``Z`` (``d_head`` ints) of one row: keys ``V`` (``N x d_head``), ``sign``/``shift`` per key."""
    V = np.asarray(V, dtype=np.int64).reshape(-1, cfg.d_head)
    sign = np.asarray(sign, dtype=np.int64)
    shift = np.where(sign != 0, np.asarray(shift, dtype=np.int64), -1)
    if c_shift is None:
        acc = shift_accumulate(V, sign[None, :], shift[None, :], cfg)
    else:
        acc = shift_accumulate(V, sign[None, :], shift[None, :], cfg, vsum=V.sum(axis=0)[None, :],
                               vsum_shift=np.asarray([c_shift]))
    return round_shift(acc, np.asarray([[sh]]), cfg.out_width, cfg.acc_width)[0].tolist()


def beats_of_row(cfg, V, sign, shift, pad=None):
    """The input beats of one row: ``[(v, sign, shift, count), ...]``, ``cfg.parallel`` keys each.

    Beat ``b`` holds keys ``b*parallel + j`` in slot ``j``; ``count`` is the number of the row's
    keys in it (``parallel`` except maybe in the last beat).  Slots ``j >= count`` are not part
    of the row and hold ``pad(j)`` (a ``(v, sign, shift)`` key; default zeros): the unit ignores
    them whatever they hold.
    """
    V = np.asarray(V, dtype=np.int64).reshape(-1, cfg.d_head).tolist()
    sign, shift = [int(x) for x in sign], [int(x) for x in shift]
    if not len(V) == len(sign) == len(shift) or not V:
        raise ValueError(f"a row needs 1 or more keys and as many signs and shifts, not {len(V)} keys, "
                         f"{len(sign)} signs and {len(shift)} shifts")
    P = cfg.parallel
    beats = []
    for b in range(0, len(V), P):
        keys = [(V[n], sign[n], shift[n]) for n in range(b, min(b + P, len(V)))]
        count = len(keys)
        keys += [pad(j) if pad else ([0] * cfg.d_head, 0, 0) for j in range(count, P)]
        v, s, t = (list(x) for x in zip(*keys))
        beats.append((v, s, t, count))
    return beats


def rows_from_trace(t, V):
    """The unit's input rows of a ``damf_head(..., trace=True)`` trace.

    Each row: ``(V_rows, sign, shift, c_shift, sh)`` over the attended keys; keys without a
    term (``t_n < 0``, ``s_n = 0``, or a base2 key with ``e > F``) get sign 0.  Mode base2
    (a trace with ``keep``): sign 1 for kept keys and ``c_shift = None`` (no ``SV`` term).
    """
    out = []
    base2 = "keep" in t
    for m in range(t["A"].shape[0]):
        keys = np.flatnonzero(t["mask"][m])
        if base2:
            sign = t["keep"][m, keys].astype(np.int64)
            shift = np.where(sign != 0, t["shift"][m, keys], 0)
            out.append((np.asarray(V)[keys].tolist(), sign.tolist(), shift.tolist(), None, int(t["sh"][m])))
            continue
        sign = np.where(t["shift"][m, keys] >= 0, t["sign"][m, keys], 0)
        shift = np.maximum(t["shift"][m, keys], 0)
        out.append((np.asarray(V)[keys].tolist(), sign.tolist(), shift.tolist(),
                    int(t["c_shift"][m]), int(t["sh"][m])))
    return out
