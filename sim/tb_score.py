"""cocotb testbench of the score unit, checked against ``golden.score``.

Environment (set by ``sim/test_score.py`` or ``damf sim``): ``DAMF_CONFIG`` (the
``score.json`` next to the Verilog), ``DAMF_SEED``, ``DAMF_COUNT`` (random loads, default
6), ``DAMF_IDLE`` / ``DAMF_BACKPRESSURE``, ``DAMF_TIMEOUT_MS``, and ``DAMF_VECTORS`` /
``DAMF_RESULTS`` for ``vectors_file``.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles

from ..golden import vectors as golden_vectors
from ..golden.score import row_beats, score_matrix
from ..config import ScoreConfig
from ..hdl.score import pack_key, pack_query, unpack_output
from .common_tests import random_vectors_test, vectors_file_test
from .streams import BlockTB, cocotb_timeout
from .tb_soak import Soak

TIMEOUT = cocotb_timeout()


class TB(BlockTB):
    config_cls = ScoreConfig
    inputs = {"k": "k", "i": "i"}

    def __init__(self, dut, **kwargs):
        super().__init__(dut, **kwargs)
        self.bounds = []        # per head: keys, queries and beats queued before it

    def problem(self, p, q):
        """Queue a head: the load of keys ``q`` and the query set ``p`` (``last`` on its final
        query).  Heads are queued at once; the unit orders them (two key banks)."""
        self.bounds.append((self.k.sent + len(self.k.queue), self.i.sent + len(self.i.queue),
                            len(self.expected)))
        for n, row in enumerate(q):
            self.k.send(pack_key(self.cfg, row, n == len(q) - 1))
        for j, row in enumerate(p):
            self.i.send(pack_query(self.cfg, row, j == len(p) - 1))
        for row in score_matrix(self.cfg, p, q):
            self.expected += row_beats(self.cfg, row)

    def measured_schedule(self):
        """Per queued head, the cycles of :meth:`ScoreConfig.schedule` (without ``free``)
        counted from the first key's handshake."""
        k, i, o = self.k.accept_cycles, self.i.accept_cycles, self.out.cycles
        ends = self.bounds[1:] + [(len(k), len(i), len(o))]
        t0 = k[0]
        return [{"load": k[k0] - t0, "load_end": k[k1 - 1] - t0, "query": i[i0] - t0,
                 "first": o[o0] - t0, "last": o[o1 - 1] - t0}
                for (k0, i0, o0), (k1, i1, o1) in zip(self.bounds, ends)]

    async def check(self):
        offered = self.k.sent + len(self.k.queue) + self.i.sent + len(self.i.queue)
        budget = 40 * (len(self.expected) + offered) + 100
        await self.wait_results(len(self.expected), budget, "beats")
        await ClockCycles(self.dut.clk, 2 * self.cfg.latency)
        got = [unpack_output(self.cfg, w) for w in self.out.received]
        assert len(got) == len(self.expected), f"{len(got)} beats, expected {len(self.expected)}"
        for b, (g, e) in enumerate(zip(got, self.expected)):
            assert g == e, f"beat {b}: (scores, count, last) = {g}, expected {e} (seed {self.seed})"
        self.dut._log.info("%d beats match the golden model", len(got))


def pq_rows(cfg, rng, length, edges=True):
    lo, hi = cfg.pq_range
    rows = [[hi] * cfg.rank, [lo] * cfg.rank, [0] * cfg.rank, [lo if k % 2 else hi for k in range(cfg.rank)]]
    rows = rows if edges else []
    rows += rng.integers(lo, hi, (length, cfg.rank), endpoint=True).tolist()
    order = rng.permutation(len(rows))[:length]
    return [rows[j] for j in order]


def lengths(cfg, rng, count):
    """Key lengths: full, 1, seq_len - 1, then random ones."""
    fixed = [cfg.seq_len, 1, max(1, cfg.seq_len - 1)]
    return fixed + [int(x) for x in rng.integers(1, cfg.seq_len + 1, count)]


