"""``python -m damf.soak`` / ``make soak``: every block on Verilator for at least a million
clock cycles under random stalls, every result checked bit-exact against the golden model.

Each block is built at its default preset and runs the cocotb test ``soak`` of
``sim/tb_soak.py``: the block's own testbench, fed random batches under changing random
source idling and sink backpressure until the cycle budget is spent, by its soak harness
(``SOAK`` in ``sim/tb_BLOCK.py``).  A block whose testbench has no harness is passed by in one
line, and refused (exit status 2) when named.  Prints a line as each block starts and ends,
the testbench's progress every 30 s, then a table per block -- cycles simulated, wall seconds
of the simulation (the Verilator build excluded), cycles per second, results checked -- and a
total line.  Exit status 1 on any mismatch or stall (the seed and the first mismatch are
printed), 2 on a bad option (one line ``damf: error: ...``).
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .blocks import BLOCKS, get_block
from .config import ConfigError
from .sim.runner import SimFailed, run_testbench
from .sim.tb_soak import soak_of

__all__ = ["main", "soak_block"]

PRESET = "default"
SIMULATOR = "verilator"
MODULE = "damf.sim.tb_soak"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


class _Lines(logging.Filter):
    """Swallows the simulator's log (kept for a failure), echoing the soak progress lines."""

    def __init__(self, echo):
        super().__init__()
        self.echo, self.lines = echo, []

    def filter(self, record):
        line = record.getMessage()
        self.lines.append(line)
        del self.lines[:-80]
        at = line.find("soak ")
        if self.echo and at >= 0 and "cycles/s" in line:
            print(f"  {line[at + 5:]}", flush=True)
        return False


def soak_block(name, *, cycles, seed, build, echo=True, env=None):
    """Soak one block; return the testbench's report (a dict: ``cycles``, ``results``,
    ``wall_s``, ``unit``, ``seed``, ``build_s``; ``mismatch`` or ``stalled`` on failure, and
    ``failure``, the simulator's last lines, when the test failed)."""
    cfg = get_block(name).config_cls.from_preset(PRESET)
    build = Path(build) / name
    build.mkdir(parents=True, exist_ok=True)
    report_path = (build / "soak.json").resolve()
    if report_path.exists():
        report_path.unlink()
    log = _Lines(echo)
    logger = logging.getLogger("cocotb")
    logger.addFilter(log)
    start = time.monotonic()
    failure = None
    try:
        run_testbench(cfg, simulator=SIMULATOR, module=MODULE, build_dir=build / SIMULATOR, testcase="soak",
                      env={"DAMF_SEED": str(seed), "DAMF_SOAK_CYCLES": str(cycles),
                           "DAMF_SOAK_REPORT": str(report_path), "PYTHONUNBUFFERED": "1", **(env or {})})
    except SimFailed as e:
        failure = f"{e}\n" + "\n".join(log.lines[-40:])
    finally:
        logger.removeFilter(log)
    elapsed = time.monotonic() - start
    report = json.loads(report_path.read_text()) if report_path.exists() else \
        {"block": name, "seed": seed, "cycles": 0, "results": 0, "wall_s": 0.0, "unit": "result"}
    report["build_s"] = max(0.0, elapsed - report["wall_s"])
    report["total_s"] = elapsed
    if failure is not None:
        report["failure"] = failure
    elif "mismatch" in report or report.get("stalled"):
        report["failure"] = "the test reported a failure but passed"
    return report


def _no_harness(name):
    """Why block ``name`` cannot be soaked: ``no soak harness (...)``."""
    return f"no soak harness (no SOAK in its testbench {get_block(name).testbench})"


def _int_at_least(option, text, minimum, expected):
    """``text`` as an integer of at least ``minimum`` (``1_000_000`` allowed), else one line."""
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option} must be {expected}, not '{text}'") from None
    if value < minimum:
        raise ConfigError(f"{option} must be {expected}, not {value}")
    return value


