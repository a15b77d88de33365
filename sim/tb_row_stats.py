"""cocotb testbench of the row-stats unit, checked against ``golden.row_stats``.

Environment: ``DAMF_CONFIG`` (the ``row-stats.json``), ``DAMF_SEED``, ``DAMF_COUNT`` (random
rows, default 60), ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE``, ``DAMF_TIMEOUT_MS``,
``DAMF_VECTORS`` / ``DAMF_RESULTS`` (``vectors_file``).
"""

import os

import cocotb
from cocotb.triggers import ClockCycles

from ..golden import vectors as golden_vectors
from ..golden.row_stats import fields, row_setup
from ..config import RowStatsConfig
from ..hdl.row_stats import unpack_output
from ..hdl.score import pack_output
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak

TIMEOUT = cocotb_timeout()


class TB(BlockTB):
    config_cls = RowStatsConfig

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        dut.i__payload.value = 0

    def send_row(self, row, *, full=False):
        """Beats of ``parallel`` scores (``full``) or of random counts; padding lanes get noise."""
        cfg = self.cfg
        lo, hi = cfg.score_range
        i = 0
        while i < len(row):
            c = cfg.parallel if full else self.rng.randint(1, cfg.parallel)
            chunk = [int(a) for a in row[i:i + c]]
            i += len(chunk)
            pad = [self.rng.randint(lo, hi) for _ in range(cfg.parallel - len(chunk))]
            self.i.send(pack_output(cfg, chunk, i >= len(row), pad=pad))  # noise in the lanes beyond count
        r = row_setup(cfg, [row])
        self.expected.append({k: int(r[k][0]) for k in fields(cfg)})

    async def check(self):
        budget = 40 * (self.i.sent + len(self.i.queue)) + 20 * len(self.expected) + 100
        await self.wait_results(len(self.expected), budget, "rows")
        await ClockCycles(self.dut.clk, 10)
        got = [unpack_output(self.cfg, w) for w in self.out.received]
        assert len(got) == len(self.expected)
        for r, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"row {r}: {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d rows match the golden model", len(got))


def rows(tb):
    cfg = tb.cfg
    count = int(os.environ.get("DAMF_COUNT", "60"))
    inputs = golden_vectors.ROW_STATS.generate(cfg, tb.nprng, count)
    return inputs["rows"]


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for row in rows(tb):
        tb.send_row(row)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge rows (numerics.md section 9) and random rows of every length, under each mix of input gaps "
        "and output backpressure.")


@cocotb.test(**TIMEOUT)
async def latency_and_throughput(dut):
    """Rows back to back (single-beat rows among them): a beat every cycle, each result
    ``setup_cycles`` after its row's last beat, ``cycles(lengths)`` in all."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    L, P = cfg.seq_len, cfg.parallel
    lengths = [L, 1, 1, min(P, L), L, 1, max(1, L - 1), 1, L]
    base = rows(tb)
    for j, n in enumerate(lengths):
        tb.send_row((list(base[j % len(base)]) * L)[:n], full=True)
    await tb.check()
    ins = tb.i.accept_cycles
    assert ins == list(range(ins[0], ins[0] + len(ins))), f"gaps on the input: {ins}"
    ends, total = [], 0
    for n in lengths:
        total += cfg.row_cycles(n)
        ends.append(ins[total - 1])
    lat = [o - e for o, e in zip(tb.out.cycles, ends)]
    assert lat == [cfg.setup_cycles] * len(lengths), f"set-up {lat}, documented {cfg.setup_cycles}"
    measured = tb.out.cycles[-1] - ins[0] + 1
    assert measured == cfg.cycles(lengths), f"{measured} cycles, documented {cfg.cycles(lengths)}"
    dut._log.info("set-up %d cycles, %d rows in %d cycles", cfg.setup_cycles, len(lengths), measured)


async def replay(tb, inputs):
    """Every row of a vector file, in full beats; ``{"setup": a row's set-up fields}``."""
    for row in inputs["rows"]:
        tb.send_row(row, full=True)
    await tb.check()
    return {"setup": [[unpack_output(tb.cfg, w)[k] for k in fields(tb.cfg)] for w in tb.out.received]}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): rows of scores, one set-up per row ---------------------------

def _soak_batch(tb, first):
    for row in golden_vectors.ROW_STATS.generate(tb.cfg, tb.nprng, 200)["rows"]:
        tb.send_row(row)


def _soak_decode(tb, word):
    return unpack_output(tb.cfg, word)


SOAK = Soak("row set-ups", TB, batch=_soak_batch, decode=_soak_decode)
