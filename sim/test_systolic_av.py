"""pytest runners of the systolic-av (A' x V) testbench on every simulator."""

import pytest

from damf.config import SystolicAVConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset: 4x4 array, L = 8 (inner length), d_head = 8, 9-bit A' (8-bit probabilities)
    "default": SystolicAVConfig.from_preset("default"),
    # L and d_head multiples of neither R nor C: padding rows and columns
    "ragged-3x5": SystolicAVConfig(rows=3, cols=5, d_head=11, seq_len=7, q_width=5, k_width=7),
    # a single cell
    "1x1": SystolicAVConfig(rows=1, cols=1, d_head=3, seq_len=4),
    # L = 2 < max(R, C): i.ready held between tiles
    "short-L": SystolicAVConfig(rows=2, cols=3, d_head=5, seq_len=2, q_width=4, k_width=3),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_systolic_av(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
