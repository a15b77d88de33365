"""pytest runners of the baseline-head testbench: every configuration on every simulator."""

import pytest

from damf.config import BaselineHeadConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset: 4 x 4 arrays, L = 8, d_head = 8, 8-bit Q, K, V and probabilities
    "default": BaselineHeadConfig.from_preset("default"),
    # L = 7 a multiple of neither R = 3 nor C = 2, d_head = 5 not a multiple of C: padding rows
    # and columns in both arrays; narrow widths, alpha = 1/8, 6-bit probabilities
    "ragged-3x2": BaselineHeadConfig(rows=3, cols=2, d_head=5, seq_len=7, q_width=5, k_width=6, v_width=4,
                                     scale=1, scale_frac=3, prob_width=6),
    # a 1 x 1 array: every tile is one score / one element of Z
    "1x1": BaselineHeadConfig(rows=1, cols=1, d_head=2, seq_len=3),
    # inputs=x: the head projects tokens X (d_model = 6 in 2 beats of 4 lanes, 2 padding lanes)
    # to Q and K itself with runtime weights on w, requantized by 2 bits from 10 into 5 (Q) and
    # 4 (K) bits (saturating both ways, rounding ties); the ragged 3 x 2 arrays above
    "x-ragged-3x2": BaselineHeadConfig(rows=3, cols=2, d_head=5, seq_len=7, q_width=5, k_width=4, v_width=4,
                                       scale=1, scale_frac=3, prob_width=6, inputs="x", d_model=6, lanes=4,
                                       x_width=4, w_width=4, qk_shift=2),
    # inputs=x with weights fixed in the Verilog, one beat per token, no shift (saturation only)
    # and two banks of Q, K, V: each head loads while the one before computes; a 1 x 1 array
    "x-fixed-1x1-2banks": BaselineHeadConfig(rows=1, cols=1, d_head=2, seq_len=3, inputs="x", d_model=3,
                                             lanes=3, x_width=3, w_width=3, weights="fixed", weight_seed=5,
                                             qk_shift=0, q_width=5, k_width=5, banks=2),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_baseline_head(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
