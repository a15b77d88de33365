"""cocotb soak test of any block: random inputs under random stalls until a cycle budget is
spent, every result checked bit-exact against the golden model as it arrives.

The block comes from ``DAMF_CONFIG`` (its ``BLOCK.json``); the testbench is the block's own
``tb_BLOCK.TB`` (its drivers, packing and golden expectations), driven here in batches by a
:class:`Soak` adapter from :data:`SOAKS`.  Each batch picks new idle and backpressure
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

import json
import os
import time
from collections import deque
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles

from ..golden import vectors as golden_vectors
from ..golden.damf_head_block import weight_vectors
from . import tb_baseline_head, tb_damf_head, tb_inner_product, tb_row_stats, tb_score
from . import tb_shift_accumulate, tb_softmax, tb_systolic_av, tb_systolic_qk
from .streams import random_pattern

CLOCK_NS = 10           # BlockTB's clock
STEP = 500              # cycles between two looks at the output
PROGRESS_S = 30.0       # wall seconds between progress lines
STALL = 50_000          # cycles without a result while results are due: the block stalled
STALLS = (0.0, 0.1, 0.3, 0.5)


@dataclass(frozen=True)
class Soak:
    """How to soak one block with its testbench ``tb_BLOCK``.

    * ``unit``: what the checked results (the ``o`` transfers) are, plural;
    * ``tb``: the testbench class;
    * ``start(tb, first)``: async; reset and anything needed before streaming (weights);
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


# ---- inner-product: tokens, one (p, q) result each -------------------------------------------

async def _ip_start(tb):
    await tb.reset()
    tb.soak_weights = tb_inner_product.weight_sets(tb)[-1]
    if tb.w is not None:
        await tb.load(*tb.soak_weights)


def _ip_batch(tb, first):
    tokens = golden_vectors.random_tokens(tb.cfg, tb.nprng, 400).tolist()
    if first:
        tokens = golden_vectors.edge_tokens(tb.cfg) + tokens
    tb.send_tokens(tokens, *tb.soak_weights)


def _ip_take(tb):
    out = [p + q for p, q in zip(tb.expected_p, tb.expected_q)]
    tb.expected_p, tb.expected_q = [], []
    return out


def _ip_decode(tb, word):
    p, q = tb_inner_product.unpack_output(tb.cfg, word)
    return p + q


# ---- systolic-qk / systolic-av: problems, one score row per o beat ---------------------------

def _qk_batch(tb, first):
    todo = tb_systolic_qk.problems(tb, 20) if first else \
        [golden_vectors.random_qk(tb.cfg, tb.nprng) for _ in range(20)]
    for q, k in todo:
        tb.send(q, k)


def _av_batch(tb, first):
    todo = tb_systolic_av.problems(tb, 20) if first else \
        [golden_vectors.random_av(tb.cfg, tb.nprng) for _ in range(20)]
    for a, v in todo:
        tb.send_av(a, v)


def _rows_decode(tb, word):
    return tb_systolic_qk.unpack_output(tb.cfg, word)


# ---- score: heads of keys and queries, one beat of scores per o beat -------------------------

def _score_batch(tb, first):
    cfg, rng = tb.cfg, tb.nprng
    for lk in tb_score.lengths(cfg, rng, 30)[0 if first else 3:]:
        lq = int(rng.integers(1, 2 * cfg.seq_len + 1))
        tb.problem(tb_score.pq_rows(cfg, rng, lq, edges=first), tb_score.pq_rows(cfg, rng, lk, edges=first))
    tb.bounds.clear()


def _score_decode(tb, word):
    return tb_score.unpack_output(tb.cfg, word)


# ---- row-stats: rows of scores, one set-up per row -------------------------------------------

def _row_stats_batch(tb, first):
    for row in golden_vectors.ROW_STATS.generate(tb.cfg, tb.nprng, 200)["rows"]:
        tb.send_row(row)


def _row_stats_decode(tb, word):
    return tb_row_stats.unpack_output(tb.cfg, word)


# ---- shift-accumulate: rows of keys, one Z row each ------------------------------------------

def _sa_batch(tb, first):
    todo = tb_shift_accumulate.rows(tb, 100) if first else tb_shift_accumulate.random_rows(tb, 200)
    split = bool(tb.rng.getrandbits(1))
    for row in todo:
        tb.send_row(*row, split=split)
    tb.beats.clear()


def _sa_decode(tb, word):
    return tb_shift_accumulate.unpack_output(tb.cfg, word)


# ---- damf-head: heads of X (and Y) and V, one Z row per o beat -------------------------------

async def _damf_start(tb):
    await tb.reset()
    if tb.w is not None:
        await tb.load_weights(*weight_vectors(tb.cfg, tb.nprng))


def _damf_batch(tb, first):
    todo = tb.heads(30)
    if not first:
        todo = todo[len(tb.heads(0)):]   # the edge heads come first; once is enough
    for X, V, Y in todo:
        tb.head(X, V, Y)


def _damf_decode(tb, word):
    return tb_damf_head.unpack_output(tb.cfg, word)


# ---- softmax: rows of scores, one beat of probabilities per o beat ---------------------------

def _softmax_batch(tb, first):
    rows = tb_softmax.rows(tb, 100) if first else golden_vectors.random_score_rows(tb.cfg, tb.nprng, 100)
    for n, row in enumerate(rows):
        tb.send(row, ragged=n % 2 == 1)


def _softmax_take(tb):
    out = [(list(beat), int(b == len(row) - 1), True) for row in tb.expected for b, beat in enumerate(row)]
    tb.expected, tb.lengths = [], []
    return out


def _softmax_decode(tb, word):
    values, count, last, lanes = tb_softmax.unpack_output(tb.cfg, word)
    return list(values), int(last), not any(lanes[count:])   # lanes past count must be zero


# ---- baseline-head: heads, one Z beat per o beat ---------------------------------------------

def _baseline_batch(tb, first):
    todo = tb_baseline_head.problems(tb, 10)
    if not first:
        todo = todo[-10:]
    for problem in todo:
        tb.send_problem(problem)


def _baseline_decode(tb, word):
    return tb_baseline_head.unpack_output(tb.cfg, word)


# Keyed by block name (the names of damf.blocks.BLOCKS; tests/test_soak.py checks they agree).
SOAKS = {
    "inner-product": Soak("tokens (p, q)", tb_inner_product.TB, _ip_batch, _ip_decode, _ip_take, _ip_start),
    "systolic-qk": Soak("score rows", tb_systolic_qk.TB, _qk_batch, _rows_decode),
    "score": Soak("beats of scores", tb_score.TB, _score_batch, _score_decode),
    "row-stats": Soak("row set-ups", tb_row_stats.TB, _row_stats_batch, _row_stats_decode),
    "shift-accumulate": Soak("Z rows", tb_shift_accumulate.TB, _sa_batch, _sa_decode),
    "damf-head": Soak("Z rows", tb_damf_head.TB, _damf_batch, _damf_decode, start=_damf_start),
    "softmax": Soak("beats of probabilities", tb_softmax.TB, _softmax_batch, _softmax_decode, _softmax_take),
    "systolic-av": Soak("Z rows", tb_systolic_av.TB, _av_batch, _rows_decode),
    "baseline-head": Soak("Z beats", tb_baseline_head.TB, _baseline_batch, _baseline_decode,
                          start=tb_baseline_head.start),
}


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
    soak = SOAKS[block]
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
