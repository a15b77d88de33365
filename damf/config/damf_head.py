"""Configurations of the DAMF head: its numerics (:class:`DamfHeadConfig`, ``docs/numerics.md``)
and the blocks built on them, ``score``, ``row-stats``, ``shift-accumulate`` and ``damf-head``.

Each block's configuration is a :class:`DamfHeadConfig` (widths, mode, window, rounding) plus
the few fields that only shape its hardware, so one object feeds the block's RTL, its golden
model and its testbench, and the composed head cannot disagree with its parts on a width.
Fields a block does not use (for example ``v_width`` in ``score``) are kept so a block's JSON
can be read as a head's.
"""

import math
from dataclasses import dataclass, field, fields, replace

from .base import BlockConfig, ConfigError, get_preset, product_range, signed_range_width
from .inner_product import InnerProductConfig

__all__ = ["MODES", "DEFAULT_PQ_WIDTH", "C_FRAC_MAX", "pow2_exp", "DamfHeadConfig", "default_pq_width",
           "typical_pq_shift", "ScoreConfig", "RowStatsConfig", "ShiftAccumulateConfig", "DamfHeadBlockConfig"]

MODES = ("maclaurin", "maclaurin-abs", "base2")

# Width of p and q after the head's requantization (docs/numerics.md section 3a) that the
# presets and for_inner_product choose, from the fidelity measurements of docs/eval.md and
# section 12 (the smallest width whose cost is negligible).
DEFAULT_PQ_WIDTH = 8

# Largest base2 c_frac: c = c_int 2^-c_frac then reaches down to one score LSB of the widest
# scores (pq_width 32, rank 64: 70 bits) with a 24-bit c_int and weight_frac 30.
C_FRAC_MAX = 126


def pow2_exp(x):
    """``P(x)`` for a Python integer ``x >= 1``: exponent of the nearest power of two.

    Nearest in the linear domain, ties (``x = 3 * 2^(k-1)``) to the larger power:
    ``k + bit[k-1](x)`` where ``k = x.bit_length() - 1``.
    """
    if not isinstance(x, int) or x < 1:
        raise ValueError(f"pow2_exp needs an integer of at least 1, not {x!r}")
    k = x.bit_length() - 1
    return k + ((x >> (k - 1)) & 1 if k >= 1 else 0)


def _ubits(x):
    """Bits of an unsigned integer holding ``x >= 0``."""
    return max(1, int(x).bit_length())


