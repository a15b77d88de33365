"""Golden vector files: inputs and expected outputs of a block, as JSON.

Format ``damf-vectors/1`` (one JSON object)::

    {
     "format": "damf-vectors/1",
     "block": "inner-product",          # a block name of `damf --help`
     "config": {...},                   # the block's configuration (as in BLOCK.json)
     "seed": 1,                         # seed the random inputs were drawn from (informative)
 "count": 64,                       # random inputs requested (informative; edge inputs come first)
     "inputs": {...},                   # per block, below
     "expected": {...}                  # per block, below
    }

Every number is a plain (signed, decimal) JSON integer in the block's own format.

``inner-product``
    ``inputs.x``: N tokens, each a list of ``d_model`` integers of ``x_width`` bits.
    ``inputs.u``, ``inputs.v``: ``rank`` lists of ``d_model`` integers of ``w_width`` bits
    (only for ``weights = "runtime"``; with ``"fixed"`` the config carries them).
    ``expected.p``, ``expected.q``: N lists of ``rank`` integers (``p[m][k] = x[m] . u[k]``).

``systolic-qk``
    ``N`` problems (``Q``, ``K`` pairs) stacked: ``inputs.q`` and ``inputs.k`` are ``N * seq_len``
    lists of ``d_head`` integers (``q_width`` / ``k_width`` bits); problem ``n`` is rows
    ``n*seq_len .. (n+1)*seq_len - 1``.  ``expected.s``: ``N * seq_len`` lists of ``seq_len``
    integers, ``S = Q K^T`` of each problem stacked the same way.  The first problems pair
    every edge row (all-max, all-min, zeros, both alternating) of ``Q`` with every one of ``K``.

``systolic-av``
    ``N`` problems ``(A', V)`` stacked: ``inputs.a`` is ``N * seq_len`` lists of ``seq_len``
    integers (``q_width`` bits), ``inputs.v`` ``N * seq_len`` lists of ``d_head`` integers
    (``k_width`` bits); ``expected.z``: ``N * seq_len`` lists of ``d_head`` integers, ``A' V``.

``baseline-head``
    ``N`` heads stacked: ``inputs.q``, ``inputs.k``, ``inputs.v`` are ``N * seq_len`` lists of
    ``d_head`` integers (``q_width`` / ``k_width`` / ``v_width`` bits); ``expected.z``:
    ``N * seq_len`` lists of ``d_head`` integers, ``Z = softmax(alpha Q K^T) V`` of each head
    (``golden/baseline_head.py``).  The first heads pair the edge rows of ``Q`` and ``K`` (as
    for ``systolic-qk``) with edge rows of ``V``; the rest are random with a random spread.

``softmax``
    ``inputs.s``: rows of ``1 .. seq_len`` signed ``in_width``-bit scores (one row per list).
    ``expected.p``: for each row, its probabilities (``prob_width`` fraction bits, unsigned).
    The first rows are edge rows (all-max, all-min, zeros, alternating, one maximum, a single
    score, a tie), the rest ``--count`` random rows of random length.

``score``
    ``inputs.lengths``: one ``[Lq, Lk]`` pair per problem (``1 <= Lk <= seq_len``, ``Lq >= 1``);
    ``inputs.p`` / ``inputs.q``: the problems' queries / keys stacked (``rank`` integers of
    ``pq_width`` bits each).  ``expected.a``: one row of ``Lk`` scores per query, stacked.

``row-stats``
    ``inputs.rows``: score rows of ``1..seq_len`` integers of ``score_width`` bits (the
    attended keys only).  ``expected.setup``: one list per row, the fields of
    ``golden/row_stats.py`` ``fields(cfg)`` in order (maclaurin modes: ``n, a_max, m, s, c,
    d, uniform, fallback, i_c, r, i_d, c_shift, sh``; base2: ``n, a_max``).

``shift-accumulate``
    ``inputs.rows``: one ``[N, t_C, sh]`` per row (base2, which has no ``SV`` term:
    ``[N, sh]``); ``inputs.keys``: the rows' keys stacked, each ``V_n`` (``d_head`` integers
    of ``v_width`` bits) followed by ``s_n`` (base2: 0 or 1) and ``t_n``.
    ``expected.z``: one ``Z_m`` (``d_head`` integers of ``out_width`` bits) per row.

``damf-head``
    ``inputs.lengths``: ``L`` per head (cross: ``[Lq, Lk]`` pairs); ``inputs.x``: the tokens
    stacked (``d_model`` integers of ``x_width`` bits); ``inputs.y`` (cross only): the key
    tokens; ``inputs.vals``: the ``V_n`` stacked; ``inputs.u``, ``inputs.v``: ``rank x d_model``.
    ``expected.z``: the ``Z_m`` of every head stacked (``golden/damf_head_block.py``).

The JSON Schema of the format is ``docs/schemas/vectors.schema.json`` (draft 2020-12);
:func:`check` checks it after the block's own rules, so a violation is one line
``vector file 'FILE': <json path>: <message>``.

Files are written deterministically (sorted keys, one row per line), so regenerating from the
same seed gives byte-identical files.
"""

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import loads, read_text
from ..validate import check as check_schema
from . import baseline_head, damf_head_block, row_stats
from .inner_product import inner_product
from .quant import int_range
from .score import score_matrix
from .shift_accumulate import shift_accumulate_row
from .softmax import random_score_rows, softmax_rows
from .systolic_qk import av_product, scores as systolic_qk_scores
from .vector_checks import VectorFileError, VectorSpec, check_keys, check_matrix

