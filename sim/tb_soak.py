"""cocotb soak test of any block: random inputs under random stalls until a cycle budget is
spent, every result checked bit-exact against the golden model as it arrives.

The block comes from ``DAMF_CONFIG`` (its ``BLOCK.json``); the testbench is the block's own
``tb_BLOCK.TB`` (its drivers, packing and golden expectations), driven here in batches by the
block's :class:`Soak` harness, ``SOAK`` in the same testbench module (found through the
block's registry entry, :func:`soak_of`).  Each batch picks new idle and backpressure
probabilities (0, 0.1, 0.3 or 0.5 each), so a run passes through every mix of source
idling and sink backpressure, and the next batch is queued while the previous one is still
in flight, so the block never runs dry and expectations are computed a batch at a time.

Environment (set by ``damf.soak``):

* ``DAMF_CONFIG`` -- the ``BLOCK.json`` next to the Verilog (required);
* ``DAMF_SEED`` -- seed of every random choice;
* ``DAMF_SOAK_CYCLES`` -- clock cycles to simulate at least (default 1000000): no new batch
  is queued after them, and the run ends once every queued result has been checked;
* ``DAMF_SOAK_REPORT`` -- a JSON file to write the figures to (cycles, results, wall
  seconds; on a mismatch also ``mismatch``);
* ``DAMF_SOAK_CORRUPT`` -- index of one expected result to corrupt before checking
  (``tests/test_soak.py`` uses it to see a mismatch reported); unset in real runs.
"""

import importlib
import json
import os
import time
from collections import deque
from dataclasses import dataclass

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles

from ..blocks import get_block
from .streams import random_pattern

__all__ = ["Soak", "soak_of", "soak"]

CLOCK_NS = 10           # BlockTB's clock
STEP = 500              # cycles between two looks at the output
PROGRESS_S = 30.0       # wall seconds between progress lines
STALL = 50_000          # cycles without a result while results are due: the block stalled
STALLS = (0.0, 0.1, 0.3, 0.5)


@dataclass(frozen=True)
class Soak:
    """How to soak one block with its testbench ``tb_BLOCK``, which holds it as ``SOAK``.

    * ``unit``: what the checked results (the ``o`` transfers) are, plural;
    * ``tb``: the testbench class;
    * ``start(tb)``: async; reset and anything needed before streaming (weights);
    * ``batch(tb, first)``: queue one batch of inputs with their golden expectations
      (``first``: the block's edge cases too);
    * ``take(tb)``: the expectations queued since the last call, one per ``o`` transfer,
      in order (the testbench's lists are emptied);
    * ``decode(tb, word)``: an ``o`` payload in the form of ``take``'s items.
    """

    unit: str
    tb: type
    batch: object
    decode: object
    take: object = None
    start: object = None


def _take_expected(tb):
    out, tb.expected = tb.expected, []
    return out


async def _reset(tb):
    await tb.reset()


def soak_of(name):
    """The soak harness of block ``name``: ``SOAK`` of the testbench module its registry entry
    names, or None when that module has none."""
    # by the name in the registry entry: this module knows no block, the entry knows its testbench
    return getattr(importlib.import_module(get_block(name).testbench), "SOAK", None)


def _block_of_config():
    with open(os.environ["DAMF_CONFIG"]) as f:
        return json.load(f)["block"]


def _corrupt(value):
    """A value no decoded result equals (for the injected-mismatch test)."""
    return ("corrupted", value)


