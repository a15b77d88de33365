"""The size models of the registered blocks, one pair per block, named by its registry entry
(:attr:`damf.blocks.Block.generate_terms`, :attr:`~damf.blocks.Block.vector_values`):

* ``*_terms(cfg)``: ``{part: seconds}``, the estimated time to elaborate and write the block's
  Verilog, by the structures it grows with (multipliers, adder-tree columns, memory words),
  each at a cost per unit measured on the bert-base blocks (docs/limits.md).  An order of
  magnitude, for refusing absurd sizes and for the time-left figure, not a benchmark;
  ``damf/limits.py`` adds a fixed second and checks the sum against its budget.
* ``*_values(cfg)``: the integers a vector file holds per unit of ``--count`` (a token, a row
  or a score row), for the memory limit of ``damf golden``.
"""

__all__ = [
    "inner_product_terms", "score_terms", "row_stats_terms", "shift_accumulate_terms", "damf_head_terms",
    "softmax_terms", "systolic_terms", "baseline_head_terms",
    "inner_product_values", "systolic_values", "score_values", "row_values", "shift_accumulate_values",
    "damf_head_values", "baseline_head_values",
]


def _beats(cfg):
    return -(-cfg.d_model // cfg.lanes)


# ---- generation time ---------------------------------------------------------------------------

def inner_product_terms(cfg):
    return {"inner-product multipliers": 0.03 * 2 * cfg.lanes * cfg.rank,
            "inner-product weight words": 0.0012 * _beats(cfg) * 2 * cfg.rank}


def score_terms(cfg):
    return {"score multipliers": 0.015 * cfg.parallel * cfg.rank, "key words": 0.0003 * cfg.seq_len * cfg.rank}


def row_stats_terms(cfg):
    return {"row-stats lanes": 0.03 * cfg.parallel}


def shift_accumulate_terms(cfg):
    return {"shift-add columns": 0.055 * cfg.parallel * cfg.d_head}


def damf_head_terms(cfg):
    """Its parts' terms, and the row and V buffers."""
    return {**inner_product_terms(cfg), **score_terms(cfg), **row_stats_terms(cfg), **shift_accumulate_terms(cfg),
            "row and V buffers": 0.0035 * cfg.seq_len + 0.0001 * cfg.seq_len * cfg.d_head}


def softmax_terms(cfg):
    return {"softmax lanes": 0.04 * cfg.parallel}


def systolic_terms(cfg):
    return {"processing elements": 0.008 * cfg.rows * cfg.cols}


def baseline_head_terms(cfg):
    terms = {"processing elements": 0.03 * cfg.rows * cfg.cols, "softmax lanes": 0.04 * cfg.cols,
             "Q, K, V buffers": 0.0003 * cfg.seq_len * cfg.d_head * cfg.banks}
    if cfg.inputs == "x":
        terms["projection multipliers"] = 0.03 * 2 * cfg.lanes * cfg.d_head
        terms["projection weight words"] = 0.0012 * _beats(cfg) * 2 * cfg.d_head
    return terms


# ---- vector-file values per --count --------------------------------------------------------------

def inner_product_values(cfg):
    return cfg.d_model + 2 * cfg.rank


def systolic_values(cfg):
    return 2 * cfg.d_head + cfg.seq_len


def score_values(cfg):
    return 2 * cfg.rank + cfg.seq_len


def row_values(cfg):
    """``softmax`` and ``row-stats``: a row of scores and its results."""
    return 2 * cfg.seq_len + 16


def shift_accumulate_values(cfg):
    return cfg.seq_len * (1 + cfg.d_head) + cfg.d_head


def damf_head_values(cfg):
    return cfg.d_model + 3 * cfg.d_head


def baseline_head_values(cfg):
    return 4 * cfg.d_head + (cfg.d_model if cfg.inputs == "x" else 0)
