"""The block registry: one entry per block holds everything the tools need to know about it.

A :class:`Block` names the block's configuration class, its Amaranth component, its golden
model with its vector files (:class:`~damf.golden.vector_checks.VectorSpec`), its cocotb
testbench, its cycle figures (the configuration's cycle model, written into ``BLOCK.json``),
its size models, its formal harness, the variants linted beside each preset, and its part in
the DAMF / baseline comparison of ``damf synth``.  The command line, the vector files, lint,
synth, compare, bench, soak, formal and the testbench runner iterate :data:`BLOCKS`; adding a block is one entry here plus its own files
(``tests/test_registry.py`` registers a toy block and checks that every command sees it).

The registry imports no Amaranth: a vector file or a golden model is used without it, and a
block's component class is imported when it is first built (:meth:`Block.build`).
"""

import importlib
import re
from dataclasses import dataclass, field
from typing import Callable

from . import block_sizes as sizes
from .config import (BaselineHeadConfig, ConfigError, DamfHeadBlockConfig, InnerProductConfig, RowStatsConfig,
                     ScoreConfig, ShiftAccumulateConfig, SoftmaxConfig, SystolicAVConfig, SystolicQKConfig)
from .golden import vectors
from .golden.vector_checks import VectorFileError

__all__ = ["Figure", "Formal", "FORMAL_DEPTHS", "Block", "BLOCKS", "SIDES", "get_block", "comparisons", "load_vectors",
           "generate_vectors", "DEFAULT_PREFIX", "MAX_PREFIX_CHARS", "check_prefix", "module_name"]

#: the prefix of every Verilog module ``damf generate`` writes (``--prefix``)
DEFAULT_PREFIX = "damf_"
#: the longest ``--prefix`` taken (the module names stay well inside every tool's limits)
MAX_PREFIX_CHARS = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: the two sides of a comparison (:attr:`Block.role`)
SIDES = ("damf", "baseline")


@dataclass(frozen=True)
class Figure:
    """One cycle figure of a block: ``BLOCK.json``'s ``timing[key]`` is the configuration's
    ``attribute``, called with the configuration fields ``args`` when it is a method (``()``: no
    arguments; ``None``: a property).  ``meaning`` replaces the attribute's docstring where it
    has none (a plain class attribute) or only its base class's; ``when`` limits the figure to
    the configurations it holds for."""

    key: str
    attribute: str
    args: tuple | None = None
    meaning: str | None = None
    when: Callable | None = None


#: depths in cycles of the bounded formal checks (``python -m damf.formal``), unless a block's
#: :attr:`Formal.depths` says otherwise: ``data`` (and its cover) must let a whole transfer before
#: the tagged one and the tagged one complete; ``count`` must reach past the first pending unit
#: plus the liveness latency of the block's spec relations (a head's: past the head's latency)
FORMAL_DEPTHS = {"stable": 16, "count": 12, "order": 12, "data": 12}


@dataclass(frozen=True, kw_only=True)
class Formal:
    """A block's formal harness (``python -m damf.formal``, docs/formal.md).

    ``spec`` is ``"module:function"``, the spec builder (in ``hdl/formal.py``) that turns a
    configuration into the :class:`~damf.hdl.formal.Spec` of properties the harness checks;
    ``config`` the overrides of the block's default preset that make the small configuration the
    checks run at (every stream and control path, data paths of two or three bits, so that the
    solver's work is in the control); ``depths`` the depths, per check, that differ from
    :data:`FORMAL_DEPTHS` (``self.depths`` holds every check's)."""

    spec: str
    config: dict
    depths: dict = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.depths) - set(FORMAL_DEPTHS)
        if unknown:
            raise ValueError(f"Formal depths must be among {', '.join(FORMAL_DEPTHS)}, "
                             f"not {', '.join(sorted(unknown))}")
        object.__setattr__(self, "depths", {**FORMAL_DEPTHS, **self.depths})    # frozen: set once, here

    def spec_builder(self):
        """The spec builder function (``spec``)."""
        path, _, attribute = self.spec.partition(":")
        # imported on first use, not with the registry: the specs are written in Amaranth
        return getattr(importlib.import_module(path), attribute)


