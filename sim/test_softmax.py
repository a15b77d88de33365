"""pytest runners of the softmax testbench: every configuration on every simulator."""

import os

import pytest

from damf.config import SoftmaxConfig
from damf.sim.runner import SimFailed, run_testbench

CONFIGS = {
    # the default preset: L = 8, 19-bit scores (the default systolic-qk acc_width), 8-bit probabilities
    "default": SoftmaxConfig.from_preset("default"),
    # narrow everything, alpha = 1/4, odd L
    "narrow": SoftmaxConfig(seq_len=5, in_width=6, scale=1, scale_frac=2, prob_width=4, exp_frac=6),
    # a one-score row buffer: every probability is 1.0 (saturated)
    "L1": SoftmaxConfig(seq_len=1),
    # alpha*log2(e) > 2 (exp_shift < exp_frac), 16-bit probabilities
    "steep": SoftmaxConfig(seq_len=7, in_width=8, scale=3, scale_frac=0, prob_width=16),
    # BERT-base length and score width (bert-base systolic-qk acc_width = 22, 1/sqrt(64))
    "bert": SoftmaxConfig(seq_len=128, in_width=22, scale=1, scale_frac=13),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_softmax(name, simulator, request):
    seed = int(os.environ.get("DAMF_SEED", "20261122"))
    build = request.config.rootpath / "build" / "sim" / "softmax" / name / simulator
    try:
        run_testbench(CONFIGS[name], simulator=simulator, module="damf.sim.tb_softmax",
                      build_dir=build, env={"DAMF_SEED": str(seed)})
    except SimFailed as e:
        pytest.fail(f"{e} -- config {name}, {simulator}, seed {seed}: rerun with DAMF_SEED={seed}; "
                    f"build folder {build}", pytrace=False)
