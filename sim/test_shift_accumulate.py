"""pytest runners of the shift-accumulate testbench (cocotb, Icarus and Verilator)."""

import pytest

from damf.config import ShiftAccumulateConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # parallel 3 with L = 7 (a short last beat), d_head 3 rounded one lane per cycle
    # (round_cycles 3: rows of 1..2 beats wait); a narrow window and output (saturation is frequent)
    "L7-d3-F3-p3-r1": ShiftAccumulateConfig(seq_len=7, d_head=3, v_width=5, weight_frac=3, out_frac=2,
                                            pq_width=5, rank=2, parallel=3, round_lanes=1),
    # one key per beat, d_head 3 rounded two lanes per cycle (the second group has one lane)
    "L5-d3-F4-p1-r2": ShiftAccumulateConfig(seq_len=5, d_head=3, v_width=4, weight_frac=4, out_frac=2,
                                            pq_width=4, parallel=1, round_lanes=2),
    # base2: no SV term, weights 0 or 2^t_n; out_frac > weight_frac makes sh reach left shifts
    "L6-d2-F4-p2-base2": ShiftAccumulateConfig(seq_len=6, d_head=2, v_width=6, weight_frac=4, out_frac=6,
                                               pq_width=5, mode="base2"),
    # the default preset (parallel 2, d_head 8, 2 rounders, round_cycles 4)
    "default": ShiftAccumulateConfig.from_preset("default"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_shift_accumulate(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
