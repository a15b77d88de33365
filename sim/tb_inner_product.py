"""cocotb testbench of the inner-product unit, checked against ``golden.inner_product``.

Environment (set by the runner ``sim/test_inner_product.py`` or ``damf sim``):

* ``DAMF_CONFIG``  -- the ``inner-product.json`` written next to the Verilog (required);
* ``DAMF_SEED``    -- seed of every random choice (printed at the start of each test);
* ``DAMF_COUNT``   -- random tokens per weight set (default 1000);
* ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE`` -- probability of an input gap / of ready low;
* ``DAMF_TIMEOUT_MS`` -- simulated-time limit of each test (default 5 ms = 500 k cycles),
  so a stalled unit fails instead of hanging;
* ``DAMF_VECTORS`` / ``DAMF_RESULTS`` -- for ``vectors_file``: the vector file to replay and
  where to write what the RTL produced.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..config import InnerProductConfig
from ..golden import vectors as golden_vectors
from ..golden.inner_product import inner_product
from ..golden.quant import int_range
from ..hdl.inner_product import pack_tokens, pack_weight_words, unpack_output
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak


# Every test fails, rather than hangs, if the unit deadlocks.
TIMEOUT = cocotb_timeout()


class TB(BlockTB):
    """Clock, reset, and one driver/monitor per stream of the unit."""

    config_cls = InnerProductConfig
    inputs = {"x": "i"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0, seed=None):
        super().__init__(dut, idle=idle, backpressure=backpressure, seed=seed)
        self.w = self.add_driver("w", "w", idle) if self.cfg.weights == "runtime" else None
        self.expected_p, self.expected_q = [], []

    def queue_load(self, u, v):
        """Queue one weight load (padding lanes filled with noise)."""
        lo, hi = int_range(self.cfg.w_width)
        for word in pack_weight_words(self.cfg, u, v, pad=lambda: self.rng.randint(lo, hi)):
            self.w.send(word)

    async def load(self, u, v):
        """Load weights through the w stream, once all queued tokens are accepted."""
        await self.x.wait_empty()
        self.queue_load(u, v)
        await self.w.wait_empty()

    def send_tokens(self, tokens, u=None, v=None):
        """Queue tokens (beats with random padding lanes) and, given u and v, their golden results."""
        cfg = self.cfg
        lo, hi = int_range(cfg.x_width)
        if u is not None:
            p, q = inner_product(cfg, tokens, u, v)
            self.expected_p += p.tolist()
            self.expected_q += q.tolist()
        # Padding lanes of the last beat must be ignored: fill them with noise.
        for word in pack_tokens(cfg, tokens, pad=lambda: self.rng.randint(lo, hi)):
            self.x.send(word)

    async def wait_results(self, count):
        """Wait for ``count`` results in total, failing (not hanging) if they do not come.

        The bound is generous: every beat queued so far may take 20 cycles (gaps, stalls).
        """
        beats = self.x.sent + len(self.x.queue) + (self.w.sent + len(self.w.queue) if self.w else 0)
        budget = 20 * beats + 100 * self.cfg.latency
        await super().wait_results(count, budget, "results")

    def results(self):
        got = [unpack_output(self.cfg, word) for word in self.out.received]
        return [p for p, _ in got], [q for _, q in got]

    async def check(self):
        """Wait for every expected result and compare them all, in order."""
        await self.wait_results(len(self.expected_p))
        await ClockCycles(self.dut.clk, 2 * self.cfg.latency)  # nothing extra may follow
        got_p, got_q = self.results()
        assert len(got_p) == len(self.expected_p), \
            f"{len(got_p)} results for {len(self.expected_p)} tokens (seed {self.seed})"
        for i, (ep, eq, gp, gq) in enumerate(zip(self.expected_p, self.expected_q, got_p, got_q)):
            assert (gp, gq) == (ep, eq), \
                f"token {i}: p={gp} q={gq}, expected p={ep} q={eq} (seed {self.seed})"
        self.dut._log.info("%d results match the golden model", len(got_p))


def weight_sets(tb):
    """(u, v) pairs to test: random, and for runtime weights also the extremes."""
    cfg = tb.cfg
    if cfg.weights == "fixed":
        return [cfg.fixed_vectors()]
    lo, hi = int_range(cfg.w_width)
    extremes = ([[lo] * cfg.d_model] * cfg.rank, [[hi] * cfg.d_model] * cfg.rank)
    return [extremes, tuple(m.tolist() for m in golden_vectors.random_weights(cfg, tb.nprng))]


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    count = int(os.environ.get("DAMF_COUNT", "1000"))
    for u, v in weight_sets(tb):
        if tb.w is not None:
            await tb.load(u, v)
        tb.send_tokens(golden_vectors.edge_tokens(tb.cfg), u, v)
        tb.send_tokens(golden_vectors.random_tokens(tb.cfg, tb.nprng, count).tolist(), u, v)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge and random tokens, every weight set, under each mix of input gaps and output backpressure.")


@cocotb.test(**TIMEOUT)
async def latency_and_throughput(dut):
    """Measured latency equals ``cfg.latency``; one result every ``beats`` cycles."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    u, v = weight_sets(tb)[-1]
    if tb.w is not None:
        await tb.load(u, v)
    tokens = golden_vectors.random_tokens(cfg, tb.nprng, 16).tolist()
    tb.send_tokens(tokens, u, v)
    await tb.check()
    last_beats = tb.x.accept_cycles[cfg.beats - 1::cfg.beats]
    latencies = {o - i for i, o in zip(last_beats, tb.out.cycles)}
    assert latencies == {cfg.latency}, f"latency {latencies}, documented {cfg.latency}"
    intervals = {b - a for a, b in zip(tb.out.cycles, tb.out.cycles[1:])}
    assert intervals == {cfg.beats}, f"result interval {intervals}, documented {cfg.beats}"


