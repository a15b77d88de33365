"""The ``A' x V`` unit of the DAMF head (block ``shift-accumulate``): shifts and adds only.

Per query row, for every attended key ``n`` it adds ``s_n (V_n << t_n)`` to a ``d_head``-lane
accumulator and ``V_n`` to a value sum ``SV``; after the row's last key it adds
``SV << t_C`` (dropped when ``t_C < 0``), rounds by the final shift ``sh`` half away from
zero and saturates to ``out_width`` bits (``docs/numerics.md`` sections 6.3 and 6.4).
There is no multiplier: the code of this module has no ``*`` operator, and
``tests/test_shift_accumulate.py`` checks that its Verilog has none either.

Because ``SV`` is summed over the keys the row is sent, a causal row (keys ``n <= m``) gets
its prefix sum ``SV_m`` without anything extra.

In mode ``base2`` (section 8) there is no ``SV`` term: the ``c_shift`` field, the ``SV``
registers and their shifter are left out, ``s_n`` is 0 or 1 and the row's ``sh`` is
``P(W) - out_frac`` (made by the sender).  The accumulator is then ``acc_width`` bits of
``[0, 2^F]``-weighted sums, one bit narrower than in the maclaurin modes.

Ports
-----
``clk``, ``rst``: the ``sync`` domain.

``i``: ``In(stream.Signature(input_layout))`` -- one attended key per beat, fields from the
    least significant bit up:

    ======== ================================ ==========================================
    v        ArrayLayout(signed(v_width),     ``V_n``, element ``j`` in lane ``j``
             d_head)
    sign     signed(2)                        ``s_n`` in {-1, 0, +1}; 0 when the key has no
                                              term (zero score, uniform row, ``t_n < 0``)
    shift    unsigned(shift_width)            ``t_n`` in ``[0, weight_frac]`` (ignored when
                                              ``sign = 0``)
    c_shift  signed, ``c_shift_range``        ``t_C``; read on the last beat only (maclaurin
                                              modes only: absent in base2)
    sh       signed, ``shift_range``          final shift; read on the last beat only
    last     1                                the row's last key
    ======== ================================ ==========================================

``o``: ``Out(stream.Signature(ArrayLayout(signed(out_width), d_head)))`` -- ``Z_m`` per row.

Contract
--------
* Bit-exact with :func:`damf.golden.shift_accumulate.shift_accumulate_rows` (the head's
  ``shift_accumulate`` and ``round_shift``).  Widths: accumulator ``acc_width``, value sum
  ``vsum_width``, output ``out_width = v_width + out_guard + out_frac`` (saturating).
* Throughput: one key per cycle, rows back to back (no gap between rows).
* Latency: ``o.valid`` rises ``latency = 3`` cycles after the handshake of a row's last key
  (accumulate, add ``SV << t_C``, round and saturate).
* Backpressure stalls the whole pipeline: ``i.ready`` depends combinationally on ``o.ready``.
"""

from amaranth import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import signed_range_width
from ..head_config import ShiftAccumulateConfig

__all__ = ["ShiftAccumulate", "input_layout", "pack_input", "unpack_output"]


def input_layout(cfg):
    fields = {
        "v": data.ArrayLayout(signed(cfg.v_width), cfg.d_head),
        "sign": signed(2),
        "shift": unsigned(cfg.shift_width),
        "c_shift": signed(signed_range_width(*cfg.c_shift_range)) if cfg.has_sv else None,
        "sh": signed(signed_range_width(*cfg.shift_range)),
        "last": unsigned(1),
    }
    return data.StructLayout({k: v for k, v in fields.items() if v is not None})