@dataclass(frozen=True, repr=False)
class DamfHeadConfig(BlockConfig):
    """Numerics of one DAMF attention head (``damf-head``); see ``docs/numerics.md``.

    Inputs: ``p`` (``Lq x rank``) and ``q`` (``Lk x rank``) of ``pq_width`` bits (the
    inner-product units' outputs after the requantization of ``docs/numerics.md`` section 3a),
    ``V`` (``Lk x d_head``) of ``v_width`` bits; ``1 <= Lq, Lk <= seq_len`` at run time.
    Output ``Z`` (``Lq x d_head``) of ``out_width`` bits with ``out_frac`` fraction bits, in
    units of one LSB of ``V``.
    """

    block = "damf-head"

    seq_len:     int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                               "doc": "largest number of queries and of keys of one head (run-time lengths may be smaller)"})
    d_head:      int = field(default=8, metadata={"min": 1, "max": 1 << 12,
                               "doc": "elements of each value vector V_n and output vector Z_m"})
    rank:        int = field(default=1, metadata={"min": 1, "max": 64,
                               "doc": "number of (p_k, q_k) pairs summed into a score"})
    pq_width:    int = field(default=DEFAULT_PQ_WIDTH, metadata={"min": 2, "max": 32,
                               "doc": "bits of each signed p and q entering the scores (after the requantization "
                                      f"of the inner product's outputs; presets: min({DEFAULT_PQ_WIDTH}, out_width))"})
    v_width:     int = field(default=8, metadata={"min": 2, "max": 32,
                               "doc": "bits of each signed element of V"})
    mode:        str = field(default="maclaurin", metadata={"choices": MODES,
                               "doc": "softmax approximation: maclaurin (paper eq. 13-17), maclaurin-abs "
                                      "(normalise by max |A|) or base2 (2^-round(c (A_max - A)))"})
    weight_frac: int = field(default=12, metadata={"min": 0, "max": 30,
                               "doc": "fraction bits of a weight relative to the row's largest: terms are "
                                      "shifted left by 0..weight_frac; smaller weights are dropped"})
    c_int:       int = field(default=1477, metadata={"min": 1, "max": (1 << 24) - 1,
                               "doc": "base2: c = c_int * 2^-c_frac = log2(e) * (real logit per score LSB)"})
    c_frac:      int = field(default=10, metadata={"min": 0, "max": C_FRAC_MAX,
                               "doc": "base2: fraction bits of c (see c_int)"})
    out_frac:    int = field(default=4, metadata={"min": 0, "max": 16,
                               "doc": "fraction bits of the output Z (units of one LSB of V)"})
    out_guard:   int = field(default=2, metadata={"min": 0, "max": 16,
                               "doc": "integer bits of Z above V's range (rounded weights may sum to more than 1)"})

    @classmethod
    def from_preset(cls, name="default"):
        """The preset's head, with the ``rank`` of the preset's inner-product unit and
        ``pq_width = default_pq_width(ip)`` (``min(DEFAULT_PQ_WIDTH, out_width)``)."""
        ip = InnerProductConfig.from_preset(name)
        return replace(super().from_preset(name), pq_width=default_pq_width(ip), rank=ip.rank)

    @classmethod
    def for_inner_product(cls, ip_cfg, **overrides):
        """A head fed by inner-product units configured as ``ip_cfg``: its ``rank`` and
        ``pq_width = default_pq_width(ip_cfg)``, then ``overrides``."""
        values = {"pq_width": default_pq_width(ip_cfg), "rank": ip_cfg.rank}
        values.update(overrides)
        return cls(**values)

    # ---- derived: scores and row statistics ------------------------------------------------

    @property
    def pq_range(self):
        return -(1 << (self.pq_width - 1)), (1 << (self.pq_width - 1)) - 1

    @property
    def v_range(self):
        return -(1 << (self.v_width - 1)), (1 << (self.v_width - 1)) - 1

    @property
    def score_range(self):
        """Exact ``(min, max)`` of a score ``sum_k p_k q_k``."""
        lo, hi = product_range(self.pq_width, self.pq_width)
        return self.rank * lo, self.rank * hi

    @property
    def score_width(self):
        return signed_range_width(*self.score_range)

    @property
    def score_abs_max(self):
        """Largest ``|A|`` (also the largest ``M`` and ``C``): ``rank * 2^(2 pq_width - 2)``."""
        lo, hi = self.score_range
        return max(-lo, hi)

    @property
    def score_exp_max(self):
        """Largest score exponent ``P(|A|)`` (also of ``C``, ``M`` and the row reference ``R``)."""
        return pow2_exp(self.score_abs_max)

    @property
    def count_width(self):
        """Unsigned bits of the key count ``N`` in ``[1, seq_len]``."""
        return _ubits(self.seq_len)

    @property
    def sum_width(self):
        """Signed bits of ``S = sum_n A_mn``."""
        lo, hi = self.score_range
        return signed_range_width(self.seq_len * lo, self.seq_len * hi)

    @property
    def den_range(self):
        """Bound of ``D = N C + S`` for ``0 <= C <= score_abs_max`` (maclaurin modes)."""
        lo, hi = self.score_range
        return self.seq_len * lo, self.seq_len * (self.score_abs_max + hi)

    @property
    def den_width(self):
        return signed_range_width(*self.den_range)

    @property
    def den_exp_max(self):
        return pow2_exp(self.den_range[1])

    @property
    def vsum_width(self):
        """Signed bits of ``SV = sum_n V_n`` (per element)."""
        lo, hi = self.v_range
        return signed_range_width(self.seq_len * lo, self.seq_len * hi)

    # ---- derived: accumulation and output --------------------------------------------------

    @property
    def weight_range(self):
        """Range of a per-key weight numerator: maclaurin modes ``[-2^F, 2^(F+1)]`` (the
        ``SV`` term's ``2^t_C`` plus a signed key term), base2 ``[0, 2^F]``."""
        if self.mode == "base2":
            return 0, 1 << self.weight_frac
        return -(1 << self.weight_frac), 1 << (self.weight_frac + 1)

    @property
    def weight_width(self):
        return signed_range_width(*self.weight_range)

    @property
    def acc_range(self):
        wl, wh = self.weight_range
        vl, vh = self.v_range
        corners = [w * v for w in (wl, wh) for v in (vl, vh)]
        return self.seq_len * min(corners), self.seq_len * max(corners)

    @property
    def acc_width(self):
        """Signed bits of the accumulator of one output element."""
        return signed_range_width(*self.acc_range)

    @property
    def out_width(self):
        """Signed bits of ``Z``: ``v_width + out_guard + out_frac``."""
        return self.v_width + self.out_guard + self.out_frac

    @property
    def out_range(self):
        return -(1 << (self.out_width - 1)), (1 << (self.out_width - 1)) - 1

    # ---- derived: base2 --------------------------------------------------------------------

    @property
    def delta_width(self):
        """Unsigned bits of ``A_max - A`` (base2)."""
        lo, hi = self.score_range
        return _ubits(hi - lo)

    @property
    def base2_thresholds(self):
        """``theta_k = ceil((2k - 1) 2^c_frac / (2 c_int))`` for ``k = 1 .. weight_frac + 1``.

        ``theta_k`` is the smallest ``A_max - A`` whose base2 exponent ``round(c (A_max - A))``
        is at least ``k``, so the exponent is the number of thresholds it reaches.
        """
        return tuple(-(-((2 * k - 1) << self.c_frac) // (2 * self.c_int))
                     for k in range(1, self.weight_frac + 2))

    @property
    def delta_limit(self):
        """``theta_(F+1)``: the smallest ``A_max - A`` whose weight is dropped (exponent > F)."""
        return self.base2_thresholds[-1]

    @property
    def wsum_width(self):
        """Unsigned bits of the base2 weight sum ``W`` in ``[2^F, seq_len 2^F]``."""
        return _ubits(self.seq_len << self.weight_frac)

    @property
    def wsum_exp_max(self):
        return pow2_exp(self.seq_len << self.weight_frac)

    @property
    def shift_range(self):
        """``(min, max)`` of the final shift ``sh`` (positive: right) for this mode."""
        F, of = self.weight_frac, self.out_frac
        if self.mode == "base2":
            return F - of, self.wsum_exp_max - of
        return F - of - self.score_exp_max, max(self.den_exp_max, pow2_exp(self.seq_len)) + F - of

    def derived(self):
        return {
            "score_width": self.score_width,
            "score_exp_max": self.score_exp_max,
            "count_width": self.count_width,
            "sum_width": self.sum_width,
            "den_width": self.den_width,
            "den_exp_max": self.den_exp_max,
            "vsum_width": self.vsum_width,
            "weight_width": self.weight_width,
            "acc_width": self.acc_width,
            "out_width": self.out_width,
            "delta_width": self.delta_width,
            "delta_limit": self.delta_limit,
            "base2_thresholds": list(self.base2_thresholds),
            "wsum_width": self.wsum_width,
            "wsum_exp_max": self.wsum_exp_max,
            "shift_range": list(self.shift_range),
        }


def default_pq_width(ip_cfg):
    """``pq_width`` of a head fed by the inner-product unit ``ip_cfg``: ``min(DEFAULT_PQ_WIDTH,
    out_width)`` (a unit whose exact outputs are narrower keeps them exact)."""
    return min(DEFAULT_PQ_WIDTH, ip_cfg.out_width)


def typical_pq_shift(ip_cfg, pq_width):
    """``pq_shift`` for the presets' random inputs (``docs/numerics.md`` section 3a).

    ``X``, ``u`` and ``v`` uniform over their signed ranges (the golden vectors and testbenches)
    make ``p`` and ``q`` sums of ``d_model`` independent products with standard deviation
    ``sigma = sqrt(d_model) s_x s_w``, ``s_b = sqrt((4^b - 1) / 12)`` for ``b`` bits.  The shift
    is the smallest ``s >= 0`` with ``4 sigma <= 2^(s + pq_width - 1)``, so ``|p| <= 4 sigma``
    (all but about 6e-5 of the values) never saturates, at most ``out_width - pq_width`` (beyond
    that no value can saturate).
    """
    def spread(bits):
        return math.sqrt(((1 << (2 * bits)) - 1) / 12)
    sigma = math.sqrt(ip_cfg.d_model) * spread(ip_cfg.x_width) * spread(ip_cfg.w_width)
    shift = max(0, math.ceil(math.log2(4 * sigma) - (pq_width - 1)))
    return min(shift, max(0, ip_cfg.out_width - pq_width))


def _inner_product_field(name):
    """A field declared like :class:`~damf.config.InnerProductConfig`'s ``name`` (same default,
    limits and doc), for configurations that carry the inner-product unit's fields."""
    f = {f.name: f for f in fields(InnerProductConfig)}[name]
    return field(default=f.default, metadata=f.metadata)


def _ceil_div(a, b):
    return -(-a // b)


@dataclass(frozen=True, repr=False)
class ScoreConfig(DamfHeadConfig):
    """``score``: two banks of ``seq_len`` keys ``q_n`` and ``parallel`` score lanes of ``rank``
    multipliers each.

    Timing (``hdl/score.py``; checked cycle-exactly by the tests): a load takes ``Lk`` cycles,
    a query set ``Lq ceil(Lk / parallel)``, rows back to back, the first beat :attr:`latency`
    cycles after its query; a load overlaps the previous bank's query set (:meth:`schedule`).
    """

    block = "score"

    parallel: int = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "scores computed per cycle (rank multipliers each); at most seq_len"})

    def _validate(self):
        super()._validate()
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")

    @property
    def words(self):
        """Words of one key bank: ``ceil(seq_len / parallel)``, ``parallel`` keys each (the
        memory holds two banks, ``2 * words`` words)."""
        return _ceil_div(self.seq_len, self.parallel)

    @property
    def rank_levels(self):
        """Adder levels of the rank sum: ``ceil(log2(rank))``."""
        return (self.rank - 1).bit_length()

    @property
    def rank_levels_per_stage(self):
        """Adder levels of the rank sum between two registers."""
        return 2

    @property
    def latency(self):
        """Cycles from a query's handshake to the handshake of its first beat (sink ready):
        issue (key word read), key word register, products (rank 1: into the output
        register), then for ``rank > 1`` the product register, one register per
        ``rank_levels_per_stage`` adder levels, the output register: ``4`` for rank 1, else
        ``5 + (rank_levels - 1) // 2``."""
        if self.rank == 1:
            return 4
        return 5 + (self.rank_levels - 1) // self.rank_levels_per_stage

    def row_beats(self, lk):
        """Output beats of one query row against ``lk`` keys: ``ceil(lk / parallel)``."""
        return _ceil_div(lk, self.parallel)

    def schedule(self, heads):
        """Cycle numbers of the handshakes of a sequence of heads ``[(lq, lk), ...]`` (each a
        load of ``lk`` keys into the next bank and a set of ``lq`` queries on it), all keys and
        queries offered from the start (sources always valid, sink always ready), counted from
        the first key's handshake (cycle 0).  One dict per head: ``load`` and ``load_end``
        (first and last key), ``query`` (first query), ``free`` (the cycle whose handshake
        issues the set's last word and frees its bank), ``first`` and ``last`` (first and last
        output beat).

        * a load starts once the previous load has ended and its bank is free:
          ``load_j = max(load_end_(j-1) + 1, free_(j-2) + 1)``; ``load_end_j = load_j + lk - 1``;
        * a set starts once its load has ended and the previous set has issued its rows (the
          next query is taken in the cycle that issues the last word):
          ``query_j = max(load_end_j + 1, free_(j-1))``; ``free_j = query_j + lq ceil(lk/parallel)``;
        * beats: ``first_j = query_j + latency``, ``last_j = free_j - 1 + latency``.
        """
        out = []
        for j, (lq, lk) in enumerate(heads):
            load = 0 if j == 0 else max(out[j - 1]["load_end"] + 1, out[j - 2]["free"] + 1 if j >= 2 else 0)
            load_end = load + lk - 1
            query = max(load_end + 1, out[j - 1]["free"] if j else 0)
            free = query + lq * self.row_beats(lk)
            out.append({"load": load, "load_end": load_end, "query": query, "free": free,
                        "first": query + self.latency, "last": free - 1 + self.latency})
        return out

    def cycles(self, lq, lk):
        """Cycles of one head from the first key handshake to the last score handshake, source
        always valid and sink always ready: ``lk + lq * ceil(lk / parallel) + latency``."""
        return self.schedule([(lq, lk)])[-1]["last"] + 1

    def derived(self):
        return {**super().derived(), "words": self.words, "rank_levels": self.rank_levels,
                "latency": self.latency, "cycles_full": self.cycles(self.seq_len, self.seq_len)}


