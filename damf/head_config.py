"""Configurations of the DAMF head's blocks: ``score``, ``row-stats`` and ``shift-accumulate``.

Each is a :class:`~damf.golden.damf_head.DamfHeadConfig` (the numerics of
``docs/numerics.md``: widths, mode, window, rounding) plus the few fields that only shape
its hardware, so one object feeds the block's RTL, its golden model and its testbench, and
the composed head cannot disagree with its parts on a width.  Fields a block does not use
(for example ``v_width`` in ``score``) are kept so a block's JSON can be read as a head's.
"""

from dataclasses import dataclass, field, fields

from .config import PRESETS, ConfigError, InnerProductConfig
from .golden.damf_head import DamfHeadConfig, default_pq_width, pow2_exp, typical_pq_shift

__all__ = ["ScoreConfig", "RowStatsConfig", "ShiftAccumulateConfig", "DamfHeadBlockConfig"]


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

    parallel: "int" = field(default=2, metadata={"min": 1, "max": 1 << 16,
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

    parallel: "int" = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "keys per input beat (the score unit's parallel); at most seq_len"})
    round_lanes: "int" = field(default=0, metadata={"min": 0, "max": 1 << 12, "doc":
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
    the ``pq_shift`` of :func:`~damf.golden.damf_head.typical_pq_shift`.  Timing:
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
    # default: the default preset's, so that DamfHeadBlockConfig() is from_preset("default")
    pq_shift: "int" = field(
        default=typical_pq_shift(InnerProductConfig(), default_pq_width(InnerProductConfig())),
        metadata={"min": 0, "max": 61, "doc": "rounding right shift (half away from zero) of the inner "
                  "product's exact p and q before they are saturated to pq_width bits; 0 .. out_width - 1"})
    parallel: "int" = field(default=2, metadata={"min": 1, "max": 1 << 16,
                            "doc": "scores computed per cycle by the score unit; at most seq_len"})
    causal: "bool" = field(default=False, metadata={
        "doc": "causal self-attention: query m attends only to keys n <= m"})
    cross: "bool" = field(default=False, metadata={
        "doc": "cross-attention: p from the x tokens, q from a second token stream y (V: one per y token)"})
    round_lanes: "int" = field(default=0, metadata={"min": 0, "max": 4096, "doc":
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
        the ``pq_shift`` of :func:`~damf.golden.damf_head.typical_pq_shift` (``docs/numerics.md``
        section 3a)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset '{name}'; expected one of: {', '.join(PRESETS)}")
        ip_keys = set(InnerProductConfig.keys())
        ip = InnerProductConfig(**{k: v for k, v in PRESETS[name].items() if k in ip_keys})
        known = set(cls.keys())
        values = {k: v for k, v in PRESETS[name].items() if k in known}
        width = default_pq_width(ip)
        return cls(**{**values, "pq_width": width, "pq_shift": typical_pq_shift(ip, width)})

    @classmethod
    def for_inner_product(cls, ip_cfg, **overrides):
        """A head whose inner-product fields are those of ``ip_cfg``, with ``pq_width = min(8,
        out_width)`` and the ``pq_shift`` of :func:`~damf.golden.damf_head.typical_pq_shift` for
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
