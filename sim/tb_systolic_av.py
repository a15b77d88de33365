"""cocotb testbench of the ``A' x V`` engine (block ``systolic-av``): the systolic-qk array with
``Q = A'`` and ``K = V^T``, checked against ``golden.systolic_qk.av_product``.

Environment as in ``tb_systolic_qk`` (``DAMF_CONFIG`` is the ``systolic-av.json``).
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from ..config import SystolicAVConfig
from ..golden import vectors as golden_vectors
from ..golden.systolic_qk import av_product, scores_from_rows
from . import tb_systolic_qk as qk
from .common_tests import random_vectors_test, vectors_file_test
from .tb_soak import Soak

TIMEOUT = qk.TIMEOUT


class TB(qk.TB):
    config_cls = SystolicAVConfig

    def product(self, q, k):
        return av_product(self.cfg, q, np.asarray(k).T)

    def send_av(self, a, v, *, expect=True):
        """Queue one ``(A', V)`` problem: ``Q = A'``, ``K = V^T``."""
        self.send(a, np.asarray(v).T.tolist(), expect=expect)


def problems(tb, count):
    return golden_vectors.av_edge_problems(tb.cfg) + [golden_vectors.random_av(tb.cfg, tb.nprng)
                                                      for _ in range(count)]


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for a, v in problems(tb, int(os.environ.get("DAMF_COUNT", "4"))):
        tb.send_av(a, v)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge and random ``(A', V)`` problems back to back, under each mix of input gaps and output "
        "backpressure.")


@cocotb.test(**TIMEOUT)
async def cycles_per_product(dut):
    """Latency, tile interval and cycles for one ``Z`` equal the documented formulas."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    for a, v in problems(tb, 2)[-2:]:
        tb.send_av(a, v)
    await tb.check()
    ins, outs = tb.qk.accept_cycles, tb.out.cycles
    lasts = ins[cfg.steps - 1::cfg.steps]
    rows = [cfg.tile_score_rows(r0) for r0, _ in cfg.tile_origins() * 2]
    starts = [sum(rows[:t]) for t in range(len(rows))]
    latencies = {outs[s] - i for i, s in zip(lasts, starts)}
    assert latencies == {cfg.latency}, f"latency {latencies}, documented {cfg.latency}"
    firsts = ins[::cfg.steps]
    intervals = {b - a for a, b in zip(firsts, firsts[1:])}
    assert intervals == {cfg.cycles_per_tile}, f"tiles {intervals} apart, documented {cfg.cycles_per_tile}"
    total = outs[cfg.score_beats - 1] - ins[0]
    assert total == cfg.cycles, f"one Z took {total} cycles, documented cycles = {cfg.cycles}"
    dut._log.info("measured: latency %s, tiles %s cycles apart, %d cycles per Z; documented %d, %d, %d",
                  latencies, intervals, total, cfg.latency, cfg.cycles_per_tile, cfg.cycles)


async def replay(tb, inputs):
    """Every ``(A', V)`` problem of a vector file; ``{"z": rows of Z}``."""
    cfg = tb.cfg
    todo = golden_vectors.av_problems(cfg, inputs)
    for a, v in todo:
        tb.send_av(a, v, expect=False)
    await tb.wait_results(len(todo) * cfg.score_beats)
    await ClockCycles(tb.dut.clk, 2)
    got = tb.results()
    z = [row for n in range(len(todo))
         for row in scores_from_rows(cfg, got[n * cfg.score_beats:(n + 1) * cfg.score_beats]).tolist()]
    return {"z": z}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): (A', V) problems, one row of a Z tile per o beat ------------

def _soak_batch(tb, first):
    todo = problems(tb, 20) if first else [golden_vectors.random_av(tb.cfg, tb.nprng) for _ in range(20)]
    for a, v in todo:
        tb.send_av(a, v)


def _soak_decode(tb, word):
    return qk.unpack_output(tb.cfg, word)


SOAK = Soak("Z rows", TB, batch=_soak_batch, decode=_soak_decode)