@dataclass(frozen=True, repr=False)
class RowStatsConfig(DamfHeadConfig):
    """``row-stats``: consumes score rows (``parallel`` per beat) and sets up each row."""

    block = "row-stats"

    parallel: int = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "scores per input beat (the score block's parallel); at most seq_len"})

    def _validate(self):
        super()._validate()
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")

    @property
    def exp_width(self):
        """Unsigned bits of an exponent ``I_C``, ``R`` or ``I_D``."""
        return max(self.den_exp_max, self.score_exp_max, pow2_exp(self.seq_len)).bit_length()

    @property
    def c_shift_range(self):
        """Range of ``t_C = F + I_C - R`` (negative: the SV term is dropped)."""
        return self.weight_frac - self.score_exp_max, self.weight_frac

    @property
    def beat_levels(self):
        """Registered levels of the per-beat max / min / sum trees over the ``parallel`` lanes:
        ``ceil(log2(parallel))``."""
        return (self.parallel - 1).bit_length()

    @property
    def tree_levels(self):
        """Registered levels of the shift-add trees of ``N max(A_max, 0) + S`` and
        ``S - N A_min`` (``count_width + 1`` leaves): ``ceil(log2(count_width + 1))``; none in
        base2."""
        return 0 if self.mode == "base2" else max(1, self.count_width.bit_length())

    @property
    def setup_cycles(self):
        """Cycles from the handshake of a row's last beat to ``o.valid`` (sink ready), a fixed
        pipeline: ``beat_levels`` (lane trees) + 1 (row accumulators) + ``tree_levels`` (``N C``
        trees) + 2 (``C``, ``D`` and the exponents; the shifts into the output register); base2:
        ``beat_levels + 1`` (the accumulators are the output register)."""
        if self.mode == "base2":
            return self.beat_levels + 1
        return self.beat_levels + 1 + self.tree_levels + 2

    def row_cycles(self, lk):
        """Cycles per row of ``lk`` scores, rows back to back, source always valid and sink
        always ready: ``ceil(lk / parallel)`` (one beat per cycle, no gap between rows)."""
        return _ceil_div(lk, self.parallel)

    def cycles(self, lengths):
        """Cycles from the first beat's handshake to the last result's handshake for rows of
        ``lengths`` scores sent back to back (``parallel`` per beat), source always valid and
        sink always ready: ``sum(row_cycles(lk)) + setup_cycles``."""
        return sum(self.row_cycles(lk) for lk in lengths) + self.setup_cycles

    def derived(self):
        return {**super().derived(), "exp_width": self.exp_width, "beat_levels": self.beat_levels,
                "tree_levels": self.tree_levels, "setup_cycles": self.setup_cycles,
                "row_cycles_full": self.row_cycles(self.seq_len)}