@cocotb.test(**TIMEOUT)
async def reload_while_streaming(dut):
    """Weight loads offered while tokens stream: each token uses exactly one weight set.

    A token uses the last load whose first word was accepted before the token's first beat;
    a load must never split a token, nor be accepted in the same cycle as a token starts.
    """
    tb = TB(dut, idle=0.2, backpressure=0.2)
    if tb.w is None:
        assert not hasattr(dut, "w__valid"), "weights=fixed must not have a w stream"
        return
    await tb.reset()
    cfg = tb.cfg
    sets = [tuple(m.tolist() for m in golden_vectors.random_weights(cfg, tb.nprng)) for _ in range(4)]
    await tb.load(*sets[0])
    tokens = golden_vectors.random_tokens(cfg, tb.nprng, 300).tolist()
    tb.send_tokens(tokens)
    for u, v in sets[1:]:
        await ClockCycles(dut.clk, tb.rng.randint(1, 60 * cfg.beats))
        tb.queue_load(u, v)
        await tb.w.wait_empty()
    await tb.x.wait_empty()
    starts = tb.w.accept_cycles[::cfg.beats]       # first word of each load
    firsts = tb.x.accept_cycles[::cfg.beats]       # first beat of each token
    used = [sum(1 for s in starts if s <= t) - 1 for t in firsts]
    assert used[-1] > 0, "no load happened while tokens streamed"
    for t, k in zip(tokens, used):
        p, q = inner_product(cfg, [t], *sets[k])
        tb.expected_p += p.tolist()
        tb.expected_q += q.tolist()
    await tb.check()


async def pulse_reset(dut, cycles=3):
    """``rst`` high for ``cycles`` edges (the sources idle), then low again."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0


async def wait_refused(tb, cycles):
    """Tokens are queued on ``i``: for ``cycles`` edges none is accepted and ``i.ready`` is low."""
    sent = tb.x.sent
    for _ in range(cycles):
        await RisingEdge(tb.dut.clk)
        assert not tb.dut.i__ready.value, f"i.ready high after reset before a complete weight load (seed {tb.seed})"
    assert tb.x.sent == sent, f"a token was accepted after reset before a complete weight load (seed {tb.seed})"


@cocotb.test(**TIMEOUT)
async def reset_mid_load(dut):
    """Reset with results in flight and a weight load half received (runtime weights): the
    half load is forgotten and so are the old weights -- tokens offered after the reset are
    not accepted (``i.ready`` low for 40 cycles) until a complete new load, then every result
    is exact with the new weights.  Fixed weights: tokens after a reset are exact at once."""
    tb = TB(dut, idle=0.2, backpressure=0.2)
    await tb.reset()
    cfg = tb.cfg
    sets = weight_sets(tb)
    (u0, v0), (u1, v1) = sets[0], sets[-1]
    if tb.w is not None:
        await tb.load(u0, v0)
    tb.send_tokens(golden_vectors.random_tokens(cfg, tb.nprng, 20).tolist())   # not checked
    await tb.x.wait_empty()
    if tb.w is not None:
        lo, hi = int_range(cfg.w_width)
        half = pack_weight_words(cfg, u1, v1, pad=lambda: tb.rng.randint(lo, hi))[:max(1, cfg.beats - 1)]
        for word in half:                                # a load cut short by the reset
            tb.w.send(word)
        await tb.w.wait_empty()
    await pulse_reset(dut)
    tb.out.received.clear()
    u, v = (u1, v1) if tb.w is not None else (u0, v0)
    tokens = golden_vectors.edge_tokens(cfg) + golden_vectors.random_tokens(cfg, tb.nprng, 100).tolist()
    tb.send_tokens(tokens, u, v)
    if tb.w is not None:
        await wait_refused(tb, 40)
        tb.queue_load(u, v)
    await tb.check()


async def replay(tb, inputs):
    """Drive a vector file's inputs (its ``u``, ``v`` for runtime weights); ``{"p": ..., "q": ...}``."""
    u, v = (inputs["u"], inputs["v"]) if tb.cfg.weights == "runtime" else tb.cfg.fixed_vectors()
    if tb.w is not None:
        await tb.load(u, v)
    tb.send_tokens(inputs["x"], u, v)
    await tb.wait_results(len(inputs["x"]))
    got_p, got_q = tb.results()
    return {"p": got_p, "q": got_q}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): tokens, one (p, q) result each -------------------------------

async def _soak_start(tb):
    await tb.reset()
    tb.soak_weights = weight_sets(tb)[-1]
    if tb.w is not None:
        await tb.load(*tb.soak_weights)


def _soak_batch(tb, first):
    tokens = golden_vectors.random_tokens(tb.cfg, tb.nprng, 400).tolist()
    if first:
        tokens = golden_vectors.edge_tokens(tb.cfg) + tokens
    tb.send_tokens(tokens, *tb.soak_weights)


def _soak_take(tb):
    out = [p + q for p, q in zip(tb.expected_p, tb.expected_q)]
    tb.expected_p, tb.expected_q = [], []
    return out


def _soak_decode(tb, word):
    p, q = unpack_output(tb.cfg, word)
    return p + q


SOAK = Soak("tokens (p, q)", TB, batch=_soak_batch, decode=_soak_decode, take=_soak_take, start=_soak_start)
