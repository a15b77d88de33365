"""cocotb testbench of the composed head (``damf-head``), checked against
``golden.damf_head_block``.

Environment (set by ``sim/test_damf_head.py`` or ``damf sim``): ``DAMF_CONFIG`` (the
``damf-head.json`` next to the Verilog), ``DAMF_SEED``, ``DAMF_COUNT`` (random heads,
default 24), ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE``, ``DAMF_TIMEOUT_MS``, and ``DAMF_VECTORS`` /
``DAMF_RESULTS`` for ``vectors_file``.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..golden.damf_head_block import (cross_heads, damf_head_block, head_lengths, heads, row_lasts, split_heads,
                                      weight_vectors)
from ..config import DamfHeadBlockConfig
from ..hdl.damf_head import unpack_last, unpack_output, v_words, x_beats
from ..hdl.inner_product import pack_weight_words
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak

TIMEOUT = cocotb_timeout(20)


class TB(BlockTB):
    config_cls = DamfHeadBlockConfig
    inputs = {"x": "x", "v": "v"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        self.y = self.add_driver("y", "y", idle) if self.cfg.cross else None
        self.w = self.add_driver("w", "w") if self.cfg.weights == "runtime" else None
        self.u, self.vw = weight_vectors(self.cfg, self.nprng)
        self.expected_last = []

    async def load_weights(self, u, v):
        """New ``u``, ``v`` (runtime weights), after every queued head has produced its ``Z``."""
        await self.drain()
        self.u, self.vw = u, v
        for word in pack_weight_words(self.cfg.inner_product, u, v):
            self.w.send(word)
        await self.w.wait_empty()

    def head(self, X, V, Y=None, *, expect=True, last=True):
        """Queue one head (cross-attention: queries ``X``, keys ``Y``, values ``V``) and unless
        ``expect`` is false its golden rows; ``last=False``: no ``last`` flag on any beat (a head
        cut short, or one ended by its ``seq_len``-th token)."""
        for word in x_beats(self.cfg, X, last=last):
            self.x.send(word)
        if self.cfg.cross:
            for word in x_beats(self.cfg, Y, last=last):
                self.y.send(word)
        for word in v_words(self.cfg, V, last=last):
            self.v.send(word)
        if expect:
            self.expected += damf_head_block(self.cfg, X, V, self.u, self.vw, Y=Y).tolist()
            self.expected_last += row_lasts([len(X)])

    def restart(self):
        """Forget what came out and what was expected (after a reset)."""
        self.out.received.clear()
        self.out.cycles.clear()
        self.expected, self.expected_last = [], []

    async def pulse_reset(self, cycles=3):
        """``rst`` high for ``cycles`` edges (the caller has let the sources run dry)."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        self.restart()

    async def refused(self, cycles):
        """After a reset, with a head offered and no weights loaded: for ``cycles`` edges
        ``x.ready`` is low and nothing is accepted on ``x``."""
        sent = self.x.sent
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
            assert not self.dut.x__ready.value, f"x.ready high after reset before a weight load (seed {self.seed})"
        assert self.x.sent == sent, f"x accepted a beat after reset before a weight load (seed {self.seed})"

    def send_weights(self, u, v):
        """Queue a whole weight load (no waiting: the block orders it)."""
        self.u, self.vw = u, v
        for word in pack_weight_words(self.cfg.inner_product, u, v):
            self.w.send(word)

    def random_head(self, lq, lk=None):
        """Random ``(X, V, Y)`` of ``lq`` queries and ``lk`` keys (``Y`` None unless cross)."""
        cfg, lk = self.cfg, lq if lk is None else lk
        xlo, xhi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
        X, Y = (self.nprng.integers(xlo, xhi, (n, cfg.d_model), endpoint=True).tolist() for n in (lq, lk))
        V = self.nprng.integers(*cfg.v_range, (lk if cfg.cross else lq, cfg.d_head), endpoint=True).tolist()
        return X, V, (Y if cfg.cross else None)

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
        lasts = [unpack_last(self.cfg, w) for w in self.out.received]
        for r, (g, e) in enumerate(zip(lasts, self.expected_last)):
            assert g == e, f"row {r}: last = {g}, expected {e} (1 exactly on a head's row Lq - 1; seed {self.seed})"
        self.dut._log.info("%d rows match the golden model (Z and last)", len(got))


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    if tb.w is not None:
        await tb.load_weights(tb.u, tb.vw)
    for X, V, Y in tb.heads(int(os.environ.get("DAMF_COUNT", "24"))):
        tb.head(X, V, Y)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge heads (zero tokens: uniform rows; all-max / all-min tokens: equal scores; L = 1) and random "
        "heads of random length, back to back, under each mix of gaps on ``x`` and ``v`` and backpressure on "
        "``o``.")


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


