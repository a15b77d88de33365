"""The parts of the vector-file format (``golden/vectors.py``) that the blocks' own vector
functions share: :class:`VectorSpec` (what a block provides), and the checks that a member is
there, a matrix has its shape and every value fits its width."""

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from .quant import int_range

__all__ = ["VectorSpec", "VectorFileError", "check_keys", "check_matrix"]


@dataclass(frozen=True, kw_only=True)
class VectorSpec:
    """A block's golden model and its vector files (``golden/vectors.py``): ``model`` is the
    bit-exact model, ``generate(cfg, rng, count)`` the ``inputs`` member (edge inputs, then
    ``count`` random ones), ``expected(cfg, inputs)`` the ``expected`` member (``model`` on the
    inputs) and ``check(cfg, inputs, expected, where)`` the block's own rules on a file's
    members (``expected`` may be ``None``), raising :class:`VectorFileError`."""

    model: Callable
    generate: Callable
    expected: Callable
    check: Callable


class VectorFileError(ConfigError):
    """A vector file is malformed or does not fit its block."""


def check_keys(obj, keys, where):
    if not isinstance(obj, dict):
        raise VectorFileError(f"{where} must be a JSON object, not {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise VectorFileError(f"{where} must have a '{key}' member; it has: {', '.join(obj) or 'none'}")


def check_matrix(rows, n_rows, n_cols, width, where):
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
