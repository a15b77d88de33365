"""cocotb testbench of two differently configured ``damf-head``s in one design
(``damf generate --prefix a_`` and ``--prefix b_``, instantiated side by side by the top
``sim/test_prefix.py`` writes), both fed at once and checked against ``golden.damf_head_block``.

The top's ports are the heads' own, each name behind its instance's prefix: ``a_x__payload``,
``b_o__valid``, ...; one ``clk`` and ``rst`` for both.  Environment: ``DAMF_CONFIG_A`` /
``DAMF_CONFIG_B`` (the two ``damf-head.json``), ``DAMF_SEED``, ``DAMF_COUNT`` (random heads
each, default 12), ``DAMF_TIMEOUT_MS``.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout

from ..golden.damf_head_block import damf_head_block, heads, weight_vectors
from ..config import DamfHeadBlockConfig
from ..hdl.damf_head import unpack_output, v_words, x_beats
from ..hdl.inner_product import pack_weight_words
from .common_tests import random_vectors_test
from .streams import StreamDriver, StreamMonitor, cocotb_timeout, random_pattern

TIMEOUT = cocotb_timeout(20)


class Head:
    """Drivers and monitor of one instance's ports (``<name>_x``, ``<name>_v``, ``<name>_w``,
    ``<name>_o``), its configuration, weights and expected rows."""

    def __init__(self, dut, name, rng, nprng, idle, backpressure):
        self.name = name
        self.cfg = DamfHeadBlockConfig.from_file(os.environ[f"DAMF_CONFIG_{name.upper()}"])
        self.nprng = nprng
        clk = dut.clk
        self.x = StreamDriver(dut, f"{name}_x", clk, random_pattern(rng, idle))
        self.v = StreamDriver(dut, f"{name}_v", clk, random_pattern(rng, idle))
        self.w = StreamDriver(dut, f"{name}_w", clk) if self.cfg.weights == "runtime" else None
        self.out = StreamMonitor(dut, f"{name}_o", clk, random_pattern(rng, backpressure))
        self.parts = [p for p in (self.x, self.v, self.w, self.out) if p is not None]
        self.u, self.vw = weight_vectors(self.cfg, nprng)
        self.expected = []

    async def load_weights(self):
        for word in pack_weight_words(self.cfg.inner_product, self.u, self.vw):
            self.w.send(word)
        await self.w.wait_empty()

    def queue_heads(self, count):
        for X, V in heads(self.cfg, self.nprng, count):
            for word in x_beats(self.cfg, X):
                self.x.send(word)
            for word in v_words(self.cfg, V):
                self.v.send(word)
            self.expected += damf_head_block(self.cfg, X, V, self.u, self.vw).tolist()

    async def check(self, seed):
        budget = 40 * (self.cfg.seq_len * self.cfg.inner_product.beats + 20) * (len(self.expected) + 1)
        try:
            await with_timeout(self.out.wait_for(len(self.expected)), budget * 10, "ns")
        except SimTimeoutError:
            raise AssertionError(f"{self.name}: {len(self.out.received)} of {len(self.expected)} rows after "
                                 f"{budget} cycles (seed {seed})") from None
        got = [unpack_output(self.cfg, w) for w in self.out.received]
        assert len(got) == len(self.expected), f"{self.name}: {len(got)} rows, expected {len(self.expected)}"
        for r, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"{self.name}: Z row {r}: {g}, expected {e} (seed {seed})"


async def run(dut, idle, backpressure):
    seed = int(os.environ.get("DAMF_SEED", "1"))
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    pair = [Head(dut, name, rng, nprng, idle, backpressure) for name in ("a", "b")]
    dut._log.info("seed %d (rerun with DAMF_SEED=%d): a %r, b %r", seed, seed, pair[0].cfg, pair[1].cfg)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    for head in pair:
        for part in head.parts:
            cocotb.start_soon(part.run())
    for head in pair:
        if head.w is not None:
            await head.load_weights()
    count = int(os.environ.get("DAMF_COUNT", "12"))
    for head in pair:
        head.queue_heads(count)
    for head in pair:
        await head.check(seed)
    await ClockCycles(dut.clk, 10)
    for head in pair:
        assert len(head.out.received) == len(head.expected), f"{head.name}: rows after the last expected one"
        dut._log.info("%s: %d rows match the golden model", head.name, len(head.expected))


both_heads = random_vectors_test(
    run, timeout=TIMEOUT, name="both_heads",
    doc="Both heads at once under each mix of source gaps and sink backpressure.")