async def measured_head(tb, X, V, Y):
    """Queue one head, wait for its rows; its cycles from the first ``x`` to the last ``Z``."""
    first_x, first_z = len(tb.x.accept_cycles), len(tb.out.cycles)
    tb.head(X, V, Y)
    await tb.drain()
    assert len(tb.out.cycles) > first_z
    return tb.out.cycles[-1] - tb.x.accept_cycles[first_x] + 1


@cocotb.test(**TIMEOUT)
async def reset_mid_head(dut):
    """A head whose ``x``/``v`` are in and some of whose rows have come out, the next head's
    first two tokens and values half received, then ``rst`` for 3 cycles with the sources idle:
    nothing of either comes out afterwards.  Runtime weights: the reset forgets them -- a head
    offered now is not accepted (``x.ready`` low for 40 cycles) until a complete new load --
    then the head is bit-exact with the new weights and takes ``cycles_per_head`` cycles from
    its first ``x`` handshake, as after power-up; a second head too."""
    tb = TB(dut)
    await tb.reset()
    cfg, S = tb.cfg, tb.cfg.seq_len
    if tb.w is not None:
        await tb.load_weights(tb.u, tb.vw)
    tb.head(*tb.random_head(S), expect=False)                 # head A: all in, rows under way
    X, V, _ = tb.random_head(2)
    for word in x_beats(cfg, X, last=False):                  # head B: two tokens, no last
        tb.x.send(word)
    for word in v_words(cfg, V, last=False):
        tb.v.send(word)
    await tb.x.wait_empty()
    await tb.v.wait_empty()
    if tb.y is not None:
        await tb.y.wait_empty()
    await tb.out.wait_for(1)
    assert len(tb.out.received) < S, "head A finished before the reset: nothing was cut"
    await tb.pulse_reset()
    shapes = [(S, S), (max(1, S - 1), S)] if cfg.cross else [(S, S), (max(1, S - 1),) * 2]
    head = tb.random_head(*shapes[0])
    if tb.w is not None:
        u, v = weight_vectors(cfg, tb.nprng)
        tb.u, tb.vw = u, v                                    # the head's expected rows use them
        first_x = len(tb.x.accept_cycles)
        tb.head(*head)
        await tb.refused(40)
        tb.send_weights(u, v)
        await tb.drain()
        measured = tb.out.cycles[-1] - tb.x.accept_cycles[first_x] + 1
    else:
        measured = await measured_head(tb, *head)
    second = await measured_head(tb, *tb.random_head(*shapes[1]))
    await tb.check()
    assert (measured, second) == (cfg.cycles_per_head(*shapes[0]), cfg.cycles_per_head(*shapes[1])), \
        f"after reset: {measured}, {second} cycles; documented {cfg.cycles_per_head(*shapes[0])}, " \
        f"{cfg.cycles_per_head(*shapes[1])}"


