"""Analytic cost of one multi-head self-attention layer: standard MHSA versus DAMF.

Counts parameters, multiply-accumulates (MACs), shift-adds and memory accesses of one
MHSA layer for any ``d_model``, ``n_heads``, sequence length ``L`` and DAMF rank ``r``, and
evaluates candidate readings of the DAMF paper's Table II (:func:`paper_candidates`).  The
specification, with every convention, is ``docs/cost-model.md``; in short (``d = d_model``,
``h = n_heads``, ``d_head = d / h``):

Parameters
    Counted in values (one value = one stored number), weights and biases apart; bytes only
    at an explicit ``bits`` per value.  MHSA: ``Wq, Wk, Wv, Wo`` (``4 d^2``) and ``bq, bk, bv,
    bo`` (``4 d``).  DAMF: ``Wv, Wo`` and ``bv, bo``, plus per head ``r`` pairs ``(u_k, v_k)``
    of ``d + 1`` values each (``X' = [X, 1]``, golden/damf_float.py): the first ``d`` values
    of each vector are counted as weights, the last (the one the constant 1 multiplies, which
    carries ``bq``, ``bk``) as a bias.

MACs
    One MAC is one multiplication whose product is accumulated.  Static MACs have a weight
    operand, dynamic MACs two run-time operands (the paper's DMM).  Bias additions are not
    MACs; they are counted apart as ``bias_adds`` (for DAMF: the constant-1 element of each
    inner product ``X'.u_k``, ``X'.v_k``).  The ``1/sqrt(d_head)`` scale is folded into
    ``Wq`` (or ``u_k``) and the softmax (exp, sum, division; DAMF: row max, sum,
    power-of-two rounding) is not counted at all.

    * MHSA static: ``Q = X Wq``, ``K = X Wk``, ``V = X Wv``, output ``Z Wo``: ``4 L d^2``.
    * MHSA dynamic: ``Q_i K_i^T`` and ``A'_i V_i`` over the heads: ``L^2 d`` each.
    * DAMF static: ``V`` and output projections (``2 L d^2``) and the per-head inner
      products ``X_m . u_k``, ``X_m . v_k`` (``2 r h L d``).
    * DAMF dynamic: ``A_mn = sum_k p_mk q_nk``, ``r`` products per score (``sigma`` folded
      into ``u_k``, ``v_k``): ``r h L^2``.  ``A' V`` has no multiplication.

Shift-adds (DAMF ``A' V``, eq. 17 with its common factors taken out, as golden/damf_head.py
does): per head, ``SV = sum_n V_n`` (``L d_head`` adds, shift 0), then per output element
``Z_mj`` one shift-add of ``SV_j << I_max`` and ``L`` shift-adds ``+-(V_nj << I_mn)``, then
one right shift ``>> I_d`` (counted as ``shifts``).  Total ``L^2 d + 2 L d`` shift-adds and
``L d`` shifts.

Memory accesses (words, one word per value whatever its width)
    The layer is a sequence of stages (:func:`stages`); each stage reads each of its input
    tensors from memory once and writes each of its results once; nothing is kept on chip
    between stages.  The projections of ``X`` form one stage, so every tensor, ``X``
    included, is read exactly once and every intermediate written exactly once.

Everything is exact Python integer arithmetic; nothing here imports Amaranth or NumPy.
"""

import json
from dataclasses import dataclass, field, fields

from .config import ConfigError, get_preset

__all__ = [
    "AttentionShape", "Tensor", "Stage", "CATEGORIES", "Cost", "stages", "memory_words",
    "mhsa_cost", "damf_cost",
    "compare", "format_table", "to_json",
    "PAPER_TABLE2", "PAPER_RATIOS", "Candidate", "paper_candidates", "format_candidates",
]

MILLION = 10 ** 6
MIB = 1 << 20


