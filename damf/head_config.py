"""Configurations of the DAMF head's blocks: ``score``, ``row-stats`` and ``shift-accumulate``.

Each is a :class:`~damf.golden.damf_head.DamfHeadConfig` (the numerics of
``docs/numerics.md``: widths, mode, window, rounding) plus the few fields that only shape
its hardware, so one object feeds the block's RTL, its golden model and its testbench, and
the composed head cannot disagree with its parts on a width.  Fields a block does not use
(for example ``v_width`` in ``score``) are kept so a block's JSON can be read as a head's.
"""

from dataclasses import dataclass, field

from .config import ConfigError
from .golden.damf_head import DamfHeadConfig, pow2_exp

__all__ = ["ScoreConfig", "RowStatsConfig", "ShiftAccumulateConfig", "DamfHeadBlockConfig"]


def _inner_product_field(name):
    """A field declared like :class:`~damf.config.InnerProductConfig`'s ``name`` (same default,
    limits and doc), for configurations that carry the inner-product unit's fields."""
    from dataclasses import fields
    from .config import InnerProductConfig
    f = {f.name: f for f in fields(InnerProductConfig)}[name]
    return field(default=f.default, metadata=f.metadata)


def _ceil_div(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class ScoreConfig(DamfHeadConfig):
    """``score``: a key buffer of ``seq_len`` ``q_n`` and ``parallel`` score multipliers."""

    block = "score"

    parallel: "int" = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "scores computed per cycle (rank multipliers each); at most seq_len"})

    def _validate(self):
        super()._validate()
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")

    @property
    def words(self):
        """Key-buffer words: ``ceil(seq_len / parallel)``, ``parallel`` keys each."""
        return _ceil_div(self.seq_len, self.parallel)

    @property
    def latency(self):
        """Cycles from a query's handshake to ``o.valid`` of its first beat (sink ready)."""
        return 4

    def row_beats(self, lk):
        """Output beats of one query row against ``lk`` keys: ``ceil(lk / parallel)``."""
        return _ceil_div(lk, self.parallel)

    def cycles(self, lq, lk):
        """Cycles from the first key handshake to the last score handshake, source always
        valid and sink always ready: ``lk + lq * ceil(lk / parallel) + latency``."""
        return lk + lq * self.row_beats(lk) + self.latency

    def derived(self):
        return {**super().derived(), "words": self.words, "latency": self.latency,
                "cycles_full": self.cycles(self.seq_len, self.seq_len)}


