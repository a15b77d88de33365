"""Generator configurations: one frozen, validated object per generator.

Every block generator takes exactly one configuration object.  The same object
feeds the RTL generator (``damf.hdl``), the bit-exact golden model
(``damf.golden``) and the cocotb testbenches (``damf.sim``), and is written as
JSON next to every generated Verilog file, so software and hardware cannot
drift apart on a width or a rounding rule.

A configuration is built from, in increasing priority:

1. a named preset (a :class:`Preset` of :data:`PRESETS`), of which each generator
   takes the keys it knows;
2. a JSON file (either a flat ``{"key": value}`` object, or the ``BLOCK.json``
   written by ``damf generate``, whose ``"config"`` member is used);
3. ``key=value`` overrides from the command line.

All validation happens in :meth:`BlockConfig.__post_init__`; invalid values raise
:class:`ConfigError` with a message naming what was expected and what was given.
"""

import dataclasses
import json
import types
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigError", "Preset", "PRESETS", "DEFAULT", "BERT_BASE", "get_preset", "BlockConfig",
    "MAX_DERIVED_WIDTH", "signed_range_width", "product_range", "check_vectors",
]

from .. import __version__
from ..errors import ConfigError
from ..files import loads as _loads, read_text as _read_text
from ..validate import check as _check_schema


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A named model shape; each generator takes the keys of :meth:`values` it knows."""

    name: str
    description: str
    d_model: int
    n_heads: int
    d_head: int
    seq_len: int
    rank: int
    lanes: int
    x_width: int
    w_width: int
    #: further keys that some generators take (``q_width``, ``rows``, ``parallel``, ...)
    extra: dict = dataclasses.field(default_factory=dict)

    def values(self):
        """``{key: value}`` of the shape: every field but ``name``, ``description`` and
        ``extra``, then the keys of ``extra``."""
        shape = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name not in ("name", "description", "extra")}
        return {**shape, **self.extra}


#: small and fast to simulate
DEFAULT = Preset(name="default", description="small and fast to simulate",
                 d_model=16, n_heads=2, d_head=8, seq_len=8, rank=1, lanes=4, x_width=8, w_width=8)
#: BERT-base attention (Devlin et al. 2019: d_model 768, 12 heads of 64) at the sequence
#: length of the DAMF paper's Table II (L = 128)
BERT_BASE = Preset(name="bert-base", description="BERT-base attention at the DAMF paper's L = 128",
                   d_model=768, n_heads=12, d_head=64, seq_len=128, rank=1, lanes=16, x_width=8, w_width=8)

#: the presets by name
PRESETS = {preset.name: preset for preset in (DEFAULT, BERT_BASE)}


def get_preset(name):
    """The :class:`Preset` called ``name``; :class:`ConfigError` naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown preset '{name}'; expected one of: {', '.join(PRESETS)}") from None


# Integer arithmetic in the golden model is done in int64; every derived width
# is checked against this bound so the model stays exact.
MAX_DERIVED_WIDTH = 62