def _parse(argv):
    p = _Parser(prog="python -m damf.soak",
                description="Soak every block (default preset, Verilator) under random stalls for a cycle "
                            "budget, checking every result against the golden model.")
    p.add_argument("--cycles", default="1000000",
                   help="clock cycles per block, at least (default: 1000000)")
    p.add_argument("--seed", default="1", help="random seed (default: 1)")
    p.add_argument("--block", action="append", metavar="NAME",
                   help=f"block to soak (repeatable; default: all): {', '.join(BLOCKS)}")
    p.add_argument("--build", default="build/soak", metavar="DIR", help="build folder (default: build/soak)")
    args = p.parse_args(argv)
    args.cycles = _int_at_least("--cycles", args.cycles, 1, "a positive integer")
    args.seed = _int_at_least("--seed", args.seed, 0, "an integer >= 0")
    names = args.block or list(BLOCKS)
    for name in names:
        get_block(name)     # unknown block: ConfigError naming the valid ones
        if args.block and soak_of(name) is None:
            raise ConfigError(f"block '{name}' has {_no_harness(name)}")
    args.block = list(dict.fromkeys(names))
    if Path(args.build).exists() and not Path(args.build).is_dir():
        raise ConfigError(f"--build must be a directory, not the file '{args.build}'")
    return args


def _table(reports):
    width = max([len("block")] + [len(r["block"]) for r in reports])
    lines = [f"{'block':<{width}}  {'cycles':>10}  {'seconds':>8}  {'cycles/s':>9}  {'checked':>9}  result"]
    for r in reports:
        rate = r["cycles"] / r["wall_s"] if r["wall_s"] else 0.0
        lines.append(f"{r['block']:<{width}}  {r['cycles']:>10}  {r['wall_s']:>8.1f}  {rate:>9.0f}  "
                     f"{r['results']:>9}  {r['unit']}")
    cycles, wall = sum(r["cycles"] for r in reports), sum(r["wall_s"] for r in reports)
    lines.append(f"{'total':<{width}}  {cycles:>10}  {wall:>8.1f}  {cycles / wall if wall else 0:>9.0f}  "
                 f"{sum(r['results'] for r in reports):>9}  "
                 f"({sum(r['total_s'] for r in reports):.0f} s with the Verilator builds)")
    return lines


def main(argv=None):
    try:
        args = _parse(argv)
    except ConfigError as e:
        print(f"damf: error: {e}", file=sys.stderr)
        return 2
    print(f"soak: {len(args.block)} block(s) at the {PRESET} preset on Verilator, at least {args.cycles} cycles "
          f"each, random stalls, seed {args.seed} (rerun one: python -m damf.soak --block NAME --seed {args.seed})",
          flush=True)
    reports, failed = [], []
    for n, name in enumerate(args.block, 1):
        if soak_of(name) is None:
            print(f"[{n}/{len(args.block)}] {name}: skipped: {_no_harness(name)}", flush=True)
            continue
        print(f"[{n}/{len(args.block)}] {name}: building and soaking ...", flush=True)
        r = soak_block(name, cycles=args.cycles, seed=args.seed, build=args.build)
        reports.append(r)
        rate = r["cycles"] / r["wall_s"] if r["wall_s"] else 0.0
        status = "FAILED" if "failure" in r else "ok"
        print(f"[{n}/{len(args.block)}] {name}: {status}: {r['cycles']} cycles in {r['wall_s']:.1f} s "
              f"({rate:.0f} cycles/s), {r['results']} {r['unit']} checked (build {r['build_s']:.0f} s)", flush=True)
        if "failure" in r:
            failed.append(name)
            m = r.get("mismatch")
            if m:
                print(f"  first mismatch, seed {r['seed']}: result {m['index']} ({r['unit']}): got {m['got']}, "
                      f"expected {m['expected']}", flush=True)
            else:
                print(f"  seed {r['seed']}: {r['failure'][-3000:]}", flush=True)
    print("\n".join(_table(reports)))
    if failed:
        print(f"damf: soak failed: {', '.join(failed)} (seed {args.seed}; build folder {args.build})",
              file=sys.stderr)
        return 1
    print(f"every result bit-exact against the golden model ({PRESET} preset, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
