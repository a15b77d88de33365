"""pytest runners of the row_stats testbench (cocotb, Icarus and Verilator)."""

import pytest

from damf.config import RowStatsConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset (its run also replays golden/vectors/default/row-stats.json)
    "default": RowStatsConfig.from_preset("default"),
    # L not a power of two, rank > 1, beats of 1..3 scores
    "L7-r2-P3": RowStatsConfig(seq_len=7, rank=2, pq_width=6, parallel=3),
    # mode maclaurin-abs, a narrow window (F < log2 L + 2), one score per beat
    "L12-abs-P1": RowStatsConfig(seq_len=12, rank=1, pq_width=5, parallel=1, mode="maclaurin-abs", weight_frac=1),
    # five lanes (an odd node in the lane tree), count_width 6, small pq_width, rank 16
    "L40-r16-w8-P5": RowStatsConfig(seq_len=40, rank=16, pq_width=8, parallel=5),
    # mode base2: N and A_max only, the accumulators are the output register
    "L6-r2-P4-base2": RowStatsConfig(seq_len=6, rank=2, pq_width=6, parallel=4, mode="base2"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_row_stats(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