# ---- shape --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttentionShape:
    """One MHSA layer: ``d_model``, ``n_heads``, sequence length ``seq_len`` and DAMF ``rank``.

    ``rank`` is the number of ``(u_k, v_k)`` pairs per head; it is at most ``d_head``, the
    rank of ``M = [Wq; bq] [Wk; bk]^T`` of one head, at which DAMF scores are exact.
    """

    d_model: int
    n_heads: int
    seq_len: int
    rank: int = 1

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{f.name} must be an integer, not {value!r}")
            if value < 1:
                raise ConfigError(f"{f.name} must be at least 1, not {value}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model must be a multiple of n_heads = {self.n_heads}, not {self.d_model}")
        if self.rank > self.d_head:
            raise ConfigError(f"rank must be at most d_head = {self.d_head} (the rank of a head's "
                              f"fused matrix M), not {self.rank}")

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    @classmethod
    def from_preset(cls, name="default", **overrides):
        """The preset's ``d_model``, ``n_heads``, ``seq_len`` and ``rank``; overrides that are not
        ``None`` replace them (``d_head`` is always ``d_model / n_heads``)."""
        preset = get_preset(name)
        values = {f.name: getattr(preset, f.name) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self):
        return {"d_model": self.d_model, "n_heads": self.n_heads, "d_head": self.d_head,
                "seq_len": self.seq_len, "rank": self.rank}


# ---- memory model -------------------------------------------------------------------------

@dataclass(frozen=True)
class Tensor:
    name: str
    category: str  # "weights" (weights and biases), "activations" or "scores"
    words: int


@dataclass(frozen=True)
class Stage:
    """One step of the dataflow: reads each input tensor once, writes each result once."""

    name: str
    reads: tuple
    writes: tuple


CATEGORIES = ("weights", "activations", "scores")


def stages(shape, method, *, heads=None, output_projection=True):
    """The dataflow of ``method`` ("mhsa" or "damf") as a list of :class:`Stage`.

    ``heads`` (default: all) restricts the head-wise stages to that many heads, and
    ``output_projection=False`` drops the output projection: ``heads=1,
    output_projection=False`` is the traffic of a single attention head.
    """
    d, L, r = shape.d_model, shape.seq_len, shape.rank
    g = shape.n_heads if heads is None else heads
    if not 1 <= g <= shape.n_heads:
        raise ConfigError(f"heads must be in [1, {shape.n_heads}], not {g}")
    c = g * shape.d_head  # columns of Q, K, V, Z covered by these heads
    X = Tensor("X", "activations", L * d)
    if method == "mhsa":
        out = [
            Stage("Q, K, V = X [Wq Wk Wv] + [bq bk bv]",
                  reads=(X, Tensor("Wq, Wk, Wv", "weights", 3 * d * c),
                         Tensor("bq, bk, bv", "weights", 3 * c)),
                  writes=(Tensor("Q, K, V", "activations", 3 * L * c),)),
            Stage("A_i = Q_i K_i^T",
                  reads=(Tensor("Q", "activations", L * c), Tensor("K", "activations", L * c)),
                  writes=(Tensor("A", "scores", g * L * L),)),
            Stage("A'_i = softmax(A_i / sqrt(d_head))",
                  reads=(Tensor("A", "scores", g * L * L),),
                  writes=(Tensor("A'", "scores", g * L * L),)),
            Stage("Z_i = A'_i V_i",
                  reads=(Tensor("A'", "scores", g * L * L), Tensor("V", "activations", L * c)),
                  writes=(Tensor("Z", "activations", L * c),)),
        ]
    elif method == "damf":
        out = [
            Stage("p, q = X' [u v], V = X Wv + bv",
                  reads=(X, Tensor("u, v", "weights", 2 * r * g * (d + 1)),
                         Tensor("Wv", "weights", d * c), Tensor("bv", "weights", c)),
                  writes=(Tensor("p, q", "activations", 2 * r * g * L),
                          Tensor("V", "activations", L * c))),
            Stage("A_i = p_i q_i^T",
                  reads=(Tensor("p, q", "activations", 2 * r * g * L),),
                  writes=(Tensor("A", "scores", g * L * L),)),
            Stage("shift factors I_mn (with sign), I_max, I_d",
                  reads=(Tensor("A", "scores", g * L * L),),
                  writes=(Tensor("I", "scores", g * L * L + 2 * g * L),)),
            Stage("Z_i = shift-accumulate(I_i, V_i)",
                  reads=(Tensor("I", "scores", g * L * L + 2 * g * L), Tensor("V", "activations", L * c)),
                  writes=(Tensor("Z", "activations", L * c),)),
        ]
    else:
        raise ConfigError(f"method must be one of mhsa, damf, not {method!r}")
    if output_projection:
        out.append(Stage("Y = Z Wo + bo",
                         reads=(Tensor("Z", "activations", L * d), Tensor("Wo", "weights", d * d),
                                Tensor("bo", "weights", d)),
                         writes=(Tensor("Y", "activations", L * d),)))
    return out