__all__ = ["FORMAT", "VectorFileError", "VectorSpec", "generate", "dumps", "read", "check", "compare",
           "edge_tokens", "INNER_PRODUCT", "SYSTOLIC_QK", "SCORE", "ROW_STATS", "SHIFT_ACCUMULATE", "DAMF_HEAD",
           "SOFTMAX", "SYSTOLIC_AV", "BASELINE_HEAD"]

FORMAT = "damf-vectors/1"




# ---- inner-product ------------------------------------------------------------------------

def edge_tokens(cfg):
    """All-max, all-min, zeros and both alternating-sign tokens."""
    lo, hi = int_range(cfg.x_width)
    alt = [hi if i % 2 == 0 else lo for i in range(cfg.d_model)]
    return [[hi] * cfg.d_model, [lo] * cfg.d_model, [0] * cfg.d_model,
            alt, [lo if v == hi else hi for v in alt]]


def random_weights(cfg, rng):
    lo, hi = int_range(cfg.w_width)
    return (rng.integers(lo, hi, (cfg.rank, cfg.d_model), endpoint=True),
            rng.integers(lo, hi, (cfg.rank, cfg.d_model), endpoint=True))


def random_tokens(cfg, rng, count):
    lo, hi = int_range(cfg.x_width)
    return rng.integers(lo, hi, (count, cfg.d_model), endpoint=True)


def _inner_product_weights(cfg, inputs):
    if cfg.weights == "fixed":
        return cfg.fixed_vectors()
    return inputs["u"], inputs["v"]


def _inner_product_generate(cfg, rng, count):
    inputs = {}
    if cfg.weights == "runtime":
        u, v = random_weights(cfg, rng)
        inputs["u"], inputs["v"] = u.tolist(), v.tolist()
    inputs["x"] = edge_tokens(cfg) + random_tokens(cfg, rng, count).tolist()
    return inputs


def _inner_product_expected(cfg, inputs):
    p, q = inner_product(cfg, inputs["x"], *_inner_product_weights(cfg, inputs))
    return {"p": p.tolist(), "q": q.tolist()}


def _inner_product_check(cfg, inputs, expected, where):
    need = ["x"] + (["u", "v"] if cfg.weights == "runtime" else [])
    check_keys(inputs, need, f"{where}: inputs")
    n = check_matrix(inputs["x"], None, cfg.d_model, cfg.x_width, f"{where}: inputs.x")
    if cfg.weights == "runtime":
        check_matrix(inputs["u"], cfg.rank, cfg.d_model, cfg.w_width, f"{where}: inputs.u")
        check_matrix(inputs["v"], cfg.rank, cfg.d_model, cfg.w_width, f"{where}: inputs.v")
    if expected is not None:
        check_keys(expected, ["p", "q"], f"{where}: expected")
        for name in ("p", "q"):
            check_matrix(expected[name], n, cfg.rank, cfg.out_width, f"{where}: expected.{name}")



# ---- systolic-qk --------------------------------------------------------------------------

def edge_rows(width, length):
    """All-max, all-min, zeros and both alternating-sign rows of ``length`` ``width``-bit integers."""
    lo, hi = int_range(width)
    alt = [hi if i % 2 == 0 else lo for i in range(length)]
    return [[hi] * length, [lo] * length, [0] * length, alt, [lo if v == hi else hi for v in alt]]


