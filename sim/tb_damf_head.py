"""cocotb testbench of the composed head (``damf-head``), checked against
``golden.damf_head_block``.

Environment (set by ``sim/test_damf_head.py`` or ``damf sim``): ``DAMF_CONFIG`` (the
``damf-head.json`` next to the Verilog), ``DAMF_SEED``, ``DAMF_COUNT`` (random heads,
default 24), ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE``, ``DAMF_TIMEOUT_MS``, and ``DAMF_VECTORS`` /
``DAMF_RESULTS`` for ``vectors_file``.
"""

import json
import os

import cocotb
from cocotb.triggers import ClockCycles

from ..golden import vectors as golden_vectors
from ..golden.damf_head_block import cross_heads, damf_head_block, heads, split_heads, weight_vectors
from ..head_config import DamfHeadBlockConfig
from ..hdl.damf_head import unpack_output, v_words, x_beats
from ..hdl.inner_product import pack_weight_words
from .streams import BlockTB, cocotb_timeout

TIMEOUT = cocotb_timeout(20)


class TB(BlockTB):
    config_cls = DamfHeadBlockConfig
    inputs = {"x": "x", "v": "v"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        self.y = self.add_driver("y", "y", idle) if self.cfg.cross else None
        self.w = self.add_driver("w", "w") if self.cfg.weights == "runtime" else None
        self.u, self.vw = weight_vectors(self.cfg, self.nprng)

    async def load_weights(self, u, v):
        """New ``u``, ``v`` (runtime weights), after every queued head has produced its ``Z``."""
        await self.drain()
        self.u, self.vw = u, v
        for word in pack_weight_words(self.cfg.inner_product, u, v):
            self.w.send(word)
        await self.w.wait_empty()

    def head(self, X, V, Y=None):
        """Queue one head (cross-attention: queries ``X``, keys ``Y``, values ``V``)."""
        for word in x_beats(self.cfg, X):
            self.x.send(word)
        if self.cfg.cross:
            for word in x_beats(self.cfg, Y):
                self.y.send(word)
        for word in v_words(self.cfg, V):
            self.v.send(word)
        self.expected += damf_head_block(self.cfg, X, V, self.u, self.vw, Y=Y).tolist()

    def heads(self, count):
        """Edge and random heads as ``(X, V, Y)`` (``Y`` is None unless cross)."""
        if self.cfg.cross:
            return [(X, V, Y) for X, Y, V in cross_heads(self.cfg, self.nprng, count)]
        return [(X, V, None) for X, V in heads(self.cfg, self.nprng, count)]

    async def drain(self):
        budget = 20 * (self.cfg.seq_len + 10) * (len(self.expected) - len(self.out.received) + 1) \
            + 40 * len(self.x.queue) + 100
        await self.wait_results(len(self.expected), budget, "rows")

    async def check(self):
        await self.drain()
        await ClockCycles(self.dut.clk, 10)
        got = [unpack_output(self.cfg, w) for w in self.out.received]
        assert len(got) == len(self.expected), f"{len(got)} rows, expected {len(self.expected)}"
        for r, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"Z row {r}: {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d rows match the golden model", len(got))


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    if tb.w is not None:
        await tb.load_weights(tb.u, tb.vw)
    for X, V, Y in tb.heads(int(os.environ.get("DAMF_COUNT", "24"))):
        tb.head(X, V, Y)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def random_no_stalls(dut):
    """Edge heads (zero tokens: uniform rows; all-max / all-min tokens: equal scores; L = 1)
    and random heads of random length, back to back."""
    await run_random(dut, 0.0, 0.0)


@cocotb.test(**TIMEOUT)
async def random_gaps_and_backpressure(dut):
    """The same with random gaps on ``x`` and ``v`` and backpressure on ``o``."""
    await run_random(dut, float(os.environ.get("DAMF_IDLE", "0.3")),
                     float(os.environ.get("DAMF_BACKPRESSURE", "0.3")))


