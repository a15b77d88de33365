"""``damf bench`` / ``make bench``: figures, not pass/fail.

1. Verilog generation time of every block for every preset (best of ``--repeat`` runs).
2. Simulation speed, in clock cycles per second of wall time, on Icarus and on Verilator, of
   the largest default cocotb test (the inner-product unit on the default preset, random
   tokens with gaps and backpressure), read from cocotb's own results file (simulated time
   divided by the 10 ns clock period, over cocotb's real time for that test -- so the
   Verilator build time is excluded).
3. Headline ratios of the analytic cost model (BERT-base, one layer) and, when ``make synth``
   has written its reports, the per-block area of the default preset and the iso-throughput
   ratios (DAMF / baseline) of every preset reported.

Nothing here is asserted: figures depend on the machine and are printed for people to read.
"""

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import cost_model
from .blocks import BLOCKS
from .verilog import to_verilog
from .config import PRESETS, InnerProductConfig
from .sim.runner import run_testbench

__all__ = ["run"]

CLOCK_NS = 10  # every testbench clocks at 10 ns (sim/tb_*.py)
# the test timed for simulation speed: random tokens under input gaps and output backpressure
BENCH_TEST = "random_vectors/stalls=both"


def generation_times(repeat):
    rows = []
    for preset in PRESETS:
        for block in BLOCKS.values():
            cfg = block.config_cls.from_preset(preset)
            best = None
            for _ in range(repeat):
                start = time.perf_counter()
                text = to_verilog(cfg)
                elapsed = time.perf_counter() - start
                best = elapsed if best is None else min(best, elapsed)
            rows.append((preset, block.name, best, text.count("\n")))
            print(f"  generate {block.name:<17} {preset:<10} {best:7.2f} s  {text.count(chr(10)):>8,} lines",
                  flush=True)
    return rows


def simulation_speed(simulator, build):
    build = Path(build).resolve() / simulator
    for old in build.glob("*_results.xml"):
        old.unlink()
    cfg = InnerProductConfig.from_preset("default")
    run_testbench(cfg, simulator=simulator, module="damf.sim.tb_inner_product", build_dir=build,
                  testcase=BENCH_TEST + "$", env={"DAMF_SEED": "1", "DAMF_COUNT": "3000"})
    (results,) = build.glob("*_results.xml")
    for case in ET.parse(results).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if case.get("name") == BENCH_TEST:
            cycles = float(props["sim_time_duration"]) / CLOCK_NS
            seconds = float(case.get("time"))
            return cycles, seconds
    raise RuntimeError(f"no result for the benchmark test in {results}")


def run(*, repeat=3, build="build/bench", sims=("icarus", "verilator")):
    import logging


    print("== Verilog generation time (best of %d)" % repeat, flush=True)
    generation_times(repeat)

    print("== simulation speed: inner-product, default preset, 3,000 random tokens with stalls", flush=True)
    logging.getLogger("cocotb").addFilter(lambda record: record.levelno >= logging.ERROR)
    for sim in sims:
        cycles, seconds = simulation_speed(sim, build)
        print(f"  {sim:<10} {cycles:>10,.0f} cycles in {seconds:6.2f} s = {cycles / seconds:>10,.0f} cycles/s",
              flush=True)

    print("== headline ratios, MHSA / DAMF (cost model, bert-base, one layer; docs/cost-model.md)", flush=True)
    shape = cost_model.AttentionShape.from_preset("bert-base")
    _, _, ratios = cost_model.compare(shape)
    for key, label in (("params", "parameters"), ("dynamic_macs", "dynamic MACs"),
                       ("macs", "all MACs"), ("memory", "memory accesses")):
        print(f"  {label:<16} {ratios[key]:8.2f}x")
    synthesis_figures(Path("reports"))
    return 0


def synthesis_figures(reports):
    """Print the per-block area of ``reports/synth-default.json`` and the iso-throughput ratios
    of every ``reports/compare-PRESET.json`` that exists (written by ``make synth``)."""
    report = reports / "synth-default.json"
    if report.exists():
        blocks = {b["block"]: b for b in json.loads(report.read_text())["blocks"]}
        print(f"== area from {report} (make synth)")
        for name, b in blocks.items():
            print(f"  {name:<17} {b['cmos']['transistors']:>12,} transistors  "
                  f"{b['coarse']['multipliers']:>4} multipliers  ECP5 {b['ecp5'].get('luts', 0):>6,} LUTs")
    else:
        print("== no synthesis report yet: run `make synth` for area figures")
    for preset in ("default", "bert-base"):
        report = reports / f"compare-{preset}.json"
        points = json.loads(report.read_text()).get("iso_throughput") if report.exists() else None
        if not points:
            continue
        print(f"== iso-throughput, DAMF / baseline, from {report} (make synth PRESET={preset})")
        for point in points:
            for design, r in point.get("ratios", {}).items():
                def f(key, r=r):
                    return "-" if r.get(key) is None else f"{r[key]:.2f}x"
                print(f"  {point['target_cycles_per_head']:>7,} cycles  {design:<11} cycles {f('cycles')}  "
                      f"logic {f('logic_transistors')}  time {f('time_per_head_us')}  "
                      f"logic x time {f('area_x_time')}  time (gate delays) {f('time_per_head_gate_delays')}  "
                      f"logic x gate delays {f('area_x_gate_delays')}")
