"""The registry of block generators: name -> configuration, RTL and golden model."""

import re
from dataclasses import dataclass

from amaranth.back import verilog
from amaranth.hdl import Value

from .config import ConfigError, InnerProductConfig
from .config import SystolicQKConfig
from .config import SoftmaxConfig
from .config import SystolicAVConfig
from .config import BaselineHeadConfig
from .config import RowStatsConfig, ScoreConfig, ShiftAccumulateConfig
from .config import DamfHeadBlockConfig
from .hdl.axis import AxisWrapper
from .hdl.baseline_head import BaselineHead
from .hdl.damf_head import DamfHead
from .hdl.inner_product import InnerProduct
from .hdl.row_stats import RowStats
from .hdl.score import Score
from .hdl.shift_accumulate import ShiftAccumulate
from .hdl.softmax import Softmax
from .hdl.systolic_qk import SystolicQK

__all__ = ["Block", "BLOCKS", "DEFAULT_PREFIX", "MAX_VALUE_BITS", "check_prefix", "generate", "get_block", "module_name",
           "to_verilog"]

#: the widest value Amaranth 0.5's netlist represents (``amaranth.hdl._nir``: bits < 2**16)
MAX_VALUE_BITS = (1 << 16) - 1

#: the prefix of every Verilog module ``damf generate`` writes (``--prefix``)
DEFAULT_PREFIX = "damf_"
#: the longest ``--prefix`` taken (the module names stay well inside every tool's limits)
MAX_PREFIX_CHARS = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Block:
    name: str
    summary: str
    config_cls: type
    build: object          # config -> wiring.Component
    module: str            # Verilog module name at the default prefix (explicit, so output is deterministic)
    testbench: str         # its cocotb testbench (sim/tb_*.py): damf sim and make test run it
    variants: tuple = ({},)  # overrides linted beside each preset (structurally different RTL)


