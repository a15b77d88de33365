"""The commands that run the external tools over every block: ``damf lint`` (Verilator),
``damf synth`` (Yosys, nextpnr) and ``damf bench`` (generation and simulator speed).

Their drivers import cocotb-test (through damf.sim.runner), so each is imported when its
command runs, not when the command line starts."""

import sys
from pathlib import Path

from ..config import PRESETS
from ..errors import ConfigError
from ..toolchain import SIMULATORS
from .args import add_folder, int_range, names, one_of, positive

__all__ = ["add_bench", "add_lint", "add_synth", "run_bench", "run_lint", "run_synth"]


def add_lint(sub):
    p = sub.add_parser("lint", help="Verilator --lint-only -Wall on every generated block",
                       description="Generate every block for the presets and lint each with Verilator -Wall.")
    p.add_argument("--preset", action="append", metavar="NAME", help="preset (repeatable; default: all)")
    add_folder(p, default="build/lint", what="build folder")
    p.set_defaults(func=run_lint)


def add_synth(sub):
    p = sub.add_parser("synth", help="Yosys/nextpnr area and fmax reports of every block",
                       description="Synthesize every block of a preset the same way (generic CMOS, iCE40, ECP5, "
                                   "nextpnr fmax) and write reports/synth-PRESET.json and .md; then compare DAMF "
                                   "with the baseline (reports/compare-PRESET.json, .md and PNG sweeps).")
    p.add_argument("--preset", default="default", metavar="NAME", help=f"{names(PRESETS)} (default: default)")
    p.add_argument("--block", action="append", metavar="BLOCK", help="only this block (repeatable; default: all)")
    add_folder(p, default="reports", what="report folder")
    add_folder(p, "--build", default="build/synth", what="work folder")
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no fmax)")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the DAMF-vs-baseline comparison (reports/compare-PRESET.*; only run without --block)")
    p.add_argument("--no-sweep", action="store_true",
                   help="comparison without the shape sweeps and their plots (they run at the default preset only)")
    p.add_argument("--no-iso", action="store_true",
                   help="comparison without the iso-throughput points (damf/iso.py)")
    p.add_argument("--pnr-timeout", type=float, metavar="SECONDS",
                   help="stop each place-and-route run after this long and report it as not placed "
                        "(default: none at the default preset, 900 at bert-base)")
    p.add_argument("--place-iso", action="store_true",
                   help="place and route the iso-throughput designs that fit the LFE5U-85F at a preset that "
                        "leaves it out (bert-base: the rank-1 DAMF heads, about 12 minutes each)")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="synthesis processes run at once, 1..64 (default: 2)")
    p.set_defaults(func=run_synth)


def add_bench(sub):
    p = sub.add_parser("bench", help="print generation times, simulation speed and headline ratios",
                       description="Benchmarks that print figures (Verilog generation time per preset, "
                                   "simulator cycles per second, cost-model and synthesis ratios).")
    p.add_argument("--repeat", type=int, default=3, help="generation runs per block, best kept (default: 3)")
    p.add_argument("--sim", action="append", choices=SIMULATORS,
                   help="simulator to measure (repeatable; default: both)")
    p.set_defaults(func=run_bench)


def run_lint(args):
    from ..lint import lint      # lazy: damf.lint imports cocotb-test (sim.runner); keeps start-up fast
    return lint(presets=args.preset or list(PRESETS), out=Path(args.out))


def run_synth(args):
    from ..synth import SynthError   # lazy: cocotb-test (sim.runner), as lint
    from ..synth_run import run      # lazy: cocotb-test (sim.runner), as lint
    one_of("preset", args.preset, PRESETS)
    int_range("--jobs", args.jobs, 1, 64)
    if args.pnr_timeout is not None:
        positive("--pnr-timeout", args.pnr_timeout, noun="a positive number of seconds")
    if args.place_iso and (args.no_pnr or args.no_iso or args.block):
        raise ConfigError("--place-iso places the iso-throughput designs: it cannot go with --no-pnr, --no-iso "
                          "or --block")
    try:
        return run(preset=args.preset, blocks=args.block, out=args.out, build=args.build, pnr=not args.no_pnr,
                   compare=not args.no_compare, sweep=False if args.no_sweep else None, jobs=args.jobs,
                   pnr_timeout=args.pnr_timeout, iso_points=not args.no_iso, place_iso=args.place_iso)
    except SynthError as e:
        print(f"damf: synthesis failed: {e}", file=sys.stderr)
        return 1


def run_bench(args):
    from ..bench import run      # lazy: cocotb-test (sim.runner), as lint
    int_range("--repeat", args.repeat, 1)
    return run(repeat=args.repeat, sims=args.sim or SIMULATORS)