def _memory(stage_list):
    by = {cat: {"reads": 0, "writes": 0} for cat in CATEGORIES}
    for s in stage_list:
        for t in s.reads:
            by[t.category]["reads"] += t.words
        for t in s.writes:
            by[t.category]["writes"] += t.words
    reads = sum(v["reads"] for v in by.values())
    writes = sum(v["writes"] for v in by.values())
    return {"reads": reads, "writes": writes, "total": reads + writes, "by_category": by}


def memory_words(shape, method, **kwargs):
    """Words read plus written by :func:`stages` (same arguments)."""
    return _memory(stages(shape, method, **kwargs))["total"]


# ---- counts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cost:
    """Costs of one MHSA layer by one method (every count an exact integer)."""

    method: str
    weights: int          # parameter values: weight matrices (DAMF: u_k, v_k without their last element)
    biases: int           # parameter values: bias vectors (DAMF: the last element of u_k, v_k)
    static_macs: int      # MACs with a weight operand
    bias_adds: int        # additions of a bias (not MACs)
    dynamic_macs: int     # MACs with two run-time operands
    shift_adds: int = 0   # DAMF A'V: shift an operand, add it to an accumulator
    shifts: int = 0       # DAMF A'V: final right shift of each output element
    qk_macs: int = 0      # of static_macs: what makes the scores' operands (MHSA: X Wq, X Wk;
                          # DAMF: X_m . u_k, X_m . v_k), counted the same way on both sides
    memory: dict = field(default_factory=dict, compare=False)

    @property
    def params(self):
        return self.weights + self.biases

    @property
    def macs(self):
        """Static plus dynamic MACs (bias additions excluded, as in the paper's Table II)."""
        return self.static_macs + self.dynamic_macs

    @property
    def dynamic_ratio(self):
        return self.dynamic_macs / self.macs

    @property
    def memory_total(self):
        return self.memory["total"]

    def to_dict(self, bits=32):
        return {
            "params": {"weights": self.weights, "biases": self.biases, "total": self.params,
                       "bytes": _bytes(self.params, bits)},
            "macs": {"static": self.static_macs, "dynamic": self.dynamic_macs, "total": self.macs,
                     "bias_adds": self.bias_adds, "qk_projection": self.qk_macs},
            "dynamic_ratio": self.dynamic_ratio,
            "shift_adds": self.shift_adds,
            "shifts": self.shifts,
            "memory": {**self.memory, "bytes": _bytes(self.memory["total"], bits)},
        }


def _bytes(values, bits):
    """Bytes of ``values`` values of ``bits`` bits each (an integer when exact)."""
    return values * bits // 8 if values * bits % 8 == 0 else values * bits / 8


def mhsa_cost(shape):
    """Cost of standard multi-head self-attention (Vaswani et al. 2017)."""
    d, L = shape.d_model, shape.seq_len
    return Cost(
        method="mhsa",
        weights=4 * d * d,                 # Wq, Wk, Wv, Wo
        biases=4 * d,                      # bq, bk, bv, bo
        static_macs=4 * L * d * d,         # X Wq, X Wk, X Wv, Z Wo
        bias_adds=4 * L * d,
        dynamic_macs=2 * L * L * d,        # sum over heads of Q_i K_i^T (L^2 d_head) and A'_i V_i
        qk_macs=2 * L * d * d,             # X Wq, X Wk
        memory=_memory(stages(shape, "mhsa")),
    )