@dataclass(frozen=True)
class RowStatsConfig(DamfHeadConfig):
    """``row-stats``: consumes score rows (``parallel`` per beat) and sets up each row."""

    block = "row-stats"

    parallel: "int" = field(default=2, metadata={"min": 1, "max": 1 << 16,
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
    def setup_cycles(self):
        """Cycles from the handshake of a row's last beat to ``o.valid`` (sink ready): 4 in the
        maclaurin modes (normaliser, denominator, exponents, output), 1 in base2 (``N`` and
        ``A_max`` go straight to the output register)."""
        return 1 if self.mode == "base2" else 4

    def row_cycles(self, lk):
        """Cycles per row, source always valid and sink always ready:
        ``ceil(lk / parallel) + setup_cycles`` (the input waits during the set-up)."""
        return _ceil_div(lk, self.parallel) + self.setup_cycles

    def derived(self):
        return {**super().derived(), "exp_width": self.exp_width,
                "setup_cycles": self.setup_cycles, "row_cycles_full": self.row_cycles(self.seq_len)}


@dataclass(frozen=True)
class ShiftAccumulateConfig(DamfHeadConfig):
    """``shift-accumulate``: the ``A' x V`` unit of shifts and adds, ``d_head`` lanes."""

    block = "shift-accumulate"

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
    def latency(self):
        """Cycles from the handshake of a row's last key to the handshake of ``Z`` (sink ready)."""
        return 3

    def cycles(self, keys_per_row):
        """Cycles per head of ``len(keys_per_row)`` rows, source always valid and sink always
        ready: ``sum(keys_per_row) + latency`` (one key per cycle, rows back to back)."""
        return sum(keys_per_row) + self.latency

    def derived(self):
        return {**super().derived(), "shift_width": self.shift_width, "latency": self.latency}


@dataclass(frozen=True)
class DamfHeadBlockConfig(DamfHeadConfig):
    """``damf-head``: the whole head, ``X`` and ``V`` in, ``Z`` out (``hdl/damf_head.py``).

    The head's numerics (:class:`DamfHeadConfig`) plus the fields of its inner-product unit
    (:attr:`inner_product`), the score unit's ``parallel`` and the attention kind (``causal``,
    ``cross``).  ``pq_width`` must hold the unit's ``p`` and ``q`` (at least its ``out_width``;
    :meth:`from_preset` and :meth:`for_inner_product` set it equal).  Timing:
    :meth:`cycles_per_head`.
    """

    block = "damf-head"

    # the inner-product unit's fields, with its defaults, limits and docs (one definition)
    d_model: "int" = _inner_product_field("d_model")
    lanes: "int" = _inner_product_field("lanes")
    x_width: "int" = _inner_product_field("x_width")
    w_width: "int" = _inner_product_field("w_width")
    weights: "str" = _inner_product_field("weights")
    weight_seed: "int" = _inner_product_field("weight_seed")
    u: "tuple | None" = _inner_product_field("u")
    v: "tuple | None" = _inner_product_field("v")
    parallel: "int" = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "scores computed per cycle by the score unit; at most seq_len"})
    causal: "bool" = field(default=False, metadata={
        "doc": "causal self-attention: query m attends only to keys n <= m"})
    cross: "bool" = field(default=False, metadata={
        "doc": "cross-attention: p from the x tokens, q from a second token stream y (V: one per y token)"})

    def _validate(self):
        super()._validate()
        if self.parallel > self.seq_len:
            raise ConfigError(f"parallel must be at most seq_len = {self.seq_len}, not {self.parallel}")
        if self.causal and self.cross:
            raise ConfigError("causal needs self-attention: causal and cross cannot both be true")
        ip = self.inner_product      # validates d_model, lanes, widths, u and v
        if self.pq_width < ip.out_width:
            raise ConfigError(f"pq_width must be at least the inner-product out_width = {ip.out_width}, "
                              f"not {self.pq_width}")

    @classmethod
    def from_preset(cls, name="default"):
        """The preset's head with ``pq_width`` equal to its inner-product unit's ``out_width``."""
        from .config import PRESETS, InnerProductConfig
        if name not in PRESETS:
            raise ConfigError(f"unknown preset '{name}'; expected one of: {', '.join(PRESETS)}")
        ip_keys = set(InnerProductConfig.keys())
        ip = InnerProductConfig(**{k: v for k, v in PRESETS[name].items() if k in ip_keys})
        known = set(cls.keys())
        values = {k: v for k, v in PRESETS[name].items() if k in known}
        return cls(**{**values, "pq_width": ip.out_width})

    @classmethod
    def for_inner_product(cls, ip_cfg, **overrides):
        """A head whose inner-product fields are those of ``ip_cfg`` (``pq_width = out_width``)."""
        values = {k: getattr(ip_cfg, k) for k in ("d_model", "lanes", "rank", "x_width", "w_width",
                                                   "weights", "weight_seed", "u", "v")}
        values["pq_width"] = ip_cfg.out_width
        values.update(overrides)
        return cls(**values)

    # ---- the parts ------------------------------------------------------------------------

    def _numerics(self):
        from dataclasses import fields
        return {f.name: getattr(self, f.name) for f in fields(DamfHeadConfig)}

    @property
    def inner_product(self):
        """The :class:`~damf.config.InnerProductConfig` of the head's front end."""
        from .config import InnerProductConfig
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
        return ShiftAccumulateConfig(**self._numerics())

    # ---- timing (sources always valid, o always ready; checked cycle-exactly by the tests) ---

    @property
    def latency(self):
        """Fixed pipeline cycles of a head: ``13 + setup_cycles`` = inner-product 4, score 4,
        row-stats :attr:`RowStatsConfig.setup_cycles` (4 in the maclaurin modes, 1 in base2),
        shift-accumulate 3 and the two hand-over registers of the t_n stage (17 in the
        maclaurin modes)."""
        return (self.inner_product.latency + self.score.latency + self.row_stats.setup_cycles
                + self.shift_accumulate.latency + 2)

    def row_beats(self, length):
        """Score-unit beats of one row: ``B = ceil(L / parallel)``."""
        return _ceil_div(length, self.parallel)

    def row_period(self, length, row=None):
        """Cycles between two ``Z`` rows of a head of ``L = length`` keys (``B = ceil(L /
        parallel)``, ``S`` = ``row_stats.setup_cycles``).

        Not causal (every row alike): ``max(B + S + parallel (B - 1), L + 1)``.  The score unit
        sends pass 1 (``B`` beats) to ``row-stats``, then waits ``S`` cycles for the row's set-up
        (pass 2's keys need it), then hands pass 2's beats to the serialiser one per
        ``parallel`` cycles (its last beat is serialised while the next row's pass 1 runs);
        unless the serialiser, ``L`` keys and 1 cycle to change rows, is slower.

        Causal: the period of row ``m = row`` (``1 .. L-1``, default ``L - 1``), which keeps
        ``b_m = ceil((m + 1) / parallel)`` beats of each pass (the ``B - b_m`` later beats are
        dropped, one per cycle): ``max(G_(m-1) + max(B + 1, b_m + S) + 1, m + 2)``.
        ``G_(m-1)`` = cycles from row ``m-1``'s first key in the serialiser to row ``m``'s pass 1
        on the score output: ``parallel (b - 1) + B - b`` with ``b = b_(m-1) >= 2`` (pass 2 of row
        ``m-1``, one kept beat per ``parallel`` cycles, then its dropped beats), or, when
        ``b_(m-1) = 1``, ``max(2B - 1, S) - max(B, S)`` (the one kept beat enters the serialiser
        at once, so its dropped beats already ran during the set-up); ``max(B + 1, b_m + S)``
        = pass 1 of row ``m`` to its first key: ``row-stats`` takes ``b_m`` beats and the set-up,
        or the score unit sends all ``B`` beats of pass 1 and pass 2's first; ``+ 1``: row ``m``
        has one key more than row ``m - 1``.  ``m + 2``: the serialiser, ``m + 1`` keys and 1
        to change rows."""
        big_b, s, par = self.row_beats(length), self.row_stats.setup_cycles, self.parallel
        if not self.causal:
            return max(big_b + s + par * (big_b - 1), length + 1)
        m = length - 1 if row is None else row
        if not 1 <= m < length:
            raise ValueError(f"row must be in 1..{length - 1} (length {length}), not {m}")
        b_prev, b = _ceil_div(m, par), _ceil_div(m + 1, par)
        if b_prev >= 2:
            gap = par * (b_prev - 1) + big_b - b_prev
        else:
            gap = max(2 * big_b - 1, s) - max(big_b, s)
        return max(gap + max(big_b + 1, b + s) + 1, m + 2)

    def cycles_per_head(self, length, keys=None):
        """Cycles from the first ``X`` handshake to the last ``Z`` handshake of one head of
        ``Lq = length`` queries and ``Lk = keys`` keys (default ``Lk = Lq``; cross-attention
        loads both), sources always valid and ``o`` always ready, ``B = ceil(Lk / parallel)``,
        ``S`` = ``row_stats.setup_cycles``:

        * not causal: ``beats Ld + B + Lk + latency + (Lq - 1) row_period(Lk)`` with ``Ld = Lq``
          (self) or ``Lq + Lk`` (cross) tokens;
        * causal: ``beats L + latency + max(B - S, 0) + 2 + sum(row_period(L, m) for m in
          1 .. L-1)`` (row 0 has one key; its pass 1 sends one beat to ``row-stats`` and drops
          ``B - 1``, which overlap with the set-up).

        Exact (checked against the RTL) for every configuration whose ``S <= 4`` (all modes);
        the causal sum is exact whenever ``B <= 2`` or ``S <= B + 1`` and would otherwise be a
        lower bound.  It holds for a head after reset or idle and equally, counted from its own
        first ``X`` handshake, for a head queued right behind another (whose load then
        overlaps the previous head's last 3 cycles)."""
        lq = length
        lk = length if keys is None else keys
        tokens = lq + lk if self.cross else lq
        if self.causal:
            big_b, s = self.row_beats(lq), self.row_stats.setup_cycles
            return (self.inner_product.beats * lq + self.latency + max(big_b - s, 0) + 2
                    + sum(self.row_period(lq, m) for m in range(1, lq)))
        return (self.inner_product.beats * tokens + self.row_beats(lk) + lk + self.latency
                + (lq - 1) * self.row_period(lk))

    def derived(self):
        ip = self.inner_product
        return {**super().derived(), "inner_product": ip.derived(), "beats": ip.beats,
                "cycles_per_head_full": self.cycles_per_head(self.seq_len)}

    def to_dict(self):
        out = super().to_dict()
        if self.weights == "fixed":
            u, v = self.inner_product.fixed_vectors()
            out["u"] = [list(r) for r in u]
            out["v"] = [list(r) for r in v]
        return out
