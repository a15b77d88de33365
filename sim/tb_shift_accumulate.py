"""cocotb testbench of the shift-accumulate unit, checked against ``golden.shift_accumulate``.

Rows are sent as beats of ``parallel`` keys (``hdl.shift_accumulate.pack_row``; the unused
key slots of a row's last beat hold random junk, which the unit must ignore).

Environment: ``DAMF_CONFIG`` (the ``shift-accumulate.json``), ``DAMF_SEED``, ``DAMF_COUNT``
(random rows, default 80), ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE`` (of
``random_vectors``, default 0.3 / 0.5), ``DAMF_TIMEOUT_MS``, ``DAMF_VECTORS`` /
``DAMF_RESULTS`` (``vectors_file``).
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from ..golden import vectors as golden_vectors
from ..golden.shift_accumulate import shift_accumulate_row
from ..config import ShiftAccumulateConfig
from ..hdl.shift_accumulate import pack_input, pack_row, unpack_output
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak

TIMEOUT = cocotb_timeout(20)


class TB(BlockTB):
    config_cls = ShiftAccumulateConfig

    def __init__(self, dut, *, idle=0.0, backpressure=0.0):
        super().__init__(dut, idle=idle, backpressure=backpressure)
        dut.i__payload.value = 0
        self.beats = []          # beats of each row sent

    def junk(self, j):
        """A random key for an unused slot of a beat."""
        vlo, vhi = self.cfg.v_range
        return (self.nprng.integers(vlo, vhi, self.cfg.d_head, endpoint=True).tolist(),
                int(self.nprng.integers(-1, 1, endpoint=True)),
                int(self.nprng.integers(0, self.cfg.weight_frac, endpoint=True)))

    def send_row(self, V, sign, shift, c_shift, sh, split=False):
        """Queue one row; ``split``: beats of random counts ``1..parallel`` (not only the last
        one short)."""
        if split:
            words, n = [], 0
            while n < len(V):
                count = int(self.nprng.integers(1, min(self.cfg.parallel, len(V) - n), endpoint=True))
                keys = [(V[n + j], sign[n + j], shift[n + j]) for j in range(count)]
                keys += [self.junk(j) for j in range(count, self.cfg.parallel)]
                n += count
                words.append(pack_input(self.cfg, *zip(*keys), count, c_shift, sh, n == len(V)))
        else:
            words = pack_row(self.cfg, V, sign, shift, c_shift, sh, pad=self.junk)
        for w in words:
            self.i.send(w)
        self.beats.append(len(words))
        self.expected.append(shift_accumulate_row(self.cfg, V, sign, shift, c_shift, sh))

    async def check(self):
        budget = 40 * (self.i.sent + len(self.i.queue)) + 20 * len(self.expected) * self.cfg.round_cycles + 100
        await self.wait_results(len(self.expected), budget, "rows")
        await ClockCycles(self.dut.clk, 10)
        got = [unpack_output(self.cfg, w) for w in self.out.received]
        assert len(got) == len(self.expected), f"{len(got)} rows for {len(self.expected)} (seed {self.seed})"
        for r, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"row {r}: Z = {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d rows match the golden model", len(got))


def random_rows(tb, count, lengths=None):
    """Random rows (``lengths`` cycled, else random lengths ``1..seq_len``)."""
    cfg, rng = tb.cfg, tb.nprng
    F, (vlo, vhi), (slo, shi) = cfg.weight_frac, cfg.v_range, cfg.shift_range
    rows = []
    for r in range(count):
        n = lengths[r % len(lengths)] if lengths else int(rng.integers(1, cfg.seq_len + 1))
        c_shift = int(rng.integers(cfg.c_shift_range[0], F, endpoint=True)) if cfg.has_sv else None
        rows.append((rng.integers(vlo, vhi, (n, cfg.d_head), endpoint=True).tolist(),
                     rng.integers(-1 if cfg.has_sv else 0, 1, n, endpoint=True).tolist(),
                     rng.integers(0, F, n, endpoint=True).tolist(), c_shift,
                     int(rng.integers(max(slo, -3), min(shi, F + 4), endpoint=True))))
    return rows


def rows(tb, count=None):
    """The golden vector generator's rows (extreme rows of seq_len keys: largest |acc|,
    t_C < 0, both ends of the shift range; then random ones), rows of 1 key, every t_n, and
    a random row for every sh of the shift range."""
    count = int(os.environ.get("DAMF_COUNT", "80")) if count is None else count
    cfg = tb.cfg
    inputs = golden_vectors.SHIFT_ACCUMULATE.generate(cfg, tb.nprng, count)
    out = golden_vectors.shift_accumulate_rows(cfg, inputs)
    out += random_rows(tb, 8, [1])
    F, L = cfg.weight_frac, cfg.seq_len
    for start in range(0, F + 1, L):
        V, _, _, c_shift, _ = random_rows(tb, 1, [min(L, F + 1 - start)])[0]
        out.append((V, [1] * len(V), list(range(start, start + len(V))), c_shift, 0))
    for sh in range(cfg.shift_range[0], cfg.shift_range[1] + 1):
        V, sign, shift, c_shift, _ = random_rows(tb, 1)[0]
        out.append((V, sign, shift, c_shift, sh))
    return out


async def run_random(dut, idle, backpressure, split=False):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for row in rows(tb):
        tb.send_row(*row, split=split)
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT, backpressure=0.5, options=lambda stalls: {"split": stalls == "both"},
    doc="Extreme, short, every-t_n, every-sh and random rows under each mix of input gaps and output "
        "backpressure (no row lost or repeated); with both, beats of random counts (not only a short last beat).")


def _timing(tb):
    acc, outs = tb.i.accept_cycles, tb.out.cycles
    return acc, outs, outs[-1] - acc[0] + 1


@cocotb.test(**TIMEOUT)
async def latency_and_throughput(dut):
    """Rows of at least ``round_cycles`` beats: one beat per cycle, rows back to back, ``Z``
    ``latency`` cycles after its row's last beat, ``cycles(beats)`` in all."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    long_keys = [n for n in range(1, cfg.seq_len + 1) if cfg.row_beats(n) >= cfg.round_cycles] or [cfg.seq_len]
    for row in random_rows(tb, 10, long_keys):
        tb.send_row(*row)
    await tb.check()
    acc, outs, measured = _timing(tb)
    beats = tb.beats
    if all(b >= cfg.round_cycles for b in beats[1:]):
        assert acc == list(range(acc[0], acc[0] + len(acc))), "beats not accepted one per cycle"
        ends = np.cumsum(beats) - 1
        lat = {o - acc[e] for o, e in zip(outs, ends)}
        assert lat == {cfg.latency}, f"latency {lat}, documented {cfg.latency}"
    assert measured == cfg.cycles(beats), f"{measured} cycles, documented {cfg.cycles(beats)} for beats {beats}"