@dataclass(frozen=True, repr=False)
class ShiftAccumulateConfig(DamfHeadConfig):
    """``shift-accumulate``: the ``A' x V`` unit of shifts and adds, ``d_head`` lanes,
    ``parallel`` keys per input beat and ``rounders`` shared end-of-row units.

    Timing (``hdl/shift_accumulate.py``, checked cycle-exactly by the tests): a beat every
    cycle; a row's finished sums go to a capture register that the end-of-row units drain in
    :attr:`round_cycles` cycles, so a row shorter than that many beats makes the input wait.
    """

    block = "shift-accumulate"

    parallel: int = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "keys per input beat (the score unit's parallel); at most seq_len"})
    round_lanes: int = field(default=0, metadata={"min": 0, "max": 1 << 12, "doc":
        "Z lanes rounded per cycle by the shared end-of-row units (at most d_head); 0: "
        "ceil(d_head / ceil(seq_len / parallel)), so rounding never limits the row rate at L = seq_len"})

    def _validate(self):
        super()._validate()
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")
        if self.round_lanes > self.d_head:
            raise ConfigError(f"round_lanes must be 0 (auto) or at most d_head = {self.d_head}, "
                              f"not {self.round_lanes}")

    @property
    def shift_width(self):
        """Unsigned bits of a per-key shift ``t_n`` in ``[0, weight_frac]``."""
        return max(1, self.weight_frac.bit_length())

    @property
    def has_sv(self):
        """Whether the unit adds ``SV << t_C`` per row: the maclaurin modes; base2 has no such term."""
        return self.mode != "base2"

    @property
    def c_shift_range(self):
        """Range of ``t_C``: ``[F - score_exp_max, F]`` (maclaurin modes; negative drops SV);
        ``None`` in base2."""
        if not self.has_sv:
            return None
        return self.weight_frac - self.score_exp_max, self.weight_frac

    @property
    def beat_count_width(self):
        """Unsigned bits of a beat's key count ``count`` in ``[1, parallel]``."""
        return self.parallel.bit_length()

    @property
    def rounders(self):
        """End-of-row units (``round_lanes`` resolved): ``round_lanes``, or when 0,
        ``ceil(d_head / ceil(seq_len / parallel))``."""
        return self.round_lanes or _ceil_div(self.d_head, self.row_beats(self.seq_len))

    @property
    def round_cycles(self):
        """Cycles the end-of-row units take per row: ``G = ceil(d_head / rounders)``."""
        return _ceil_div(self.d_head, self.rounders)

    @property
    def tree_levels(self):
        """Registered levels of the per-lane adder tree of ``parallel`` terms: ``ceil(log2 parallel)``."""
        return (self.parallel - 1).bit_length()

    @property
    def latency(self):
        """Cycles from the handshake of a row's last beat to the handshake of ``Z`` (sink ready):
        ``tree_levels + round_cycles + 7`` (base2: ``+ 6``).  Input register 1, terms 1, tree
        ``tree_levels``, accumulator and capture 1, then per lane group: select 1, ``+ SV << t_C``
        1 (not in base2), bias 1, shift 1, saturate into the output register 1; the last of the
        ``round_cycles`` groups is written ``round_cycles - 1`` cycles after the first.  (Plus
        any wait of the input while the beat is in the front: see :meth:`cycles`.)"""
        return self.tree_levels + self.round_cycles + (7 if self.has_sv else 6)

    def row_beats(self, keys):
        """Input beats of a row of ``keys`` keys: ``ceil(keys / parallel)``."""
        return _ceil_div(keys, self.parallel)

    def cycles(self, beats_per_row):
        """Cycles from the first input handshake to the last ``Z`` handshake for rows of
        ``beats_per_row`` beats, source always valid and sink always ready:
        ``b_0 + sum_{m >= 1} max(b_m, round_cycles) + latency`` (a beat per cycle; a row of
        fewer than ``round_cycles`` beats waits for the previous row's rounding)."""
        b = list(beats_per_row)
        return b[0] + sum(max(x, self.round_cycles) for x in b[1:]) + self.latency

    def derived(self):
        return {**super().derived(), "shift_width": self.shift_width, "rounders": self.rounders,
                "round_cycles": self.round_cycles, "tree_levels": self.tree_levels,
                "latency": self.latency,
                "cycles_full": self.cycles([self.row_beats(self.seq_len)] * self.seq_len)}


