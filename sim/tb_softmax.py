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

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from ..config import SoftmaxConfig
from ..golden import vectors as golden_vectors
from ..golden.softmax import row_beats, softmax_beats, split_beats
from ..hdl.softmax import pack_input, unpack_output
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak

TIMEOUT = cocotb_timeout()


class TB(BlockTB):
    """Clock, reset, a driver of ``i`` and a monitor of ``o``."""

    config_cls = SoftmaxConfig
    inputs = {"src": "i"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        self.lengths = []

    def send_beats(self, beats, *, expect=True, last=True):
        """Queue one row given as beats (lists of 1 .. parallel scores; random scores in the
        lanes past each beat's count); ``last`` set on the final beat unless ``last`` is false
        (then the row must be ``max_beats`` long and ends by its length)."""
        cfg = self.cfg
        lo, hi = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
        for b, beat in enumerate(beats):
            pad = [self.rng.randint(lo, hi) for _ in range(cfg.parallel - len(beat))]
            self.src.send(pack_input(cfg, [int(s) for s in beat], last and b == len(beats) - 1, pad=pad))
        if expect:
            self.expected.append(softmax_beats(cfg, beats))
        self.lengths.append(len(beats))

    def send(self, row, *, expect=True, last=True, ragged=False):
        """Queue one row of scores in full beats (:func:`row_beats`), or with ``ragged`` in beats
        of random counts (as many as fit in ``max_beats``)."""
        beats = row_beats(self.cfg, row)
        if ragged:
            P, beats, i = self.cfg.parallel, [], 0
            while i < len(row):
                room = self.cfg.max_beats - len(beats)
                c = P if room == 1 else self.rng.randint(max(1, len(row) - i - (room - 1) * P), P)
                beats.append(list(row[i:i + c]))
                i += c
        self.send_beats(beats, expect=expect, last=last)

    def beats(self):
        """``(valid probabilities, last)`` per received beat; lanes past the count must be 0."""
        out = []
        for w in self.out.received:
            values, count, last, lanes = unpack_output(self.cfg, w)
            assert lanes[count:] == [0] * (self.cfg.parallel - count), \
                f"lanes past count {count} not zero: {lanes} (seed {self.seed})"
            out.append((values, last))
        return out

    async def wait_results(self, count):
        budget = 20 * sum(self.lengths) + 10 * self.cfg.row_cycles(self.cfg.seq_len) + 100
        await super().wait_results(count, budget, "output beats")

    async def check(self):
        """Wait for every expected beat; compare values, counts and last flags, in order."""
        want = sum(len(r) for r in self.expected)
        await self.wait_results(want)
        await ClockCycles(self.dut.clk, self.cfg.row_cycles(self.cfg.seq_len))  # nothing extra may follow
        beats = self.beats()
        assert len(beats) == want, f"{len(beats)} output beats, expected {want} (seed {self.seed})"
        flags = [f for _, f in beats]
        want_flags = [int(b == len(r) - 1) for r in self.expected for b in range(len(r))]
        assert flags == want_flags, f"last flags {flags}, expected {want_flags} (seed {self.seed})"
        got = split_beats(self.cfg, beats)
        for n, (e, g) in enumerate(zip(self.expected, got)):
            assert g == e, f"row {n}: {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d rows (%d beats) match the golden model", len(got), want)


def rows(tb, count):
    return golden_vectors.softmax_edge_rows(tb.cfg) + golden_vectors.random_score_rows(tb.cfg, tb.nprng, count)


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for n, row in enumerate(rows(tb, int(os.environ.get("DAMF_COUNT", "12")))):
        tb.send(row, ragged=n % 2 == 1)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge and random rows back to back, under every mix of input gaps and backpressure; every other "
        "random row cut into beats of random counts.")


