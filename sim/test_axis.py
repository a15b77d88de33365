"""pytest runners of the AXI4-Stream wrapper's testbench (``sim/tb_axis.py``): ``damf-head``
and ``inner-product`` behind ``damf generate --axis``, cocotbext-axi sources and sink with
random pauses, on every simulator."""

import os

import pytest

from damf.config import InnerProductConfig
from damf.config import DamfHeadBlockConfig
from damf.sim.runner import SimFailed, run_testbench

CONFIGS = {
    # the default head: runtime weights on w, 4-lane x beats, 8-wide Z rows (whole bytes)
    "head-default": DamfHeadBlockConfig.from_preset("default"),
    # odd widths: x 9 bits in 2 bytes (7 pad bits), v 12 bits, Z rows and weight words padded;
    # rank 2, partial beats (seq_len 7, parallel 3)
    "head-r2-L7-p3": DamfHeadBlockConfig.for_inner_product(
        InnerProductConfig(d_model=5, lanes=3, rank=2, x_width=3, w_width=3), seq_len=7, d_head=3,
        v_width=4, weight_frac=6, out_frac=3, parallel=3),
    # base2, fixed weights (no w stream)
    "head-base2-fixed": DamfHeadBlockConfig.for_inner_product(
        InnerProductConfig(d_model=6, lanes=4, rank=1, x_width=4, w_width=4, weights="fixed"),
        seq_len=5, d_head=2, v_width=5, weight_frac=3, out_frac=5, parallel=2, mode="base2"),
    # the default unit: 4 beats per token, runtime weights
    "ip-default": InnerProductConfig.from_preset("default"),
    # 3 lanes of 6 bits (18 -> 24-bit tdata), rank 3, a partial last beat, padded results
    "ip-lanes3-rank3": InnerProductConfig(d_model=11, lanes=3, rank=3, x_width=6, w_width=5),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_axis(name, simulator, request):
    seed = int(os.environ.get("DAMF_SEED", "20261204"))
    build = request.config.rootpath / "build" / "sim" / "axis" / name / simulator
    try:
        run_testbench(CONFIGS[name], simulator=simulator, module="damf.sim.tb_axis", build_dir=build,
                      axis=True, env={"DAMF_SEED": str(seed)})
    except SimFailed as e:
        pytest.fail(f"{e} -- config {name}, {simulator}, seed {seed}: rerun with DAMF_SEED={seed}; "
                    f"build folder {build}", pytrace=False)