def signed_range_width(lo, hi):
    """Smallest two's complement width holding every integer in ``[lo, hi]``."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


def product_range(a_width, b_width):
    """Exact ``(min, max)`` of the product of two signed integers of these widths."""
    a = (-(1 << (a_width - 1)), (1 << (a_width - 1)) - 1)
    b = (-(1 << (b_width - 1)), (1 << (b_width - 1)) - 1)
    corners = [x * y for x in a for y in b]
    return min(corners), max(corners)


def _is_matrix(f):
    """Whether field ``f`` is a ``tuple | None`` matrix (read from JSON lists of lists)."""
    return isinstance(f.type, types.UnionType) and tuple in f.type.__args__


def describe_value(value):
    return repr(value) if not isinstance(value, str) else f"'{value}'"


@dataclass(frozen=True)
class BlockConfig:
    """Base class of generator configurations.

    Subclasses are frozen dataclasses with typed fields (``int``, ``str``, ``bool``, or
    ``tuple | None`` for a matrix given as a JSON list of lists), checked on construction;
    each field carries ``metadata["doc"]`` (shown by ``damf generate BLOCK --help``) and,
    where it applies, ``min``, ``max`` or ``choices``.  Subclasses implement
    :meth:`_validate` and :meth:`derived`.
    """

    block = None  # the block name, e.g. "inner-product"

    def __repr__(self):
        """``Name(field=value, ...)`` of the fields that differ from their defaults, in
        declaration order (the subclasses are declared with ``repr=False`` to use it), so two
        configurations that print alike are equal."""
        changed = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                            if f.default is dataclasses.MISSING or getattr(self, f.name) != f.default)
        return f"{type(self).__name__}({changed})"

    # ---- construction ---------------------------------------------------------------------

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type is int and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError(f"{f.name} must be an integer, not {describe_value(value)}")
            if f.type is str and not isinstance(value, str):
                raise ConfigError(f"{f.name} must be a string, not {describe_value(value)}")
            if f.type is bool and not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be true or false, not {describe_value(value)}")
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ConfigError(f"{f.name} must be one of {', '.join(choices)}, not {describe_value(value)}")
            minimum = f.metadata.get("min")
            if minimum is not None and value < minimum:
                raise ConfigError(f"{f.name} must be at least {minimum}, not {value}")
            maximum = f.metadata.get("max")
            if maximum is not None and value > maximum:
                raise ConfigError(f"{f.name} must be at most {maximum}, not {value}")
        self._validate()

    def _validate(self):
        pass

    @classmethod
    def keys(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def _field(cls, name):
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f
        raise ConfigError(
            f"unknown key '{name}' for {cls.block}; expected one of: {', '.join(cls.keys())}")

    @classmethod
    def from_preset(cls, name="default"):
        known = set(cls.keys())
        return cls(**{k: v for k, v in get_preset(name).values().items() if k in known})

    @classmethod
    def from_dict(cls, values, *, base=None):
        """Build from a mapping of keys to (JSON) values, on top of ``base``."""
        if not isinstance(values, dict):
            raise ConfigError(f"a configuration must be a JSON object, not {type(values).__name__}")
        for key in values:
            cls._field(key)  # rejects unknown keys
        values = {k: cls._from_json_value(k, v) for k, v in values.items()}
        if base is None:
            return cls(**values)
        return dataclasses.replace(base, **values)

    @classmethod
    def _from_json_value(cls, key, value):
        f = cls._field(key)
        if _is_matrix(f) and isinstance(value, list):
            return tuple(tuple(row) if isinstance(row, list) else row for row in value)
        return value

    @classmethod
    def from_file(cls, path, *, base=None):
        path = Path(path)
        values = _loads(_read_text(path, "config file"), f"config file '{path}'")
        if isinstance(values, dict) and "config" in values and isinstance(values["config"], dict):
            if values.get("block", cls.block) != cls.block:
                raise ConfigError(
                    f"config file '{path}' is for block '{values['block']}', not '{cls.block}'")
            # a BLOCK.json: the whole document must be one (docs/schemas/block.schema.json)
            _check_schema(values, "block", f"config file '{path}'")
            values = values["config"]
        return cls.from_dict(values, base=base)

    @classmethod
    def parse_assignment(cls, text):
        """Parse one command-line ``key=value`` into ``(key, value)``."""
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, not '{text}'")
        f = cls._field(key)
        raw = raw.strip()
        if f.type is int:
            try:
                return key, int(raw, 0)
            except ValueError:
                raise ConfigError(f"{key} must be an integer, not '{raw}'") from None
        if f.type is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return key, True
            if raw.lower() in ("0", "false", "no", "off"):
                return key, False
            raise ConfigError(f"{key} must be true or false, not '{raw}'")
        if f.type is str:
            return key, raw
        try:
            return key, cls._from_json_value(key, json.loads(raw))
        except (json.JSONDecodeError, RecursionError):
            raise ConfigError(f"{key} must be a JSON value, not '{raw[:40]}{'...' if len(raw) > 40 else ''}'") from None

    @classmethod
    def build(cls, *, preset="default", config_file=None, assignments=()):
        """Preset, then file, then ``key=value`` assignments."""
        cfg = cls.from_preset(preset)
        if config_file is not None:
            cfg = cls.from_file(config_file, base=cfg)
        overrides = dict(cls.parse_assignment(a) for a in assignments)
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        return cfg

    # ---- description ----------------------------------------------------------------------

    def derived(self):
        """Derived quantities (widths, latency, ...) as a JSON-able dict."""
        return {}

    def to_dict(self):
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(row) if isinstance(row, tuple) else row for row in value]
            out[f.name] = value
        return out

    def to_json(self):
        """The ``BLOCK.json`` written next to the Verilog: block, config and derived values."""
        doc = {
            "block": self.block,
            "generator": f"damf {__version__}",
            "config": self.to_dict(),
            "derived": self.derived(),
        }
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def check_vectors(name, vectors, *, rows, cols, width, what="one per rank"):
    if not isinstance(vectors, tuple) or len(vectors) != rows:
        raise ConfigError(f"{name} must be a list of {rows} vectors ({what}), not {describe_value(vectors)}"
                          if not isinstance(vectors, tuple) else
                          f"{name} must hold {rows} vectors ({what}), not {len(vectors)}")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    for k, row in enumerate(vectors):
        if not isinstance(row, tuple) or len(row) != cols:
            given = len(row) if isinstance(row, tuple) else describe_value(row)
            raise ConfigError(f"{name}[{k}] must hold d_model = {cols} integers, not {given}")
        for i, value in enumerate(row):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(
                    f"{name}[{k}][{i}] must be an integer in [{lo}, {hi}] (w_width = {width}), "
                    f"not {describe_value(value)}")
