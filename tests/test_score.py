"""Fast Amaranth-simulator tests of the score unit (the cocotb ones are in sim/)."""

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.hdl import ResetInserter
from amaranth.sim import Simulator

from damf.config import ConfigError
from damf.golden.score import row_beats, score_matrix
from damf.config import ScoreConfig
from damf.hdl.score import Score, pack_key, pack_query, unpack_output
from damf.sim.amaranth_bench import run_streams


def edge_pq(cfg, rng, length):
    lo, hi = cfg.pq_range
    rows = [[hi] * cfg.rank, [lo] * cfg.rank, [0] * cfg.rank, [lo if k % 2 else hi for k in range(cfg.rank)]]
    rows += rng.integers(lo, hi, (length, cfg.rank), endpoint=True).tolist()
    return [rows[j] for j in rng.permutation(len(rows))[:length]]


def streams(cfg, problems):
    """``k`` and ``i`` payloads and the expected ``o`` beats of heads ``[(p, q), ...]``: every
    load, then every query set (``last`` on its final query), queued at once."""
    keys, queries, expect, bounds = [], [], [], []
    for p, q in problems:
        keys += [pack_key(cfg, row, n == len(q) - 1) for n, row in enumerate(q)]
        queries += [pack_query(cfg, row, m == len(p) - 1) for m, row in enumerate(p)]
        for row in score_matrix(cfg, p, q):
            expect += row_beats(cfg, row)
        bounds.append((len(keys), len(queries), len(expect)))
    return keys, queries, expect, bounds


def simulate(cfg, problems, *, seed=0, idle=0.3, backpressure=0.3):
    keys, queries, expect, bounds = streams(cfg, problems)
    log = run_streams(Score(cfg), {"k": keys, "i": queries}, ["o"], expect={"o": len(expect)},
                      seed=seed, idle=idle, backpressure=backpressure)
    got = [unpack_output(cfg, w) for _, w in log["o"]]
    return got, expect, log, bounds


CONFIGS = [
    ScoreConfig(seq_len=5, rank=1, pq_width=6, parallel=2),
    ScoreConfig(seq_len=7, rank=3, pq_width=5, parallel=3),
    ScoreConfig(seq_len=4, rank=2, pq_width=4, parallel=1),
    ScoreConfig(seq_len=6, rank=1, pq_width=4, parallel=6),
    ScoreConfig(seq_len=9, rank=16, pq_width=8, parallel=2),
    ScoreConfig(seq_len=8, rank=3, pq_width=8, parallel=4),
    ScoreConfig(seq_len=1, rank=1, pq_width=8, parallel=1),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"L{c.seq_len}-r{c.rank}-w{c.pq_width}-P{c.parallel}")
def test_matches_golden(cfg, seed):
    """Several heads queued at once (loads overlap query sets), random gaps and backpressure."""
    rng = np.random.default_rng(3 + seed)
    problems = []
    for lk in [cfg.seq_len, 1, max(1, cfg.seq_len - 1), cfg.seq_len, int(rng.integers(1, cfg.seq_len + 1))]:
        lq = int(rng.integers(1, cfg.seq_len + 2))
        problems.append((edge_pq(cfg, rng, lq), edge_pq(cfg, rng, lk)))
    got, expect, _, _ = simulate(cfg, problems, seed=seed)
    assert got == expect


# heads (Lq, Lk) chosen so that every rule of the bank protocol decides some handshake
SCHEDULES = {
    # set 0 is long: load 1 overlaps it, load 2 waits for bank 0; load 2 is long: set 2 waits for it
    "overlap-wait": [(4, 7), (1, 2), (2, 7), (3, 1), (1, 7)],
    "one-key": [(1, 1), (1, 1), (2, 1), (1, 1)],
    "full": [(7, 7), (7, 7), (7, 7)],
}


@pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[0], CONFIGS[4]], ids=lambda c: f"r{c.rank}-P{c.parallel}")
@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule(cfg, name):
    """Every load, query set and output beat at the cycle :meth:`ScoreConfig.schedule` gives."""
    heads = [(lq, min(lk, cfg.seq_len)) for lq, lk in SCHEDULES[name]]
    rng = np.random.default_rng(1)
    problems = [(edge_pq(cfg, rng, lq), edge_pq(cfg, rng, lk)) for lq, lk in heads]
    got, expect, log, bounds = simulate(cfg, problems, idle=0, backpressure=0)
    assert got == expect
    t0 = log["k"][0][0]
    measured, k0, q0, o0 = [], 0, 0, 0
    for k1, q1, o1 in bounds:
        measured.append({"load": log["k"][k0][0] - t0, "load_end": log["k"][k1 - 1][0] - t0,
                         "query": log["i"][q0][0] - t0, "first": log["o"][o0][0] - t0,
                         "last": log["o"][o1 - 1][0] - t0})
        k0, q0, o0 = k1, q1, o1
    model = [{k: v for k, v in h.items() if k != "free"} for h in cfg.schedule(heads)]
    assert measured == model
    if name == "overlap-wait" and cfg.parallel < cfg.seq_len:
        sch = cfg.schedule(heads)
        assert sch[1]["load"] < sch[0]["free"]                          # a load during set 0
        assert sch[2]["load"] == sch[0]["free"] + 1 > sch[1]["load_end"] + 1   # load 2 waits for bank 0
        assert sch[2]["query"] == sch[2]["load_end"] + 1 > sch[1]["free"]      # set 2 waits for load 2
    # first and last beat of each set match, so its Lq * ceil(Lk / parallel) beats are back to back
    assert cfg.cycles(*heads[0]) == heads[0][1] + heads[0][0] * cfg.row_beats(heads[0][1]) + cfg.latency


