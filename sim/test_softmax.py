"""pytest runners of the softmax testbench: every configuration on every simulator."""

import pytest

from damf.config import SoftmaxConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset: L = 8, 4 scores per beat, 19-bit scores (the default systolic-qk acc_width)
    "default": SoftmaxConfig.from_preset("default"),
    # narrow everything, alpha = 1/4, odd L, a partial last beat
    "narrow": SoftmaxConfig(seq_len=5, parallel=2, in_width=6, scale=1, scale_frac=2, prob_width=4, exp_frac=6),
    # one score per beat
    "serial": SoftmaxConfig(seq_len=9, parallel=1),
    # a one-score row: every probability is 1.0 (saturated)
    "L1": SoftmaxConfig(seq_len=1, parallel=1),
    # alpha*log2(e) > 2 (exp_shift < exp_frac), 16-bit probabilities, 3 lanes
    "steep": SoftmaxConfig(seq_len=7, parallel=3, in_width=8, scale=3, scale_frac=0, prob_width=16),
    # BERT-base length and score width (bert-base systolic-qk acc_width = 22, 1/sqrt(64)), 16 lanes
    "bert": SoftmaxConfig(seq_len=128, parallel=16, in_width=22, scale=1, scale_frac=13),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_softmax(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
