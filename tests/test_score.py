"""Fast Amaranth-simulator tests of the score unit (the cocotb ones are in sim/)."""

import numpy as np
import pytest

from damf.config import ConfigError
from damf.golden.score import row_beats, score_matrix
from damf.head_config import ScoreConfig
from damf.hdl.score import Score, pack_key, pack_query, unpack_output
from damf.sim.amaranth_bench import run_streams


def edge_pq(cfg, rng, length):
    lo, hi = cfg.pq_range
    rows = [[hi] * cfg.rank, [lo] * cfg.rank, [0] * cfg.rank, [lo if k % 2 else hi for k in range(cfg.rank)]]
    rows += rng.integers(lo, hi, (length, cfg.rank), endpoint=True).tolist()
    return rows[:length]


def simulate(cfg, problems, *, seed=0, idle=0.3, backpressure=0.3):
    """``problems``: list of (p, q); each load of q followed by its queries p."""
    keys, queries, expect = [], [], []
    order = []  # (stream, index at which the next stream may start)
    for p, q in problems:
        keys += [pack_key(cfg, row, n == len(q) - 1) for n, row in enumerate(q)]
        queries += [pack_query(cfg, row) for row in p]
        order.append((len(keys), len(queries)))
        for row in score_matrix(cfg, p, q):
            expect += row_beats(cfg, row)

    def hold(name, counts):
        if name == "k":
            # keys of load j wait until every query of load j-1 was accepted
            j = next(j for j, (ks, _) in enumerate(order) if counts["k"] < ks)
            return j > 0 and counts["i"] < order[j - 1][1]
        # queries of load j wait until every key of load j was accepted
        j = next(j for j, (_, qs) in enumerate(order) if counts["i"] < qs)
        return counts["k"] < order[j][0]

    log = run_streams(Score(cfg), {"k": keys, "i": queries}, ["o"], expect={"o": len(expect)},
                      seed=seed, idle=idle, backpressure=backpressure, hold=hold)
    got = [unpack_output(cfg, w) for _, w in log["o"]]
    return got, expect, log


CONFIGS = [
    ScoreConfig(seq_len=5, rank=1, pq_width=6, parallel=2),
    ScoreConfig(seq_len=7, rank=3, pq_width=5, parallel=3),
    ScoreConfig(seq_len=4, rank=2, pq_width=4, parallel=1),
    ScoreConfig(seq_len=6, rank=1, pq_width=4, parallel=6),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"L{c.seq_len}-r{c.rank}-P{c.parallel}")
def test_matches_golden(cfg):
    rng = np.random.default_rng(3)
    problems = []
    for lk in [cfg.seq_len, 1, max(1, cfg.seq_len - 1), cfg.seq_len]:
        lq = int(rng.integers(1, cfg.seq_len + 1))
        problems.append((edge_pq(cfg, rng, lq), edge_pq(cfg, rng, lk)))
    got, expect, _ = simulate(cfg, problems)
    assert got == expect


def test_throughput_and_latency_without_stalls():
    cfg = ScoreConfig(seq_len=7, rank=2, pq_width=5, parallel=3)
    rng = np.random.default_rng(1)
    p, q = edge_pq(cfg, rng, 6), edge_pq(cfg, rng, 7)
    got, expect, log = simulate(cfg, [(p, q)], idle=0, backpressure=0)
    assert got == expect
    first_key, first_query = log["k"][0][0], log["i"][0][0]
    assert log["o"][0][0] - first_query == cfg.latency
    assert log["o"][-1][0] - first_key + 1 == cfg.cycles(6, 7)
    assert [c for c, _ in log["o"]] == list(range(log["o"][0][0], log["o"][0][0] + len(expect)))


def test_config_errors():
    with pytest.raises(ConfigError, match=r"^parallel must be at most seq_len = 4, not 5$"):
        ScoreConfig(seq_len=4, parallel=5)
    with pytest.raises(TypeError, match=r"^Config must be a ScoreConfig, not 3$"):
        Score(3)
