"""cocotb testbench of the conventional attention head (block ``baseline-head``), checked
against ``golden.baseline_head``.

Environment (set by the runner ``sim/test_baseline_head.py`` or ``damf sim``):

* ``DAMF_CONFIG``  -- the ``baseline-head.json`` written next to the Verilog (required);
* ``DAMF_SEED``    -- seed of every random choice (printed at the start of each test);
* ``DAMF_COUNT``   -- random heads per test (default 3);
* ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE`` -- probability of an input gap / of ready low
  (default 0.3 each, in the tests that use them);
* ``DAMF_TIMEOUT_MS`` -- simulated-time limit of each test (default 5 ms = 500 k cycles);
* ``DAMF_VECTORS`` / ``DAMF_RESULTS`` -- for ``vectors_file``.
"""

import json
import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..config import BaselineHeadConfig
from ..golden import vectors as golden_vectors
from ..golden.baseline_head import head, z_beats, z_from_beats
from .streams import BlockTB, cocotb_timeout, pack, unpack

TIMEOUT = cocotb_timeout()
IDLE = float(os.environ.get("DAMF_IDLE", "0.3"))
BACKPRESSURE = float(os.environ.get("DAMF_BACKPRESSURE", "0.3"))


class TB(BlockTB):
    """Clock, reset, a driver of ``i`` (tokens) and a monitor of ``o`` (rows of ``Z`` tiles)."""

    config_cls = BaselineHeadConfig
    inputs = {"src": "i"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        self.heads = 0

    def send(self, q, k, v, *, expect=True):
        """Queue the ``seq_len`` token beats of one head and, unless ``expect`` is false, its
        golden ``Z`` beats."""
        cfg = self.cfg
        D = cfg.d_head
        for t in range(cfg.seq_len):
            self.src.send(pack(q[t], cfg.q_width) | pack(k[t], cfg.k_width) << (D * cfg.q_width)
                          | pack(v[t], cfg.v_width) << (D * (cfg.q_width + cfg.k_width)))
        if expect:
            self.expected += z_beats(cfg, head(cfg, q, k, v))
        self.heads += 1

    async def wait_results(self, count):
        """Wait for ``count`` beats of ``Z`` in total, failing (not hanging) if they do not come.
        The bound: every head queued so far may take 4 times its documented cycles."""
        budget = 4 * self.heads * self.cfg.cycles + 100
        await super().wait_results(count, budget, "Z beats")

    def results(self):
        return [unpack(word, self.cfg.out_width, self.cfg.cols) for word in self.out.received]

    async def check(self):
        """Wait for every expected beat of ``Z`` and compare them all, in order."""
        await self.wait_results(len(self.expected))
        await ClockCycles(self.dut.clk, 2 * self.cfg.av.latency + 2 * self.cfg.rows)  # nothing extra may follow
        got = self.results()
        assert len(got) == len(self.expected), f"{len(got)} Z beats, expected {len(self.expected)} (seed {self.seed})"
        per_head = self.cfg.out_beats
        for i, (e, g) in enumerate(zip(self.expected, got)):
            if g != e:
                n, beat = divmod(i, per_head)
                raise AssertionError(f"head {n}, Z beat {beat} (o beat {i}): {g}, expected {e} (seed {self.seed})")
        self.dut._log.info("%d Z beats (%d heads) match the golden model", len(got), len(got) // per_head)


def problems(tb, count):
    """Edge heads, then ``count`` random ones."""
    return golden_vectors.head_edge_problems(tb.cfg) + [golden_vectors.random_head(tb.cfg, tb.nprng)
                                                        for _ in range(count)]


@cocotb.test(**TIMEOUT)
@cocotb.parametrize(stalls=["none", "idle", "backpressure", "both"])
async def edge_and_random(dut, stalls):
    """Edge and random heads back to back, under every mix of input gaps and backpressure."""
    tb = TB(dut, idle=IDLE if stalls in ("idle", "both") else 0.0,
            backpressure=BACKPRESSURE if stalls in ("backpressure", "both") else 0.0)
    await tb.reset()
    for q, k, v in problems(tb, int(os.environ.get("DAMF_COUNT", "3"))):
        tb.send(q, k, v)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def cycles_per_head(dut):
    """Measured cycles per head and head interval equal the documented formulas (two random
    heads back to back, a source always valid and a sink always ready)."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    for q, k, v in problems(tb, 2)[-2:]:
        tb.send(q, k, v)
    await tb.check()
    ins, outs = tb.src.accept_cycles, tb.out.cycles
    assert ins[:cfg.seq_len] == list(range(ins[0], ins[0] + cfg.seq_len)), "load beats not back to back"
    interval = ins[cfg.seq_len] - ins[0]
    assert interval == cfg.head_interval, f"heads {interval} cycles apart, documented {cfg.head_interval}"
    totals = [outs[cfg.out_beats - 1] - ins[0], outs[-1] - ins[cfg.seq_len]]
    assert totals == [cfg.cycles] * 2, f"heads took {totals} cycles, documented cycles = {cfg.cycles}"
    dut._log.info("measured: %s cycles per head, heads %d cycles apart; documented %d, %d",
                  totals, interval, cfg.cycles, cfg.head_interval)


@cocotb.test(**TIMEOUT)
async def reset_mid_head(dut):
    """A reset in any phase abandons the head; the next head is exact."""
    tb = TB(dut)
    await tb.reset()
    tb.send(*golden_vectors.random_head(tb.cfg, tb.nprng), expect=False)
    await tb.src.wait_empty()
    await ClockCycles(dut.clk, tb.rng.randint(0, tb.cfg.cycles))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    tb.out.received.clear()
    tb.heads = 0
    tb.send(*golden_vectors.random_head(tb.cfg, tb.nprng))
    await tb.check()


@cocotb.test(skip="DAMF_VECTORS" not in os.environ, **TIMEOUT)
async def vectors_file(dut):
    """Replay a user's vector file; write what the RTL produced to ``DAMF_RESULTS``."""
    tb = TB(dut)
    await tb.reset()
    cfg, inputs, _ = golden_vectors.load(os.environ["DAMF_VECTORS"], block="baseline-head")
    todo = golden_vectors.head_problems(tb.cfg, inputs)
    for q, k, v in todo:
        tb.send(q, k, v, expect=False)
    await tb.wait_results(len(todo) * cfg.out_beats)
    await ClockCycles(dut.clk, 2)
    got = tb.results()
    z = [row for n in range(len(todo))
         for row in z_from_beats(cfg, got[n * cfg.out_beats:(n + 1) * cfg.out_beats]).tolist()]
    with open(os.environ["DAMF_RESULTS"], "w") as f:
        json.dump({"z": z}, f)