@cocotb.test(skip=False, **TIMEOUT)
async def negative_scores(dut):
    """``u = -v``: every score ``A = -(X.u)(X.u)`` summed over the rank is ``<= 0`` (maclaurin's
    abs fallback, uniform rows of equal negative scores); runtime weights only."""
    tb = TB(dut, idle=0.2, backpressure=0.2)
    await tb.reset()
    if tb.w is None:
        dut._log.info("weights=fixed: u = -v needs runtime weights; nothing to do")
        return
    hi = (1 << (tb.cfg.w_width - 1)) - 1
    u = tb.nprng.integers(-hi, hi, (tb.cfg.rank, tb.cfg.d_model), endpoint=True).tolist()
    await tb.load_weights(u, [[-a for a in row] for row in u])
    for X, V, Y in tb.heads(4):
        tb.head(X, V, Y)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def cycles_per_head(dut):
    """One head at a time, every source valid and ``o`` ready: the measured cycles from the
    first ``X`` handshake to the last ``Z`` handshake equal ``cycles_per_head(L)`` (causal too:
    the sum over its rows of ``row_period(L, m)``)."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    if tb.w is not None:
        await tb.load_weights(tb.u, tb.vw)
    measured = {}
    S = cfg.seq_len
    shapes = {(1, S), (S, 1), (2, max(1, S - 1)), (S, S)} if cfg.cross else {(L, L) for L in (1, 2, S - 1, S) if L}
    xlo, xhi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
    for lq, lk in sorted(shapes):
        X, Y = (tb.nprng.integers(xlo, xhi, (n, cfg.d_model), endpoint=True).tolist() for n in (lq, lk))
        V = tb.nprng.integers(*cfg.v_range, (lk, cfg.d_head), endpoint=True).tolist()
        first_x = len(tb.x.accept_cycles)
        tb.head(X, V, Y if cfg.cross else None)
        await tb.drain()
        measured[lq, lk] = tb.out.cycles[-1] - tb.x.accept_cycles[first_x] + 1
        await ClockCycles(dut.clk, 5)
    dut._log.info("cycles per head (Lq, Lk): %s", measured)
    await tb.check()
    for (lq, lk), cycles in measured.items():
        want = cfg.cycles_per_head(lq, lk)
        assert cycles == want, f"Lq = {lq}, Lk = {lk}: {cycles} cycles, documented {want}"


@cocotb.test(**TIMEOUT)
async def back_to_back_schedule(dut):
    """Heads queued back to back (each load during the previous head's query phase, the two
    banks in turn), every source valid and ``o`` ready: every ``Z`` handshake at the cycle
    ``DamfHeadBlockConfig.schedule`` gives, so ``row_period`` and ``head_interval`` hold."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    if tb.w is not None:
        await tb.load_weights(tb.u, tb.vw)
    S = cfg.seq_len
    shapes = [(S, S)] * 4 + [(1, S), (S, max(1, S - 1)), (2, 1)] if cfg.cross else \
        [(S, S)] * 4 + [(L, L) for L in (1, max(1, S - 1), 2, S)]
    xlo, xhi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
    first_x, first_z = len(tb.x.accept_cycles), len(tb.out.cycles)
    for lq, lk in shapes:
        X, Y = (tb.nprng.integers(xlo, xhi, (n, cfg.d_model), endpoint=True).tolist() for n in (lq, lk))
        V = tb.nprng.integers(*cfg.v_range, (lk, cfg.d_head), endpoint=True).tolist()
        tb.head(X, V, Y if cfg.cross else None)
    await tb.drain()
    start = tb.x.accept_cycles[first_x]
    got = [c - start + 1 for c in tb.out.cycles[first_z:]]
    want = [c for zs in cfg.schedule(shapes) for c in zs]
    await tb.check()
    assert got == want, f"Z cycles {got}, documented {want}"
    dut._log.info("row_period %s, head_interval %s: %d rows at the documented cycles",
                  cfg.row_period(), cfg.head_interval, len(got))


@cocotb.test(skip="DAMF_VECTORS" not in os.environ, **TIMEOUT)
async def vectors_file(dut):
    """Replay a vector file; write what the RTL produced to ``DAMF_RESULTS``."""
    tb = TB(dut)
    await tb.reset()
    cfg, inputs, _ = golden_vectors.load(os.environ["DAMF_VECTORS"], block="damf-head")
    if tb.w is not None:
        await tb.load_weights(inputs["u"], inputs["v"])
    else:
        tb.u, tb.vw = inputs["u"], inputs["v"]
    for X, Y, V in split_heads(tb.cfg, inputs):
        tb.head(X, V, Y if tb.cfg.cross else None)
    await tb.check()
    with open(os.environ["DAMF_RESULTS"], "w") as f:
        json.dump({"z": [unpack_output(tb.cfg, w) for w in tb.out.received]}, f)