@dataclass(frozen=True, repr=False)
class DamfHeadBlockConfig(DamfHeadConfig):
    """``damf-head``: the whole head, ``X`` and ``V`` in, ``Z`` out (``hdl/damf_head.py``).

    The head's numerics (:class:`DamfHeadConfig`) plus the fields of its inner-product unit
    (:attr:`inner_product`), the score unit's ``parallel`` and the attention kind (``causal``,
    ``cross``).  The unit's exact ``p`` and ``q`` (``out_width`` bits) are requantized to
    ``pq_width`` bits before the score unit: shifted right by ``pq_shift`` with rounding half away
    from zero, then saturated (``golden.quant.requantize``, ``docs/numerics.md`` section 3a).
    :meth:`from_preset` and :meth:`for_inner_product` choose ``pq_width = min(8, out_width)`` and
    the ``pq_shift`` of :func:`typical_pq_shift`.  Timing:
    :meth:`cycles_per_head`.
    """

    block = "damf-head"

    # the inner-product unit's fields, with its defaults, limits and docs (one definition)
    d_model: int = _inner_product_field("d_model")
    lanes: int = _inner_product_field("lanes")
    x_width: int = _inner_product_field("x_width")
    w_width: int = _inner_product_field("w_width")
    weights: str = _inner_product_field("weights")
    weight_seed: int = _inner_product_field("weight_seed")
    u: tuple | None = _inner_product_field("u")
    v: tuple | None = _inner_product_field("v")
    # default: the default preset's, so that DamfHeadBlockConfig() is from_preset("default")
    pq_shift: int = field(
        default=typical_pq_shift(InnerProductConfig(), default_pq_width(InnerProductConfig())),
        metadata={"min": 0, "max": 61, "doc": "rounding right shift (half away from zero) of the inner "
                  "product's exact p and q before they are saturated to pq_width bits; 0 .. out_width - 1"})
    parallel: int = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "scores computed per cycle by the score unit; at most seq_len"})
    causal: bool = field(default=False, metadata={
        "doc": "causal self-attention: query m attends only to keys n <= m"})
    cross: bool = field(default=False, metadata={
        "doc": "cross-attention: p from the x tokens, q from a second token stream y (V: one per y token)"})
    round_lanes: int = field(default=0, metadata={"min": 0, "max": 4096, "doc":
        "Z lanes rounded per cycle by shift-accumulate's shared end-of-row unit; 0: "
        "ceil(d_head / ceil(seq_len / parallel)), so rounding never limits the row rate at L = seq_len"})

    def _validate(self):
        super()._validate()
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")
        if self.causal and self.cross:
            raise ConfigError("causal needs self-attention: causal and cross cannot both be true")
        ip = self.inner_product      # validates d_model, lanes, widths, u and v
        if self.pq_shift >= ip.out_width:
            raise ConfigError(f"pq_shift must be at most the inner-product out_width - 1 = {ip.out_width - 1}, "
                              f"not {self.pq_shift}")

    @classmethod
    def from_preset(cls, name="default"):
        """The preset's head with ``pq_width = min(8, out_width)`` of its inner-product unit and
        the ``pq_shift`` of :func:`typical_pq_shift` (``docs/numerics.md``
        section 3a)."""
        preset = get_preset(name).values()
        ip_keys = set(InnerProductConfig.keys())
        ip = InnerProductConfig(**{k: v for k, v in preset.items() if k in ip_keys})
        known = set(cls.keys())
        values = {k: v for k, v in preset.items() if k in known}
        width = default_pq_width(ip)
        return cls(**{**values, "pq_width": width, "pq_shift": typical_pq_shift(ip, width)})

    @classmethod
    def for_inner_product(cls, ip_cfg, **overrides):
        """A head whose inner-product fields are those of ``ip_cfg``, with ``pq_width = min(8,
        out_width)`` and the ``pq_shift`` of :func:`typical_pq_shift` for
        that width (both unless given in ``overrides``; calibrate ``pq_shift`` on real data
        instead, as ``damf/models/real_head.py`` does, when the inputs are not uniform random)."""
        values = {k: getattr(ip_cfg, k) for k in ("d_model", "lanes", "rank", "x_width", "w_width",
                                                   "weights", "weight_seed", "u", "v")}
        values["pq_width"] = overrides.get("pq_width", default_pq_width(ip_cfg))
        values["pq_shift"] = typical_pq_shift(ip_cfg, values["pq_width"])
        values.update(overrides)
        return cls(**values)

    # ---- the parts ------------------------------------------------------------------------

    def _numerics(self):
        return {f.name: getattr(self, f.name) for f in fields(DamfHeadConfig)}

    @property
    def inner_product(self):
        """The :class:`~damf.config.InnerProductConfig` of the head's front end."""
        return InnerProductConfig(d_model=self.d_model, lanes=self.lanes, rank=self.rank,
                                  x_width=self.x_width, w_width=self.w_width, weights=self.weights,
                                  weight_seed=self.weight_seed, u=self.u, v=self.v)

    @property
    def score(self):
        return ScoreConfig(**self._numerics(), parallel=self.parallel)

    @property
    def row_stats(self):
        return RowStatsConfig(**self._numerics(), parallel=self.parallel)

    @property
    def shift_accumulate(self):
        return ShiftAccumulateConfig(**self._numerics(), parallel=self.parallel, round_lanes=self.round_lanes)

    @property
    def row_buffer_depth(self):
        """Score beats the row buffer holds: a whole row (``ceil(seq_len / parallel)`` beats)
        while its set-up is made (``row_stats.setup_cycles``), plus the next row's first beats
        and the hand-over registers, so the score unit never waits in steady state."""
        return self.row_beats(self.seq_len) + self.row_stats.setup_cycles + 6

    # ---- timing (sources always valid, o always ready; checked cycle-exactly by the tests) ---

    @property
    def weight_stages(self):
        """Pipeline registers of the weight stage between the row buffer and shift-accumulate:
        4 in the maclaurin modes (beat, ``|A|``, ``P(|A|)``, ``t_n``), 7 in base2 (beat,
        ``A_max - A``, thresholds, ``t_n`` and weight, beat weight sum, ``W``, ``P(W)``)."""
        return 7 if self.mode == "base2" else 4

    @property
    def issue_latency(self):
        """Cycles from the handshake of a head's last ``x`` (cross: ``y``) beat to the handshake
        of its first query at the score unit, when the score unit is free: the inner-product
        unit, the requantization register, the last key into the score unit, the bank hand-over
        and the issue register (``inner_product.latency + 4``)."""
        return self.inner_product.latency + 4

    @property
    def row_latency(self):
        """``Z_m`` comes ``2 b_m - 1 + row_latency`` cycles after its query's handshake at the score
        unit (``b_m`` = beats the row keeps; unless shift-accumulate's rounding holds it back): the
        score unit's latency, the row's ``b_m`` beats into ``row-stats`` and the row buffer, the
        set-up (``row_stats.setup_cycles``) and its hand-over, the ``b_m`` beats through the
        weight stage (:attr:`weight_stages`) and shift-accumulate's latency."""
        return (self.score.latency + self.row_stats.setup_cycles + self.weight_stages
                + self.shift_accumulate.latency)

    @property
    def latency(self):
        """Cycles from a head's last ``x`` handshake to its first ``Z`` (less ``2 b_0 - 1``), one
        head alone: ``issue_latency + row_latency``."""
        return self.issue_latency + self.row_latency

    def row_beats(self, length):
        """Score-unit beats of one row: ``B = ceil(L / parallel)``."""
        return _ceil_div(length, self.parallel)

    def row_period(self, length=None):
        """Steady-state cycles between two ``Z`` rows of a head of ``length`` keys (default
        ``seq_len``): ``max(B, G)``, ``B = ceil(length / parallel)`` the score unit's beats per row,
        ``G`` = ``shift_accumulate.round_cycles`` (the shared end-of-row units; ``G <= B`` at
        ``length = seq_len`` with the automatic ``round_lanes``)."""
        length = self.seq_len if length is None else length
        return max(self.row_beats(length), self.shift_accumulate.round_cycles)

    def schedule(self, heads):
        """The cycle of every ``Z`` handshake of heads queued back to back, sources always valid
        and ``o`` always ready, counted from the first ``x`` handshake (= 1).

        ``heads``: ``(Lq, Lk)`` pairs.  Returns one list of ``Lq`` cycles per head.  The model
        (checked cycle-exactly by the tests) is closed-form up to the row buffer and steps the
        weight stage and shift-accumulate's front cycle by cycle, since a row held by the shared
        end-of-row units holds every beat behind it:

        * ``x`` (then ``y``) of head ``h`` takes ``beats Ld`` cycles (``Ld = Lq``, cross ``Lq +
          Lk``) right after head ``h - 1``'s, but not before the bank it fills is free: the
          cycle after head ``h - 2``'s last beat entered shift-accumulate;
        * its queries reach the score unit from ``issue_latency`` cycles after its last ``x``
          beat, one per ``B = ceil(Lk / parallel)`` cycles, right behind the previous head's;
        * row ``m`` keeps ``b_m = B`` beats (causal: ``min(B, ceil((m+1) / parallel))``); its
          beats may leave the row buffer from ``b_m + score.latency + row_stats.setup_cycles``
          cycles after its query (its set-up is then in the set-up FIFO), one per cycle, in
          order;
        * the weight stage (:attr:`weight_stages` registers) moves unless its last register
          holds a beat that shift-accumulate does not take; shift-accumulate's front
          (``2 + tree_levels`` registers, all or none moving) holds while a row's last beat
          at its end waits for the capture register, which the end-of-row units empty in
          ``round_cycles`` cycles; ``Z`` follows ``latency - 2 - tree_levels`` cycles after
          the capture.
        """
        beats, par = self.inner_product.beats, self.parallel
        sa = self.shift_accumulate
        depth_w, depth_f, group = self.weight_stages, 2 + sa.tree_levels, sa.round_cycles
        lead = self.score.latency + self.row_stats.setup_cycles
        rows = []                    # per row: (head, available cycle, beats)
        out = [[] for _ in heads]
        cleared = {}                 # head -> cycle its last beat entered shift-accumulate
        state = {"x_end": 0, "issue_free": None}

        def plan(h):
            """Queue head ``h``'s rows (its load may wait for head ``h - 2``'s bank)."""
            lq, lk = heads[h]
            x_start = state["x_end"] + 1 if h < 2 else max(state["x_end"] + 1, cleared[h - 2] + 1)
            state["x_end"] = x_end = x_start + beats * (lq + lk if self.cross else lq) - 1
            big_b = self.row_beats(lk)
            issue = x_end + self.issue_latency
            for m in range(lq):
                if state["issue_free"] is not None:
                    issue = max(issue, state["issue_free"])
                b = min(big_b, _ceil_div(m + 1, par)) if self.causal else big_b
                rows.append((h, issue + b + lead, b, m == lq - 1))
                state["issue_free"] = issue = issue + big_b

        for h in range(min(2, len(heads))):
            plan(h)
        planned = min(2, len(heads))
        # beats to pop: (head, row index, last of row, last of head); stages hold them or None
        wstage = [None] * depth_w
        fstage = [None] * depth_f
        row_i, beat_i = 0, 0
        cap_busy, rd_group = False, 0
        cycle = 0
        total = sum(lq for lq, _ in heads)
        done = 0
        pending_z = []               # (cycle of Z, head)
        while done < total:
            cycle += 1
            if (not cap_busy and not any(wstage) and not any(fstage) and row_i < len(rows)
                    and not any(z >= cycle for z, _ in pending_z)):
                cycle = max(cycle, rows[row_i][1])     # nothing in flight: skip to the next row
            # shift-accumulate: the capture register and the front
            rd_last = cap_busy and rd_group == group - 1
            cap_free = not cap_busy or rd_last
            tail = fstage[-1]
            adv_f = not (tail is not None and tail[1] and not cap_free)
            load = adv_f and tail is not None and tail[1]
            # the weight stage
            final = wstage[-1]
            adv = final is None or adv_f
            take = final is not None and adv_f      # a beat enters shift-accumulate
            pop = None
            if adv and row_i < len(rows) and rows[row_i][1] <= cycle:
                head, _, b, head_last = rows[row_i]
                pop = (head, beat_i == b - 1, head_last and beat_i == b - 1)
            # clock edge
            if cap_busy:
                rd_group = 0 if rd_group == group - 1 else rd_group + 1
            cap_busy = load or (cap_busy and not rd_last)
            if load:
                pending_z.append((cycle + sa.latency - depth_f, tail[0]))
            if adv_f:
                fstage = [final if take else None] + fstage[:-1]
            if take and final[2]:
                cleared[final[0]] = cycle
                while planned < len(heads) and planned - 2 <= final[0]:
                    plan(planned)
                    planned += 1
            if adv:
                wstage = [pop] + wstage[:-1]
                if pop is not None:
                    beat_i += 1
                    if pop[1]:
                        row_i, beat_i = row_i + 1, 0
            for z, head in [p for p in pending_z if p[0] == cycle]:
                out[head].append(z)
                done += 1
            pending_z = [p for p in pending_z if p[0] > cycle]
            # a bound no schedule reaches: every head's X (and Y) load, then its rows one by one
            if cycle > (100 * (total + 10) * (self.row_beats(self.seq_len) + group + 10) + 1000 * len(heads)
                        + 2 * beats * sum(lq + lk for lq, lk in heads)):
                raise RuntimeError("schedule: no progress")       # a bug in the model
        return out

    def cycles_per_head(self, length, keys=None):
        """Cycles from the first ``X`` handshake to the last ``Z`` handshake of one head of
        ``Lq = length`` queries and ``Lk = keys`` keys (default ``Lk = Lq``) after reset or idle,
        sources always valid and ``o`` always ready (:meth:`schedule`).  Not causal, ``B =
        ceil(Lk / parallel)``, ``G`` = ``shift_accumulate.round_cycles``::

            beats Ld + 2 B - 1 + latency + (Lq - 1) max(B, G)
        """
        return self.schedule([(length, length if keys is None else keys)])[0][-1]

    @property
    def head_interval(self):
        """Steady-state cycles between the starts (and the ends) of heads of ``seq_len`` tokens
        queued back to back: ``max(beats Ld, Lq row_period, ...)`` -- the load of the next head
        runs during the current head's query phase; a head whose pipeline outlasts two loads
        waits for its bank.  The mean over a pair of heads, from :meth:`schedule`."""
        n = self.seq_len
        ends = [zs[-1] for zs in self.schedule([(n, n)] * 6)]
        gap = ends[-1] - ends[-3]
        return gap // 2 if gap % 2 == 0 else gap / 2

    def derived(self):
        ip = self.inner_product
        return {**super().derived(), "inner_product": ip.derived(), "beats": ip.beats,
                "latency": self.latency, "row_buffer_depth": self.row_buffer_depth,
                "row_period": self.row_period(), "head_interval": self.head_interval,
                "cycles_per_head_full": self.cycles_per_head(self.seq_len)}

    def to_dict(self):
        out = super().to_dict()
        if self.weights == "fixed":
            u, v = self.inner_product.fixed_vectors()
            out["u"] = [list(r) for r in u]
            out["v"] = [list(r) for r in v]
        return out