@dataclass(frozen=True, kw_only=True)
class Block:
    """A registered block (see the module docstring).

    ``rtl`` is ``"module:Class"``, the :class:`amaranth.lib.wiring.Component` built from one
    configuration; ``vectors`` the block's golden model and vector-file functions; ``timing``
    its cycle figures, of which ``latency`` names the one that is ``BLOCK.json``'s latency
    (``None``: the block has none, as a head that takes a whole problem before it answers);
    ``generate_terms`` and ``vector_values`` its size models (``damf/block_sizes.py``: the
    time to generate its Verilog, the integers of a vector file per ``--count``), by which
    ``damf/limits.py`` refuses sizes that could not finish; ``role`` the ``(comparison, side)``
    it is part of in ``damf synth``'s comparison (``None``: in none) and
    ``part_of(damf_head, baseline_head)`` its configuration at a head's shape; ``formal`` its
    formal harness (``None``: it has none, and ``python -m damf.formal`` passes it by)."""

    name: str
    summary: str
    config_cls: type
    rtl: str
    vectors: vectors.VectorSpec
    testbench: str
    timing: tuple
    latency: str | None = "latency"
    generate_terms: Callable
    vector_values: Callable
    role: tuple | None = None
    part_of: Callable | None = None
    variants: tuple = ({},)     # overrides linted beside each preset (structurally different RTL)
    formal: Formal | None = None

    @property
    def module(self):
        """The top module's name at the default prefix (``damf_`` + the name without ``damf-``)."""
        return module_name(self.name)

    @property
    def golden(self):
        """The bit-exact golden model (``golden/``)."""
        return self.vectors.model

    def component_class(self):
        """The block's Amaranth component class (``rtl``)."""
        path, _, attribute = self.rtl.partition(":")
        # imported on first use, not with the registry: vector files and golden models need no Amaranth
        return getattr(importlib.import_module(path), attribute)

    def build(self, cfg):
        """The block's component for configuration ``cfg``."""
        return self.component_class()(cfg)


_HDL = "damf.hdl."
_TB = "damf.sim.tb_"

