"""pytest runners of the composed head's testbench (cocotb, Icarus and Verilator)."""

import pytest

from damf.config import InnerProductConfig
from damf.golden.damf_head_block import calibrated_base2
from damf.config import DamfHeadBlockConfig
from damf.sim.block_test import run_block


def _head(ip, **kw):
    return DamfHeadBlockConfig.for_inner_product(InnerProductConfig(**ip), **kw)


CONFIGS = {
    # the default preset (its run also replays golden/vectors/default/damf-head.json)
    "default": DamfHeadBlockConfig.from_preset("default"),
    # rank 2, three scores per beat, seq_len 7 (L not a power of two, partial beats), 2 beats/token
    "r2-L7-p3": _head(dict(d_model=5, lanes=3, rank=2, x_width=3, w_width=3), seq_len=7, d_head=3,
                      v_width=4, weight_frac=6, out_frac=3, parallel=3),
    # cross-attention (Lq != Lk, a y stream), rank 1, one score per beat, maclaurin-abs, fixed
    # weights baked into the Verilog
    "r1-L5-p1-abs-fixed-cross": _head(dict(d_model=4, lanes=4, rank=1, x_width=4, w_width=4, weights="fixed"),
                                      seq_len=5, d_head=2, v_width=5, weight_frac=4, out_frac=2, parallel=1,
                                      mode="maclaurin-abs", cross=True),
    # causal (rows of 1..L keys, partial and dropped beats; cycles_per_head exact), rank 2
    "r2-L6-p4-causal": _head(dict(d_model=4, lanes=2, rank=2, x_width=3, w_width=3), seq_len=6, d_head=2,
                             v_width=4, weight_frac=5, out_frac=2, parallel=4, causal=True),
    # mode base2 (c chosen so random heads use every exponent and drop keys), rank 2, partial beats
    "r2-L7-p3-base2": calibrated_base2(_head(dict(d_model=5, lanes=3, rank=2, x_width=3, w_width=3), seq_len=7,
                                             d_head=3, v_width=4, weight_frac=6, out_frac=3, parallel=3)),
    # base2, causal, out_frac > weight_frac (final left shifts)
    "r1-L6-p2-base2-causal": calibrated_base2(_head(dict(d_model=6, lanes=4, rank=1, x_width=4, w_width=4),
                                                    seq_len=6, d_head=2, v_width=5, weight_frac=3, out_frac=5,
                                                    parallel=2, causal=True)),
    # p and q requantized into 4 bits by a shift of 2 (rounding ties, saturating both ways)
    "r2-L7-p3-rq4": _head(dict(d_model=5, lanes=2, rank=2, x_width=4, w_width=4), seq_len=7, d_head=3,
                          v_width=4, weight_frac=6, out_frac=3, parallel=3, pq_width=4, pq_shift=2),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_damf_head(name, simulator, request):
    run_block(CONFIGS[name], name=name, simulator=simulator, request=request)
