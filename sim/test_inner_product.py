"""pytest runners of the inner-product testbench: every configuration on every simulator."""

import pytest

from damf.config import InnerProductConfig
from damf.sim.block_test import run_block

CONFIGS = {
    # the default preset: d_model 16 in 4 beats of 4 lanes
    "default": InnerProductConfig.from_preset("default"),
    # lanes do not divide d_model (last beat has 2 of 3 lanes), rank > 1
    "lanes3-rank3": InnerProductConfig(d_model=11, lanes=3, rank=3, x_width=6, w_width=5),
    # a single element per token
    "d1": InnerProductConfig(d_model=1, lanes=1, rank=1, x_width=4, w_width=3),
    # one beat per token, rank 2, weights fixed at generation time
    "fixed-onebeat": InnerProductConfig(d_model=7, lanes=7, rank=2, x_width=8, w_width=8,
                                        weights="fixed", weight_seed=5),
    # fixed weights over several beats, wide inputs
    "fixed-wide": InnerProductConfig(d_model=20, lanes=8, rank=1, x_width=12, w_width=10,
                                     weights="fixed", weight_seed=9),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_inner_product(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
