"""Row statistics and row set-up of the DAMF head (block ``row-stats``).

Consumes rows of scores ``A[m, 0 .. N-1]`` (only the attended keys) and produces, per row,
the statistics of ``docs/numerics.md`` section 4 and the set-up of sections 6.1, 6.2 and
6.4: ``N``, ``A_max``, ``M = max |A|``, ``S = sum A``, the normaliser ``C`` and the
denominator ``D = N C + S`` (``N C`` by shift-add over the bits of ``N``, no multiplier), the
uniform and abs-fallback flags, the exponents ``I_C = P(C)``, ``R = P(M)``, ``I_D = P(D)``
(leading one plus the next bit; uniform rows: ``0, 0, P(N)``), the normaliser shift
``t_C = F + I_C - R`` and the final shift ``sh = I_D - R + F - of``.

Ports
-----
``clk``, ``rst``: the ``sync`` domain.

``i``: ``In(stream.Signature(score output layout))`` -- exactly the ``o`` beats of the
    ``score`` block (``hdl/score.py``): ``parallel`` scores of ``score_width`` bits, ``count``
    (valid lanes, ``1..parallel``), ``last``.  A row is the beats up to and including the one
    with ``last = 1``; lanes ``j >= count`` are ignored.  Any beat may have ``count <
    parallel`` (a mask can thin out a row); ``N`` is the sum of the counts (``1..seq_len``).

``o``: ``Out(stream.Signature(output_layout))`` -- one beat per row, fields from the least
    significant bit up (:data:`damf.golden.row_stats.FIELDS`):

    ========== ============================== =====================================
    field      shape                          meaning
    ========== ============================== =====================================
    n          unsigned(count_width)          ``N``
    a_max      signed(score_width)            ``A_max``
    m          unsigned(score_width)          ``M``
    s          signed(sum_width)              ``S``
    c          unsigned(score_width)          ``C``
    d          signed(den_width)              ``D``
    uniform    1                              ``D <= 0``
    fallback   1                              ``C = M`` in mode maclaurin
    i_c, r,    unsigned(exp_width) each       ``I_C``, ``R``, ``I_D`` (after the uniform rule)
    i_d
    c_shift    signed, ``[F - score_exp_max,  ``t_C`` (negative: the SV term is dropped)
               F]``
    sh         signed, ``shift_range``        final shift (positive: right)
    ========== ============================== =====================================

In mode ``base2`` (section 8) the unit keeps only ``N`` and ``A_max``: ``o`` has the fields
``n`` and ``a_max`` alone, there is no ``M``, ``S`` or set-up logic, and the row accumulators
are the output register.  The base2 exponents, the weight sum and the final shift need every
key's ``A_max - A`` and are made by the head's weight stage (``hdl/damf_head.py``).

Contract
--------
* Bit-exact with :func:`damf.golden.row_stats.row_setup` (the head's own functions).
* Throughput: one beat per cycle, rows back to back with no gap, also rows of a single beat:
  ``i.ready = ~o.valid | o.ready`` depends only on the backpressure of ``o`` (the whole
  pipeline stalls while a result waits).  A row of ``lk`` scores takes ``row_cycles(lk) =
  ceil(lk / parallel)`` cycles; rows of ``lengths`` scores sent back to back take
  ``cycles(lengths) = sum(row_cycles) + setup_cycles`` from the first beat's handshake to the
  last result's (:class:`~damf.config.RowStatsConfig`).
* Latency: ``o.valid`` rises a fixed ``setup_cycles`` cycles after the handshake of a row's
  last beat (sink ready), the stages of the pipeline below:

  ================= ======================================================================
  stages            what
  ================= ======================================================================
  ``beat_levels``   per beat, over the ``count`` valid lanes: max, min and sum as trees,
                    ``ceil(log2(parallel))`` levels, each registered
  1                 row accumulators: running max, min, sum and count (``first`` restarts
                    them); with the row's last beat they hold the row, and the set-up
                    pipeline takes it from them while the next row starts
  ``tree_levels``   ``D_max = N max(A_max, 0) + S`` and ``D_alt = S - N A_min``: two adder
                    trees over ``S`` and the ``count_width`` gated shifts of the bits of ``N``
                    (``ceil(log2(count_width + 1))`` levels, one adder per level and stage);
                    beside them ``M = max(A_max, -A_min)`` (``max |A|`` from the max and min)
  1                 ``P(D_max)``, ``P(D_alt)``, ``P(M)``, ``P(A_max)``, ``P(N)`` as trees of
                    multiplexers (:func:`pow2_exp`); ``C``, ``D``, ``uniform``
  1                 the uniform rule, ``t_C`` and ``sh`` (small adders), output register
  ================= ======================================================================

  ``setup_cycles = beat_levels + tree_levels + 3``: 7 at the default preset (``parallel`` 2,
  ``seq_len`` 8), 8 at bert-base (``seq_len`` 128); base2: ``beat_levels + 1`` (2).
  ``M`` is ``A_max`` or ``-A_min``, so ``N C + S`` is ``D_max`` (``C = A_max``, or ``C = M =
  A_max``) or ``D_alt`` (``C = M = -A_min``): both are computed in parallel and ``C`` only
  selects, so no adder waits for another.
* No multiplier: every ``N x`` is ``count_width`` gated constant shifts in an adder tree.
* Timing (``damf synth``, ECP5 LFE5U-85F out of context, nextpnr seed 1; the default preset,
  ``pq_width`` 8, ``score_width`` 16): maclaurin 491 LUTs, 738 FFs, 137 MHz; maclaurin-abs
  416 LUTs, 135 MHz; base2 62 LUTs, 140 MHz (before: one beat per cycle within a row, 4
  cycles between rows, 51 MHz).  bert-base (``seq_len`` 128, ``count_width`` 8): maclaurin
  652 LUTs, 1,092 FFs, 139 MHz; base2 67 LUTs, 132 MHz.  The critical paths are the row
  accumulators' compare-and-select and the adder levels, not the set-up.

Reset
-----
Synchronous ``rst`` clears the valid bits of the per-beat trees and of the set-up pipeline
and sets ``first`` (the next beat starts a row), so a half-received row is forgotten and no
set-up in flight comes out; every other register returns to its reset value too (the row
accumulators are reloaded by the next row's first beat anyway).  There is no memory.
"""

