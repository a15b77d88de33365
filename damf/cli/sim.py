"""``damf sim``: the RTL of a vector file's block, simulated on its inputs, against its results."""

import json
import logging
import sys
import time
from pathlib import Path

from ..blocks import get_block, load_vectors
from ..golden import vectors
from ..limits import Heartbeat
from ..toolchain import SIMULATORS
from .args import add_folder

__all__ = ["add_sim", "run_sim"]


def add_sim(sub):
    p = sub.add_parser("sim", help="run the RTL against a vector file",
                       description="Generate the block of a vector file, simulate it on its inputs, "
                                   "and report matches and the first mismatches.")
    p.add_argument("block", metavar="BLOCK", nargs="?", help="block name (default: the file's)")
    p.add_argument("--vectors", required=True, metavar="FILE",
                   help="vector file (format in golden/vectors.py; UTF-8 JSON, at most 1 GiB, at least one vector)")
    p.add_argument("--sim", default="icarus", choices=SIMULATORS, help="simulator (default: icarus)")
    add_folder(p, "--build", default="build/vectors", what="build folder")
    p.add_argument("-v", "--verbose", action="store_true", help="show the simulator's log (default: only on failure)")
    p.set_defaults(func=run_sim)


class _SimLog(logging.Filter):
    """Keeps the simulator's log lines; shows them only with --verbose or on failure."""

    def __init__(self, echo):
        super().__init__()
        self.echo, self.lines = echo, []

    def filter(self, record):
        self.lines.append(record.getMessage())
        return self.echo


def run_sim(args):
    from ..sim.runner import SimFailed, run_testbench    # lazy: cocotb-test only when simulating (start-up)
    cfg, inputs, expected = load_vectors(args.vectors, block=args.block)
    build = Path(args.build) / cfg.block
    build.mkdir(parents=True, exist_ok=True)
    results = (build / "results.json").resolve()
    if results.exists():
        results.unlink()
    print(f"simulating {cfg.block} on {args.sim} with {args.vectors} ...", flush=True)
    start = time.monotonic()
    log = _SimLog(echo=args.verbose)
    logging.getLogger("cocotb").addFilter(log)
    try:
        with Heartbeat(f"sim: {cfg.block} on {args.sim}"):
            run_testbench(cfg, simulator=args.sim, module=get_block(cfg.block).testbench,
                          build_dir=build / args.sim, testcase="vectors_file",
                          env={"DAMF_VECTORS": str(Path(args.vectors).resolve()), "DAMF_RESULTS": str(results)})
    except SimFailed as e:
        if not args.verbose:
            print("\n".join(log.lines[-60:]), file=sys.stderr)
        print(f"damf: simulation failed: {e} (build folder {build / args.sim})", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("cocotb").removeFilter(log)
    got = json.loads(results.read_text())
    matches, total, first = vectors.compare(expected, got)
    print(f"{cfg.block} on {args.sim}: {matches}/{total} results match {args.vectors} "
          f"({time.monotonic() - start:.1f} s)")
    for index, name, exp, g in first:
        print(f"  mismatch at result {index}: {name} = {g}, expected {exp}")
    return 0 if matches == total else 1