@cocotb.test(**TIMEOUT)
async def short_rows_wait(dut):
    """Rows of fewer beats than ``round_cycles`` (and mixed lengths): ``Z_m`` comes
    ``max(b_m, round_cycles)`` cycles after ``Z_(m-1)``, ``cycles(beats)`` in all."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    some = (random_rows(tb, 6, [1]) + random_rows(tb, 6, [cfg.seq_len, 1, min(cfg.parallel + 1, cfg.seq_len)])
            + random_rows(tb, 8))
    for row in some:
        tb.send_row(*row)
    await tb.check()
    _, outs, measured = _timing(tb)
    beats = tb.beats
    assert [b - a for a, b in zip(outs, outs[1:])] == [max(b, cfg.round_cycles) for b in beats[1:]], \
        f"Z cycles {outs} for beats {beats}"
    assert measured == cfg.cycles(beats), f"{measured} cycles, documented {cfg.cycles(beats)} for beats {beats}"


async def replay(tb, inputs):
    """Every row of a vector file; ``{"z": the rows Z_m}``."""
    for row in golden_vectors.shift_accumulate_rows(tb.cfg, inputs):
        tb.send_row(*row)
    await tb.check()
    return {"z": [unpack_output(tb.cfg, w) for w in tb.out.received]}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): rows of keys, one Z row each ---------------------------------

def _soak_batch(tb, first):
    todo = rows(tb, 100) if first else random_rows(tb, 200)
    split = bool(tb.rng.getrandbits(1))
    for row in todo:
        tb.send_row(*row, split=split)
    tb.beats.clear()


def _soak_decode(tb, word):
    return unpack_output(tb.cfg, word)


SOAK = Soak("Z rows", TB, batch=_soak_batch, decode=_soak_decode)
