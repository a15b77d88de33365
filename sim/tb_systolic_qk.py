"""cocotb testbench of the systolic score engine, checked against ``golden.systolic_qk``.

Environment (set by the runner ``sim/test_systolic_qk.py`` or ``damf sim``):

* ``DAMF_CONFIG``  -- the ``systolic-qk.json`` written next to the Verilog (required);
* ``DAMF_SEED``    -- seed of every random choice (printed at the start of each test);
* ``DAMF_COUNT``   -- random ``(Q, K)`` problems per test (default 6);
* ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE`` -- probability of an input gap / of ready low
  (default 0.3 each, in the tests that use them);
* ``DAMF_TIMEOUT_MS`` -- simulated-time limit of each test (default 5 ms = 500 k cycles),
  so a stalled engine fails instead of hanging;
* ``DAMF_VECTORS`` / ``DAMF_RESULTS`` -- for ``vectors_file``: the vector file to replay and
  where to write what the RTL produced.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..config import SystolicQKConfig
from ..golden import vectors as golden_vectors
from ..golden.quant import int_range
from ..golden.systolic_qk import score_rows, scores, scores_from_rows
from ..hdl.systolic_qk import pack_input_beats, unpack_output
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak


# Every test fails, rather than hangs, if the engine deadlocks.
TIMEOUT = cocotb_timeout()


class TB(BlockTB):
    """Clock, reset, a driver of ``i`` and a monitor of ``o``.

    ``config_cls`` and :meth:`product` are what ``tb_systolic_av`` (the same array as the
    ``A' x V`` engine) changes."""

    config_cls = SystolicQKConfig
    inputs = {"qk": "i"}

    def product(self, q, k):
        return scores(self.cfg, q, k)

    def send(self, q, k, *, expect=True):
        """Queue the beats of one ``(Q, K)`` problem (padding lanes filled with noise) and,
        unless ``expect`` is false, its golden score rows."""
        cfg = self.cfg
        if expect:
            self.expected += score_rows(cfg, self.product(q, k))
        lo, hi = int_range(min(cfg.q_width, cfg.k_width))
        for word in pack_input_beats(cfg, q, k, pad=lambda: self.rng.randint(lo, hi)):
            self.qk.send(word)

    async def wait_results(self, count):
        """Wait for ``count`` score rows in total, failing (not hanging) if they do not come.

        The bound is generous: every beat queued so far may take 20 cycles (gaps, stalls).
        """
        beats = self.qk.sent + len(self.qk.queue)
        budget = 20 * (beats + self.cfg.tiles * self.cfg.hold) + 10 * self.cfg.tile_cycles
        await super().wait_results(count, budget, "score rows")

    def results(self):
        return [unpack_output(self.cfg, word) for word in self.out.received]

    async def check(self):
        """Wait for every expected score row and compare them all, in order."""
        await self.wait_results(len(self.expected))
        await ClockCycles(self.dut.clk, 2 * self.cfg.tile_cycles)  # nothing extra may follow
        got = self.results()
        assert len(got) == len(self.expected), \
            f"{len(got)} score rows, expected {len(self.expected)} (seed {self.seed})"
        per_s = self.cfg.score_beats
        for i, (e, g) in enumerate(zip(self.expected, got)):
            if g != e:
                n, beat = divmod(i, per_s)
                raise AssertionError(f"problem {n}, score row {beat} (o beat {i}): {g}, expected {e} "
                                     f"(seed {self.seed})")
        self.dut._log.info("%d score rows (%d S matrices) match the golden model",
                           len(got), len(got) // per_s)


def problems(tb, count):
    """Edge problems, then ``count`` random ones."""
    edges = golden_vectors.qk_edge_problems(tb.cfg)
    return edges + [golden_vectors.random_qk(tb.cfg, tb.nprng) for _ in range(count)]


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for q, k in problems(tb, int(os.environ.get("DAMF_COUNT", "6"))):
        tb.send(q, k)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge and random problems back to back, under every mix of input gaps and backpressure.")


@cocotb.test(**TIMEOUT)
async def cycles_per_tile(dut):
    """Measured latency, tile interval and total cycles equal the documented formulas.

    Two problems back to back, a source always valid and a sink always ready.
    """
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    for q, k in problems(tb, 2)[-2:]:
        tb.send(q, k)
    await tb.check()
    tiles = 2 * cfg.tiles
    origins = cfg.tile_origins() * 2
    ins, outs = tb.qk.accept_cycles, tb.out.cycles
    firsts = ins[::cfg.d_head]                       # first beat of each tile
    lasts = ins[cfg.d_head - 1::cfg.d_head]          # last beat of each tile
    rows = [cfg.tile_score_rows(r0) for r0, _ in origins]
    starts = [sum(rows[:t]) for t in range(tiles)]   # index of each tile's first score row
    out_firsts = [outs[s] for s in starts]

    beats = {b - a for t in range(tiles) for a, b in zip(ins[t * cfg.d_head:(t + 1) * cfg.d_head],
                                                         ins[t * cfg.d_head + 1:(t + 1) * cfg.d_head])}
    assert beats <= {1}, f"beats of a tile {beats} cycles apart, documented 1"
    latencies = {o - i for i, o in zip(lasts, out_firsts)}
    assert latencies == {cfg.latency}, f"latency {latencies}, documented {cfg.latency}"
    gaps = {outs[s + r + 1] - outs[s + r] for s, n in zip(starts, rows) for r in range(n - 1)}
    assert gaps <= {1}, f"rows of a tile {gaps} cycles apart, documented 1"
    intervals = {b - a for a, b in zip(firsts, firsts[1:])} | {b - a for a, b in zip(out_firsts, out_firsts[1:])}
    assert intervals == {cfg.cycles_per_tile}, \
        f"tiles start {intervals} cycles apart, documented cycles_per_tile = {cfg.cycles_per_tile}"
    # One S: first input beat of the first tile to the last score row of its last tile.
    total = outs[cfg.score_beats - 1] - ins[0]
    assert total == cfg.cycles, f"one S took {total} cycles, documented cycles = {cfg.cycles}"
    per_tile = (out_firsts[-1] - out_firsts[0]) / (tiles - 1)
    assert abs(per_tile - cfg.cycles_per_tile) <= 2, f"{per_tile} cycles per tile, documented {cfg.cycles_per_tile}"
    dut._log.info("measured: latency %s, %.2f cycles per tile, %d cycles per S (%d tiles of %d steps); "
                  "documented %d, %d, %d", latencies, per_tile, total, cfg.tiles, cfg.d_head,
                  cfg.latency, cfg.cycles_per_tile, cfg.cycles)


@cocotb.test(**TIMEOUT)
async def reset_mid_stream(dut):
    """A reset while tiles are in flight empties the array; the next problem is exact."""
    tb = TB(dut)
    await tb.reset()
    q, k = golden_vectors.random_qk(tb.cfg, tb.nprng)
    tb.send(q, k, expect=False)
    await tb.qk.wait_empty()
    await ClockCycles(dut.clk, tb.rng.randint(0, tb.cfg.latency))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    tb.out.received.clear()
    q, k = golden_vectors.random_qk(tb.cfg, tb.nprng)
    tb.send(q, k)
    await tb.check()


async def replay(tb, inputs):
    """Every ``(Q, K)`` problem of a vector file; ``{"s": rows of S}``."""
    cfg = tb.cfg
    todo = golden_vectors.qk_problems(cfg, inputs)
    for q, k in todo:
        tb.send(q, k, expect=False)
    await tb.wait_results(len(todo) * cfg.score_beats)
    got = tb.results()
    s = [row for n in range(len(todo))
         for row in scores_from_rows(cfg, got[n * cfg.score_beats:(n + 1) * cfg.score_beats]).tolist()]
    return {"s": s}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): (Q, K) problems, one score row per o beat --------------------

def _soak_batch(tb, first):
    todo = problems(tb, 20) if first else [golden_vectors.random_qk(tb.cfg, tb.nprng) for _ in range(20)]
    for q, k in todo:
        tb.send(q, k)


def _soak_decode(tb, word):
    return unpack_output(tb.cfg, word)


SOAK = Soak("score rows", TB, batch=_soak_batch, decode=_soak_decode)