def qk_edge_problems(cfg):
    """``(q, k)`` pairs whose scores pair every edge row of Q with every edge row of K."""
    q_edges, k_edges = edge_rows(cfg.q_width, cfg.d_head), edge_rows(cfg.k_width, cfg.d_head)
    n, length = len(q_edges), cfg.seq_len
    starts = range(0, n, length)
    return [([q_edges[(a + i) % n] for i in range(length)], [k_edges[(b + j) % n] for j in range(length)])
            for a in starts for b in starts]


def random_qk(cfg, rng):
    """One random ``(q, k)`` pair, each ``seq_len x d_head``."""
    (qlo, qhi), (klo, khi) = int_range(cfg.q_width), int_range(cfg.k_width)
    shape = (cfg.seq_len, cfg.d_head)
    return (rng.integers(qlo, qhi, shape, endpoint=True).tolist(),
            rng.integers(klo, khi, shape, endpoint=True).tolist())


def qk_problems(cfg, inputs):
    """The stacked problems of a vector file as a list of ``(q, k)`` pairs."""
    q, k, length = inputs["q"], inputs["k"], cfg.seq_len
    return [(q[i:i + length], k[i:i + length]) for i in range(0, len(q), length)]


def _systolic_qk_generate(cfg, rng, count):
    # count random Q rows, rounded up to whole problems
    problems = qk_edge_problems(cfg) + [random_qk(cfg, rng) for _ in range(-(-count // cfg.seq_len))]
    return {"q": [row for q, _ in problems for row in q], "k": [row for _, k in problems for row in k]}


def _systolic_qk_expected(cfg, inputs):
    return {"s": [row for q, k in qk_problems(cfg, inputs) for row in systolic_qk_scores(cfg, q, k).tolist()]}


def _systolic_qk_check(cfg, inputs, expected, where):
    check_keys(inputs, ["q", "k"], f"{where}: inputs")
    n = check_matrix(inputs["q"], None, cfg.d_head, cfg.q_width, f"{where}: inputs.q")
    if n == 0 or n % cfg.seq_len:
        raise VectorFileError(f"{where}: inputs.q must hold a positive multiple of seq_len = {cfg.seq_len} rows, "
                              f"not {n}")
    check_matrix(inputs["k"], n, cfg.d_head, cfg.k_width, f"{where}: inputs.k")
    if expected is not None:
        check_keys(expected, ["s"], f"{where}: expected")
        check_matrix(expected["s"], n, cfg.seq_len, cfg.acc_width, f"{where}: expected.s")


# ---- softmax ------------------------------------------------------------------------------

def softmax_edge_rows(cfg):
    """Full-length all-max, all-min, zeros and alternating rows, one maximum among minima, a
    single score, and a tie of two maxima in a row of minima."""
    rows = edge_rows(cfg.in_width, cfg.seq_len)
    lo, hi = int_range(cfg.in_width)
    rows.append([hi] + [lo] * (cfg.seq_len - 1))
    rows.append([0])
    rows.append(([lo] * (cfg.seq_len - 2) + [hi, hi])[-cfg.seq_len:])
    return rows


def _softmax_generate(cfg, rng, count):
    return {"s": softmax_edge_rows(cfg) + random_score_rows(cfg, rng, count)}


def _softmax_expected(cfg, inputs):
    return {"p": softmax_rows(cfg, inputs["s"])}


def _check_ragged(rows, lengths, max_len, width, where):
    """Rows of 1 .. max_len integers (``lengths`` given: row r must hold lengths[r])."""
    lo, hi = int_range(width)
    if not isinstance(rows, list):
        raise VectorFileError(f"{where} must be a list of lists, not {type(rows).__name__}")
    if lengths is not None and len(rows) != len(lengths):
        raise VectorFileError(f"{where} must hold {len(lengths)} rows, not {len(rows)}")
    for r, row in enumerate(rows):
        if not isinstance(row, list) or (lengths is None and not 1 <= len(row) <= max_len) \
                or (lengths is not None and len(row) != lengths[r]):
            given = len(row) if isinstance(row, list) else type(row).__name__
            want = f"1 .. {max_len}" if lengths is None else f"{lengths[r]}"
            raise VectorFileError(f"{where}[{r}] must hold {want} integers, not {given}")
        for c, value in enumerate(row):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise VectorFileError(f"{where}[{r}][{c}] must be an integer in [{lo}, {hi}], not {value!r}")
    return [len(row) for row in rows]


def _softmax_check(cfg, inputs, expected, where):
    check_keys(inputs, ["s"], f"{where}: inputs")
    lengths = _check_ragged(inputs["s"], None, cfg.seq_len, cfg.in_width, f"{where}: inputs.s")
    if expected is not None:
        check_keys(expected, ["p"], f"{where}: expected")
        _check_ragged(expected["p"], lengths, cfg.seq_len, cfg.prob_width + 1, f"{where}: expected.p")


# ---- score (DAMF head) --------------------------------------------------------------------

def score_problems(inputs):
    """The ``(p, q)`` problems of a ``score`` vector file, in order."""
    out, i, k = [], 0, 0
    for lq, lk in inputs["lengths"]:
        out.append((inputs["p"][i:i + lq], inputs["q"][k:k + lk]))
        i, k = i + lq, k + lk
    return out


def _score_generate(cfg, rng, count):
    lo, hi = cfg.pq_range
    edges = [[hi] * cfg.rank, [lo] * cfg.rank, [0] * cfg.rank]
    lengths, p, q = [], [], []
    for j in range(max(1, -(-count // cfg.seq_len))):
        lk = cfg.seq_len if j == 0 else int(rng.integers(1, cfg.seq_len + 1))
        lq = cfg.seq_len
        pj = rng.integers(lo, hi, (lq, cfg.rank), endpoint=True).tolist()
        qj = rng.integers(lo, hi, (lk, cfg.rank), endpoint=True).tolist()
        if j == 0:  # every edge query against every edge key
            pj[:len(edges)] = edges[:lq]
            qj[:len(edges)] = edges[:lk]
        lengths.append([lq, lk])
        p += pj
        q += qj
    return {"lengths": lengths, "p": p, "q": q}


def _score_expected(cfg, inputs):
    return {"a": [row for p, q in score_problems(inputs) for row in score_matrix(cfg, p, q).tolist()]}


def _score_check(cfg, inputs, expected, where):
    check_keys(inputs, ["lengths", "p", "q"], f"{where}: inputs")
    lengths = inputs["lengths"]
    check_matrix(lengths, None, 2, 32, f"{where}: inputs.lengths")
    for j, (lq, lk) in enumerate(lengths):
        if lq < 1 or not 1 <= lk <= cfg.seq_len:
            raise VectorFileError(f"{where}: inputs.lengths[{j}] must be [Lq >= 1, 1 <= Lk <= {cfg.seq_len}], "
                                  f"not {[lq, lk]}")
    check_matrix(inputs["p"], sum(lq for lq, _ in lengths), cfg.rank, cfg.pq_width, f"{where}: inputs.p")
    check_matrix(inputs["q"], sum(lk for _, lk in lengths), cfg.rank, cfg.pq_width, f"{where}: inputs.q")
    if expected is not None:
        check_keys(expected, ["a"], f"{where}: expected")
        a = expected["a"]
        rows = [lk for lq, lk in lengths for _ in range(lq)]
        if not isinstance(a, list) or len(a) != len(rows):
            raise VectorFileError(f"{where}: expected.a must hold {len(rows)} rows")
        for r, lk in enumerate(rows):
            check_matrix([a[r]], 1, lk, cfg.score_width, f"{where}: expected.a[{r}]")


# ---- row-stats (DAMF head) ----------------------------------------------------------------

def row_stats_edge_rows(cfg, length):
    """Rows for the open cases of numerics.md section 9, ``length`` scores each."""
    lo, hi = cfg.score_range
    rows = [[-3] * length, [0] * length, [5] * length, [-1 - (n % 3) for n in range(length)],
            [1] + [-5] * (length - 1), [6, -8] + [2] * (length - 2), [hi] * length, [lo] * length,
            [hi] + [lo] * (length - 1), [lo] + [hi] * (length - 1), [1] * length]
    return [r[:length] for r in rows]


def _row_stats_generate(cfg, rng, count):
    lo, hi = cfg.score_range
    rows = row_stats_edge_rows(cfg, cfg.seq_len) + row_stats_edge_rows(cfg, max(1, cfg.seq_len - 1))
    for j in range(count):
        length = int(rng.integers(1, cfg.seq_len + 1))
        scale = [hi, 1000, 20][j % 3]
        rows.append(rng.integers(max(lo, -scale), min(hi, scale), length, endpoint=True).tolist())
    return {"rows": rows}


def _row_stats_expected(cfg, inputs):
    out = []
    for row in inputs["rows"]:
        r = row_stats.row_setup(cfg, [row])
        out.append([int(r[k][0]) for k in row_stats.fields(cfg)])
    return {"setup": out}


def _row_stats_check(cfg, inputs, expected, where):
    check_keys(inputs, ["rows"], f"{where}: inputs")
    rows = inputs["rows"]
    if not isinstance(rows, list) or not rows:
        raise VectorFileError(f"{where}: inputs.rows must be a non-empty list of rows")
    for r, row in enumerate(rows):
        if not isinstance(row, list) or not 1 <= len(row) <= cfg.seq_len:
            raise VectorFileError(f"{where}: inputs.rows[{r}] must hold 1..{cfg.seq_len} scores")
        check_matrix([row], 1, len(row), cfg.score_width, f"{where}: inputs.rows[{r}]")
    if expected is not None:
        check_keys(expected, ["setup"], f"{where}: expected")
        check_matrix(expected["setup"], len(rows), len(row_stats.fields(cfg)), 64, f"{where}: expected.setup")


# ---- shift-accumulate (DAMF head) ---------------------------------------------------------

def shift_accumulate_rows(cfg, inputs):
    """The ``(V, sign, shift, c_shift, sh)`` rows of a ``shift-accumulate`` vector file
    (``c_shift`` is ``None`` in base2)."""
    out, k = [], 0
    for row in inputs["rows"]:
        n, c_shift, sh = row if cfg.has_sv else (row[0], None, row[1])
        keys = inputs["keys"][k:k + n]
        k += n
        out.append(([key[:cfg.d_head] for key in keys], [key[cfg.d_head] for key in keys],
                    [key[cfg.d_head + 1] for key in keys], c_shift, sh))
    return out


def _shift_accumulate_generate(cfg, rng, count):
    F = cfg.weight_frac
    (vlo, vhi), (slo, shi) = cfg.v_range, cfg.shift_range
    sign_lo = -1 if cfg.has_sv else 0      # base2 weights are never negative
    rows, keys = [], []
    for j in range(count + 4):
        n = cfg.seq_len if j < 4 else int(rng.integers(1, cfg.seq_len + 1))
        edge = [[vhi, 1, F], [vlo, 1, F], [vhi, -1, F], [vlo, -1, 0]][j] if j < 4 else None
        if edge and not cfg.has_sv:
            edge[1] = 1 if j < 2 else 0
        for _ in range(n):
            if edge:
                keys.append([edge[0]] * cfg.d_head + edge[1:])
            else:
                keys.append(rng.integers(vlo, vhi, cfg.d_head, endpoint=True).tolist()
                            + [int(rng.integers(sign_lo, 1, endpoint=True)), int(rng.integers(0, F, endpoint=True))])
        if cfg.has_sv:
            clo = cfg.c_shift_range[0]
            c_shift = [F, 0, -1, clo][j] if j < 4 else int(rng.integers(clo, F, endpoint=True))
        sh = [slo, shi, -1, F - cfg.out_frac][j] if j < 4 else int(rng.integers(max(slo, -3), min(shi, F + 4),
                                                                               endpoint=True))
        rows.append([n, c_shift, sh] if cfg.has_sv else [n, sh])
    return {"rows": rows, "keys": keys}


def _shift_accumulate_expected(cfg, inputs):
    return {"z": [shift_accumulate_row(cfg, *row) for row in shift_accumulate_rows(cfg, inputs)]}


def _shift_accumulate_check(cfg, inputs, expected, where):
    check_keys(inputs, ["rows", "keys"], f"{where}: inputs")
    rows = inputs["rows"]
    check_matrix(rows, None, 3 if cfg.has_sv else 2, 32, f"{where}: inputs.rows")
    for r, row in enumerate(rows):
        n, c_shift, sh = row if cfg.has_sv else (row[0], None, row[1])
        ok_c = c_shift is None or cfg.c_shift_range[0] <= c_shift <= cfg.c_shift_range[1]
        if not (1 <= n <= cfg.seq_len and ok_c and cfg.shift_range[0] <= sh <= cfg.shift_range[1]):
            if cfg.has_sv:
                raise VectorFileError(f"{where}: inputs.rows[{r}] must be [N in 1..{cfg.seq_len}, t_C in "
                                      f"{list(cfg.c_shift_range)}, sh in {list(cfg.shift_range)}], not {row}")
            raise VectorFileError(f"{where}: inputs.rows[{r}] must be [N in 1..{cfg.seq_len}, "
                                  f"sh in {list(cfg.shift_range)}] (mode base2), not {row}")
    keys = inputs["keys"]
    signs = (-1, 0, 1) if cfg.has_sv else (0, 1)
    check_matrix(keys, sum(r[0] for r in rows), cfg.d_head + 2, max(cfg.v_width, 8), f"{where}: inputs.keys")
    for i, key in enumerate(keys):
        if not (all(cfg.v_range[0] <= x <= cfg.v_range[1] for x in key[:cfg.d_head])
                and key[cfg.d_head] in signs and 0 <= key[cfg.d_head + 1] <= cfg.weight_frac):
            raise VectorFileError(f"{where}: inputs.keys[{i}] must be V_n ({cfg.v_width}-bit), sign in "
                                  f"{signs[0]}..1 and shift in 0..{cfg.weight_frac}, not {key}")
    if expected is not None:
        check_keys(expected, ["z"], f"{where}: expected")
        check_matrix(expected["z"], len(rows), cfg.d_head, cfg.out_width, f"{where}: expected.z")


# ---- systolic-av --------------------------------------------------------------------------

def av_edge_problems(cfg):
    """``(a, v)`` pairs: A' all-max / all-min / zeros / one-hot rows against every edge V column."""
    alo, ahi = int_range(cfg.q_width)
    L = cfg.seq_len
    a_rows = edge_rows(cfg.q_width, L) + [[ahi if c == r % L else 0 for c in range(L)] for r in range(L)]
    v_cols = edge_rows(cfg.k_width, L)
    out = []
    for start in range(0, len(a_rows), L):
        a = [a_rows[(start + i) % len(a_rows)] for i in range(L)]
        for b in range(len(v_cols)):
            v = [[v_cols[(b + c) % len(v_cols)][t] for c in range(cfg.d_head)] for t in range(L)]
            out.append((a, v))
    return out


def random_av(cfg, rng):
    """One random ``(a, v)``: ``a`` is ``seq_len x seq_len``, ``v`` is ``seq_len x d_head``."""
    (alo, ahi), (vlo, vhi) = int_range(cfg.q_width), int_range(cfg.k_width)
    return (rng.integers(alo, ahi, (cfg.seq_len, cfg.seq_len), endpoint=True).tolist(),
            rng.integers(vlo, vhi, (cfg.seq_len, cfg.d_head), endpoint=True).tolist())


def av_problems(cfg, inputs):
    a, v, length = inputs["a"], inputs["v"], cfg.seq_len
    return [(a[i:i + length], v[i:i + length]) for i in range(0, len(a), length)]


def _systolic_av_generate(cfg, rng, count):
    problems = av_edge_problems(cfg) + [random_av(cfg, rng) for _ in range(-(-count // cfg.seq_len))]
    return {"a": [row for a, _ in problems for row in a], "v": [row for _, v in problems for row in v]}


def _systolic_av_expected(cfg, inputs):
    return {"z": [row for a, v in av_problems(cfg, inputs) for row in av_product(cfg, a, v).tolist()]}


def _systolic_av_check(cfg, inputs, expected, where):
    check_keys(inputs, ["a", "v"], f"{where}: inputs")
    n = check_matrix(inputs["a"], None, cfg.seq_len, cfg.q_width, f"{where}: inputs.a")
    if n == 0 or n % cfg.seq_len:
        raise VectorFileError(f"{where}: inputs.a must hold a positive multiple of seq_len = {cfg.seq_len} rows, "
                              f"not {n}")
    check_matrix(inputs["v"], n, cfg.d_head, cfg.k_width, f"{where}: inputs.v")
    if expected is not None:
        check_keys(expected, ["z"], f"{where}: expected")
        check_matrix(expected["z"], n, cfg.d_head, cfg.acc_width, f"{where}: expected.z")


# ---- baseline-head ------------------------------------------------------------------------

def head_edge_problems(cfg):
    """``(q, k, v)`` heads: the ``systolic-qk`` edge pairs of ``Q`` and ``K`` (all-max, all-min,
    zeros, alternating: equal scores, ties, extreme scores) with edge rows of ``V``."""
    v_edges = edge_rows(cfg.v_width, cfg.d_head)
    return [(q, k, [v_edges[(n + t) % len(v_edges)] for t in range(cfg.seq_len)])
            for n, (q, k) in enumerate(qk_edge_problems(cfg.qk))]


def random_head(cfg, rng):
    """One random ``(q, k, v)``, each ``seq_len x d_head``; ``Q`` and ``K`` use a random number
    of their bits, so the probability rows range from flat to one-hot."""
    shape = (cfg.seq_len, cfg.d_head)
    out = []
    for width in (cfg.q_width, cfg.k_width):
        bits = int(rng.integers(1, width, endpoint=True))
        out.append(rng.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1, shape, endpoint=True).tolist())
    vlo, vhi = int_range(cfg.v_width)
    out.append(rng.integers(vlo, vhi, shape, endpoint=True).tolist())
    return tuple(out)


def head_problems(cfg, inputs):
    """The stacked heads of a ``baseline-head`` vector file as ``(q, k, v)`` triples."""
    length = cfg.seq_len
    return [tuple(inputs[name][i:i + length] for name in ("q", "k", "v"))
            for i in range(0, len(inputs["q"]), length)]


def _baseline_head_generate(cfg, rng, count):
    problems = head_edge_problems(cfg) + [random_head(cfg, rng) for _ in range(-(-count // cfg.seq_len))]
    return {name: [row for p in problems for row in p[i]] for i, name in enumerate(("q", "k", "v"))}


def _baseline_head_expected(cfg, inputs):
    return {"z": [row for q, k, v in head_problems(cfg, inputs) for row in baseline_head.head(cfg, q, k, v).tolist()]}


def _baseline_head_check(cfg, inputs, expected, where):
    check_keys(inputs, ["q", "k", "v"], f"{where}: inputs")
    n = check_matrix(inputs["q"], None, cfg.d_head, cfg.q_width, f"{where}: inputs.q")
    if n == 0 or n % cfg.seq_len:
        raise VectorFileError(f"{where}: inputs.q must hold a positive multiple of seq_len = {cfg.seq_len} rows, "
                              f"not {n}")
    check_matrix(inputs["k"], n, cfg.d_head, cfg.k_width, f"{where}: inputs.k")
    check_matrix(inputs["v"], n, cfg.d_head, cfg.v_width, f"{where}: inputs.v")
    if expected is not None:
        check_keys(expected, ["z"], f"{where}: expected")
        check_matrix(expected["z"], n, cfg.d_head, cfg.out_width, f"{where}: expected.z")


# ---- each block's VectorSpec (damf/blocks.py: its registry entry names it) -----------------

INNER_PRODUCT = VectorSpec(model=inner_product, generate=_inner_product_generate, expected=_inner_product_expected,
                           check=_inner_product_check)
SYSTOLIC_QK = VectorSpec(model=systolic_qk_scores, generate=_systolic_qk_generate, expected=_systolic_qk_expected,
                         check=_systolic_qk_check)
SCORE = VectorSpec(model=score_matrix, generate=_score_generate, expected=_score_expected, check=_score_check)
ROW_STATS = VectorSpec(model=row_stats.row_setup, generate=_row_stats_generate, expected=_row_stats_expected,
                       check=_row_stats_check)
SHIFT_ACCUMULATE = VectorSpec(model=shift_accumulate_row, generate=_shift_accumulate_generate,
                              expected=_shift_accumulate_expected, check=_shift_accumulate_check)
DAMF_HEAD = damf_head_block.VECTORS
SOFTMAX = VectorSpec(model=softmax_rows, generate=_softmax_generate, expected=_softmax_expected, check=_softmax_check)
SYSTOLIC_AV = VectorSpec(model=av_product, generate=_systolic_av_generate, expected=_systolic_av_expected,
                         check=_systolic_av_check)
BASELINE_HEAD = VectorSpec(model=baseline_head.head, generate=_baseline_head_generate,
                           expected=_baseline_head_expected, check=_baseline_head_check)


# ---- generic ------------------------------------------------------------------------------



def generate(cfg, spec, *, seed, count):
    """A vector-file document for ``cfg``: edge inputs plus ``count`` random ones, by the
    block's :class:`VectorSpec` ``spec``."""
    rng = np.random.default_rng(seed)
    inputs = spec.generate(cfg, rng, count)
    return {
        "format": FORMAT,
        "block": cfg.block,
        "config": cfg.to_dict(),
        "seed": seed,
        "count": count,
        "inputs": inputs,
        "expected": spec.expected(cfg, inputs),
    }


def dumps(doc):
    """Deterministic JSON text: sorted keys, one row of numbers per line."""
    def emit(value, indent):
        pad = " " * indent
        if isinstance(value, dict):
            items = [f'{pad} {json.dumps(k)}: {emit(value[k], indent + 1).lstrip()}' for k in sorted(value)]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value and isinstance(value[0], list):
            rows = [pad + " " + json.dumps(row, separators=(",", ":")) for row in value]
            return pad + "[\n" + ",\n".join(rows) + "\n" + pad + "]"
        return pad + json.dumps(value, separators=(",", ":"))
    return emit(doc, 0) + "\n"


def read(path, *, block=None):
    """Read a vector file and check its envelope: ``(doc, where)``, ``where`` naming the file
    for messages.  The block's own rules come after, with its configuration (:func:`check`);
    ``damf.blocks.load_vectors`` does both, finding the block in the registry."""
    path = Path(path)
    where = f"vector file '{path}'"
    try:
        doc = loads(read_text(path, "vector file"), where)
    except ConfigError as e:
        raise VectorFileError(str(e)) from None
    check_keys(doc, ["format", "block", "config", "inputs", "expected"], where)
    if doc["format"] != FORMAT:
        raise VectorFileError(f"{where} must have format '{FORMAT}', not {doc['format']!r}")
    if not isinstance(doc["block"], str):
        raise VectorFileError(f"{where}: 'block' must be a block name (a string), not {type(doc['block']).__name__}")
    if block is not None and doc["block"] != block:
        raise VectorFileError(f"{where} holds vectors for block '{doc['block']}', not '{block}'")
    return doc, where


def check(doc, cfg, spec, where):
    """The rules of ``doc`` (from :func:`read`) for its block, whose configuration ``cfg`` is
    read from ``doc["config"]`` and whose :class:`VectorSpec` is ``spec``: the block's own
    checks of every row, results present, then the JSON Schema."""
    spec.check(cfg, doc["inputs"], doc["expected"], where)
    if not isinstance(doc["expected"], dict):
        raise VectorFileError(f"{where}: 'expected' must be a JSON object, not {type(doc['expected']).__name__}")
    if not any(doc["expected"].values()):
        raise VectorFileError(f"{where} holds no vectors: its 'expected' results are empty")
    try:
        check_schema(schema_view(doc), "vectors", where)
    except ConfigError as e:
        raise VectorFileError(str(e)) from None


#: rows of each ``inputs`` / ``expected`` list the loader's schema check sees (see schema_view)
SCHEMA_ROWS = 16


def schema_view(doc):
    """``doc`` with every ``inputs`` / ``expected`` list cut to its first :data:`SCHEMA_ROWS`
    rows, for the schema check of :func:`check`: the schema validator takes about 2 s per MiB,
    and every row has already been checked (length and range of every value) by the block's own
    rules; the rest of the document (envelope, members, types) is checked in full."""
    view = dict(doc)
    for part in ("inputs", "expected"):
        if isinstance(doc.get(part), dict):
            view[part] = {k: v[:SCHEMA_ROWS] if isinstance(v, list) else v for k, v in doc[part].items()}
    return view


def compare(expected, got, *, limit=10):
    """Compare per-output lists.  Returns ``(matches, total, [(index, name, expected, got), ...])``.

    ``expected`` and ``got`` map output names to lists of rows (one row per result).  A result
    counts as a match when every output agrees at that index; missing results are mismatches.
    """
    names = sorted(expected)
    total = len(expected[names[0]])
    matches, first = 0, []
    for i in range(total):
        bad = [(name, expected[name][i], got.get(name, [])[i] if i < len(got.get(name, [])) else None)
               for name in names
               if i >= len(got.get(name, [])) or got[name][i] != expected[name][i]]
        if not bad:
            matches += 1
        elif len(first) < limit:
            first.extend((i, name, e, g) for name, e, g in bad)
    return matches, total, first[:limit]
