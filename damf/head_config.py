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

__all__ = ["ScoreConfig", "RowStatsConfig", "ShiftAccumulateConfig"]


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
        if self.mode == "base2":
            raise ConfigError("row-stats implements mode maclaurin or maclaurin-abs, not 'base2'")

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
        """Cycles from the handshake of a row's last beat to ``o.valid`` (sink ready)."""
        return 4

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
    def c_shift_range(self):
        """Range of ``t_C``: ``[F - score_exp_max, F]`` (maclaurin modes); negative drops SV."""
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
