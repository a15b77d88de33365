"""cocotb testbench of the shift-accumulate unit, checked against ``golden.shift_accumulate``.

Environment: ``DAMF_CONFIG`` (the ``shift-accumulate.json``), ``DAMF_SEED``, ``DAMF_COUNT``
(random rows, default 80), ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE``, ``DAMF_TIMEOUT_MS``,
``DAMF_VECTORS`` / ``DAMF_RESULTS`` (``vectors_file``).
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from ..golden import vectors as golden_vectors
from ..golden.shift_accumulate import shift_accumulate_row
from ..head_config import ShiftAccumulateConfig
from ..hdl.shift_accumulate import pack_input, unpack_output
from .streams import BlockTB, cocotb_timeout

TIMEOUT = cocotb_timeout()


class TB(BlockTB):
    config_cls = ShiftAccumulateConfig

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        dut.i__payload.value = 0

    def send_row(self, V, sign, shift, c_shift, sh):
        for n, (v, s, t) in enumerate(zip(V, sign, shift)):
            self.i.send(pack_input(self.cfg, v, s, t, c_shift, sh, n == len(V) - 1))
        self.expected.append(shift_accumulate_row(self.cfg, V, sign, shift, c_shift, sh))

    async def check(self):
        budget = 40 * (self.i.sent + len(self.i.queue)) + 20 * len(self.expected) + 100
        await self.wait_results(len(self.expected), budget, "rows")
        await ClockCycles(self.dut.clk, 10)
        got = [unpack_output(self.cfg, w) for w in self.out.received]
        assert len(got) == len(self.expected)
        for r, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"row {r}: Z = {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d rows match the golden model", len(got))


def rows(tb, count=None):
    count = int(os.environ.get("DAMF_COUNT", "80")) if count is None else count
    inputs = golden_vectors.BLOCK_VECTORS["shift-accumulate"][0](tb.cfg, tb.nprng, count)
    return golden_vectors.shift_accumulate_rows(tb.cfg, inputs)


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for row in rows(tb):
        tb.send_row(*row)
    await tb.check()


@cocotb.test(**TIMEOUT)
async def random_no_stalls(dut):
    """Extreme rows (largest |acc|, t_C < 0, both ends of the shift range) and random rows."""
    await run_random(dut, 0.0, 0.0)


@cocotb.test(**TIMEOUT)
async def random_gaps_and_backpressure(dut):
    """The same with random input gaps and output backpressure."""
    await run_random(dut, float(os.environ.get("DAMF_IDLE", "0.3")),
                     float(os.environ.get("DAMF_BACKPRESSURE", "0.3")))


@cocotb.test(**TIMEOUT)
async def latency_and_throughput(dut):
    """One key per cycle, rows back to back; ``Z`` ``latency`` cycles after a row's last key."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    some = rows(tb, 8)
    for row in some:
        tb.send_row(*row)
    await tb.check()
    acc = tb.i.accept_cycles
    assert acc == list(range(acc[0], acc[0] + len(acc))), "keys not accepted one per cycle"
    ends = np.cumsum([len(r[0]) for r in some]) - 1
    lat = {o - acc[e] for o, e in zip(tb.out.cycles, ends)}
    assert lat == {cfg.latency}, f"latency {lat}, documented {cfg.latency}"
    measured = tb.out.cycles[-1] - acc[0] + 1
    assert measured == cfg.cycles([len(r[0]) for r in some]), f"{measured} cycles"


@cocotb.test(skip="DAMF_VECTORS" not in os.environ, **TIMEOUT)
async def vectors_file(dut):
    """Replay a vector file; write what the RTL produced to ``DAMF_RESULTS``."""
    tb = TB(dut)
    await tb.reset()
    cfg, inputs, _ = golden_vectors.load(os.environ["DAMF_VECTORS"], block="shift-accumulate")
    for row in golden_vectors.shift_accumulate_rows(tb.cfg, inputs):
        tb.send_row(*row)
    await tb.check()
    with open(os.environ["DAMF_RESULTS"], "w") as f:
        json.dump({"z": [unpack_output(tb.cfg, w) for w in tb.out.received]}, f)