import functools

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import signed_range_width
from ..config import RowStatsConfig
from .payload import unpack
from .score import output_layout as score_layout

__all__ = ["RowStats", "output_layout", "pow2_exp", "pow2_exp_latency", "count_times", "adder_tree",
           "unpack_output"]


@functools.cache
def output_layout(cfg):
    """One row's statistics and set-up (fields in :func:`damf.golden.row_stats.fields` order)."""
    if cfg.mode == "base2":
        return data.StructLayout({"n": unsigned(cfg.count_width), "a_max": signed(cfg.score_width)})
    e = unsigned(cfg.exp_width)
    return data.StructLayout({
        "n": unsigned(cfg.count_width),
        "a_max": signed(cfg.score_width),
        "m": unsigned(cfg.score_width),
        "s": signed(cfg.sum_width),
        "c": unsigned(cfg.score_width),
        "d": signed(cfg.den_width),
        "uniform": unsigned(1),
        "fallback": unsigned(1),
        "i_c": e,
        "r": e,
        "i_d": e,
        "c_shift": signed(signed_range_width(*cfg.c_shift_range)),
        "sh": signed(signed_range_width(*cfg.shift_range)),
    })


# ---- pipelining helpers ------------------------------------------------------------------------

def _register(m, en, value, name):
    """A register of ``value`` (its own shape) loaded when ``en`` is high."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name)
    with m.If(en):
        m.d.sync += reg.eq(value)
    return reg


def _levels(count):
    """Levels of a balanced binary tree over ``count`` leaves: ``ceil(log2(count))``."""
    return max(0, (count - 1).bit_length())


# ---- P(x): leading one plus the next bit, as a tree ----------------------------------------------

def _lod_combine(lo, hi, level):
    """A node of the ``P(x)`` tree from its low and high halves, ``2^level`` bits each.

    A node is ``(v, p, z, msb)``: ``v`` some bit is set; ``p`` (a list of ``level + 1`` bits,
    LSB first) ``P`` of the node's bits, its bit below bit 0 taken as 0; ``z`` the leading one
    is the node's bit 0 (so the bit below it is outside the node); ``msb`` the node's top bit.
    The combination is multiplexers only (no carry chain): ``P = 2^level + P_hi`` when the
    leading one is in the high half (``P_hi <= 2^level``, so the sum is a rearrangement of
    bits), ``2^level + msb_lo`` when it is the high half's bit 0, else ``P_lo``."""
    v_lo, p_lo, z_lo, msb_lo = lo
    v_hi, p_hi, z_hi, msb_hi = hi
    t = p_hi[-1]                                   # P_hi = 2^level exactly
    from_hi = p_hi[:-1] + [~t, t]                  # 2^level + P_hi
    if level:
        from_z = [msb_lo] + [Const(0, 1)] * (level - 1) + [Const(1, 1), Const(0, 1)]
    else:
        from_z = [~msb_lo, msb_lo]                 # 1 + msb_lo
    from_lo = p_lo + [Const(0, 1)]
    p = [Mux(v_hi, Mux(z_hi, zb, hb), lb) for zb, hb, lb in zip(from_z, from_hi, from_lo)]
    return (v_lo | v_hi, p, ~v_hi & z_lo, msb_hi)