BLOCKS = {block.name: block for block in (
    Block(
        name="inner-product",
        summary="singular-vector inner-product unit: streams X_m, outputs p_m = X_m.u_k and q_m = X_m.v_k",
        config_cls=InnerProductConfig,
        rtl=_HDL + "inner_product:InnerProduct",
        vectors=vectors.INNER_PRODUCT,
        testbench=_TB + "inner_product",
        generate_terms=sizes.inner_product_terms,
        vector_values=sizes.inner_product_values,
        timing=(Figure("latency", "latency", meaning="Cycles from the handshake of a token's last beat to o.valid, "
                                                     "without backpressure"),
                Figure("cycles_per_token", "beats")),
        role=("score", "damf"),
        part_of=lambda damf, base: damf.inner_product,
        variants=({}, {"weights": "fixed"}),
        formal=Formal(spec="damf.hdl.formal:inner_product_spec",
                      config={"d_model": 4, "lanes": 2, "x_width": 2, "w_width": 2}),
    ),
    Block(
        name="systolic-qk",
        summary="output-stationary systolic array: streams tiles of Q and K, outputs rows of S = Q.K^T",
        config_cls=SystolicQKConfig,
        rtl=_HDL + "systolic_qk:SystolicQK",
        vectors=vectors.SYSTOLIC_QK,
        testbench=_TB + "systolic_qk",
        generate_terms=sizes.systolic_terms,
        vector_values=sizes.systolic_values,
        timing=(Figure("latency", "latency"), Figure("cycles_per_tile", "cycles_per_tile"),
                Figure("tile_cycles", "tile_cycles"), Figure("cycles", "cycles")),
        role=("score", "baseline"),
        part_of=lambda damf, base: base.qk,
        # padding rows and columns, and i.ready held between tiles (d_head < max(rows, cols))
        variants=({}, {"rows": 3, "cols": 5, "d_head": 2}),
        formal=Formal(spec="damf.hdl.formal:systolic_spec",
                      config={"rows": 2, "cols": 2, "d_head": 1, "seq_len": 2, "q_width": 2, "k_width": 2},
                      depths={"count": 14}),
    ),
    Block(
        name="score",
        summary="DAMF scores: loads keys q_n, then streams each query's row A_mn = p_m.q_n, parallel per beat",
        config_cls=ScoreConfig,
        rtl=_HDL + "score:Score",
        vectors=vectors.SCORE,
        testbench=_TB + "score",
        generate_terms=sizes.score_terms,
        vector_values=sizes.score_values,
        timing=(Figure("latency", "latency"), Figure("cycles_per_row", "row_beats", ("seq_len",)),
                Figure("cycles", "cycles", ("seq_len", "seq_len"))),
        role=("score", "damf"),
        part_of=lambda damf, base: damf.score,
        # one score per beat, and a partial last beat (seq_len not a multiple of parallel)
        variants=({}, {"parallel": 1}, {"parallel": 3}),
        formal=Formal(spec="damf.hdl.formal:score_spec",
                      config={"seq_len": 2, "d_head": 1, "pq_width": 2, "v_width": 2, "parallel": 1},
                      depths={"count": 14}),
    ),
    Block(
        name="row-stats",
        summary="DAMF row set-up: from a score row, N, A_max, max|A|, S, normaliser C, denominator D, "
                "exponents and shifts (base2: N and A_max only)",
        config_cls=RowStatsConfig,
        rtl=_HDL + "row_stats:RowStats",
        vectors=vectors.ROW_STATS,
        testbench=_TB + "row_stats",
        generate_terms=sizes.row_stats_terms,
        vector_values=sizes.row_values,
        timing=(Figure("setup_cycles", "setup_cycles"), Figure("cycles_per_row", "row_cycles", ("seq_len",))),
        latency="setup_cycles",
        role=("axv", "damf"),
        part_of=lambda damf, base: damf.row_stats,
        variants=({}, {"mode": "maclaurin-abs"}, {"parallel": 3}, {"mode": "base2"}),
        formal=Formal(spec="damf.hdl.formal:row_stats_spec",
                      config={"seq_len": 2, "d_head": 1, "pq_width": 2, "v_width": 2, "parallel": 1},
                      depths={"count": 14}),
    ),
    Block(
        name="shift-accumulate",
        summary="DAMF A'xV without multipliers: parallel keys per beat, acc += sign (V_n << t_n) by adder trees; "
                "shared end-of-row units add SV << t_C, round and saturate Z_m (base2: no SV term)",
        config_cls=ShiftAccumulateConfig,
        rtl=_HDL + "shift_accumulate:ShiftAccumulate",
        vectors=vectors.SHIFT_ACCUMULATE,
        testbench=_TB + "shift_accumulate",
        generate_terms=sizes.shift_accumulate_terms,
        vector_values=sizes.shift_accumulate_values,
        timing=(Figure("latency", "latency"), Figure("round_cycles", "round_cycles")),
        role=("axv", "damf"),
        part_of=lambda damf, base: damf.shift_accumulate,
        # one key per beat; an odd tree and one end-of-row unit per lane
        variants=({}, {"mode": "base2"}, {"parallel": 1}, {"parallel": 3, "round_lanes": 3}),
        formal=Formal(spec="damf.hdl.formal:shift_accumulate_spec",
                      config={"seq_len": 2, "d_head": 1, "pq_width": 2, "v_width": 2, "parallel": 1,
                              "weight_frac": 2},
                      depths={"count": 16}),
    ),
    Block(
        name="damf-head",
        summary="the whole DAMF head: X tokens (inner-product unit) and V in, Z rows out "
                "(requantize, score once per row, row-stats and row buffer, weight stage, shift-accumulate; "
                "maclaurin or base2, causal, cross; two banks)",
        config_cls=DamfHeadBlockConfig,
        rtl=_HDL + "damf_head:DamfHead",
        vectors=vectors.DAMF_HEAD,
        testbench=_TB + "damf_head",
        generate_terms=sizes.damf_head_terms,
        vector_values=sizes.damf_head_values,
        timing=(Figure("latency", "latency"), Figure("issue_latency", "issue_latency"),
                Figure("row_latency", "row_latency"), Figure("row_period", "row_period", ()),
                Figure("cycles_per_head", "cycles_per_head", ("seq_len",)), Figure("head_interval", "head_interval")),
        role=("head", "damf"),
        part_of=lambda damf, base: damf,
        # fixed weights; one score per beat; partial beats (seq_len not a multiple of parallel);
        # causal; cross-attention (the y stream)
        variants=({}, {"weights": "fixed"}, {"parallel": 1}, {"parallel": 3, "mode": "maclaurin-abs"},
                  {"causal": True}, {"cross": True}, {"mode": "base2"}, {"mode": "base2", "causal": True},
                  {"pq_width": 4, "pq_shift": 2}),
        # heads of exactly seq_len tokens; count passes the head's latency (43 cycles)
        formal=Formal(spec="damf.hdl.formal:damf_head_spec",
                      config={"seq_len": 2, "d_head": 1, "pq_width": 2, "v_width": 2, "parallel": 1, "d_model": 2,
                              "lanes": 2, "x_width": 2, "w_width": 2, "weights": "fixed", "pq_shift": 1},
                      depths={"count": 52}),
    ),
    Block(
        name="softmax",
        summary="baseline integer softmax: streams rows of scores, parallel per beat, one pass per row "
                "(running reference, shift-rescaled sum, pipelined reciprocal), outputs rows of probabilities",
        config_cls=SoftmaxConfig,
        rtl=_HDL + "softmax:Softmax",
        vectors=vectors.SOFTMAX,
        testbench=_TB + "softmax",
        generate_terms=sizes.softmax_terms,
        vector_values=sizes.row_values,
        timing=(Figure("row_latency", "row_latency"), Figure("row_cycles", "row_cycles", ("seq_len",)),
                Figure("row_interval", "row_interval", ("seq_len",))),
        latency="row_latency",
        role=("axv", "baseline"),
        part_of=lambda damf, base: base.softmax,
        # exp_shift < exp_frac (a left shift of the fraction) with one score per beat and a
        # single-score row; a partial last beat (seq_len not a multiple of parallel)
        variants=({}, {"scale": 3, "scale_frac": 0, "seq_len": 1, "parallel": 1}, {"parallel": 3}),
        # data: a row's output starts row_latency = 22 cycles after it (at 12 the cover fails);
        # count: the first row's liveness bound (26 cycles from the first pending row) is in
        # reach at 31, and ABC's bmc3 takes about 3.5 times longer per frame past 30
        formal=Formal(spec="damf.hdl.formal:softmax_spec",
                      config={"seq_len": 4, "parallel": 2, "in_width": 4, "exp_frac": 4, "prob_width": 2},
                      depths={"count": 31, "data": 30}),
    ),
    Block(
        name="systolic-av",
        summary="the systolic-qk array as the A'.V engine: streams tiles of A' and V^T, outputs rows of Z = A'.V",
        config_cls=SystolicAVConfig,
        rtl=_HDL + "systolic_qk:SystolicQK",
        vectors=vectors.SYSTOLIC_AV,
        testbench=_TB + "systolic_av",
        generate_terms=sizes.systolic_terms,
        vector_values=sizes.systolic_values,
        timing=(Figure("latency", "latency"), Figure("cycles_per_tile", "cycles_per_tile"),
                Figure("tile_cycles", "tile_cycles"),
                Figure("cycles", "cycles", meaning="Cycles from the first input handshake to the last Z row's "
                                                   "handshake for one A' V, with a source always valid and a sink "
                                                   "always ready")),
        role=("axv", "baseline"),
        part_of=lambda damf, base: base.av,
        # padding rows and columns (L and d_head multiples of neither), i.ready held (L < cols)
        variants=({}, {"rows": 3, "cols": 5, "seq_len": 4, "d_head": 11}),
        formal=Formal(spec="damf.hdl.formal:systolic_spec",
                      config={"rows": 2, "cols": 1, "d_head": 1, "seq_len": 2, "q_width": 2, "k_width": 2}),
    ),
    Block(
        name="baseline-head",
        summary="conventional attention head: streams tokens of Q, K, V (or, inputs=x, tokens X projected to "
                "Q, K inside, and V); systolic Q.K^T, row softmax, systolic A'.V; outputs rows of Z",
        config_cls=BaselineHeadConfig,
        rtl=_HDL + "baseline_head:BaselineHead",
        vectors=vectors.BASELINE_HEAD,
        testbench=_TB + "baseline_head",
        generate_terms=sizes.baseline_head_terms,
        vector_values=sizes.baseline_head_values,
        timing=(Figure("load_end", "load_end"), Figure("cycles", "cycles"), Figure("head_interval", "head_interval"),
                Figure("compute_span", "compute_span", when=lambda cfg: cfg.banks == 2)),
        latency=None,
        role=("head", "baseline"),
        part_of=lambda damf, base: base,
        # padding rows and columns in both arrays, a 1 x 1 array; inputs=x (the Q/K projection:
        # runtime weights on w, and fixed weights); two banks of Q, K, V
        variants=({}, {"rows": 3, "cols": 2, "seq_len": 7, "d_head": 5}, {"rows": 1, "cols": 1},
                  {"inputs": "x"}, {"inputs": "x", "weights": "fixed"}, {"banks": 2}),
        # inputs qk; count passes the head's latency (46 cycles)
        formal=Formal(spec="damf.hdl.formal:baseline_head_spec",
                      config={"rows": 1, "cols": 1, "d_head": 1, "seq_len": 2, "q_width": 2, "k_width": 2,
                              "v_width": 2, "prob_width": 2},
                      depths={"count": 56}),
    ),
)}