def damf_cost(shape):
    """Cost of DAMF: rank-``r`` fused scores per head and shift-add ``A' V``."""
    d, h, L, r = shape.d_model, shape.n_heads, shape.seq_len, shape.rank
    return Cost(
        method="damf",
        weights=2 * d * d + 2 * r * h * d,     # Wv, Wo; u_k, v_k (first d elements)
        biases=2 * d + 2 * r * h,              # bv, bo; last element of u_k, v_k
        static_macs=2 * L * d * d + 2 * r * h * L * d,  # X Wv, Z Wo; X_m . u_k, X_m . v_k
        bias_adds=2 * L * d + 2 * r * h * L,
        dynamic_macs=r * h * L * L,            # A_mn = sum_k p_mk q_nk
        qk_macs=2 * r * h * L * d,             # X_m . u_k, X_m . v_k
        shift_adds=L * L * d + 2 * L * d,      # +-(V_nj << I_mn); SV = sum V_n; + (SV_j << I_max)
        shifts=L * d,                          # >> I_d per output element
        memory=_memory(stages(shape, "damf")),
    )


def compare(shape):
    """``(mhsa, damf, ratios)`` with ratios MHSA / DAMF."""
    m, f = mhsa_cost(shape), damf_cost(shape)
    ratios = {
        "params": m.params / f.params,
        "dynamic_macs": m.dynamic_macs / f.dynamic_macs,
        "macs": m.macs / f.macs,
        "memory": m.memory_total / f.memory_total,
    }
    return m, f, ratios


# ---- output -------------------------------------------------------------------------------

def _m(x):
    return f"{x / MILLION:.2f}"


def format_table(shape, bits=32):
    """The ``damf cost`` report: a Table II-like summary, then the exact counts."""
    m, f, ratios = compare(shape)
    s = shape
    lines = [
        f"one MHSA layer: d_model {s.d_model}, n_heads {s.n_heads} (d_head {s.d_head}), "
        f"L {s.seq_len}, DAMF rank {s.rank}",
        "M = 10^6; Param. in values (weights + biases), Mem. in words read + written;",
        "MACs = static + dynamic, bias additions excluded (conventions: docs/cost-model.md)",
        "",
        f"{'':<11}{'Param./M':>10}{'Dyn. MACs/M':>13}{'MACs/M':>10}{'Dyn. ratio':>12}{'Mem./M':>9}",
    ]
    for name, c in (("MHSA", m), ("DAMF", f)):
        lines.append(f"{name:<11}{_m(c.params):>10}{_m(c.dynamic_macs):>13}{_m(c.macs):>10}"
                     f"{c.dynamic_ratio:>12.2%}{_m(c.memory_total):>9}")
    lines.append(f"{'MHSA/DAMF':<11}{ratios['params']:>9.2f}x{ratios['dynamic_macs']:>12.2f}x"
                 f"{ratios['macs']:>9.2f}x{'':>12}{ratios['memory']:>8.2f}x")
    rows = [
        ("weights (values)", m.weights, f.weights),
        ("biases (values)", m.biases, f.biases),
        (f"parameters (MiB at {bits} bit)", m.params * bits / 8 / MIB, f.params * bits / 8 / MIB),
        ("static MACs", m.static_macs, f.static_macs),
        ("  of which Q/K, u/v projections", m.qk_macs, f.qk_macs),
        ("dynamic MACs", m.dynamic_macs, f.dynamic_macs),
        ("bias additions", m.bias_adds, f.bias_adds),
        ("dynamic shift-adds", m.shift_adds, f.shift_adds),
        ("dynamic shifts", m.shifts, f.shifts),
    ]
    for cat in CATEGORIES:
        rows.append((f"memory: {cat} (words)",
                     m.memory["by_category"][cat]["reads"] + m.memory["by_category"][cat]["writes"],
                     f.memory["by_category"][cat]["reads"] + f.memory["by_category"][cat]["writes"]))
    rows += [
        ("memory: reads (words)", m.memory["reads"], f.memory["reads"]),
        ("memory: writes (words)", m.memory["writes"], f.memory["writes"]),
        ("memory: total (words)", m.memory_total, f.memory_total),
        (f"memory: total (MiB at {bits} bit)", m.memory_total * bits / 8 / MIB, f.memory_total * bits / 8 / MIB),
    ]
    lines += ["", f"{'exact counts':<34}{'MHSA':>14}{'DAMF':>14}"]
    for label, a, b in rows:
        fmt = (lambda x: f"{x:,.2f}") if isinstance(a, float) else (lambda x: f"{x:,}")
        lines.append(f"{label:<34}{fmt(a):>14}{fmt(b):>14}")
    return "\n".join(lines) + "\n"


