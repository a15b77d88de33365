"""``damf synth``: synthesize every block of a preset (:mod:`damf.synth`'s flows, in a
pool of processes), write ``synth-PRESET.*``, then run the DAMF-vs-baseline comparison
(:mod:`damf.compare`), whose designs share the pool.

Apart from :mod:`damf.synth` so that the flows and the comparison import each other in one
direction only (this module -> compare -> synth).
"""

import dataclasses
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from . import compare as comparison, synth
from .blocks import BLOCKS, get_block
from .iso import proxy_area
from .limits import Heartbeat

__all__ = ["PRESET_FLOWS", "PresetFlows", "run"]


def _say(text):
    print(text, flush=True)


@dataclasses.dataclass(frozen=True)
class PresetFlows:
    """What ``damf synth --preset P`` runs beyond the flows of every design.

    ``pnr_timeout``: place and route of one design is stopped after this many seconds (None:
    no limit; a stopped run is reported, with nextpnr's estimate after placement when it got
    that far); ``ice40``: the iCE40 flows run at all; ``block_pnr``: the preset's own blocks
    are placed and routed; ``iso_pnr``: the iso-throughput designs that fit the LFE5U-85F are;
    ``base2_parts``: the part comparisons are repeated in mode base2.  A block named with
    ``--block`` is always placed and routed."""
    pnr_timeout: float | None = None
    ice40: bool = True
    block_pnr: bool = True
    iso_pnr: bool = True
    base2_parts: bool = True


# bert-base: `make synth PRESET=bert-base` keeps to 45 minutes on two cores by leaving out
# what the comparison can do without: the iCE40 flows (the HX8K's 7,680 LUTs and 206 I/O pins
# hold no bert-base head), the base2 part tables (the iso points carry the base2 head at full
# rank) and every place and route.  Of the iso designs only the rank-1 DAMF heads fit the
# LFE5U-85F, and placing and routing one takes about 12 minutes here (68.7 MHz, 2026-12-03,
# docs/synthesis.md): four of them would take the budget alone.  Time per head at bert-base is
# therefore in gate delays (cycles x critical path), which every design has; `damf synth
# --preset bert-base --block NAME` places and routes one block.
PRESET_FLOWS = {
    "default": PresetFlows(),
    "bert-base": PresetFlows(pnr_timeout=900, ice40=False, block_pnr=False, iso_pnr=False, base2_parts=False),
}


def _cost(cfg):
    """A rank of how long a configuration's flows take (the larger, the earlier it starts)."""
    try:
        return proxy_area(cfg)
    except Exception:       # not a head: the blocks are quick next to the heads
        return 0


def _job(cfg, work, pnr, ice40, pnr_timeout, label, cache_file):
    result = synth.synthesize(cfg, work, pnr=pnr, ice40=ice40, pnr_timeout=pnr_timeout,
                        progress=lambda text: _say(text.replace(f"  {cfg.block}:", f"  {label}:", 1)))
    if cache_file is not None:
        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        Path(cache_file).write_text(json.dumps(result, sort_keys=True) + "\n")
    return result