def get_block(name):
    """The registered block ``name``; :class:`ConfigError` naming the registered ones otherwise."""
    try:
        return BLOCKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown block '{name}'; expected one of: {', '.join(BLOCKS)}") from None


def comparisons():
    """``{comparison: (DAMF part names, baseline part names)}`` of the registered blocks'
    :attr:`Block.role`, in registry order (``score``, ``axv``, ``head``)."""
    out = {}
    for block in BLOCKS.values():
        if block.role is not None:
            name, side = block.role
            out.setdefault(name, ((), ()))
            parts = list(out[name])
            parts[SIDES.index(side)] += (block.name,)
            out[name] = tuple(parts)
    return out


# ---- Verilog names --------------------------------------------------------------------------

def check_prefix(prefix):
    """``prefix`` if it can start a Verilog identifier (``[A-Za-z_][A-Za-z0-9_]*``, at most
    :data:`MAX_PREFIX_CHARS` characters), else :class:`ConfigError`."""
    if not isinstance(prefix, str) or not _IDENTIFIER.match(prefix) or len(prefix) > MAX_PREFIX_CHARS:
        shown = prefix if len(str(prefix)) <= 40 else str(prefix)[:40] + "..."
        raise ConfigError(f"--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most "
                          f"{MAX_PREFIX_CHARS} characters, not '{shown}'")
    return prefix