async def run_random(dut, idle, backpressure):
    tb = TB(dut, idle=idle, backpressure=backpressure)
    await tb.reset()
    for lk in lengths(tb.cfg, tb.nprng, int(os.environ.get("DAMF_COUNT", "6"))):
        lq = int(tb.nprng.integers(1, 2 * tb.cfg.seq_len + 1))
        tb.problem(pq_rows(tb.cfg, tb.nprng, lq), pq_rows(tb.cfg, tb.nprng, lk))
    await tb.check()


random_vectors = random_vectors_test(
    run_random, timeout=TIMEOUT,
    doc="Edge and random keys and queries, heads of several lengths queued at once (loads overlap query "
        "sets), under each mix of input gaps and output backpressure.")


@cocotb.test(**TIMEOUT)
async def latency_and_throughput(dut):
    """First beat ``latency`` cycles after its query; a full head in ``cycles(Lq, Lk)``."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    L = cfg.seq_len
    tb.problem(pq_rows(cfg, tb.nprng, L), pq_rows(cfg, tb.nprng, L))
    await tb.check()
    first_key, first_query = tb.k.accept_cycles[0], tb.i.accept_cycles[0]
    assert tb.out.cycles[0] - first_query == cfg.latency, \
        f"latency {tb.out.cycles[0] - first_query}, documented {cfg.latency}"
    measured = tb.out.cycles[-1] - first_key + 1
    assert measured == cfg.cycles(L, L), f"{measured} cycles per head, documented {cfg.cycles(L, L)}"
    dut._log.info("latency %d, %d cycles for Lq = Lk = %d", cfg.latency, measured, L)


@cocotb.test(**TIMEOUT)
async def bank_schedule(dut):
    """Two banks: load 1 runs during set 0, load 2 waits for bank 0 to be freed, set 2 waits
    for load 2; every handshake at the cycle of ``ScoreConfig.schedule``."""
    tb = TB(dut)
    await tb.reset()
    cfg = tb.cfg
    heads = [(lq, min(lk, cfg.seq_len)) for lq, lk in [(4, 7), (1, 2), (2, 7), (3, 1), (1, 7), (2, 2)]]
    for lq, lk in heads:
        tb.problem(pq_rows(cfg, tb.nprng, lq), pq_rows(cfg, tb.nprng, lk))
    await tb.check()
    model = [{k: v for k, v in h.items() if k != "free"} for h in cfg.schedule(heads)]
    got = tb.measured_schedule()
    assert got == model, f"schedule {got}, documented {model}"
    sch = cfg.schedule(heads)
    dut._log.info("load 1 at %d during set 0 (bank free at %d); load 2 at %d after set 0; set 2 at %d "
                  "after load 2 (ends %d)", sch[1]["load"], sch[0]["free"], sch[2]["load"],
                  sch[2]["query"], sch[2]["load_end"])


async def replay(tb, inputs):
    """Every head of a vector file; ``{"a": rows of scores}``."""
    for p, q in golden_vectors.score_problems(inputs):
        tb.problem(p, q)
    await tb.check()
    rows, row = [], []
    for scores, _, last in (unpack_output(tb.cfg, w) for w in tb.out.received):
        row += scores
        if last:
            rows.append(row)
            row = []
    return {"a": rows}


vectors_file = vectors_file_test(TB, replay, timeout=TIMEOUT)


# ---- soak (python -m damf.soak): heads of keys and queries, one beat of scores per o beat ----

def _soak_batch(tb, first):
    cfg, rng = tb.cfg, tb.nprng
    for lk in lengths(cfg, rng, 30)[0 if first else 3:]:
        lq = int(rng.integers(1, 2 * cfg.seq_len + 1))
        tb.problem(pq_rows(cfg, rng, lq, edges=first), pq_rows(cfg, rng, lk, edges=first))
    tb.bounds.clear()


def _soak_decode(tb, word):
    return unpack_output(tb.cfg, word)


SOAK = Soak("beats of scores", TB, batch=_soak_batch, decode=_soak_decode)
