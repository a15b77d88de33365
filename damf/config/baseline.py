"""Configurations of the baseline blocks: ``systolic-qk``, ``softmax``, ``systolic-av`` and
``baseline-head`` (the conventional head DAMF is measured against)."""

import dataclasses
import math
from dataclasses import dataclass, field

from .base import MAX_DERIVED_WIDTH, BlockConfig, ConfigError, check_vectors, product_range, signed_range_width
from .inner_product import InnerProductConfig

__all__ = ["SystolicQKConfig", "SOFTMAX_POLY_FRAC", "SOFTMAX_POLY_A1", "SOFTMAX_POLY_A2", "SoftmaxConfig",
           "SystolicAVConfig", "typical_shift", "BaselineHeadConfig"]


@dataclass(frozen=True, repr=False)
class SystolicQKConfig(BlockConfig):
    """Configuration of the baseline systolic score engine (``systolic-qk``).

    An output-stationary ``rows x cols`` array of multiply-accumulate cells computes
    ``S = Q K^T`` for ``Q`` and ``K`` of shape ``seq_len x d_head``, one ``rows x cols`` tile of
    ``S`` at a time (see :mod:`damf.hdl.systolic_qk` for the stream protocol).
    """

    block = "systolic-qk"

    rows:    int = field(default=4, metadata={"min": 1, "max": 64,
                           "doc": "rows of the array R: rows of Q (and of S) per tile"})
    cols:    int = field(default=4, metadata={"min": 1, "max": 64,
                           "doc": "columns of the array C: rows of K (columns of S) per tile"})
    d_head:  int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                           "doc": "elements per query/key vector (the accumulation length)"})
    seq_len: int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                           "doc": "sequence length L: rows of Q and of K"})
    q_width: int = field(default=8, metadata={"min": 2, "max": 32,
                           "doc": "bits of each signed element of Q"})
    k_width: int = field(default=8, metadata={"min": 2, "max": 32,
                           "doc": "bits of each signed element of K"})

    def _validate(self):
        if self.rows > self.seq_len:
            raise ConfigError(f"rows must be at most seq_len = {self.seq_len}, not {self.rows}")
        if self.cols > self.seq_len:
            raise ConfigError(f"cols must be at most seq_len = {self.seq_len}, not {self.cols}")
        if self.acc_width > MAX_DERIVED_WIDTH:
            raise ConfigError(
                f"q_width + k_width + log2(d_head) must give at most {MAX_DERIVED_WIDTH} score bits, "
                f"not {self.acc_width} (q_width={self.q_width}, k_width={self.k_width}, d_head={self.d_head})")

    # ---- derived --------------------------------------------------------------------------

    @property
    def tile_rows(self):
        """Tiles down ``S``: ``ceil(seq_len / rows)``."""
        return -(-self.seq_len // self.rows)

    @property
    def tile_cols(self):
        """Tiles across ``S``: ``ceil(seq_len / cols)``."""
        return -(-self.seq_len // self.cols)

    @property
    def tiles(self):
        return self.tile_rows * self.tile_cols

    @property
    def last_rows(self):
        """Rows of ``Q`` in a tile of the last tile row (the others are padding)."""
        return self.seq_len - (self.tile_rows - 1) * self.rows

    @property
    def last_cols(self):
        """Rows of ``K`` in a tile of the last tile column (the others are padding)."""
        return self.seq_len - (self.tile_cols - 1) * self.cols

    def tile_origins(self):
        """``(r0, c0)`` of every tile in stream order: tile rows outer, tile columns inner."""
        return [(ti * self.rows, tj * self.cols)
                for ti in range(self.tile_rows) for tj in range(self.tile_cols)]

    def tile_score_rows(self, r0):
        """Score rows the block emits for a tile whose first row is ``r0``."""
        return min(self.rows, self.seq_len - r0)

    @property
    def score_beats(self):
        """Beats of ``o`` per ``S``: every valid row of every tile, ``seq_len * tile_cols``."""
        return self.seq_len * self.tile_cols

    @property
    def product_width(self):
        return signed_range_width(*product_range(self.q_width, self.k_width))

    @property
    def acc_width(self):
        """Exact width of a score: holds every sum of ``d_head`` products, no overflow."""
        lo, hi = product_range(self.q_width, self.k_width)
        return signed_range_width(self.d_head * lo, self.d_head * hi)

    @property
    def hold(self):
        """Cycles ``i.ready`` stays low after a tile's last beat, so tiles start
        ``cycles_per_tile`` apart: ``max(rows, cols) - d_head``, at least 0."""
        return max(0, max(self.rows, self.cols) - self.d_head)

    @property
    def cycles_per_tile(self):
        """Cycles between the starts of consecutive tiles in steady state (no gaps, no
        backpressure): ``max(d_head, rows, cols)``.  The array runs at one MAC per cell per
        cycle when ``d_head >= max(rows, cols)``."""
        return self.d_head + self.hold

    @property
    def latency(self):
        """Cycles from the handshake of a tile's last input beat to the handshake of its first
        score row, when ``o`` is ready: ``cols + 3`` (a product register, then the accumulator)."""
        return self.cols + 3

    @property
    def tile_cycles(self):
        """Cycles from a lone tile's first input beat to its last score row: ``d_head + rows + cols + 1``."""
        return self.d_head - 1 + self.latency + self.rows - 1

    @property
    def cycles(self):
        """Cycles from the first input handshake to the last score handshake for one ``S``, with
        a source always valid and a sink always ready:
        ``(tiles - 1) * cycles_per_tile + d_head + cols + last_rows + 1``."""
        return (self.tiles - 1) * self.cycles_per_tile + self.d_head - 1 + self.latency + self.last_rows - 1

    # The generator is written in terms of these three, so that the A' x V engine
    # (SystolicAVConfig) is the same hardware with other row counts and inner length.
    @property
    def q_rows(self):
        """Rows of the left operand (``Q``): ``seq_len``."""
        return self.seq_len

    @property
    def k_rows(self):
        """Rows of the right operand (``K``), i.e. columns of the product: ``seq_len``."""
        return self.seq_len

    @property
    def steps(self):
        """Accumulation length (input beats per tile): ``d_head``."""
        return self.d_head

    def derived(self):
        return {
            "tile_rows": self.tile_rows,
            "tile_cols": self.tile_cols,
            "tiles": self.tiles,
            "last_rows": self.last_rows,
            "last_cols": self.last_cols,
            "product_width": self.product_width,
            "acc_width": self.acc_width,
            "beats_per_tile": self.d_head,
            "input_beats": self.tiles * self.d_head,
            "score_beats": self.score_beats,
            "hold": self.hold,
            "cycles_per_tile": self.cycles_per_tile,
            "latency": self.latency,
            "tile_cycles": self.tile_cycles,
            "cycles": self.cycles,
            "ports": {
                "i__payload": self.rows * self.q_width + self.cols * self.k_width,
                "o__payload": self.cols * self.acc_width,
            },
        }



# Coefficients of the integer exponential of the softmax unit: 2**-x on [0, 1) is
# 1 + (SOFTMAX_POLY_A1 * x + SOFTMAX_POLY_A2 * x**2) / 2**SOFTMAX_POLY_FRAC, a second-order
# polynomial exact at x = 0 (1) and x = 1 (1/2) whose x**2 coefficient 0.17214 minimizes the
# largest error on [0, 1] (1.9e-3 absolute, 3.8e-3 relative), in the style of I-BERT's i-exp.
SOFTMAX_POLY_FRAC = 16
SOFTMAX_POLY_A2 = 11281                                   # round(0.17214 * 2**16)
SOFTMAX_POLY_A1 = -(1 << (SOFTMAX_POLY_FRAC - 1)) - SOFTMAX_POLY_A2  # p(1) = 1/2 exactly


@dataclass(frozen=True, repr=False)
class SoftmaxConfig(BlockConfig):
    """Configuration of the baseline integer softmax unit (``softmax``).

    Rows of up to ``seq_len`` signed ``in_width``-bit scores ``s`` in, ``parallel`` per beat,
    rows of unsigned ``prob_width``-bit probabilities out, ``parallel`` per beat:
    ``softmax(alpha * s)`` with the constant ``alpha = scale * 2**-scale_frac``
    (``1/sqrt(d_head)`` times the quantization scales of the scores), in one pass over each row
    (a running reference and a running sum rescaled by shifts).  See :mod:`damf.hdl.softmax`
    for the arithmetic, the stream protocol and the pipeline.
    """

    block = "softmax"

    # quotient bits per stage of the pipelined reciprocal (restoring division steps per stage)
    DIV_BITS = 2
    # adder / comparator tree levels between two pipeline registers
    TREE_LEVELS = 1

    seq_len:    int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                              "doc": "longest row L (rows of any length 1 .. L at run time)"})
    parallel:   int = field(default=4, metadata={"min": 1, "max": 1 << 16,
                              "doc": "scores per input beat and probabilities per output beat (1 .. seq_len)"})
    in_width:   int = field(default=19, metadata={"min": 2, "max": 40,
                              "doc": "bits of a signed score (the systolic array's acc_width)"})
    scale:      int = field(default=181, metadata={"min": 1, "max": (1 << 32) - 1,
                              "doc": "alpha = scale * 2**-scale_frac multiplies the scores "
                                     "(default 2**-10/sqrt(8): 8-bit Q, K with 5 fraction bits, d_head 8)"})
    scale_frac: int = field(default=19, metadata={"min": 0, "max": 48,
                              "doc": "fraction bits of scale"})
    prob_width: int = field(default=8, metadata={"min": 2, "max": 24,
                              "doc": "bits of an unsigned probability, all fraction bits (saturates at 1 - 2**-prob_width)"})
    exp_frac:   int = field(default=15, metadata={"min": 4, "max": 24,
                              "doc": "fraction bits of the integer exponential (exp values are 0 .. 2**exp_frac)"})

    def _validate(self):
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")
        if self.exp_shift < 0:
            raise ConfigError(
                f"alpha * log2(e) = scale * 2**-scale_frac * log2(e) must be below 2**16, "
                f"not {self.alpha * 1.4426950408889634:.6g} (scale={self.scale}, scale_frac={self.scale_frac})")

    # ---- derived: arithmetic --------------------------------------------------------------

    @property
    def alpha(self):
        """The real factor applied to the scores before the exponential."""
        return self.scale * 2.0 ** -self.scale_frac

    def _mult(self):
        import math
        mant, exp = math.frexp(self.alpha * math.log2(math.e))   # mant in [0.5, 1)
        return int(math.floor(mant * (1 << 16) + 0.5)), 16 - exp

    @property
    def exp_mult(self):
        """``alpha * log2(e)`` as the integer ``exp_mult * 2**-exp_shift`` (16-17 significant bits)."""
        return self._mult()[0]

    @property
    def exp_shift(self):
        """Fraction bits of ``exp_mult``."""
        return self._mult()[1]

    @property
    def v_range(self):
        """``(min, max)`` of ``v = -s * exp_mult``."""
        lo, hi = -(1 << (self.in_width - 1)), (1 << (self.in_width - 1)) - 1
        return -hi * self.exp_mult, -lo * self.exp_mult

    @property
    def v_width(self):
        """Bits of ``v = -s * exp_mult`` (signed): ``-alpha*log2(e)*s`` with ``exp_shift`` fraction bits."""
        return signed_range_width(*self.v_range)

    @property
    def ref_range(self):
        """``(min, max)`` of ``g = v >> exp_shift``, the integer part of ``-alpha*log2(e)*s``."""
        lo, hi = self.v_range
        return lo >> self.exp_shift, hi >> self.exp_shift

    @property
    def ref_width(self):
        """Bits of ``g`` and of a row reference ``G`` (signed)."""
        return signed_range_width(*self.ref_range)

    @property
    def exp_width(self):
        """Bits of an exponential value ``e`` (unsigned, ``exp_frac`` fraction bits, at most 1.0)."""
        return self.exp_frac + 1

    @property
    def count_width(self):
        """Bits of a beat's ``count`` field (valid lanes, 1 .. parallel)."""
        return self.parallel.bit_length()

    def beats(self, n):
        """Beats of a row of ``n`` scores: ``ceil(n / parallel)``."""
        return -(-n // self.parallel)

    @property
    def max_beats(self):
        """Beats of the longest row, ``ceil(seq_len / parallel)``: a row ends at this beat
        whether ``last`` is set or not."""
        return self.beats(self.seq_len)

    @property
    def beat_sum_width(self):
        """Bits of the sum of one beat's exponentials."""
        return (self.parallel << self.exp_frac).bit_length()

    @property
    def sum_width(self):
        """Bits of a row's running sum (at most ``max_beats * parallel`` exponentials of at most 1.0)."""
        return ((self.max_beats * self.parallel) << self.exp_frac).bit_length()

    @property
    def guard(self):
        """Extra quotient bits of the reciprocal: its rounding error is below 2**-guard LSB."""
        return self.seq_len.bit_length() + 2

    @property
    def recip_shift(self):
        """``recip = 2**recip_shift // sum``; ``recip_shift = exp_frac + prob_width + guard``."""
        return self.exp_frac + self.prob_width + self.guard

    @property
    def recip_width(self):
        """Bits of the reciprocal: ``prob_width + guard + 2`` (a row's sum exceeds
        ``2**(exp_frac - 2)``: the reference's exponential is at least ``2**-1 - 2**-16``)."""
        return self.prob_width + self.guard + 2

    # ---- derived: pipeline and cycles -----------------------------------------------------

    @property
    def tree_stages(self):
        """Registers of the ``parallel``-input minimum and sum trees: one every
        ``TREE_LEVELS`` levels, ``ceil(ceil(log2 parallel) / TREE_LEVELS)``."""
        levels = (self.parallel - 1).bit_length()
        return -(-levels // self.TREE_LEVELS)

    @property
    def div_stages(self):
        """Stages of the pipelined reciprocal: ``ceil(recip_width / DIV_BITS)``."""
        return -(-self.recip_width // self.DIV_BITS)

    @property
    def v_stage(self):
        """Clock edge (counted from a beat's input handshake, edge 0) that registers
        ``v = -s * exp_mult``, by shifts and adds over the canonical signed digits of the
        constant: sums of up to 4 terms (1), their sum (2)."""
        return 2

    @property
    def exp_stage(self):
        """Clock edge that registers a beat's ``e``: input register (0), ``v`` (``v_stage``),
        polynomial (4 more) in parallel with the minimum tree (``tree_stages``) and the running
        reference (one more), shift amount, ``e``: ``max(v_stage + 4, v_stage + tree_stages + 1) + 2``."""
        return max(self.v_stage + 4, self.v_stage + self.tree_stages + 1) + 2

    @property
    def sum_stage(self):
        """Clock edge that registers the row's running sum with this beat: after the beat-sum tree."""
        return self.exp_stage + self.tree_stages + 1

    @property
    def row_latency(self):
        """Cycles from a row's last input handshake to its first output handshake, when the
        output is idle (the previous row's last output is earlier) and the sink ready:
        ``sum_stage + div_stages + 7`` (reciprocal in ``div_stages``; the row's record in the
        row queue; then read, shift amount, shift, multiply, round, handshake)."""
        return self.sum_stage + self.div_stages + 7

    def row_cycles(self, n):
        """Cycles from the first input handshake of a lone row of ``n`` scores to its last output
        handshake (source always valid, sink always ready): ``2*beats(n) - 2 + row_latency``."""
        return 2 * self.beats(n) - 2 + self.row_latency

    def row_interval(self, n):
        """Cycles between the first input handshakes of consecutive rows of ``n`` scores (source
        always valid, sink always ready): ``beats(n)``; rows are taken back to back."""
        return self.beats(n)

    @property
    def buffer_depth(self):
        """Words (beats) of the row buffer, and the largest number of rows in flight:
        ``max_beats + sum_stage + div_stages + 2``, enough that a source always valid and a sink
        always ready never see ``i.ready`` low, for any mix of row lengths."""
        return self.max_beats + self.sum_stage + self.div_stages + 2

    @property
    def memory_bits(self):
        """Bits of the row buffer (per beat: ``parallel`` exponentials, the beat's reference,
        its count) and of the row queue (per row: reciprocal, reference, beats)."""
        word = self.parallel * self.exp_width + self.ref_width + self.count_width
        row = self.recip_width + self.ref_width + self.max_beats.bit_length()
        return self.buffer_depth * (word + row)

    def derived(self):
        return {
            "alpha": self.alpha,
            "exp_mult": self.exp_mult,
            "exp_shift": self.exp_shift,
            "poly": {"frac": SOFTMAX_POLY_FRAC, "a1": SOFTMAX_POLY_A1, "a2": SOFTMAX_POLY_A2},
            "v_width": self.v_width,
            "ref_width": self.ref_width,
            "exp_width": self.exp_width,
            "beat_sum_width": self.beat_sum_width,
            "sum_width": self.sum_width,
            "guard": self.guard,
            "recip_shift": self.recip_shift,
            "recip_width": self.recip_width,
            "max_beats": self.max_beats,
            "tree_stages": self.tree_stages,
            "div_stages": self.div_stages,
            "buffer_depth": self.buffer_depth,
            "memory_bits": self.memory_bits,
            "row_latency": self.row_latency,
            "row_cycles": self.row_cycles(self.seq_len),
            "row_interval": self.row_interval(self.seq_len),
            "ports": {
                "i__payload": self.parallel * self.in_width + self.count_width + 1,
                "o__payload": self.parallel * self.prob_width + self.count_width + 1,
            },
        }



@dataclass(frozen=True, repr=False)
class SystolicAVConfig(SystolicQKConfig):
    """Configuration of the baseline ``A' x V`` engine (``systolic-av``).

    The same output-stationary array as ``systolic-qk`` (:mod:`damf.hdl.systolic_qk`), with
    ``Q = A'`` (``seq_len x seq_len`` probabilities) and ``K = V^T`` (``d_head`` rows of length
    ``seq_len``): ``Z = A' (V^T)^T = A' V``.  Tiles are ``rows`` rows of ``A'`` by ``cols``
    columns of ``V``; the inner length (beats per tile) is ``seq_len``.  ``q_width`` is the
    width of a signed element of ``A'`` (a ``prob_width``-bit unsigned probability needs
    ``prob_width + 1``), ``k_width`` that of ``V``.
    """

    block = "systolic-av"

    rows:    int = field(default=4, metadata={"min": 1, "max": 64,
                           "doc": "rows of the array R: rows of A' (and of Z) per tile"})
    cols:    int = field(default=4, metadata={"min": 1, "max": 64,
                           "doc": "columns of the array C: columns of V (and of Z) per tile"})
    d_head:  int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                           "doc": "columns of V and of Z"})
    seq_len: int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                           "doc": "sequence length L: rows and columns of A', rows of V (the accumulation length)"})
    q_width: int = field(default=9, metadata={"min": 2, "max": 32,
                           "doc": "bits of each signed element of A' (prob_width + 1 for softmax output)"})
    k_width: int = field(default=8, metadata={"min": 2, "max": 32,
                           "doc": "bits of each signed element of V"})

    def _validate(self):
        if self.rows > self.seq_len:
            raise ConfigError(f"rows must be at most seq_len = {self.seq_len}, not {self.rows}")
        if self.cols > self.d_head:
            raise ConfigError(f"cols must be at most d_head = {self.d_head}, not {self.cols}")
        if self.acc_width > MAX_DERIVED_WIDTH:
            raise ConfigError(
                f"q_width + k_width + log2(seq_len) must give at most {MAX_DERIVED_WIDTH} output bits, "
                f"not {self.acc_width} (q_width={self.q_width}, k_width={self.k_width}, seq_len={self.seq_len})")

    @property
    def k_rows(self):
        """Rows of ``K = V^T``, i.e. columns of ``Z``: ``d_head``."""
        return self.d_head

    @property
    def steps(self):
        """Accumulation length (input beats per tile): ``seq_len``."""
        return self.seq_len

    @property
    def tile_cols(self):
        """Tiles across ``Z``: ``ceil(d_head / cols)``."""
        return -(-self.d_head // self.cols)

    @property
    def last_cols(self):
        return self.d_head - (self.tile_cols - 1) * self.cols

    @property
    def score_beats(self):
        """Beats of ``o`` per ``Z``: ``seq_len * tile_cols``."""
        return self.seq_len * self.tile_cols

    @property
    def acc_width(self):
        """Exact width of an element of ``Z``: every sum of ``seq_len`` products."""
        lo, hi = product_range(self.q_width, self.k_width)
        return signed_range_width(self.seq_len * lo, self.seq_len * hi)

    @property
    def hold(self):
        return max(0, max(self.rows, self.cols) - self.steps)

    @property
    def cycles_per_tile(self):
        """``max(seq_len, rows, cols)``."""
        return self.steps + self.hold

    @property
    def tile_cycles(self):
        """``seq_len + rows + cols + 1``."""
        return self.steps - 1 + self.latency + self.rows - 1

    @property
    def cycles(self):
        """``(tiles - 1) * cycles_per_tile + seq_len + cols + last_rows + 1``."""
        return (self.tiles - 1) * self.cycles_per_tile + self.steps - 1 + self.latency + self.last_rows - 1

    def derived(self):
        out = super().derived()
        out["beats_per_tile"] = self.steps
        out["input_beats"] = self.tiles * self.steps
        return out



def _projection_field(name, doc):
    """A field declared like :class:`InnerProductConfig`'s ``name`` (same default and limits), with
    the baseline head's ``doc``: the head's projection is an inner-product unit."""
    f = {f.name: f for f in dataclasses.fields(InnerProductConfig)}[name]
    return field(default=f.default, metadata={**f.metadata, "doc": doc})


def typical_shift(d_model, x_width, w_width, width):
    """Right shift that brings ``X . w`` (``d_model`` products of uniform random ``x_width``- and
    ``w_width``-bit signed integers) to ``width`` bits, with ``4 sigma`` not saturating: the rule of
    :func:`damf.golden.damf_head.typical_pq_shift` (``docs/numerics.md`` section 3a), written on
    plain numbers so the configurations can use it (``tests/test_baseline_head.py`` checks that
    the two agree).  ``sigma = sqrt(d_model) s_x s_w`` with ``s_b = sqrt((4^b - 1) / 12)``; the
    smallest ``s >= 0`` with ``4 sigma <= 2^(s + width - 1)``, at most ``out_width - width``."""
    def spread(bits):
        return math.sqrt(((1 << (2 * bits)) - 1) / 12)
    sigma = math.sqrt(d_model) * spread(x_width) * spread(w_width)
    lo, hi = product_range(x_width, w_width)
    out_width = signed_range_width(d_model * lo, d_model * hi)
    shift = max(0, math.ceil(math.log2(4 * sigma) - (width - 1)))
    return min(shift, max(0, out_width - width))


@dataclass(frozen=True, repr=False)
class BaselineHeadConfig(BlockConfig):
    """Configuration of the conventional attention head (``baseline-head``).

    ``Z = softmax(alpha * Q K^T) V`` for one head: a ``systolic-qk`` array, a row buffer, the
    ``softmax`` unit and a ``systolic-av`` array (see :mod:`damf.hdl.baseline_head`).  The three
    sub-configurations (:attr:`qk`, :attr:`softmax`, :attr:`av`) are derived from these keys, so
    the score width of the first array is the softmax's ``in_width`` and the softmax's
    probabilities are the second array's ``A'`` (``q_width = prob_width + 1``).

    ``inputs`` says what the head takes:

    * ``"qk"`` (default): ``Q``, ``K`` and ``V`` rows, one token per beat on ``i``; the keys of
      the projection (``d_model`` .. ``qk_shift``) are ignored.
    * ``"x"``: tokens ``X`` (``d_model`` elements, ``lanes`` per beat, on ``x``) and ``V`` rows
      (on ``v``), as ``damf-head`` takes them; the head computes ``Q = X W_Q`` and ``K = X W_K``
      itself in an inner-product unit (:attr:`projection`: ``rank = d_head``, ``u_e`` = column
      ``e`` of ``W_Q``, ``v_e`` = column ``e`` of ``W_K``) and requantizes them to ``q_width`` /
      ``k_width`` bits by ``qk_shift`` (rounding half away from zero, then saturation:
      ``golden.quant.requantize``, the rule of ``damf-head``'s ``p`` and ``q``).  So the baseline
      pays for its Q/K projection (:meth:`derived` ``projection_macs``) as DAMF pays for its inner
      products.  :meth:`from_preset` sets ``qk_shift`` by :func:`typical_shift` for the preset's
      ``d_model`` and widths (set it yourself after changing them, or calibrate it on real data).
    """

    block = "baseline-head"

    rows:       int = field(default=4, metadata={"min": 1, "max": 64,
                              "doc": "rows R of both arrays: query rows per tile"})
    cols:       int = field(default=4, metadata={"min": 1, "max": 64,
                              "doc": "columns C of both arrays: keys (QK^T) / columns of V (A'V) per tile"})
    d_head:     int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                              "doc": "elements per query, key and value vector (inputs=x: at most 64)"})
    seq_len:    int = field(default=8, metadata={"min": 1, "max": 1 << 16,
                              "doc": "sequence length L: rows of Q, K, V and Z"})
    q_width:    int = field(default=8, metadata={"min": 2, "max": 32,
                              "doc": "bits of each signed element of Q"})
    k_width:    int = field(default=8, metadata={"min": 2, "max": 32,
                              "doc": "bits of each signed element of K"})
    v_width:    int = field(default=8, metadata={"min": 2, "max": 32,
                              "doc": "bits of each signed element of V"})
    scale:      int = field(default=181, metadata={"min": 1, "max": (1 << 32) - 1,
                              "doc": "softmax: alpha = scale * 2**-scale_frac multiplies the scores"})
    scale_frac: int = field(default=19, metadata={"min": 0, "max": 48,
                              "doc": "softmax: fraction bits of scale"})
    prob_width: int = field(default=8, metadata={"min": 2, "max": 24,
                              "doc": "softmax: bits of an unsigned probability (A' element)"})
    exp_frac:   int = field(default=15, metadata={"min": 4, "max": 24,
                              "doc": "softmax: fraction bits of the integer exponential"})
    inputs:     str = field(default="qk", metadata={"choices": ("qk", "x"),
                              "doc": "qk: Q, K, V rows in (port i); x: tokens X (port x) and V rows (port v) in, "
                                     "Q = X W_Q and K = X W_K computed and requantized by the head"})
    d_model:    int = _projection_field("d_model", "inputs=x: elements per token X[t]")
    lanes:      int = _projection_field("lanes", "inputs=x: elements of X[t] per x beat")
    x_width:    int = _projection_field("x_width", "inputs=x: bits of each signed element of X")
    w_width:    int = _projection_field("w_width", "inputs=x: bits of each signed element of W_Q and W_K")
    weights:    str = _projection_field("weights", "inputs=x: runtime: W_Q, W_K loaded through the w stream; "
                                                     "fixed: constants of the generated Verilog")
    weight_seed: int = _projection_field("weight_seed", "inputs=x, weights=fixed: seed of the random W_Q, W_K "
                                                          "used when wq, wk are not given")
    wq: tuple | None = field(default=None, metadata={
        "doc": "inputs=x, weights=fixed: W_Q^T, d_head x d_model signed integers (JSON list of lists; "
               "row e = column e of W_Q); default: random from weight_seed"})
    wk: tuple | None = field(default=None, metadata={
        "doc": "inputs=x, weights=fixed: W_K^T, d_head x d_model signed integers; default: random from weight_seed"})
    # default: the default preset's, so that BaselineHeadConfig() is from_preset("default")
    qk_shift:   int = field(default=typical_shift(16, 8, 8, 8), metadata={"min": 0, "max": 61,
                              "doc": "inputs=x: rounding right shift (half away from zero) of X W_Q and X W_K "
                                     "before they are saturated to q_width / k_width bits; "
                                     "0 .. projection out_width - 1"})
    banks:      int = field(default=1, metadata={"min": 1, "max": 2,
                              "doc": "banks of the Q, K, V buffers: 1, or 2 so that the next head loads "
                                     "while this one computes (twice their memory)"})

    def _validate(self):
        if self.rows > self.seq_len:
            raise ConfigError(f"rows must be at most seq_len = {self.seq_len}, not {self.rows}")
        if self.cols > self.seq_len:
            raise ConfigError(f"cols must be at most seq_len = {self.seq_len}, not {self.cols}")
        if self.cols > self.d_head:
            raise ConfigError(f"cols must be at most d_head = {self.d_head}, not {self.cols}")
        if self.qk.acc_width > 40:
            raise ConfigError(
                f"q_width + k_width + log2(d_head) must give at most 40 score bits (softmax in_width), "
                f"not {self.qk.acc_width} (q_width={self.q_width}, k_width={self.k_width}, d_head={self.d_head})")
        _ = (self.softmax, self.av)  # the sub-configurations validate themselves (ConfigError)
        if self.inputs == "qk":
            for name in ("wq", "wk"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{name} may only be given with inputs=x, not inputs=qk")
            return
        rank_max = {f.name: f for f in dataclasses.fields(InnerProductConfig)}["rank"].metadata["max"]
        if self.d_head > rank_max:
            raise ConfigError(f"d_head must be at most {rank_max} with inputs=x (the projection's rank), "
                              f"not {self.d_head}")
        for name in ("wq", "wk"):
            vectors = getattr(self, name)
            if vectors is not None:
                if self.weights != "fixed":
                    raise ConfigError(f"{name} may only be given with weights=fixed, not weights={self.weights}")
                check_vectors(name, vectors, rows=self.d_head, cols=self.d_model, width=self.w_width,
                               what="one per column of Q or K: d_head")
        ip = self.projection         # validates d_model, lanes and the widths
        if self.qk_shift >= ip.out_width:
            raise ConfigError(f"qk_shift must be at most the projection's out_width - 1 = {ip.out_width - 1}, "
                              f"not {self.qk_shift}")

    @classmethod
    def from_preset(cls, name="default"):
        """The preset's head, with ``qk_shift`` = :meth:`typical_qk_shift` of the preset's
        ``d_model`` and widths."""
        cfg = super().from_preset(name)
        return dataclasses.replace(cfg, qk_shift=cfg.typical_qk_shift())

    def typical_qk_shift(self):
        """:func:`typical_shift` for this head's ``d_model``, ``x_width``, ``w_width`` and the
        narrower of ``q_width`` and ``k_width`` (one shift for ``Q`` and ``K``)."""
        return typical_shift(self.d_model, self.x_width, self.w_width, min(self.q_width, self.k_width))

    # ---- sub-configurations ---------------------------------------------------------------

    @property
    def qk(self):
        """The ``S = Q K^T`` array."""
        return SystolicQKConfig(rows=self.rows, cols=self.cols, d_head=self.d_head, seq_len=self.seq_len,
                                q_width=self.q_width, k_width=self.k_width)

    @property
    def softmax(self):
        """The softmax unit: rows of ``seq_len`` scores of the ``qk`` array's ``acc_width``."""
        return SoftmaxConfig(seq_len=self.seq_len, parallel=self.cols, in_width=self.qk.acc_width,
                             scale=self.scale, scale_frac=self.scale_frac, prob_width=self.prob_width,
                             exp_frac=self.exp_frac)

    @property
    def av(self):
        """The ``Z = A' V`` array: ``A'`` elements are ``prob_width + 1``-bit signed."""
        return SystolicAVConfig(rows=self.rows, cols=self.cols, d_head=self.d_head, seq_len=self.seq_len,
                                q_width=self.prob_width + 1, k_width=self.v_width)

    @property
    def projection(self):
        """``inputs=x``: the inner-product unit that computes ``Q`` and ``K`` before
        requantization: ``rank = d_head``, ``p_e = X . u_e`` with ``u = W_Q^T`` (``wq``) and
        ``q_e = X . v_e`` with ``v = W_K^T`` (``wk``)."""
        if self.inputs != "x":
            raise ConfigError(f"projection needs inputs=x, not inputs={self.inputs}")
        return InnerProductConfig(d_model=self.d_model, lanes=self.lanes, rank=self.d_head,
                                  x_width=self.x_width, w_width=self.w_width, weights=self.weights,
                                  weight_seed=self.weight_seed, u=self.wq, v=self.wk)

    # ---- derived --------------------------------------------------------------------------

    @property
    def out_width(self):
        """Bits of an element of ``Z``: the ``av`` array's exact ``acc_width`` (no rounding)."""
        return self.av.acc_width

    @property
    def tile_rows(self):
        """Tile rows ``ceil(L / R)``: the head is computed one tile row (``R`` query rows) at a time."""
        return -(-self.seq_len // self.rows)

    def tile_row_sizes(self):
        """Query rows in each tile row: ``R``, ..., ``R``, ``last_rows``."""
        return [min(self.rows, self.seq_len - ti * self.rows) for ti in range(self.tile_rows)]

    @property
    def out_beats(self):
        """Beats of ``o`` per head: ``L * ceil(d_head / C)``."""
        return self.av.score_beats

    @property
    def in_beats(self):
        """Input beats per head: ``L`` on ``i`` (inputs=qk), or ``L * beats`` on ``x``
        (``beats = ceil(d_model / lanes)``; and ``L`` on ``v`` beside them) (inputs=x)."""
        return self.seq_len if self.inputs == "qk" else self.seq_len * self.projection.beats

    @property
    def projection_latency(self):
        """inputs=x: clock edges from the handshake of a token's last ``x`` beat to the edge that
        writes its ``Q`` and ``K`` rows: the inner-product unit's ``latency`` and the
        requantization register (``projection.latency + 1``)."""
        return self.projection.latency + 1

    @property
    def load_end(self):
        """The clock edge (counted from the head's first input handshake, edge 0, sources always
        valid) that ends the load, after which the engines may start: the last ``i`` beat, ``L - 1``
        (inputs=qk); the later of the last ``Q``/``K`` write, ``L * beats - 1 +
        projection_latency``, and the last ``v`` beat, ``L - 1`` (inputs=x)."""
        if self.inputs == "qk":
            return self.seq_len - 1
        return max(self.seq_len - 1, self.in_beats - 1 + self.projection_latency)

    def schedule(self):
        """When each tile row passes each engine, with sources always valid and a sink always
        ready: a list (one entry per tile row) of dicts of clock edges counted from the head's
        first input handshake (edge 0).  The rules are the control's, cycle for cycle:

        * the load ends at edge :attr:`load_end` (``L - 1`` with inputs=qk); an engine starts a
          tile row (``go``) at the edge after every condition holds: the Q K^T feed after the
          load, its previous tile row's last beat
          and after the softmax feed of the tile row two before (the score bank's last user);
          the softmax feed after the tile row's last score is written, its previous tile row's
          last beat and the A' V feed of the tile row two before (the probability bank's last
          user); the A' V feed after its previous tile row's last beat and the tile row's last
          probability;
        * a feed's first beat is taken 2 edges after its start (memory read, payload register),
          later if the array still holds (``hold`` cycles after a tile); then beats back to back;
        * ``qk_fed``: last Q K^T beat; ``scores``: last score written (array ``latency`` and
          ``n`` rows later); ``sm_fed``: last softmax beat (``n * ceil(L/C)`` beats);
          ``probs``: last probability written (each row of the softmax ``row_latency`` after its
          last beat, or right after the previous row's outputs); ``av_fed``: last A' V beat.
        """
        qk, sm, av = self.qk, self.softmax, self.av
        L, TC, TA = self.seq_len, qk.tile_cols, av.tile_cols
        out, prob_end = [], None
        for t, n in enumerate(self.tile_row_sizes()):
            prev = out[t - 1] if t >= 1 else None
            prev2 = out[t - 2] if t >= 2 else None
            start = 1 + max([self.load_end] + ([prev["qk_fed"]] if prev else [])
                            + ([prev2["sm_fed"]] if prev2 else []))
            first = max(start + 2, prev["qk_fed"] + 1 + qk.hold) if prev else start + 2
            qk_fed = first + (TC - 1) * qk.cycles_per_tile + qk.d_head - 1
            scores = qk_fed + qk.latency + n - 1
            start = 1 + max([scores] + ([prev["sm_fed"]] if prev else []) + ([prev2["av_fed"]] if prev2 else []))
            first = start + 2
            sm_fed = first + n * TC - 1
            for r in range(n):
                last_in = first + (r + 1) * TC - 1
                begin = last_in + sm.row_latency if prob_end is None else max(last_in + sm.row_latency, prob_end + 1)
                prob_end = begin + TC - 1
            start = 1 + max([prob_end] + ([prev["av_fed"]] if prev else []))
            first = max(start + 2, prev["av_fed"] + 1 + av.hold) if prev else start + 2
            av_fed = first + (TA - 1) * av.cycles_per_tile + L - 1
            out.append({"qk_fed": qk_fed, "scores": scores, "sm_fed": sm_fed, "probs": prob_end, "av_fed": av_fed})
        return out

    @property
    def compute_span(self):
        """Edges from the end of a head's load to its last A' V beat: ``schedule()[-1]["av_fed"]
        - load_end`` (a head's engines need its whole load and nothing else of it)."""
        return self.schedule()[-1]["av_fed"] - self.load_end

    def heads_schedule(self, count):
        """The edges of ``count`` heads queued back to back (sources always valid, sink always
        ready), counted from the first head's first input handshake (edge 0): per head ``start``
        (first input handshake), ``load_end``, ``compute`` (the edge after which its engines may
        start: its load is done and the head before it has taken its last A' V beat), ``av_fed``
        (its last A' V beat) and ``end`` (its last ``Z`` handshake).

        * one bank: a head loads once the head before it has taken its last A' V beat:
          ``start_h = av_fed_(h-1) + 1``;
        * two banks: a head loads into the bank the head two before it has left, once the load
          before it is done: ``start_h = max(load_end_(h-1), av_fed_(h-2)) + 1``;
        * ``load_end_h = start_h + load_end``, ``compute_h = max(load_end_h, av_fed_(h-1))``,
          ``av_fed_h = compute_h + compute_span``, ``end_h = av_fed_h + cycles - schedule()[-1]["av_fed"]``.
        """
        out = []
        tail = self.cycles - self.schedule()[-1]["av_fed"]
        for h in range(count):
            prev = out[h - 1]["av_fed"] if h >= 1 else -1
            if self.banks == 1 or h < 2:
                start = 0 if h == 0 else (prev + 1 if self.banks == 1 else out[h - 1]["load_end"] + 1)
            else:
                start = max(out[h - 1]["load_end"], out[h - 2]["av_fed"]) + 1
            load_end = start + self.load_end
            compute = max(load_end, prev)
            av_fed = compute + self.compute_span
            out.append({"start": start, "load_end": load_end, "compute": compute, "av_fed": av_fed,
                        "end": av_fed + tail})
        return out

    @property
    def head_interval(self):
        """Cycles between the first input handshakes (and between the last ``Z`` handshakes) of
        consecutive heads, steady state: with one bank the next head's load starts the cycle
        after the last tile row's last A' V beat (``load_end + 1 + compute_span =
        schedule()[-1]["av_fed"] + 1``), while the A' V array drains; with two banks the loads
        overlap the computation: ``max(load_end + 1, compute_span)``."""
        if self.banks == 1:
            return self.schedule()[-1]["av_fed"] + 1
        return max(self.load_end + 1, self.compute_span)

    @property
    def cycles(self):
        """Cycles from the first input handshake to the last ``Z`` handshake for one head, with
        sources always valid and a sink always ready: the last A' V beat, then the array's
        ``latency`` and the last tile row's rows."""
        return self.schedule()[-1]["av_fed"] + self.av.latency + self.tile_row_sizes()[-1] - 1

    @property
    def projection_weight_bits(self):
        """inputs=x: bits of the projection's weight store, ``W_Q`` and ``W_K``:
        ``2 d_model d_head w_width`` (padded to whole beats: ``beats * word_width``); 0 with inputs=qk."""
        if self.inputs == "qk":
            return 0
        return self.projection.beats * self.projection.word_width

    @property
    def memory_bits(self):
        """Bits of memory: ``Q``, ``K``, ``V`` (``L * d_head`` each, times ``banks``), two tile
        rows of scores (two banks of ``R * ceil(L/C) * C`` scores) and of probabilities (two banks
        of ``R * ceil(L/C) * C``), and with inputs=x the projection's weights
        (:attr:`projection_weight_bits`); the softmax unit's own buffers are ``softmax.memory_bits``."""
        qk = self.qk
        return (self.banks * self.seq_len * self.d_head * (self.q_width + self.k_width + self.v_width)
                + 2 * self.rows * qk.tile_cols * self.cols * (qk.acc_width + self.prob_width)
                + self.projection_weight_bits)

    def ports(self):
        """Payload widths of the ports (the stream ports' ``__payload``)."""
        if self.inputs == "qk":
            ins = {"i__payload": self.d_head * (self.q_width + self.k_width + self.v_width)}
        else:
            ip = self.projection
            ins = {"x__payload": self.lanes * self.x_width + 1, "v__payload": self.d_head * self.v_width + 1,
                   **({"w__payload": ip.word_width} if self.weights == "runtime" else {})}
        return {**ins, "o__payload": self.cols * self.out_width}

    def derived(self):
        out = {
            "qk": self.qk.derived(),
            "softmax": self.softmax.derived(),
            "av": self.av.derived(),
            "score_width": self.qk.acc_width,
            "out_width": self.out_width,
            "tile_rows": self.tile_rows,
            "out_beats": self.out_beats,
            "memory_bits": self.memory_bits,
            "head_interval": self.head_interval,
            "cycles": self.cycles,
            "ports": self.ports(),
        }
        if self.banks == 2:
            out["compute_span"] = self.compute_span
        if self.inputs == "x":
            L, D = self.seq_len, self.d_head
            out.update({
                "projection": self.projection.derived(),
                "projection_latency": self.projection_latency,
                "projection_weight_bits": self.projection_weight_bits,
                "load_end": self.load_end,
                # multiply-accumulates per head: Q = X W_Q and K = X W_K, then Q K^T and A' V
                "projection_macs": 2 * L * self.d_model * D,
                "attention_macs": 2 * L * L * D,
            })
        return out

    def to_dict(self):
        out = super().to_dict()
        if self.inputs == "x" and self.weights == "fixed":
            # The JSON next to the Verilog carries the constants baked into it.
            wq, wk = self.projection.fixed_vectors()
            out["wq"] = [list(r) for r in wq]
            out["wk"] = [list(r) for r in wk]
        return out