BLOCKS = {
    "inner-product": Block(
        name="inner-product",
        summary="singular-vector inner-product unit: streams X_m, outputs p_m = X_m.u_k and q_m = X_m.v_k",
        config_cls=InnerProductConfig,
        build=InnerProduct,
        module="damf_inner_product",
        testbench="damf.sim.tb_inner_product",
        variants=({}, {"weights": "fixed"}),
    ),
    "systolic-qk": Block(
        name="systolic-qk",
        summary="output-stationary systolic array: streams tiles of Q and K, outputs rows of S = Q.K^T",
        config_cls=SystolicQKConfig,
        build=SystolicQK,
        module="damf_systolic_qk",
        testbench="damf.sim.tb_systolic_qk",
        # padding rows and columns, and i.ready held between tiles (d_head < max(rows, cols))
        variants=({}, {"rows": 3, "cols": 5, "d_head": 2}),
    ),
    "score": Block(
        name="score",
        summary="DAMF scores: loads keys q_n, then streams each query's row A_mn = p_m.q_n, parallel per beat",
        config_cls=ScoreConfig,
        build=Score,
        module="damf_score",
        testbench="damf.sim.tb_score",
        # one score per beat, and a partial last beat (seq_len not a multiple of parallel)
        variants=({}, {"parallel": 1}, {"parallel": 3}),
    ),
    "row-stats": Block(
        name="row-stats",
        summary="DAMF row set-up: from a score row, N, A_max, max|A|, S, normaliser C, denominator D, "
                "exponents and shifts (base2: N and A_max only)",
        config_cls=RowStatsConfig,
        build=RowStats,
        module="damf_row_stats",
        testbench="damf.sim.tb_row_stats",
        variants=({}, {"mode": "maclaurin-abs"}, {"parallel": 3}, {"mode": "base2"}),
    ),
    "shift-accumulate": Block(
        name="shift-accumulate",
        summary="DAMF A'xV without multipliers: parallel keys per beat, acc += sign (V_n << t_n) by adder trees; "
                "shared end-of-row units add SV << t_C, round and saturate Z_m (base2: no SV term)",
        config_cls=ShiftAccumulateConfig,
        build=ShiftAccumulate,
        module="damf_shift_accumulate",
        testbench="damf.sim.tb_shift_accumulate",
        # one key per beat; an odd tree and one end-of-row unit per lane
        variants=({}, {"mode": "base2"}, {"parallel": 1}, {"parallel": 3, "round_lanes": 3}),
    ),
    "damf-head": Block(
        name="damf-head",
        summary="the whole DAMF head: X tokens (inner-product unit) and V in, Z rows out "
                "(requantize, score once per row, row-stats and row buffer, weight stage, shift-accumulate; "
                "maclaurin or base2, causal, cross; two banks)",
        config_cls=DamfHeadBlockConfig,
        build=DamfHead,
        module="damf_head",
        testbench="damf.sim.tb_damf_head",
        # fixed weights; one score per beat; partial beats (seq_len not a multiple of parallel);
        # causal; cross-attention (the y stream)
        variants=({}, {"weights": "fixed"}, {"parallel": 1}, {"parallel": 3, "mode": "maclaurin-abs"},
                  {"causal": True}, {"cross": True}, {"mode": "base2"}, {"mode": "base2", "causal": True},
                  {"pq_width": 4, "pq_shift": 2}),
    ),
    "softmax": Block(
        name="softmax",
        summary="baseline integer softmax: streams rows of scores, parallel per beat, one pass per row "
                "(running reference, shift-rescaled sum, pipelined reciprocal), outputs rows of probabilities",
        config_cls=SoftmaxConfig,
        build=Softmax,
        module="damf_softmax",
        testbench="damf.sim.tb_softmax",
        # exp_shift < exp_frac (a left shift of the fraction) with one score per beat and a
        # single-score row; a partial last beat (seq_len not a multiple of parallel)
        variants=({}, {"scale": 3, "scale_frac": 0, "seq_len": 1, "parallel": 1}, {"parallel": 3}),
    ),
    "systolic-av": Block(
        name="systolic-av",
        summary="the systolic-qk array as the A'.V engine: streams tiles of A' and V^T, outputs rows of Z = A'.V",
        config_cls=SystolicAVConfig,
        build=SystolicQK,
        module="damf_systolic_av",
        testbench="damf.sim.tb_systolic_av",
        # padding rows and columns (L and d_head multiples of neither), i.ready held (L < cols)
        variants=({}, {"rows": 3, "cols": 5, "seq_len": 4, "d_head": 11}),
    ),
    "baseline-head": Block(
        name="baseline-head",
        summary="conventional attention head: streams tokens of Q, K, V (or, inputs=x, tokens X projected to "
                "Q, K inside, and V); systolic Q.K^T, row softmax, systolic A'.V; outputs rows of Z",
        config_cls=BaselineHeadConfig,
        build=BaselineHead,
        module="damf_baseline_head",
        testbench="damf.sim.tb_baseline_head",
        # padding rows and columns in both arrays, a 1 x 1 array; inputs=x (the Q/K projection:
        # runtime weights on w, and fixed weights); two banks of Q, K, V
        variants=({}, {"rows": 3, "cols": 2, "seq_len": 7, "d_head": 5}, {"rows": 1, "cols": 1},
                  {"inputs": "x"}, {"inputs": "x", "weights": "fixed"}, {"banks": 2}),
    ),
}


def get_block(name):
    try:
        return BLOCKS[name]
    except KeyError:
        raise ConfigError(f"unknown block '{name}'; expected one of: {', '.join(BLOCKS)}") from None


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


def to_verilog(cfg, *, prefix=DEFAULT_PREFIX, axis=False):
    """Deterministic Verilog text for ``cfg`` (no source locations, explicit module names).

    The top module is :func:`module_name`; Amaranth names every submodule ``top.sub``, so every
    module of the file starts with ``prefix``.  ``axis``: the top is the AXI4-Stream wrapper of
    ``hdl/axis.py`` around the block (docs/integration.md)."""
    return generate(cfg, prefix=prefix, axis=axis)[0]


def generate(cfg, *, prefix=DEFAULT_PREFIX, axis=False):
    """``(verilog, ports)``: :func:`to_verilog`'s text and ``{port: width}`` of its top module."""
    block = get_block(cfg.block)
    check_prefix(prefix)
    component = block.build(cfg)
    for path, _, value in component.signature.flatten(component):
        width = len(Value.cast(value))
        if width > MAX_VALUE_BITS:
            name = "__".join(str(p) for p in path)
            raise ConfigError(f"{cfg.block}: port {name} would be {width:,} bits wide; Amaranth's netlist "
                              f"takes at most {MAX_VALUE_BITS:,} bits per value (fewer lanes or parallel)")
    if axis:
        component = AxisWrapper(component, block_name=module_name(block.name, prefix))
    ports = {"__".join(str(p) for p in path): len(Value.cast(value))
             for path, _, value in component.signature.flatten(component)}
    text = verilog.convert(component, name=module_name(block.name, prefix, axis=axis), emit_src=False)
    return text, ports