def _lod_tree(m, x, name, *, en=None, levels_per_stage=None):
    """``(v, P(x))`` of an unsigned value ``x`` (``v``: ``x != 0``) by a balanced tree of
    multiplexers; with ``en``, the nodes are registered after every ``levels_per_stage``
    levels (not after the last)."""
    bits = [x[i] for i in range(len(x))] or [Const(0, 1)]
    levels = _levels(len(bits))
    bits += [Const(0, 1)] * ((1 << levels) - len(bits))
    nodes = [(bit, [Const(0, 1)], bit, bit) for bit in bits]
    for level in range(levels):
        nodes = [_lod_combine(nodes[2 * j], nodes[2 * j + 1], level) for j in range(len(nodes) // 2)]
        if en is not None and (level + 1) % levels_per_stage == 0 and level + 1 < levels:
            nodes = [(_register(m, en, v, f"{name}_l{level + 1}_v{j}"),
                      [_register(m, en, pb, f"{name}_l{level + 1}_p{j}_{i}") for i, pb in enumerate(p)],
                      _register(m, en, z, f"{name}_l{level + 1}_z{j}"),
                      _register(m, en, msb, f"{name}_l{level + 1}_msb{j}"))
                     for j, (v, p, z, msb) in enumerate(nodes)]
    v, p, _, _ = nodes[0]
    return v, Cat(*p)


def pow2_exp_latency(bits, levels_per_stage):
    """Cycles of :func:`pow2_exp` with ``en`` over ``bits`` input bits: ``ceil(levels /
    levels_per_stage)`` (at least 1: the result register), ``levels = ceil(log2(bits))``."""
    return max(1, -(-_levels(bits) // levels_per_stage))


def pow2_exp(m, x, width, name, *, en=None, levels_per_stage=3):
    """``P(x)`` of an unsigned ``x`` (0 for ``x = 0``): leading one ``k`` plus bit ``k - 1``
    (``docs/numerics.md`` section 5), as an ``unsigned(width)`` signal.

    A balanced tree of ``ceil(log2(len(x)))`` levels of 2:1 multiplexers, no priority chain
    and no adder (the next bit is folded into the tree).  Without ``en`` it is
    combinational.  With ``en`` (a clock enable) it is pipelined: the tree's nodes are
    registered after every ``levels_per_stage`` levels and the result is registered,
    :func:`pow2_exp_latency` cycles in all (a new ``x`` every cycle).
    Only plain expressions in ``comb`` (no ``m.If``: Icarus never evaluates an ``always @*``
    block whose inputs keep their initial values).
    """
    _, exp = _lod_tree(m, x, name, en=en, levels_per_stage=levels_per_stage)
    out = Signal(unsigned(width), name=name)
    if en is None:
        m.d.comb += out.eq(exp)
    else:
        with m.If(en):
            m.d.sync += out.eq(exp)
    return out


# ---- N * x: a pipelined shift-add tree ----------------------------------------------------------

def count_times(n, x, sign=1):
    """The leaves of ``sign * N * x`` for :func:`adder_tree`: ``x << j`` gated by bit ``j`` of
    ``n``, one per bit (``docs/numerics.md`` section 6.1; no multiplier)."""
    return [(Mux(n[j], x << j, 0), sign) for j in range(len(n))]


def adder_tree(m, en, leaves, name):
    """A pipelined adder tree, one level per cycle, over signed ``leaves``: ``[(value, sign)]``
    with ``sign`` ``+1`` (added) or ``-1`` (subtracted); at least one leaf is added.  Returns
    ``(total, levels)``: the sum, registered, ``levels = max(1, ceil(log2(len(leaves))))``
    cycles after the leaves (an odd node out is registered as it is)."""
    if all(s < 0 for _, s in leaves):
        raise ValueError("adder_tree needs at least one added leaf")
    nodes = [(Value.cast(v), s) for v, s in leaves]
    level = 0
    while len(nodes) > 1 or level == 0:
        level += 1
        nxt = []
        for j in range(0, len(nodes), 2):
            if j + 1 == len(nodes):
                nxt.append(nodes[j])
                continue
            (a, sa), (b, sb) = nodes[j], nodes[j + 1]
            if sa == sb:
                nxt.append((a + b, sa))
            elif sa > 0:
                nxt.append((a - b, 1))
            else:
                nxt.append((b - a, 1))
        nodes = [(_register(m, en, v, f"{name}_l{level}_{j}"), s) for j, (v, s) in enumerate(nxt)]
    return nodes[0][0], level


# ---- the block ---------------------------------------------------------------------------------

class RowStats(wiring.Component):
    """Per-row ``N``, ``A_max``, ``M``, ``S`` and the maclaurin row set-up (``C``, ``D``,
    exponents, shifts).  Ports, contract and pipeline: module docstring (``hdl/row_stats.py``).

    Parameters
    ----------
    config : :class:`~damf.config.RowStatsConfig`
    """

    def __init__(self, config):
        if not isinstance(config, RowStatsConfig):
            self._MustUse__silence = True
            raise TypeError(f"Config must be a RowStatsConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(score_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        })

    @property
    def config(self):
        return self._config

    @property
    def setup_cycles(self):
        return self._config.setup_cycles

    def elaborate(self, platform):
        cfg = self._config
        P, F, of = cfg.parallel, cfg.weight_frac, cfg.out_frac
        base2 = cfg.mode == "base2"
        lo, hi = cfg.score_range
        sw = cfg.score_width
        m = Module()

        # the whole pipeline moves in lock step; it stalls only while a result waits on `o`
        adv = Signal(name="adv")
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]

        # -- beat reduction: max, min and sum over the `count` valid lanes, a tree ---------------
        beat = self.i.payload
        lanes = []
        for j in range(P):
            on = beat.count > j if j else Const(1, 1)    # count >= 1: lane 0 is always valid
            a = beat.a[j]
            lane = {"max": Mux(on, a, lo)}
            if not base2:
                lane["min"] = Mux(on, a, hi)
                lane["sum"] = Mux(on, a, 0)
            lanes.append(lane)
        ctl = {"valid": self.i.valid, "last": beat.last, "count": beat.count}
        for level in range(1, cfg.beat_levels + 1):
            nxt = []
            for j in range(0, len(lanes), 2):
                if j + 1 == len(lanes):
                    nxt.append(lanes[j])
                    continue
                x, y = lanes[j], lanes[j + 1]
                node = {"max": Mux(y["max"] > x["max"], y["max"], x["max"])}
                if not base2:
                    node["min"] = Mux(y["min"] < x["min"], y["min"], x["min"])
                    node["sum"] = x["sum"] + y["sum"]
                nxt.append(node)
            lanes = [{k: _register(m, adv, v, f"beat_l{level}_{k}{j}") for k, v in node.items()}
                     for j, node in enumerate(nxt)]
            ctl = {k: _register(m, adv, v, f"beat_l{level}_{k}") for k, v in ctl.items()}
        bt = lanes[0]

        # -- row accumulation: running max, min, sum and count (base2: max and count) ------------
        first = Signal(init=1, name="first")             # the next beat starts a row
        n = Signal(unsigned(cfg.count_width), name="acc_n")
        a_max = Signal(signed(sw), name="acc_max")
        row_valid = Signal(name="row_valid")             # n, a_max, ... hold a whole row
        with m.If(adv):
            m.d.sync += row_valid.eq(ctl["valid"] & ctl["last"])
            with m.If(ctl["valid"]):
                m.d.sync += [
                    first.eq(ctl["last"]),
                    n.eq(Mux(first, 0, n) + ctl["count"]),
                    a_max.eq(Mux(first | (bt["max"] > a_max), bt["max"], a_max)),
                ]
        if base2:
            # base2 needs only N and A_max: the accumulators are the output register
            m.d.comb += [self.o.valid.eq(row_valid), self.o.payload.n.eq(n), self.o.payload.a_max.eq(a_max)]
            return m
        a_min = Signal(signed(sw), name="acc_min")
        s = Signal(signed(cfg.sum_width), name="acc_sum")
        with m.If(adv & ctl["valid"]):
            m.d.sync += [
                a_min.eq(Mux(first | (bt["min"] < a_min), bt["min"], a_min)),
                s.eq(Mux(first, 0, s) + bt["sum"]),
            ]

        # -- set-up, stage 1 .. tree_levels: D_max = N max(A_max, 0) + S and D_alt = S - N A_min
        # by shift-add trees over the bits of N, one adder level per cycle; beside them
        # M = max(A_max, -A_min) and the row's scalars travel along
        pos_max = Mux(a_max > 0, a_max, 0)
        d_max, levels = adder_tree(m, adv, [(s, 1)] + count_times(n, pos_max), "d_max")
        d_alt, _ = adder_tree(m, adv, [(s, 1)] + count_times(n, a_min, -1), "d_alt")
        carry = {"valid": row_valid, "n": n, "a_max": a_max, "s": s,
                 "m_is_max": a_max + a_min >= 0,         # M = A_max (else M = -A_min)
                 "m": Mux(a_max + a_min >= 0, a_max, -a_min)}
        for level in range(1, levels + 1):
            carry = {k: _register(m, adv, v, f"su_l{level}_{k}") for k, v in carry.items()}
        mag = Signal(unsigned(sw), name="mag_m")
        m.d.comb += mag.eq(carry["m"])

        # -- set-up, stage E1: the exponents by P(x) trees; C, D and the uniform flag -----------
        ew = cfg.exp_width
        nz_max, p_dmax = _lod_tree(m, d_max[:cfg.den_width].as_unsigned(), "p_dmax")
        nz_alt, p_dalt = _lod_tree(m, d_alt[:cfg.den_width].as_unsigned(), "p_dalt")
        _, p_m = _lod_tree(m, mag, "p_m")
        _, p_amax = _lod_tree(m, carry["a_max"][:sw - 1], "p_amax")      # used when A_max > 0
        _, p_n = _lod_tree(m, carry["n"], "p_n")
        dmax_pos = nz_max & ~d_max[-1]
        if cfg.mode == "maclaurin":                      # C = A_max (else the abs fallback C = M)
            use_max = ~carry["a_max"][-1] & (carry["a_max"] != 0) & dmax_pos
        else:
            use_max = Const(0, 1)
        take_dmax = use_max | carry["m_is_max"]          # D = D_max (else D = D_alt)
        e1 = {
            "valid": carry["valid"], "n": carry["n"], "a_max": carry["a_max"], "m": mag, "s": carry["s"],
            "use_max": use_max,
            "c": Mux(use_max, carry["a_max"], mag),
            "d": Mux(take_dmax, d_max, d_alt)[:cfg.den_width],
            "uniform": Mux(take_dmax, ~dmax_pos, ~nz_alt | d_alt[-1]),
            "p_d": Mux(take_dmax, p_dmax, p_dalt), "p_m": p_m, "p_amax": p_amax, "p_n": p_n,
        }
        e1 = {k: _register(m, adv, v, f"e1_{k}") for k, v in e1.items()}

        # -- set-up, stage E2: the uniform rule and the two shifts, into the output register ----
        uniform = e1["uniform"]
        r = Mux(uniform, 0, e1["p_m"])
        i_c = Mux(uniform, 0, Mux(e1["use_max"], e1["p_amax"], e1["p_m"]))
        i_d = Mux(uniform, e1["p_n"], e1["p_d"])
        o = self.o.payload
        with m.If(adv):
            m.d.sync += [
                self.o.valid.eq(e1["valid"]),
                o.n.eq(e1["n"]), o.a_max.eq(e1["a_max"]), o.m.eq(e1["m"]), o.s.eq(e1["s"]),
                o.c.eq(e1["c"]), o.d.eq(e1["d"]), o.uniform.eq(uniform),
                o.fallback.eq(~e1["use_max"] if cfg.mode == "maclaurin" else 0),
                o.i_c.eq(i_c[:ew]), o.r.eq(r[:ew]), o.i_d.eq(i_d[:ew]),
                o.c_shift.eq(F + i_c - r),
                o.sh.eq(i_d - r + (F - of)),
            ]
        return m


# ---- payload helpers for testbenches ------------------------------------------------------------

def unpack_output(cfg, word):
    """``{field: int}`` of an ``o`` payload (signed fields sign-extended)."""
    return unpack(output_layout(cfg), word)