def to_json(shape, bits=32):
    m, f, ratios = compare(shape)
    doc = {
        "shape": shape.to_dict(),
        "bits": bits,
        "mhsa": m.to_dict(bits),
        "damf": f.to_dict(bits),
        "ratios": ratios,
        "stages": {method: [{"name": s.name,
                             "reads": {t.name: t.words for t in s.reads},
                             "writes": {t.name: t.words for t in s.writes}}
                            for s in stages(shape, method)]
                   for method in ("mhsa", "damf")},
    }
    return json.dumps(doc, indent=1) + "\n"


# ---- the paper's Table II -----------------------------------------------------------------

# Quoted from the DAMF paper (Yang et al.), Table II: one MHSA layer, L = 128.
# Columns: Param. /M, Dyn. MACs /M, MACs /M, Dyn. ratio.
PAPER_TABLE2 = {
    "MHSA": ("9.00", "12.78", "314.77", "4.06%"),      # SkipBERT / BERT-PKD = BERT-base shape
    "BERTsmall": ("4.00", "8.52", "142.74", "5.97%"),
    "DAMF": ("4.51", "0.03", "153.39", "0.02%"),
}
PAPER_SHAPES = {
    "MHSA": AttentionShape(768, 12, 128, 1),
    "BERTsmall": AttentionShape(512, 8, 128, 1),
    "DAMF": AttentionShape(768, 12, 128, 1),
}
# Quoted from the paper's abstract, Sec. IV-D/E and conclusion (MHSA / DAMF).
PAPER_RATIOS = {
    "params": "1.99",        # abstract, IV-E, conclusion
    "dynamic_284": "284",    # abstract, conclusion
    "dynamic_426": "426",    # Sec. IV-E
    "macs": "2.21",          # abstract, IV-E, conclusion
    "memory": "2.71",        # abstract, IV-D (Fig. 5, "a single attention head"), conclusion
}


@dataclass(frozen=True)
class Candidate:
    """One reading of a paper figure: ``value`` in the paper's unit, shown at its precision."""

    quantity: str     # e.g. "MHSA Param."
    paper: str        # the figure as printed in the paper
    key: str          # short name, stable for tests
    convention: str   # what is counted
    value: float
    truncate: bool = False  # shown truncated instead of rounded

    @property
    def shown(self):
        text = self.paper.rstrip("%")
        decimals = len(text.split(".")[1]) if "." in text else 0
        value = self.value * 100 if self.paper.endswith("%") else self.value
        if self.truncate:
            scale = 10 ** decimals
            value = int(value * scale + 1e-9) / scale
        shown = f"{value:.{decimals}f}"
        return shown + "%" if self.paper.endswith("%") else shown

    @property
    def matches(self):
        return self.shown == self.paper


def _table(shape):
    """The formulas that reproduce a Table II row (see :func:`paper_candidates`)."""
    d, h, L = shape.d_model, shape.n_heads, shape.seq_len
    params = 4 * d * d * 4 / MIB
    dyn = L * L * d + h * L * L
    return params, dyn / MILLION, (4 * L * d * d + dyn) / MILLION


