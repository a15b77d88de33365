"""cocotb testbench of the integer softmax unit, checked against ``golden.softmax``.

Environment (set by the runner ``sim/test_softmax.py`` or ``damf sim``):

* ``DAMF_CONFIG``  -- the ``softmax.json`` written next to the Verilog (required);
* ``DAMF_SEED``    -- seed of every random choice (printed at the start of each test);
* ``DAMF_COUNT``   -- random rows per test (default 12);
* ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE`` -- probability of an input gap / of ready low
  (default 0.3 each, in the tests that use them);
* ``DAMF_TIMEOUT_MS`` -- simulated-time limit of each test (default 5 ms);
* ``DAMF_VECTORS`` / ``DAMF_RESULTS`` -- for ``vectors_file``.
"""

import json
import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..config import SoftmaxConfig
from ..golden import vectors as golden_vectors
from ..golden.softmax import softmax_row, split_rows
from .streams import BlockTB, cocotb_timeout

TIMEOUT = cocotb_timeout()
IDLE = float(os.environ.get("DAMF_IDLE", "0.3"))
BACKPRESSURE = float(os.environ.get("DAMF_BACKPRESSURE", "0.3"))


class TB(BlockTB):
    """Clock, reset, a driver of ``i`` and a monitor of ``o``."""

    config_cls = SoftmaxConfig
    inputs = {"src": "i"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        self.lengths = []

    def send(self, row, *, expect=True, last=True):
        """Queue one row of scores (``last`` set on its final beat unless ``last`` is false:
        then the row must be ``seq_len`` long and ends by its length)."""
        cfg = self.cfg
        mask = (1 << cfg.in_width) - 1
        for i, s in enumerate(row):
            flag = int(last and i == len(row) - 1)
            self.src.send((int(s) & mask) | (flag << cfg.in_width))
        if expect:
            self.expected.append(softmax_row(cfg, row).tolist())
        self.lengths.append(len(row))

    def beats(self):
        mask = (1 << self.cfg.prob_width) - 1
        return [(w & mask, w >> self.cfg.prob_width) for w in self.out.received]

    async def wait_results(self, count):
        budget = 20 * sum(self.cfg.row_interval(n) for n in self.lengths) + 100
        await super().wait_results(count, budget, "probabilities")

    async def check(self):
        """Wait for every expected probability; compare values and last flags, in order."""
        want = sum(len(r) for r in self.expected)
        await self.wait_results(want)
        await ClockCycles(self.dut.clk, self.cfg.row_interval(self.cfg.seq_len))  # nothing extra may follow
        beats = self.beats()
        assert len(beats) == want, f"{len(beats)} probabilities, expected {want} (seed {self.seed})"
        flags = [f for _, f in beats]
        want_flags = [int(i == len(r) - 1) for r in self.expected for i in range(len(r))]
        assert flags == want_flags, f"last flags {flags}, expected {want_flags} (seed {self.seed})"
        got = split_rows(self.cfg, beats)
        for n, (e, g) in enumerate(zip(self.expected, got)):
            assert g == e, f"row {n}: {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d rows (%d probabilities) match the golden model", len(got), want)


def rows(tb, count):
    return golden_vectors.softmax_edge_rows(tb.cfg) + golden_vectors.random_score_rows(tb.cfg, tb.nprng, count)


@cocotb.test(**TIMEOUT)
@cocotb.parametrize(stalls=["none", "idle", "backpressure", "both"])
async def edge_and_random(dut, stalls):
    """Edge and random rows back to back, under every mix of input gaps and backpressure."""
    tb = TB(dut, idle=IDLE if stalls in ("idle", "both") else 0.0,
            backpressure=BACKPRESSURE if stalls in ("backpressure", "both") else 0.0)
    await tb.reset()
    for row in rows(tb, int(os.environ.get("DAMF_COUNT", "12"))):
        tb.send(row)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def row_ends_at_seq_len(dut):
    """A row of seq_len scores without ``last`` ends by its length; the output marks it last."""
    tb = TB(dut)
    await tb.reset()
    for row in golden_vectors.random_score_rows(tb.cfg, tb.nprng, 3):
        full = (row * tb.cfg.seq_len)[:tb.cfg.seq_len]
        tb.send(full, last=False)
        tb.send(row)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def cycles_per_row(dut):
    """Measured latency, row cycles and row interval equal the documented formulas, for a
    full row and a short one (source always valid, sink always ready)."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    lengths = [cfg.seq_len, max(1, cfg.seq_len // 2), cfg.seq_len]
    for n in lengths:
        tb.send(golden_vectors.random_score_rows(cfg, tb.nprng, 1)[0][:1] * n)
    await tb.check()
    ins, outs = tb.src.accept_cycles, tb.out.cycles
    start = 0
    for r, n in enumerate(lengths):
        first_in, last_in = ins[start], ins[start + n - 1]
        first_out, last_out = outs[start], outs[start + n - 1]
        assert ins[start:start + n] == list(range(first_in, first_in + n)), "input beats not back to back"
        assert outs[start:start + n] == list(range(first_out, first_out + n)), "output beats not back to back"
        assert first_out - last_in == cfg.row_latency(n), \
            f"row {r} (n={n}): latency {first_out - last_in}, documented {cfg.row_latency(n)}"
        assert last_out - first_in == cfg.row_cycles(n), \
            f"row {r} (n={n}): {last_out - first_in} cycles, documented {cfg.row_cycles(n)}"
        if r + 1 < len(lengths):
            assert ins[start + n] - first_in == cfg.row_interval(n), \
                f"row {r} (n={n}): interval {ins[start + n] - first_in}, documented {cfg.row_interval(n)}"
        dut._log.info("n = %d: latency %d, row cycles %d (documented %d, %d)", n, first_out - last_in,
                      last_out - first_in, cfg.row_latency(n), cfg.row_cycles(n))
        start += n


@cocotb.test(**TIMEOUT)
async def reset_mid_row(dut):
    """A reset in any phase drops the row; the next row is exact."""
    tb = TB(dut)
    await tb.reset()
    row = golden_vectors.random_score_rows(tb.cfg, tb.nprng, 1)[0]
    tb.send(row, expect=False)
    await tb.src.wait_empty()
    await ClockCycles(dut.clk, tb.rng.randint(0, tb.cfg.row_latency(len(row))))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    tb.out.received.clear()
    tb.send(golden_vectors.random_score_rows(tb.cfg, tb.nprng, 1)[0])
    await tb.check()


@cocotb.test(skip="DAMF_VECTORS" not in os.environ, **TIMEOUT)
async def vectors_file(dut):
    """Replay a user's vector file; write what the RTL produced to ``DAMF_RESULTS``."""
    tb = TB(dut)
    await tb.reset()
    _, inputs, _ = golden_vectors.load(os.environ["DAMF_VECTORS"], block="softmax")
    for row in inputs["s"]:
        tb.send(row, expect=False)
    await tb.wait_results(sum(len(r) for r in inputs["s"]))
    got = split_rows(tb.cfg, tb.beats())
    with open(os.environ["DAMF_RESULTS"], "w") as f:
        json.dump({"p": got}, f)
