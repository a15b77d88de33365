"""pytest runners of the systolic-qk testbench: every configuration on every simulator."""

import pytest

from damf.config import SystolicQKConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset: 4x4 array, L = 8 in 2x2 tiles, d_head = 8 (one MAC per cell per cycle)
    "default": SystolicQKConfig.from_preset("default"),
    # R != C, L a multiple of neither (padding rows and columns), odd widths
    "ragged-3x5": SystolicQKConfig(rows=3, cols=5, d_head=6, seq_len=11, q_width=5, k_width=7),
    # a single cell: every score is its own tile
    "1x1": SystolicQKConfig(rows=1, cols=1, d_head=3, seq_len=4, q_width=8, k_width=8),
    # BERT-like d_head = 64 with 8-bit inputs (22-bit scores), R > C, padding rows only
    "d64-8x4": SystolicQKConfig(rows=8, cols=4, d_head=64, seq_len=20, q_width=8, k_width=8),
    # d_head = 1 < max(R, C): one beat per tile, i.ready held low between tiles
    "short-d": SystolicQKConfig(rows=2, cols=3, d_head=1, seq_len=5, q_width=4, k_width=3),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_systolic_qk(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