def run(*, preset, blocks, out, build, pnr=True, compare=True, sweep=None, jobs=2, pnr_timeout=None,
        iso_points=True, place_iso=False):
    """Synthesize ``blocks`` (default: all) of ``preset``, write ``synth-PRESET.*`` and, for all
    blocks, the comparison (``compare-PRESET.*``).  ``sweep`` defaults to the ``default`` preset
    only (the sweeps vary the shape, which is the default preset's business); ``place_iso``
    places and routes the iso designs even at a preset whose :data:`PRESET_FLOWS` leave it out.

    Every full-flow run the comparison needs (its base2 parts and iso-throughput designs) is
    queued with the blocks on one pool of ``jobs`` processes, largest first, so no core waits
    for the slowest design of a phase; the comparison then finds them in its cache."""
    sweep = (preset == "default") if sweep is None else sweep
    flows = PRESET_FLOWS.get(preset, PresetFlows())
    if place_iso:
        flows = dataclasses.replace(flows, iso_pnr=True)
    pnr_timeout = flows.pnr_timeout if pnr_timeout is None else pnr_timeout
    ice40 = flows.ice40
    # asked for by name, a block is placed and routed at any preset
    block_pnr = pnr and (flows.block_pnr or bool(blocks))
    names = blocks or list(BLOCKS)
    for name in names:
        get_block(name)
    start = time.monotonic()
    build_dir = Path(build) / preset
    queue = []          # (label, cfg, work folder, place and route, with iCE40, cache file or None)
    for name in names:
        queue.append((name, get_block(name).config_cls.from_preset(preset), build_dir / name, block_pnr, ice40,
                       None))
    if compare and not blocks:
        seen = {(cfg.block, cfg.to_json()) for _, cfg, *_ in queue}
        for label, cfg, flows_ice40 in comparison.planned_runs(preset, iso_points=iso_points, ice40=ice40,
                                                    base2_parts=flows.base2_parts):
            part_pnr = pnr and (flows.iso_pnr if label.startswith("iso") else flows.block_pnr)
            key = comparison.cache_key(cfg, full=True, pnr=part_pnr, ice40=flows_ice40)
            folder = build_dir / "compare" / key
            if (cfg.block, cfg.to_json()) in seen or (folder / "result.json").exists():
                continue
            seen.add((cfg.block, cfg.to_json()))
            queue.append((label, cfg, folder, part_pnr, flows_ice40, folder / "result.json"))
    queue.sort(key=lambda job: -_cost(job[1]))      # stable: blocks in registry order
    print(f"damf synth ({preset}): {len(queue)} designs on {max(1, jobs)} process(es), largest first"
          + ("" if ice40 else "; no iCE40 flows at this preset")
          + ("" if block_pnr or not pnr else "; the preset's blocks without place and route")
          + ("" if flows.iso_pnr or not pnr else "; the iso designs without place and route")
          + ("" if flows.base2_parts else "; no base2 part tables")
          + (f"; place and route stopped after {pnr_timeout:.0f} s" if pnr and pnr_timeout else ""), flush=True)
    results, done = {}, 0
    # forked processes: the tools are subprocesses, the designs independent
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {}
        for n, (label, cfg, work, job_pnr, flows_ice40, cache_file) in enumerate(queue, 1):
            print(f"[{n}/{len(queue)}] {label} ({preset})", flush=True)
            futures[pool.submit(_job, cfg, work, job_pnr, flows_ice40, pnr_timeout, label, cache_file)] = \
                (label, cache_file)
        with Heartbeat(lambda: f"  damf synth: {done}/{len(queue)} done, still running", every=60,
                       stream=sys.stdout):
            for future in as_completed(futures):
                label, cache_file = futures[future]
                done += 1
                try:
                    results[label] = future.result()
                except Exception as e:
                    if cache_file is None:          # a block of the report: the run fails
                        raise
                    # a comparison design: the comparison reports it (it runs it once more)
                    print(f"  {label}: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}", flush=True)
                print(f"  [{done}/{len(queue)} done, {time.monotonic() - start:.0f} s] {label}", flush=True)
    block_results = [results[name] for name in names]
    paths = synth.write_reports(preset, block_results, out)
    print(f"wrote {paths[0]} and {paths[1]} ({time.monotonic() - start:.0f} s)")
    if compare and not blocks:
        comparison.run(preset=preset, results=block_results, out=out, build=build_dir, pnr=pnr,
                    sweep=sweep, jobs=jobs, pnr_timeout=pnr_timeout, iso_points=iso_points, ice40=ice40,
                    parts_pnr=block_pnr, iso_pnr=pnr and flows.iso_pnr, base2_parts=flows.base2_parts)
    print(f"damf synth: {time.monotonic() - start:.0f} s in all")
    return 0
