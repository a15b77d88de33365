"""pytest runners of the score testbench (cocotb, Icarus and Verilator)."""

import pytest

from damf.config import ScoreConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset (its run also replays golden/vectors/default/score.json)
    "default": ScoreConfig.from_preset("default"),
    # L not a power of two, rank > 1, parallel not dividing L (partial last beat)
    "L7-r2-P3": ScoreConfig(seq_len=7, rank=2, pq_width=6, parallel=3),
    # small pq_width (the head requantizes p and q), rank 3 and 16 (registered rank sums)
    "L8-r3-w8-P4": ScoreConfig(seq_len=8, rank=3, pq_width=8, parallel=4),
    "L9-r16-w8-P2": ScoreConfig(seq_len=9, rank=16, pq_width=8, parallel=2),
    "L5-r1-w8-P1": ScoreConfig(seq_len=5, rank=1, pq_width=8, parallel=1),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_score(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