class ShiftAccumulate(wiring.Component):
    """``Z_m = sat(rnd(sum_n s_n (V_n << t_n) + (SV << t_C), sh))`` with shifts and adds only.

    Parameters
    ----------
    config : :class:`~damf.head_config.ShiftAccumulateConfig`
    """

    def __init__(self, config):
        if not isinstance(config, ShiftAccumulateConfig):
            self._MustUse__silence = True
            raise TypeError(f"Config must be a ShiftAccumulateConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.out_width), config.d_head))),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        return self._config.latency

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        D, AW, OW = cfg.d_head, cfg.acc_width, cfg.out_width
        beat = self.i.payload

        advance = Signal()
        fire = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance),
                     fire.eq(self.i.valid & advance)]

        # -- per key: acc += s_n (V_n << t_n), SV += V_n --------------------------------------
        first = Signal(init=1, name="first")
        acc = [Signal(signed(AW), name=f"acc{j}") for j in range(D)]
        sv = [Signal(signed(cfg.vsum_width), name=f"sv{j}") for j in range(D)]
        e_valid = Signal(name="e_valid")
        sv_on = cfg.has_sv      # base2: no SV term, no SV registers
        e_c_shift = Signal.like(beat.c_shift, name="e_c_shift") if sv_on else None
        e_sh = Signal.like(beat.sh, name="e_sh")
        for j in range(D):
            shifted = Signal(signed(cfg.v_width + cfg.weight_frac + 1), name=f"shifted{j}")
            term = Signal(signed(cfg.v_width + cfg.weight_frac + 2), name=f"term{j}")
            m.d.comb += [
                shifted.eq(beat.v[j] << beat.shift),
                term.eq(Mux(beat.sign == 0, 0, Mux(beat.sign[1], -shifted, shifted))),
            ]
            with m.If(fire):
                m.d.sync += acc[j].eq(Mux(first, 0, acc[j]) + term)
                if sv_on:
                    m.d.sync += sv[j].eq(Mux(first, 0, sv[j]) + beat.v[j])
        with m.If(fire):
            m.d.sync += first.eq(beat.last)
            with m.If(beat.last):
                m.d.sync += e_sh.eq(beat.sh)
                if sv_on:
                    m.d.sync += e_c_shift.eq(beat.c_shift)
        with m.If(advance):
            m.d.sync += e_valid.eq(fire & beat.last)

        # -- row end: acc + (SV << t_C) ----------------------------------------------------------
        t_valid = Signal(name="t_valid")
        t_sh = Signal.like(e_sh, name="t_sh")
        total = [Signal(signed(AW), name=f"total{j}") for j in range(D)]
        if sv_on:
            c_on = Signal(name="c_on")
            c_amount = Signal(unsigned(cfg.shift_width), name="c_amount")
            m.d.comb += [c_on.eq(e_c_shift >= 0), c_amount.eq(e_c_shift.as_unsigned())]
        with m.If(advance):
            m.d.sync += [t_valid.eq(e_valid), t_sh.eq(e_sh)]
            for j in range(D):
                m.d.sync += total[j].eq(acc[j] + Mux(c_on, sv[j] << c_amount, 0) if sv_on else acc[j])

        # -- final shift, rounded half away from zero, saturated -------------------------------
        sh_lo, sh_hi = cfg.shift_range
        right_max, left_max = AW + 1, OW
        right = Signal(range(right_max + 1), name="right")
        right_m1 = Signal(range(right_max + 1), name="right_m1")
        left = Signal(range(left_max + 1), name="left")
        m.d.comb += [
            right.eq(Mux(t_sh <= 0, 0, Mux(t_sh >= right_max, right_max, t_sh))),
            right_m1.eq(Mux(right == 0, 0, right - 1)),
            left.eq(Mux(t_sh >= 0, 0, Mux(-t_sh >= left_max, left_max, -t_sh))),
        ]
        lo, hi = -(1 << (OW - 1)), (1 << (OW - 1)) - 1
        for j in range(D):
            x = total[j]
            bias = Signal(signed(AW + 2), name=f"bias{j}")
            down = Signal(signed(AW + 2), name=f"down{j}")
            up = Signal(signed(AW + left_max + 1), name=f"up{j}")
            res = Signal(signed(AW + left_max + 2), name=f"res{j}")
            m.d.comb += [
                bias.eq(Mux(right == 0, 0, (1 << right_m1) - (x < 0))),
                down.eq((x + bias) >> right),
                up.eq(x << left),
                res.eq(Mux(t_sh > 0, down, up)),
            ]
            with m.If(advance):
                m.d.sync += self.o.payload[j].eq(Mux(res > hi, hi, Mux(res < lo, lo, res)))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(t_valid)

        return m


# ---- payload helpers for testbenches --------------------------------------------------------

def pack_input(cfg, v, sign, shift, c_shift, sh, last):
    word = 0
    for name, member in input_layout(cfg):
        shape = member.shape
        if name == "v":
            value = 0
            for x in reversed(list(v)):
                value = (value << cfg.v_width) | (int(x) & ((1 << cfg.v_width) - 1))
        else:
            value = {"sign": sign, "shift": shift, "c_shift": c_shift, "sh": sh, "last": int(bool(last))}[name]
            if value is None:
                raise ValueError(f"{name} must be an integer in mode {cfg.mode}, not None")
        width = Shape.cast(shape).width
        word |= (int(value) & ((1 << width) - 1)) << member.offset
    return word


def unpack_output(cfg, word):
    w = cfg.out_width
    out = []
    for _ in range(cfg.d_head):
        x = word & ((1 << w) - 1)
        word >>= w
        out.append(x - (1 << w) if x >> (w - 1) else x)
    return out
