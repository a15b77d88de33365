"""pytest runners of the shift-accumulate testbench (cocotb, Icarus and Verilator)."""

import os

import pytest

from damf.head_config import ShiftAccumulateConfig
from damf.sim.runner import SimFailed, run_testbench

CONFIGS = {
    # L not a power of two, d_head 3, a narrow window and output (saturation is frequent)
    "L7-d3-F3": ShiftAccumulateConfig(seq_len=7, d_head=3, v_width=5, weight_frac=3, out_frac=2,
                                      pq_width=5, rank=2),
    # base2: no SV term, weights 0 or 2^t_n; out_frac > weight_frac makes sh reach left shifts
    "L6-d2-F4-base2": ShiftAccumulateConfig(seq_len=6, d_head=2, v_width=6, weight_frac=4, out_frac=6,
                                            pq_width=5, mode="base2"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_shift_accumulate(name, simulator, request):
    seed = int(os.environ.get("DAMF_SEED", "20261122"))
    build = request.config.rootpath / "build" / "sim" / "shift-accumulate" / name / simulator
    try:
        run_testbench(CONFIGS[name], simulator=simulator, module="damf.sim.tb_shift_accumulate",
                      build_dir=build, env={"DAMF_SEED": str(seed)})
    except SimFailed as e:
        pytest.fail(f"{e} -- config {name}, {simulator}, seed {seed}: rerun with DAMF_SEED={seed}; "
                    f"build folder {build}", pytrace=False)