def module_name(block_name, prefix=DEFAULT_PREFIX, *, axis=False):
    """The top module of ``damf generate block_name``: ``prefix`` + the block name without a
    leading ``damf-``, ``-`` -> ``_`` (``damf-head`` -> ``damf_head``); ``_axis`` after it for
    the AXI4-Stream wrapper (the block itself is then ``prefix + base`` below it)."""
    base = block_name.removeprefix("damf-").replace("-", "_")
    return check_prefix(prefix) + base + ("_axis" if axis else "")


# ---- vector files ---------------------------------------------------------------------------

def generate_vectors(cfg, *, seed, count):
    """A ``damf-vectors/1`` document for ``cfg`` (``golden/vectors.py``): edge inputs, then
    ``count`` random ones from ``seed``, and the golden model's results."""
    return vectors.generate(cfg, get_block(cfg.block).vectors, seed=seed, count=count)


def load_vectors(path, *, block=None):
    """Read and validate a vector file (of ``block``, when given): ``(cfg, inputs, expected)``."""
    doc, where = vectors.read(path, block=block)
    try:
        entry = get_block(doc["block"])
    except ConfigError as e:
        raise VectorFileError(f"{where}: {e}") from None
    try:
        cfg = entry.config_cls.from_dict(doc["config"])
    except ConfigError as e:
        raise VectorFileError(f"{where}: config: {e}") from None
    vectors.check(doc, cfg, entry.vectors, where)
    return cfg, doc["inputs"], doc["expected"]
