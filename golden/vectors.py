"""Golden vector files: inputs and expected outputs of a block, as JSON.

Format ``damf-vectors/1`` (one JSON object)::

    {
     "format": "damf-vectors/1",
     "block": "inner-product",          # a block name of `damf --help`
     "config": {...},                   # the block's configuration (as in BLOCK.json)
     "seed": 1,                         # seed the random inputs were drawn from (informative)
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

Files are written deterministically (sorted keys, one row per line), so regenerating from the
same seed gives byte-identical files.
"""

import json
from pathlib import Path

import numpy as np

from ..config import ConfigError
from .inner_product import inner_product
from .systolic_qk import scores as systolic_qk_scores
from .quant import int_range

__all__ = ["FORMAT", "VectorFileError", "generate", "dumps", "load", "compare", "edge_tokens"]

FORMAT = "damf-vectors/1"


class VectorFileError(ConfigError):
    """A vector file is malformed or does not fit its block."""


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
    _check_keys(inputs, need, f"{where}: inputs")
    n = _check_matrix(inputs["x"], None, cfg.d_model, cfg.x_width, f"{where}: inputs.x")
    if cfg.weights == "runtime":
        _check_matrix(inputs["u"], cfg.rank, cfg.d_model, cfg.w_width, f"{where}: inputs.u")
        _check_matrix(inputs["v"], cfg.rank, cfg.d_model, cfg.w_width, f"{where}: inputs.v")
    if expected is not None:
        _check_keys(expected, ["p", "q"], f"{where}: expected")
        for name in ("p", "q"):
            _check_matrix(expected[name], n, cfg.rank, cfg.out_width, f"{where}: expected.{name}")



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
    _check_keys(inputs, ["q", "k"], f"{where}: inputs")
    n = _check_matrix(inputs["q"], None, cfg.d_head, cfg.q_width, f"{where}: inputs.q")
    if n == 0 or n % cfg.seq_len:
        raise VectorFileError(f"{where}: inputs.q must hold a positive multiple of seq_len = {cfg.seq_len} rows, "
                              f"not {n}")
    _check_matrix(inputs["k"], n, cfg.d_head, cfg.k_width, f"{where}: inputs.k")
    if expected is not None:
        _check_keys(expected, ["s"], f"{where}: expected")
        _check_matrix(expected["s"], n, cfg.seq_len, cfg.acc_width, f"{where}: expected.s")


BLOCK_VECTORS = {
    "inner-product": (_inner_product_generate, _inner_product_expected, _inner_product_check),
    "systolic-qk": (_systolic_qk_generate, _systolic_qk_expected, _systolic_qk_check),
}


# ---- generic ------------------------------------------------------------------------------

def _check_keys(obj, keys, where):
    if not isinstance(obj, dict):
        raise VectorFileError(f"{where} must be a JSON object, not {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise VectorFileError(f"{where} must have a '{key}' member; it has: {', '.join(obj) or 'none'}")


def _check_matrix(rows, n_rows, n_cols, width, where):
    lo, hi = int_range(width)
    if not isinstance(rows, list):
        raise VectorFileError(f"{where} must be a list of lists, not {type(rows).__name__}")
    if n_rows is not None and len(rows) != n_rows:
        raise VectorFileError(f"{where} must hold {n_rows} rows, not {len(rows)}")
    for r, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n_cols:
            given = len(row) if isinstance(row, list) else type(row).__name__
            raise VectorFileError(f"{where}[{r}] must hold {n_cols} integers, not {given}")
        for c, value in enumerate(row):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise VectorFileError(
                    f"{where}[{r}][{c}] must be an integer in [{lo}, {hi}], not {value!r}")
    return len(rows)


def generate(cfg, *, seed, count):
    """A vector-file document for ``cfg``: edge inputs plus ``count`` random ones."""
    gen, expect, _ = BLOCK_VECTORS[cfg.block]
    rng = np.random.default_rng(seed)
    inputs = gen(cfg, rng, count)
    return {
        "format": FORMAT,
        "block": cfg.block,
        "config": cfg.to_dict(),
        "seed": seed,
        "inputs": inputs,
        "expected": expect(cfg, inputs),
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


def load(path, *, block=None):
    """Read and validate a vector file.  Returns ``(cfg, inputs, expected)``."""
    from ..blocks import get_block
    path = Path(path)
    where = f"vector file '{path}'"
    try:
        text = path.read_text()
    except OSError as e:
        raise VectorFileError(f"cannot read {where}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise VectorFileError(f"{where} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    _check_keys(doc, ["format", "block", "config", "inputs", "expected"], where)
    if doc["format"] != FORMAT:
        raise VectorFileError(f"{where} must have format '{FORMAT}', not {doc['format']!r}")
    if block is not None and doc["block"] != block:
        raise VectorFileError(f"{where} holds vectors for block '{doc['block']}', not '{block}'")
    try:
        info = get_block(doc["block"])
    except ConfigError as e:
        raise VectorFileError(f"{where}: {e}") from None
    try:
        cfg = info.config_cls.from_dict(doc["config"])
    except ConfigError as e:
        raise VectorFileError(f"{where}: config: {e}") from None
    BLOCK_VECTORS[cfg.block][2](cfg, doc["inputs"], doc["expected"], where)
    return cfg, doc["inputs"], doc["expected"]


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