@cocotb.test(**TIMEOUT)
async def row_ends_at_seq_len(dut):
    """A row of seq_len scores without ``last`` ends by its length; the output marks it last."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    for row in golden_vectors.random_score_rows(cfg, tb.nprng, 3):
        full = (row * cfg.seq_len * cfg.parallel)[:cfg.seq_len]
        tb.send(full, last=False)
        tb.send(row)
        # max_beats full beats: more than seq_len scores when parallel does not divide it
        tb.send_beats([(row * cfg.parallel)[:cfg.parallel]] * cfg.max_beats, last=False)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def cycles_per_row(dut):
    """Source always valid, sink always ready: the input never waits (rows back to back, one
    beat per cycle); a row's first output handshake is ``row_latency`` after its last input, or
    the cycle after the previous row's last output if later; outputs back to back; a lone
    row's ``row_cycles``.  Rows of L, L, 1, 1, L/2, L, 1 scores."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    L = cfg.seq_len
    lengths = [L, L, 1, 1, max(1, L // 2), L, 1]
    for n in lengths:
        tb.send(golden_vectors.random_score_rows(cfg, tb.nprng, 1)[0][:1] * n)
    await tb.check()
    ins, outs = tb.src.accept_cycles, tb.out.cycles
    assert ins == list(range(ins[0], ins[0] + len(ins))), f"input beats not back to back: {ins}"
    start, prev = 0, None
    for r, n in enumerate(lengths):
        nb = cfg.beats(n)
        first_in, last_in = ins[start], ins[start + nb - 1]
        first_out, last_out = outs[start], outs[start + nb - 1]
        want = last_in + cfg.row_latency if prev is None else max(last_in + cfg.row_latency, prev + 1)
        assert first_out == want, f"row {r} (n={n}): first output at {first_out}, documented {want}"
        assert outs[start:start + nb] == list(range(first_out, first_out + nb)), "output beats not back to back"
        if r == 0:
            assert last_out - first_in == cfg.row_cycles(n), \
                f"row 0 (n={n}): {last_out - first_in} cycles, documented {cfg.row_cycles(n)}"
            assert ins[nb] - first_in == cfg.row_interval(n)
        dut._log.info("n = %d: latency %d (documented %d when the output is idle)", n, first_out - last_in,
                      cfg.row_latency)
        prev, start = last_out, start + nb


@cocotb.test(**TIMEOUT)
async def reset_mid_row(dut):
    """A reset in any phase drops the row; the next row is exact."""
    tb = TB(dut)
    await tb.reset()
    row = golden_vectors.random_score_rows(tb.cfg, tb.nprng, 1)[0]
    tb.send(row, expect=False)
    await tb.src.wait_empty()
    await ClockCycles(dut.clk, tb.rng.randint(0, tb.cfg.row_latency))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    tb.out.received.clear()
    tb.send(golden_vectors.random_score_rows(tb.cfg, tb.nprng, 1)[0])
    await tb.check()


async def replay(tb, inputs):
    """Every row of scores of a vector file; ``{"p": rows of probabilities}``."""
    for row in inputs["s"]:
        tb.send(row, expect=False)
    await tb.wait_results(sum(tb.lengths))
    return {"p": [sum(r, []) for r in split_beats(tb.cfg, tb.beats())]}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): rows of scores, one beat of probabilities per o beat --------

def _soak_batch(tb, first):
    todo = rows(tb, 100) if first else golden_vectors.random_score_rows(tb.cfg, tb.nprng, 100)
    for n, row in enumerate(todo):
        tb.send(row, ragged=n % 2 == 1)


def _soak_take(tb):
    out = [(list(beat), int(b == len(row) - 1), True) for row in tb.expected for b, beat in enumerate(row)]
    tb.expected, tb.lengths = [], []
    return out


def _soak_decode(tb, word):
    values, count, last, lanes = unpack_output(tb.cfg, word)
    return list(values), int(last), not any(lanes[count:])   # lanes past count must be zero


SOAK = Soak("beats of probabilities", TB, batch=_soak_batch, decode=_soak_decode, take=_soak_take)