@cocotb.test()
async def soak(dut):
    """Random batches under changing random stalls until ``DAMF_SOAK_CYCLES``; every result
    compared with the golden model as it arrives; fail on the first mismatch or a stall."""
    block = _block_of_config()
    soak = soak_of(block)
    assert soak is not None, f"{block}: no soak harness (no SOAK in {get_block(block).testbench})"
    budget = int(os.environ.get("DAMF_SOAK_CYCLES", "1000000"))
    corrupt = int(os.environ["DAMF_SOAK_CORRUPT"]) if "DAMF_SOAK_CORRUPT" in os.environ else None
    report_path = os.environ.get("DAMF_SOAK_REPORT")
    tb = soak.tb(dut)
    drivers = [p for p in tb.parts if p is not tb.out]
    take = soak.take or _take_expected
    start_wall = time.monotonic()
    t0 = get_sim_time("ns")
    report = {"block": block, "seed": tb.seed, "unit": soak.unit, "budget": budget}

    def cycles():
        return int((get_sim_time("ns") - t0) // CLOCK_NS)

    def write_report(**extra):
        report.update(cycles=cycles(), wall_s=time.monotonic() - start_wall, **extra)
        if report_path:
            with open(report_path, "w") as f:
                json.dump(report, f)

    def restall():
        idle, bp = tb.rng.choice(STALLS), tb.rng.choice(STALLS)
        for d in drivers:
            if d is not getattr(tb, "w", None):     # weight loads are not the stream under test
                d.idle = random_pattern(tb.rng, idle)
        tb.out.backpressure = random_pattern(tb.rng, bp)

    await (soak.start or _reset)(tb)
    expected = deque(take(tb))          # anything the start queued (nothing, so far)
    checked = batches = 0
    last_result, next_progress = 0, PROGRESS_S
    batch_beats = 1
    while True:
        queued = sum(len(d.queue) for d in drivers)
        if cycles() < budget and queued <= batch_beats // 2:
            restall()
            before = sum(d.sent + len(d.queue) for d in drivers)
            soak.batch(tb, batches == 0)
            new = take(tb)
            if corrupt is not None and checked + len(expected) <= corrupt < checked + len(expected) + len(new):
                new[corrupt - checked - len(expected)] = _corrupt(new[corrupt - checked - len(expected)])
            expected.extend(new)
            batch_beats = max(1, sum(d.sent + len(d.queue) for d in drivers) - before)
            batches += 1
        elif cycles() >= budget and not expected:
            break
        await ClockCycles(dut.clk, max(20, min(STEP, batch_beats // 4)))
        got = tb.out.received
        for word in got:
            if not expected:
                write_report(results=checked, mismatch={"index": checked, "got": str(soak.decode(tb, word)),
                                                        "expected": "nothing (an extra result)"})
                raise AssertionError(f"{block}: an extra result after {checked} {soak.unit} "
                                     f"(seed {tb.seed})")
            want, have = expected.popleft(), soak.decode(tb, word)
            if have != want:
                write_report(results=checked, mismatch={"index": checked, "got": str(have), "expected": str(want)})
                raise AssertionError(f"{block}: result {checked} ({soak.unit}): {have}, expected {want} "
                                     f"(seed {tb.seed})")
            checked += 1
        if got:
            last_result = cycles()
        elif expected and cycles() - last_result > STALL:
            write_report(results=checked, stalled=True)
            raise AssertionError(f"{block}: no result for {STALL} cycles with {len(expected)} due, after "
                                 f"{checked} {soak.unit}: the block stalled (seed {tb.seed})")
        # keep memory flat: the testbench's logs of transfers are not needed here
        got.clear()
        tb.out.cycles.clear()
        for d in drivers:
            d.accept_cycles.clear()
        wall = time.monotonic() - start_wall
        if wall >= next_progress:
            next_progress += PROGRESS_S
            dut._log.info("soak %s: %d of %d cycles, %d %s checked, %.0f s, %.0f cycles/s",
                          block, cycles(), budget, checked, soak.unit, wall, cycles() / wall)
    await ClockCycles(dut.clk, 100)     # nothing extra may follow
    if tb.out.received:
        write_report(results=checked, mismatch={"index": checked, "got": str(soak.decode(tb, tb.out.received[0])),
                                                "expected": "nothing (an extra result)"})
        raise AssertionError(f"{block}: an extra result after {checked} {soak.unit} (seed {tb.seed})")
    write_report(results=checked, batches=batches)
    dut._log.info("soak %s: %d cycles, %d %s match the golden model (%d batches)",
                  block, report["cycles"], checked, soak.unit, batches)