def test_latency_values():
    assert [c.latency for c in CONFIGS] == [4, 5, 5, 4, 6, 5, 4]
    assert ScoreConfig(seq_len=128, rank=64, pq_width=8).latency == 7
    assert ScoreConfig(seq_len=7, rank=2, pq_width=5, parallel=3).cycles(6, 7) == 7 + 6 * 3 + 5


def test_reset_forgets_both_banks():
    """After ``rst`` no bank is loaded (queries wait), and the next load goes to bank 0."""
    cfg = CONFIGS[1]
    rst = Signal()
    dut = Score(cfg)
    m = Module()
    m.submodules.dut = ResetInserter(rst)(dut)
    rng = np.random.default_rng(2)
    q_old, q_new, p = edge_pq(cfg, rng, 7), edge_pq(cfg, rng, 5), edge_pq(cfg, rng, 2)
    out = []

    async def bench(ctx):
        async def send(port, words):
            for w in words:
                ctx.set(port.payload.as_value(), w)
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

        # two loads: both banks full
        await send(dut.k, [pack_key(cfg, r, n == 6) for n, r in enumerate(q_old)] * 2)
        assert not ctx.get(dut.k.ready)
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        ctx.set(dut.i.payload.as_value(), pack_query(cfg, p[0], False))
        ctx.set(dut.i.valid, 1)
        for _ in range(3):
            await ctx.tick()
            assert not ctx.get(dut.i.ready) and ctx.get(dut.k.ready)
        ctx.set(dut.i.valid, 0)
        await send(dut.k, [pack_key(cfg, r, n == 4) for n, r in enumerate(q_new)])
        ctx.set(dut.o.ready, 1)
        await send(dut.i, [pack_query(cfg, r, j == 1) for j, r in enumerate(p)])
        while len(out) < 2 * cfg.row_beats(5):
            await ctx.tick()
            if ctx.get(dut.o.valid):
                out.append(unpack_output(cfg, ctx.get(dut.o.payload.as_value())))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expect = [b for row in score_matrix(cfg, p, q_new) for b in row_beats(cfg, row)]
    assert out == expect


def test_query_waits_for_its_load():
    """A key load goes before a waiting query: a query offered while its bank's keys are
    still coming is accepted exactly in the cycle after the load's last key -- for the first
    head (query and keys offered together from cycle 0) and for the second (its keys offered
    every fourth cycle, its query right after the first set, into the other bank) -- and the
    rows are the golden ones."""
    cfg = ScoreConfig(seq_len=7, rank=3, pq_width=5, parallel=3)
    rng = np.random.default_rng(11)
    heads = [(edge_pq(cfg, rng, 2), edge_pq(cfg, rng, 5)), (edge_pq(cfg, rng, 3), edge_pq(cfg, rng, 6))]
    keys = [(h, pack_key(cfg, r, n == len(q) - 1)) for h, (_, q) in enumerate(heads) for n, r in enumerate(q)]
    queries = [(h, pack_query(cfg, r, m == len(p) - 1)) for h, (p, _) in enumerate(heads) for m, r in enumerate(p)]
    dut = Score(cfg)
    k_log, i_log, out = [], [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = 0
        while keys or queries or len(out) < len(expect):
            assert cycle < 400, "score unit stalled"
            k_offer = bool(keys) and (keys[0][0] == 0 or cycle % 4 == 0)
            ctx.set(dut.k.valid, k_offer)
            if k_offer:
                ctx.set(dut.k.payload.as_value(), keys[0][1])
            i_offer = bool(queries)
            ctx.set(dut.i.valid, i_offer)
            if i_offer:
                ctx.set(dut.i.payload.as_value(), queries[0][1])
            _, _, k_ready, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.k.ready, dut.i.ready, dut.o.valid, dut.o.payload.as_value())
            if k_offer and k_ready:
                k_log.append((cycle, keys.pop(0)[0]))
            if i_offer and i_ready:
                i_log.append((cycle, queries.pop(0)[0]))
            if o_valid:
                out.append(unpack_output(cfg, o_payload))
            cycle += 1

    expect = [b for p, q in heads for row in score_matrix(cfg, p, q) for b in row_beats(cfg, row)]
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for h in range(2):
        last_key = max(c for c, head in k_log if head == h)
        first_query = min(c for c, head in i_log if head == h)
        assert first_query == last_key + 1, \
            f"head {h}: first query accepted in cycle {first_query}, its load ended in cycle {last_key}"
    # the second head's query really waited: the first set had ended long before its load did
    assert max(c for c, head in i_log if head == 0) + 4 < max(c for c, head in k_log if head == 1)
    assert out == expect


def test_config_errors():
    with pytest.raises(ConfigError, match=r"^parallel must be at most seq_len = 4, not 5$"):
        ScoreConfig(seq_len=4, parallel=5)
    with pytest.raises(TypeError, match=r"^Config must be a ScoreConfig, not 3$"):
        Score(3)
