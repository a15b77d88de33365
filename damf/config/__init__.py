"""Generator configurations: one frozen, validated object per generator, in one package.

Every block generator takes exactly one configuration object.  The same object feeds the RTL
generator (``damf.hdl``), the bit-exact golden model (``damf.golden``) and the cocotb
testbenches (``damf.sim``), and is written as JSON next to every generated Verilog file, so
software and hardware cannot drift apart on a width or a rounding rule.

A module per block family, each importing only :mod:`.base` and its own family:

* :mod:`.base`: :class:`BlockConfig` (typed fields, validation, JSON, ``key=value``), the
  named :class:`Preset` objects of :data:`PRESETS` and the width helpers;
* :mod:`.inner_product`: :class:`InnerProductConfig`;
* :mod:`.damf_head`: the head's numerics :class:`DamfHeadConfig` and the configurations of
  ``score``, ``row-stats``, ``shift-accumulate`` and ``damf-head``;
* :mod:`.baseline`: ``systolic-qk``, ``softmax``, ``systolic-av`` and ``baseline-head``.

The package imports neither the golden models nor Amaranth: the layers point one way,
configuration -> golden -> hdl -> sim -> reports.
"""

from .base import (BERT_BASE, DEFAULT, MAX_DERIVED_WIDTH, PRESETS, BlockConfig, ConfigError, Preset, check_vectors,
                   get_preset, product_range, signed_range_width)
from .baseline import (SOFTMAX_POLY_A1, SOFTMAX_POLY_A2, SOFTMAX_POLY_FRAC, BaselineHeadConfig, SoftmaxConfig,
                       SystolicAVConfig, SystolicQKConfig, typical_shift)
from .damf_head import (C_FRAC_MAX, DEFAULT_PQ_WIDTH, MODES, DamfHeadBlockConfig, DamfHeadConfig, RowStatsConfig,
                        ScoreConfig, ShiftAccumulateConfig, default_pq_width, pow2_exp, typical_pq_shift)
from .inner_product import InnerProductConfig

__all__ = [
    "ConfigError", "Preset", "PRESETS", "DEFAULT", "BERT_BASE", "get_preset", "BlockConfig",
    "MAX_DERIVED_WIDTH", "signed_range_width", "product_range", "check_vectors",
    "InnerProductConfig",
    "MODES", "DEFAULT_PQ_WIDTH", "C_FRAC_MAX", "pow2_exp", "default_pq_width", "typical_pq_shift",
    "DamfHeadConfig", "ScoreConfig", "RowStatsConfig", "ShiftAccumulateConfig", "DamfHeadBlockConfig",
    "SystolicQKConfig", "SOFTMAX_POLY_FRAC", "SOFTMAX_POLY_A1", "SOFTMAX_POLY_A2", "SoftmaxConfig",
    "SystolicAVConfig", "typical_shift", "BaselineHeadConfig",
]
