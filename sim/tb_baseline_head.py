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

With ``inputs = "x"`` a head is its tokens ``X`` on ``x`` (padding lanes carry noise) and its
``V`` rows on ``v``; runtime weights ``W_Q``, ``W_K`` go on ``w`` first (and again, new ones,
between heads in ``new_weights``).
"""

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..config import BaselineHeadConfig
from ..golden import vectors as golden_vectors
from ..golden.baseline_head import head, head_x, random_x_head, weights, x_edge_problems, z_beats, z_from_beats
from ..hdl.baseline_head import qkv_words, unpack_output, v_words, w_words, x_words
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak

TIMEOUT = cocotb_timeout()
IDLE = float(os.environ.get("DAMF_IDLE", "0.3"))
BACKPRESSURE = float(os.environ.get("DAMF_BACKPRESSURE", "0.3"))


class TB(BlockTB):
    """Clock, reset, drivers of the inputs (``i``; or ``x``, ``v`` and ``w`` with inputs=x) and a
    monitor of ``o`` (rows of ``Z`` tiles)."""

    config_cls = BaselineHeadConfig

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        self.heads = 0
        cfg = self.cfg
        if cfg.inputs == "x":
            self.w = self.add_driver("w", "w", idle) if cfg.weights == "runtime" else None
            self.wq, self.wk = weights(cfg, self.nprng)

    @property
    def inputs(self):
        """The input streams, ``{attribute: port}`` (read by ``BlockTB`` once ``cfg`` is known)."""
        return {"src": "i"} if self.cfg.inputs == "qk" else {"src": "x", "v": "v"}

    def send(self, q, k, v, *, expect=True):
        """Queue the ``seq_len`` token beats of one head and, unless ``expect`` is false, its
        golden ``Z`` beats."""
        cfg = self.cfg
        for word in qkv_words(cfg, q, k, v):
            self.src.send(word)
        if expect:
            self.expected += z_beats(cfg, head(cfg, q, k, v))
        self.heads += 1

    def send_x(self, X, V, *, expect=True):
        """inputs=x: queue one head's tokens ``X`` on ``x`` (noise in the padding lanes) and its
        ``V`` rows on ``v``, and unless ``expect`` is false its golden ``Z`` beats (with the
        weights of the last :meth:`load_weights`)."""
        cfg = self.cfg
        lo, hi = -(1 << (cfg.x_width - 1)), (1 << (cfg.x_width - 1)) - 1
        for word in x_words(cfg, X, lambda: self.rng.randint(lo, hi)):
            self.src.send(word)
        for word in v_words(cfg, V):
            self.v.send(word)
        if expect:
            self.expected += z_beats(cfg, head_x(cfg, X, V, self.wq, self.wk))
        self.heads += 1

    async def load_weights(self, wq, wk):
        """inputs=x, runtime weights: load ``W_Q^T``, ``W_K^T`` on ``w`` once every queued token is
        in (the heads before use the old weights, the heads after the new ones)."""
        await self.src.wait_empty()
        self.wq, self.wk = wq, wk
        lo, hi = -(1 << (self.cfg.w_width - 1)), (1 << (self.cfg.w_width - 1)) - 1
        for word in w_words(self.cfg, wq, wk, lambda: self.rng.randint(lo, hi)):
            self.w.send(word)
        await self.w.wait_empty()

    def send_problem(self, problem, *, expect=True):
        """One head from :func:`problems`: ``(q, k, v)`` or, with inputs=x, ``(X, V)``."""
        if self.cfg.inputs == "qk":
            self.send(*problem, expect=expect)
        else:
            self.send_x(*problem, expect=expect)

    async def wait_results(self, count):
        """Wait for ``count`` beats of ``Z`` in total, failing (not hanging) if they do not come.
        The bound: every head queued so far may take 4 times its documented cycles."""
        budget = 4 * self.heads * self.cfg.cycles + 100
        await super().wait_results(count, budget, "Z beats")

    def results(self):
        return [unpack_output(self.cfg, word) for word in self.out.received]

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
    """Edge heads, then ``count`` random ones: ``(q, k, v)``, or ``(X, V)`` with inputs=x."""
    if tb.cfg.inputs == "x":
        return x_edge_problems(tb.cfg) + [random_x_head(tb.cfg, tb.nprng) for _ in range(count)]
    return golden_vectors.head_edge_problems(tb.cfg) + [golden_vectors.random_head(tb.cfg, tb.nprng)
                                                        for _ in range(count)]


async def start(tb):
    """Reset, then (inputs=x, runtime weights) load the first weights."""
    await tb.reset()
    if tb.cfg.inputs == "x" and tb.w is not None:
        await tb.load_weights(tb.wq, tb.wk)


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await start(tb)
    for problem in problems(tb, int(os.environ.get("DAMF_COUNT", "3"))):
        tb.send_problem(problem)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge and random heads back to back, under every mix of input gaps and backpressure.")


@cocotb.test(skip=False, **TIMEOUT)
async def new_weights(dut):
    """inputs=x, runtime weights: new ``W_Q``, ``W_K`` loaded between heads (while the previous
    head computes), with gaps and backpressure; each head uses the weights loaded before it."""
    tb = TB(dut, idle=IDLE, backpressure=BACKPRESSURE)
    if tb.cfg.inputs != "x" or tb.w is None:
        dut._log.info("needs inputs=x with runtime weights; nothing to do")
        return
    await start(tb)
    for n in range(3):
        if n:
            await tb.load_weights(*weights(tb.cfg, tb.nprng))
        for _ in range(2):
            tb.send_x(*random_x_head(tb.cfg, tb.nprng))
    await tb.check()


@cocotb.test(**TIMEOUT)
async def cycles_per_head(dut):
    """Measured cycles equal the documented model: four random heads back to back, sources
    always valid and a sink always ready; each head's first input and last ``Z`` handshake at
    the edges ``heads_schedule`` gives (the first head takes ``cycles``, the heads are
    ``head_interval`` apart in steady state: with two banks the loads overlap the computation)."""
    tb = TB(dut)
    await start(tb)
    cfg, count = tb.cfg, 4
    first = len(tb.src.accept_cycles)
    for problem in problems(tb, count)[-count:]:
        tb.send_problem(problem)
    await tb.check()
    ins, outs, n = tb.src.accept_cycles[first:], tb.out.cycles, cfg.in_beats
    assert ins[:n] == list(range(ins[0], ins[0] + n)), "load beats not back to back"
    starts = [ins[h * n] - ins[0] for h in range(count)]
    ends = [outs[(h + 1) * cfg.out_beats - 1] - ins[0] for h in range(count)]
    schedule = cfg.heads_schedule(count)
    assert ends[0] == cfg.cycles, f"the first head took {ends[0]} cycles, documented cycles = {cfg.cycles}"
    assert starts == [h["start"] for h in schedule], f"heads started at {starts}, documented {schedule}"
    assert ends == [h["end"] for h in schedule], f"heads ended at {ends}, documented {schedule}"
    interval = starts[-1] - starts[-2]
    assert interval == ends[-1] - ends[-2] == cfg.head_interval, \
        f"heads {interval} cycles apart, documented {cfg.head_interval}"
    dut._log.info("measured: %d cycles per head, heads %d cycles apart (starts %s, ends %s); documented %d, %d",
                  ends[0], interval, starts, ends, cfg.cycles, cfg.head_interval)


@cocotb.test(**TIMEOUT)
async def reset_mid_head(dut):
    """A reset in any phase abandons the head; the next head is exact.  inputs=x with runtime
    weights: the reset forgets the weights, ``x`` is not ready until a new load is complete
    (checked for 20 cycles with ``x`` offered), then the head uses the new weights."""
    tb = TB(dut)
    await start(tb)
    tb.send_problem(problems(tb, 1)[-1], expect=False)
    await tb.src.wait_empty()
    if tb.cfg.inputs == "x":
        await tb.v.wait_empty()
    await ClockCycles(dut.clk, tb.rng.randint(0, tb.cfg.cycles))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    tb.out.received.clear()
    tb.heads = 0
    if tb.cfg.inputs == "x" and tb.w is not None:
        tb.wq, tb.wk = weights(tb.cfg, tb.nprng)
        tb.send_problem(problems(tb, 1)[-1])          # offered now, must wait for the load
        sent = tb.src.sent
        for _ in range(20):
            await RisingEdge(dut.clk)
            assert not dut.x__ready.value, "x ready after reset before any weight load"
        assert tb.src.sent == sent, "a token was accepted after reset before any weight load"
        lo, hi = -(1 << (tb.cfg.w_width - 1)), (1 << (tb.cfg.w_width - 1)) - 1
        for word in w_words(tb.cfg, tb.wq, tb.wk, lambda: tb.rng.randint(lo, hi)):
            tb.w.send(word)
    else:
        tb.send_problem(problems(tb, 1)[-1])
    await tb.check()


async def replay(tb, inputs):
    """Every head of a vector file (``inputs=qk``); ``{"z": rows of Z}``."""
    cfg = tb.cfg
    assert cfg.inputs == "qk", "baseline-head vector files hold Q, K and V: they need inputs=qk"
    todo = golden_vectors.head_problems(cfg, inputs)
    for q, k, v in todo:
        tb.send(q, k, v, expect=False)
    await tb.wait_results(len(todo) * cfg.out_beats)
    await ClockCycles(tb.dut.clk, 2)
    got = tb.results()
    z = [row for n in range(len(todo))
         for row in z_from_beats(cfg, got[n * cfg.out_beats:(n + 1) * cfg.out_beats]).tolist()]
    return {"z": z}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): heads, one Z beat per o beat ----------------------------------

def _soak_batch(tb, first):
    todo = problems(tb, 10)
    if not first:
        todo = todo[-10:]
    for problem in todo:
        tb.send_problem(problem)


def _soak_decode(tb, word):
    return unpack_output(tb.cfg, word)


SOAK = Soak("Z beats", TB, batch=_soak_batch, decode=_soak_decode, start=start)