@cocotb.test(**TIMEOUT)
async def reset_mid_load(dut):
    """Runtime weights: ``rst`` with a weight load half received (all but its last word) after
    a head; a head offered then waits (``x.ready`` low for 40 cycles) until a complete load,
    and is bit-exact with it."""
    tb = TB(dut, idle=0.2, backpressure=0.2)
    if tb.w is None:
        dut._log.info("weights=fixed: no weight load to cut; nothing to do")
        return
    await tb.reset()
    cfg = tb.cfg
    await tb.load_weights(tb.u, tb.vw)
    tb.head(*tb.random_head(cfg.seq_len))
    await tb.check()
    u, v = weight_vectors(cfg, tb.nprng)
    for word in pack_weight_words(cfg.inner_product, u, v)[:max(1, cfg.inner_product.beats - 1)]:
        tb.w.send(word)
    await tb.w.wait_empty()
    await tb.pulse_reset()
    u, v = weight_vectors(cfg, tb.nprng)
    tb.u, tb.vw = u, v
    for X, V, Y in tb.heads(2):
        tb.head(X, V, Y)
    await tb.refused(40)
    tb.send_weights(u, v)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def load_waits_for_head(dut):
    """Runtime weights: a load offered once a head's first ``x`` beat is in waits (``w.ready``
    low) until the head's last token has produced its p and q -- checked every cycle while the
    head's ``x`` beats go in -- the head is bit-exact with the old weights, and the next head
    uses the new ones."""
    tb = TB(dut, idle=0.2, backpressure=0.2)
    if tb.w is None:
        dut._log.info("weights=fixed: no weight loads; nothing to do")
        return
    await tb.reset()
    cfg = tb.cfg
    await tb.load_weights(tb.u, tb.vw)
    for n in range(3):
        first_x = len(tb.x.accept_cycles)
        tb.head(*tb.random_head(cfg.seq_len))
        while len(tb.x.accept_cycles) == first_x:
            await RisingEdge(dut.clk)
        u, v = weight_vectors(cfg, tb.nprng)
        loads = len(tb.w.accept_cycles)
        for word in pack_weight_words(cfg.inner_product, u, v):
            tb.w.send(word)
        while tb.x.queue or (tb.y is not None and tb.y.queue):
            await RisingEdge(dut.clk)
            assert not dut.w__ready.value, f"w.ready high inside head {n} (seed {tb.seed})"
        await tb.w.wait_empty()
        assert tb.w.accept_cycles[loads] > tb.x.accept_cycles[-1], "the load went in before the head's last x beat"
        tb.u, tb.vw = u, v
    tb.head(*tb.random_head(cfg.seq_len))
    await tb.check()


@cocotb.test(**TIMEOUT)
async def seq_len_ends_head(dut):
    """``seq_len + 3`` tokens (and values; cross: key tokens too) with ``last`` only on the
    final one: a head of ``seq_len`` rows (``last`` on its row ``seq_len - 1``) then a head of
    3 rows, both bit-exact, then a normal head (no deadlock)."""
    tb = TB(dut, idle=0.2, backpressure=0.2)
    await tb.reset()
    cfg, S = tb.cfg, tb.cfg.seq_len
    if tb.w is not None:
        await tb.load_weights(tb.u, tb.vw)
    X, V, Y = tb.random_head(S + 3)
    lengths = head_lengths(S + 3, S)
    assert lengths == [S, 3]
    for word in x_beats(cfg, X):
        tb.x.send(word)
    if cfg.cross:
        for word in x_beats(cfg, Y):
            tb.y.send(word)
    for word in v_words(cfg, V):
        tb.v.send(word)
    for a, b in ((0, S), (S, S + 3)):
        tb.expected += damf_head_block(cfg, X[a:b], V[a:b], tb.u, tb.vw, Y=Y[a:b] if cfg.cross else None).tolist()
    tb.expected_last += row_lasts(lengths)
    tb.head(*tb.random_head(S))
    await tb.check()


async def replay(tb, inputs):
    """A vector file's weights, then every head of it; ``{"z": the rows of Z}``."""
    if tb.w is not None:
        await tb.load_weights(inputs["u"], inputs["v"])
    else:
        tb.u, tb.vw = inputs["u"], inputs["v"]
    for X, Y, V in split_heads(tb.cfg, inputs):
        tb.head(X, V, Y if tb.cfg.cross else None)
    await tb.check()
    return {"z": [unpack_output(tb.cfg, w) for w in tb.out.received]}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): heads of X (and Y) and V, one Z row per o beat --------------

async def _soak_start(tb):
    await tb.reset()
    if tb.w is not None:
        await tb.load_weights(*weight_vectors(tb.cfg, tb.nprng))


def _soak_batch(tb, first):
    todo = tb.heads(30)
    if not first:
        todo = todo[len(tb.heads(0)):]   # the edge heads come first; once is enough
    for X, V, Y in todo:
        tb.head(X, V, Y)


def _soak_decode(tb, word):
    return unpack_output(tb.cfg, word)


SOAK = Soak("Z rows", TB, batch=_soak_batch, decode=_soak_decode, start=_soak_start)