def paper_candidates():
    """Candidate readings of every figure of Table II and of the quoted ratios.

    Each :class:`Candidate` says which counting convention gives which value; ``matches``
    tells whether it reproduces the paper's figure at the paper's precision.  Our own
    conventions are the candidates whose key starts with ``ours``.
    """
    out = []
    S = PAPER_SHAPES["MHSA"]
    d, h, L, r, dh = S.d_model, S.n_heads, S.seq_len, S.rank, S.d_head
    m, f, ratios = compare(S)
    fp32_mib = 4 / MIB

    def add(quantity, paper, key, convention, value, truncate=False):
        out.append(Candidate(quantity, paper, key, convention, value, truncate))

    # -- parameters
    P = PAPER_TABLE2["MHSA"][0]
    add("MHSA Param.", P, "ours", "4d^2 + 4d values (weights and biases), in 10^6", m.params / MILLION)
    add("MHSA Param.", P, "weights-values", "4d^2 weight values, in 10^6", 4 * d * d / MILLION)
    add("MHSA Param.", P, "weights-fp32-MB", "4d^2 weights at 4 bytes, in 10^6 bytes", 4 * d * d * 4 / MILLION)
    add("MHSA Param.", P, "weights-fp32-MiB", "4d^2 weights at 4 bytes, in MiB (2^20 bytes)", 4 * d * d * fp32_mib)
    add("MHSA Param.", P, "ours-fp32-MiB", "4d^2 + 4d at 4 bytes, in MiB", m.params * fp32_mib)
    ds = PAPER_SHAPES["BERTsmall"].d_model
    P = PAPER_TABLE2["BERTsmall"][0]
    add("BERTsmall Param.", P, "weights-fp32-MiB", "4d^2 weights at 4 bytes, in MiB (d = 512)", 4 * ds * ds * fp32_mib)
    add("BERTsmall Param.", P, "ours-fp32-MiB", "4d^2 + 4d at 4 bytes, in MiB (d = 512)",
        (4 * ds * ds + 4 * ds) * fp32_mib)
    P = PAPER_TABLE2["DAMF"][0]
    add("DAMF Param.", P, "ours", "2d^2 + 2d + 2rh(d + 1) values, in 10^6", f.params / MILLION)
    add("DAMF Param.", P, "ours-fp32-MiB", "2d^2 + 2d + 2rh(d + 1) at 4 bytes, in MiB", f.params * fp32_mib)
    add("DAMF Param.", P, "per-head-pairs-weights-fp32-MiB",
        "2d^2 + 2rhd (no biases, r pairs per head) at 4 bytes, in MiB", (2 * d * d + 2 * r * h * d) * fp32_mib)
    add("DAMF Param.", P, "one-pair-fp32-MiB",
        "2d^2 + 2d (one u, v pair per layer, or per-head vectors of d_head) at 4 bytes, in MiB",
        (2 * d * d + 2 * d) * fp32_mib)
    add("DAMF Param.", P, "one-pair-biases-fp32-MiB",
        "2d^2 + 2d + 2d (one pair per layer, plus bv, bo) at 4 bytes, in MiB", (2 * d * d + 4 * d) * fp32_mib)

    # -- dynamic MACs
    P = PAPER_TABLE2["MHSA"][1]
    add("MHSA Dyn. MACs", P, "ours", "Q K^T + A'V = 2 L^2 d", m.dynamic_macs / MILLION)
    add("MHSA Dyn. MACs", P, "qk-only", "Q K^T only = L^2 d", L * L * d / MILLION)
    add("MHSA Dyn. MACs", P, "one-dmm-plus-score-op",
        "one of Q K^T, A'V (L^2 d) + one op per score per head (h L^2)", (L * L * d + h * L * L) / MILLION)
    add("MHSA Dyn. MACs", P, "one-dmm-plus-2Ld", "one of Q K^T, A'V (L^2 d) + 2 L d (equals the above when L = 2 d_head)",
        (L * L * d + 2 * L * d) / MILLION)
    add("MHSA Dyn. MACs", P, "two-dmm-plus-score-op", "2 L^2 d + h L^2", (2 * L * L * d + h * L * L) / MILLION)
    Ss = PAPER_SHAPES["BERTsmall"]
    P = PAPER_TABLE2["BERTsmall"][1]
    add("BERTsmall Dyn. MACs", P, "ours", "2 L^2 d (d = 512)", mhsa_cost(Ss).dynamic_macs / MILLION)
    add("BERTsmall Dyn. MACs", P, "one-dmm-plus-score-op", "L^2 d + h L^2 (d = 512, h = 8)", _table(Ss)[1])
    add("BERTsmall Dyn. MACs", P, "one-dmm-plus-2Ld", "L^2 d + 2 L d (d = 512)",
        (Ss.seq_len ** 2 * Ss.d_model + 2 * Ss.seq_len * Ss.d_model) / MILLION)
    P = PAPER_TABLE2["DAMF"][1]
    add("DAMF Dyn. MACs", P, "ours", "r products per score per head: r h L^2", f.dynamic_macs / MILLION)
    add("DAMF Dyn. MACs", P, "two-mults-per-head", "2 products per score per head (sigma kept): 2 r h L^2",
        2 * r * h * L * L / MILLION)
    add("DAMF Dyn. MACs", P, "one-head-one-mult", "1 product per score, one head: L^2", L * L / MILLION)
    add("DAMF Dyn. MACs", P, "one-head-two-mults",
        "2 products per score (sigma kept), one head or one pair per layer: 2 L^2", 2 * L * L / MILLION)

    # -- total MACs
    P = PAPER_TABLE2["MHSA"][2]
    add("MHSA MACs", P, "ours", "4 L d^2 + 2 L^2 d", m.macs / MILLION)
    add("MHSA MACs", P, "projections-plus-paper-dyn", "4 L d^2 + (L^2 d + h L^2)", _table(S)[2])
    add("MHSA MACs", P, "with-bias-adds", "4 L d^2 + 4 L d + (L^2 d + h L^2)",
        (4 * L * d * d + 4 * L * d + L * L * d + h * L * L) / MILLION)
    P = PAPER_TABLE2["BERTsmall"][2]
    add("BERTsmall MACs", P, "ours", "4 L d^2 + 2 L^2 d (d = 512)", mhsa_cost(Ss).macs / MILLION)
    add("BERTsmall MACs", P, "projections-plus-paper-dyn", "4 L d^2 + (L^2 d + h L^2) (d = 512)", _table(Ss)[2])
    P = PAPER_TABLE2["DAMF"][2]
    add("DAMF MACs", P, "ours", "2 L d^2 + 2 r h L d + r h L^2", f.macs / MILLION)
    add("DAMF MACs", P, "ours-with-bias-element", "2 L d^2 + 2 r h L (d + 1) + r h L^2",
        (f.macs + 2 * r * h * L) / MILLION)
    add("DAMF MACs", P, "per-head-pairs-two-mults", "2 L d^2 + 2 h L d + 2 L^2",
        (2 * L * d * d + 2 * h * L * d + 2 * L * L) / MILLION)
    add("DAMF MACs", P, "per-head-pairs-bias-element-two-mults", "2 L d^2 + 2 h L (d + 1) + 2 L^2",
        (2 * L * d * d + 2 * h * L * (d + 1) + 2 * L * L) / MILLION)
    add("DAMF MACs", P, "one-pair-two-mults", "2 L d^2 + 2 L d + 2 L^2 (one pair per layer)",
        (2 * L * d * d + 2 * L * d + 2 * L * L) / MILLION)

    # -- dynamic ratio
    for row, key in (("MHSA", "table"), ("BERTsmall", "table"), ("DAMF", "table")):
        _, dyn, tot = PAPER_TABLE2[row][:3]
        add(f"{row} Dyn. ratio", PAPER_TABLE2[row][3], key, f"the table's {dyn} / {tot}", float(dyn) / float(tot))
    add("MHSA Dyn. ratio", PAPER_TABLE2["MHSA"][3], "ours", "ours: dynamic / (static + dynamic)", m.dynamic_ratio)
    add("DAMF Dyn. ratio", PAPER_TABLE2["DAMF"][3], "ours", "ours: dynamic / (static + dynamic)", f.dynamic_ratio)

    # -- ratios quoted in the text
    T = {row: [float(x) for x in PAPER_TABLE2[row][:3]] for row in PAPER_TABLE2}
    P = PAPER_RATIOS["params"]
    add("Param. ratio", P, "ours", "ours: (4d^2 + 4d) / (2d^2 + 2d + 2rh(d + 1))", ratios["params"])
    add("Param. ratio", P, "table-rounded", "the table's 9.00 / 4.51, rounded", T["MHSA"][0] / T["DAMF"][0])
    add("Param. ratio", P, "table-truncated", "the table's 9.00 / 4.51, truncated", T["MHSA"][0] / T["DAMF"][0],
        truncate=True)
    add("Param. ratio", P, "one-pair", "4d^2 / (2d^2 + 2d)", 4 * d * d / (2 * d * d + 2 * d))
    add("Param. ratio", P, "one-pair-biases", "4d^2 / (2d^2 + 4d)", 4 * d * d / (2 * d * d + 4 * d))
    for key in ("dynamic_284", "dynamic_426"):
        P = PAPER_RATIOS[key]
        add(f"Dyn. MACs ratio ({P})", P, "ours", "ours: 2 L^2 d / (r h L^2)", ratios["dynamic_macs"])
        add(f"Dyn. MACs ratio ({P})", P, "table-mhsa-damf", "the table's 12.78 / 0.03", T["MHSA"][1] / T["DAMF"][1])
        add(f"Dyn. MACs ratio ({P})", P, "unrounded-mhsa-damf", "(L^2 d + h L^2) / (2 L^2), unrounded",
            (L * L * d + h * L * L) / (2 * L * L))
        add(f"Dyn. MACs ratio ({P})", P, "table-bertsmall-damf", "the table's BERTsmall 8.52 / DAMF 0.03",
            T["BERTsmall"][1] / T["DAMF"][1])
    P = PAPER_RATIOS["macs"]
    add("MACs ratio", P, "ours", "ours: (4 L d^2 + 2 L^2 d) / (2 L d^2 + 2 r h L d + r h L^2)", ratios["macs"])
    add("MACs ratio", P, "table-mhsa-damf", "the table's 314.77 / 153.39", T["MHSA"][2] / T["DAMF"][2])
    add("MACs ratio", P, "table-mhsa-bertsmall", "the table's 314.77 / BERTsmall 142.74",
        T["MHSA"][2] / T["BERTsmall"][2])
    P = PAPER_RATIOS["memory"]
    add("Mem. ratio", P, "ours", "ours: one layer, words read + written", ratios["memory"])
    add("Mem. ratio", P, "ours-one-head", "ours: one head, no output projection",
        memory_words(S, "mhsa", heads=1, output_projection=False)
        / memory_words(S, "damf", heads=1, output_projection=False))
    add("Mem. ratio", P, "weights-only", "ours: weights and biases only", m.params / f.params)
    one = lambda method: _memory(stages(S, method, heads=1, output_projection=False))["by_category"]["weights"]
    add("Mem. ratio", P, "ours-one-head-weights", "ours: one head, weights and biases only",
        sum(one("mhsa").values()) / sum(one("damf").values()))
    return out


def format_candidates(candidates=None):
    """The reconciliation table: quantity, paper's figure, convention, value, match."""
    candidates = paper_candidates() if candidates is None else candidates
    lines = ["Readings of the DAMF paper's Table II (BERT-base: d 768, h 12, L 128; BERTsmall: d 512, h 8;",
             "DAMF rank r 1); 'yes' = reproduces the paper's figure at its printed precision",
             "",
             f"{'quantity':<24}{'paper':>8}{'value':>9}  {'match':<6}{'key':<38}convention"]
    for c in candidates:
        lines.append(f"{c.quantity:<24}{c.paper:>8}{c.shown:>9}  {'yes' if c.matches else 'no':<6}"
                     f"{c.key:<38}{c.convention}")
    return "\n".join(lines) + "\n"
