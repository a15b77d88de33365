"""Row statistics and row set-up of the DAMF head (block ``row-stats``).

Consumes one row of scores ``A[m, 0 .. N-1]`` (only the attended keys) and produces, per
row, the statistics of ``docs/numerics.md`` section 4 and the set-up of sections 6.1, 6.2
and 6.4: ``N``, ``A_max``, ``M = max |A|``, ``S = sum A``, the normaliser ``C`` and the
denominator ``D = N C + S`` (``N C`` by shift-add over the bits of ``N``, no multiplier), the
uniform and abs-fallback flags, the exponents ``I_C = P(C)``, ``R = P(M)``, ``I_D = P(D)``
(leading-one detection plus the next bit; uniform rows: ``0, 0, P(N)``), the normaliser
shift ``t_C = F + I_C - R`` and the final shift ``sh = I_D - R + F - of``.

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
``n`` and ``a_max`` alone, there is no ``M``, ``S`` or set-up logic, and the result is
registered with the row's last beat (``setup_cycles = 1``).  The base2 exponents, the weight
sum ``W`` and the final shift need every key's ``A_max - A`` and are made in the second pass
(``hdl/damf_head.py``).

Contract
--------
* Bit-exact with :func:`damf.golden.row_stats.row_setup` (the head's own functions).
* Throughput: one input beat per cycle within a row; ``i.ready`` is low from the row's last
  beat until its result is handed over, so a row of ``B`` beats takes ``B + setup_cycles``
  cycles (sink ready).
* Latency: ``o.valid`` rises ``setup_cycles`` cycles after the handshake of a row's last
  beat: 4 in the maclaurin modes (``D_max`` and ``C``; ``D``; exponents and shifts; output
  register), 1 in base2.
* No multiplier: ``N C`` and ``N max(A_max, 0)`` are ``count_width`` constant shifts of
  ``C`` gated by the bits of ``N`` and added.
"""

from amaranth import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..head_config import RowStatsConfig
from .score import output_layout as score_layout

__all__ = ["RowStats", "output_layout"]


def _signed_shape(lo, hi):
    from ..config import signed_range_width
    return signed(signed_range_width(lo, hi))


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
        "c_shift": _signed_shape(*cfg.c_shift_range),
        "sh": _signed_shape(*cfg.shift_range),
    })


def count_times(m, x, n, width, name):
    """``n * x`` as a sum of ``x << j`` gated by the bits of ``n`` (no multiplier)."""
    total = Signal(signed(width), name=name)
    terms = [Mux(n[j], x << j, 0) for j in range(len(n))]
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    m.d.comb += total.eq(acc)
    return total


def pow2_exp(m, x, width, name):
    """``P(x)`` of an unsigned ``x`` (0 for ``x = 0``): leading one ``k`` plus bit ``k - 1``.

    A priority chain of plain expressions (no ``m.If`` in ``comb``: Icarus never evaluates
    an ``always @*`` block whose inputs keep their initial values).
    """
    k, below = 0, 0
    for i in range(len(x)):
        k = Mux(x[i], i, k)
        below = Mux(x[i], x[i - 1] if i >= 1 else 0, below)
    exp = Signal(unsigned(width), name=name)
    m.d.comb += exp.eq(k + below)
    return exp


class RowStats(wiring.Component):
    """Per-row ``N``, ``A_max``, ``M``, ``S`` and the maclaurin row set-up (``C``, ``D``,
    exponents, shifts).  Ports and contract: module docstring (``hdl/row_stats.py``).

    Parameters
    ----------
    config : :class:`~damf.head_config.RowStatsConfig`
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

    def elaborate(self, platform):
        cfg = self._config
        P, F, of = cfg.parallel, cfg.weight_frac, cfg.out_frac
        m = Module()

        n = Signal(unsigned(cfg.count_width), name="n")
        a_max = Signal(signed(cfg.score_width), name="a_max")
        a_abs = Signal(unsigned(cfg.score_width), name="a_abs")
        s = Signal(signed(cfg.sum_width), name="s")
        c = Signal(unsigned(cfg.score_width), name="c")
        d = Signal(signed(cfg.den_width), name="d")
        fallback = Signal(name="fallback")
        first = Signal(init=1, name="first")    # the next beat starts a row

        # -- pass over the row: running max, max |A|, sum and count (base2: max and count) ----
        beat = self.i.payload
        lo = cfg.score_range[0]
        base2 = cfg.mode == "base2"
        new_max = Mux(first, lo, a_max)
        new_abs = Mux(first, 0, a_abs)
        new_sum = Mux(first, 0, s)
        for j in range(P):
            on = beat.count > j
            a = beat.a[j]
            lane_max = Signal(signed(cfg.score_width), name=f"max{j}")
            m.d.comb += lane_max.eq(Mux(on & (a > new_max), a, new_max))
            new_max = lane_max
            if base2:
                continue
            mag = Signal(unsigned(cfg.score_width), name=f"mag{j}")
            m.d.comb += mag.eq(Mux(a < 0, -a, a))
            lane_abs = Signal(unsigned(cfg.score_width), name=f"abs{j}")
            lane_sum = Signal(signed(cfg.sum_width), name=f"sum{j}")
            m.d.comb += [
                lane_abs.eq(Mux(on & (mag > new_abs), mag, new_abs)),
                lane_sum.eq(new_sum + Mux(on, a, 0)),
            ]
            new_abs, new_sum = lane_abs, lane_sum
        new_n = Signal(unsigned(cfg.count_width), name="new_n")
        m.d.comb += new_n.eq(Mux(first, 0, n) + beat.count)

        if base2:
            # base2 needs only N and A_max: they go to the output register with the last beat
            phase = Signal(name="output_phase")
            with m.If(~phase & self.i.valid):
                m.d.sync += [a_max.eq(new_max), n.eq(new_n), first.eq(beat.last)]
                with m.If(beat.last):
                    m.d.sync += [self.o.payload.n.eq(new_n), self.o.payload.a_max.eq(new_max),
                                 self.o.valid.eq(1), phase.eq(1)]
            with m.If(phase & self.o.ready):
                m.d.sync += [self.o.valid.eq(0), phase.eq(0)]
            m.d.comb += self.i.ready.eq(~phase)
            return m

        # -- row set-up, computed from the registers; the FSM decides what to latch -------
        if cfg.mode == "maclaurin":
            pos_max = Signal(unsigned(cfg.score_width), name="pos_max")
            m.d.comb += pos_max.eq(Mux(a_max > 0, a_max, 0))
            d_max = Signal(signed(cfg.den_width + 1), name="d_max")
            m.d.comb += d_max.eq(count_times(m, pos_max, n, cfg.den_width + 1, "n_amax") + s)
            use_max = Signal(name="use_max")
            m.d.comb += use_max.eq((a_max > 0) & (d_max > 0))
        d_new = Signal(signed(cfg.den_width), name="d_new")
        m.d.comb += d_new.eq(count_times(m, c, n, cfg.den_width + 1, "n_c") + s)
        ew = cfg.exp_width
        uniform = Signal(name="uniform")
        m.d.comb += uniform.eq(d <= 0)
        i_c = pow2_exp(m, c, ew, "p_c")
        r = pow2_exp(m, a_abs, ew, "p_m")
        i_d = pow2_exp(m, d.as_unsigned(), ew, "p_d")
        i_n = pow2_exp(m, n, ew, "p_n")
        r_u, i_c_u, i_d_u = (Signal(unsigned(ew), name=nm) for nm in ("r_u", "i_c_u", "i_d_u"))
        m.d.comb += [r_u.eq(Mux(uniform, 0, r)), i_c_u.eq(Mux(uniform, 0, i_c)), i_d_u.eq(Mux(uniform, i_n, i_d))]

        # phases: ROW (pass over the scores), NORMALISER, DENOMINATOR, EXPONENTS, OUTPUT
        ROW, NORMALISER, DENOMINATOR, EXPONENTS, OUTPUT = range(5)
        phase = Signal(range(5), name="phase")
        with m.If(phase == ROW):
            with m.If(self.i.valid):
                m.d.sync += [a_max.eq(new_max), a_abs.eq(new_abs), s.eq(new_sum),
                             n.eq(new_n), first.eq(beat.last)]
                with m.If(beat.last):
                    m.d.sync += phase.eq(NORMALISER)
        # C (maclaurin: A_max unless A_max <= 0 or N A_max + S <= 0), then D = N C + S
        with m.Elif(phase == NORMALISER):
            if cfg.mode == "maclaurin":
                m.d.sync += [c.eq(Mux(use_max, a_max, a_abs)), fallback.eq(~use_max)]
            else:
                m.d.sync += [c.eq(a_abs), fallback.eq(0)]
            m.d.sync += phase.eq(DENOMINATOR)
        with m.Elif(phase == DENOMINATOR):
            m.d.sync += d.eq(d_new)
            m.d.sync += phase.eq(EXPONENTS)
        # exponents by leading-one detection, then the two shifts
        with m.Elif(phase == EXPONENTS):
            o = self.o.payload
            m.d.sync += [
                o.n.eq(n), o.a_max.eq(a_max), o.m.eq(a_abs), o.s.eq(s), o.c.eq(c), o.d.eq(d),
                o.uniform.eq(uniform), o.fallback.eq(fallback),
                o.i_c.eq(i_c_u), o.r.eq(r_u), o.i_d.eq(i_d_u),
                o.c_shift.eq(F + i_c_u - r_u),
                o.sh.eq(i_d_u - r_u + (F - of)),
                self.o.valid.eq(1),
            ]
            m.d.sync += phase.eq(OUTPUT)
        with m.Elif(phase == OUTPUT):
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
                m.d.sync += phase.eq(ROW)
        m.d.comb += self.i.ready.eq(phase == ROW)

        return m


# ---- payload helpers for testbenches --------------------------------------------------------

def unpack_output(cfg, word):
    """``{field: int}`` of an ``o`` payload (signed fields sign-extended)."""
    out = {}
    for name, member in output_layout(cfg):
        shape = Shape.cast(member.shape)
        v = (word >> member.offset) & ((1 << shape.width) - 1)
        if shape.signed and v >> (shape.width - 1):
            v -= 1 << shape.width
        out[name] = v
    return out
