"""The ``A' x V`` unit of the DAMF head (block ``shift-accumulate``): shifts and adds only.

Per query row it sums ``s_n (V_n << t_n)`` over the row's keys into a ``d_head``-lane
accumulator and ``V_n`` into a value sum ``SV``, ``parallel`` keys per input beat; after the
row's last beat it adds ``SV << t_C`` (dropped when ``t_C < 0``), rounds by the final shift
``sh`` half away from zero and saturates to ``out_width`` bits (``docs/numerics.md`` sections
6.3 and 6.4).  There is no multiplier: the code of this module has no ``*`` operator, and
``tests/test_shift_accumulate.py`` checks that its Verilog has none either.

Because ``SV`` is summed over the keys the row is sent, a causal row (keys ``n <= m``) gets
its prefix sum ``SV_m`` without anything extra.

In mode ``base2`` (section 8) there is no ``SV`` term: the ``c_shift`` field, the ``SV``
registers and their shifter are left out, ``s_n`` is 0 or 1 (any non-zero ``sign`` counts as
1) and the row's ``sh`` is ``P(W) - out_frac`` (made by the sender).  The accumulator is then
``acc_width`` bits of ``[0, 2^F]``-weighted sums, one bit narrower than in the maclaurin modes.

Ports
-----
``clk``, ``rst``: the ``sync`` domain.

``i``: ``In(stream.Signature(input_layout(cfg)))`` -- ``parallel`` keys per beat, fields from
    the least significant bit up (``P = parallel``):

    ======== ======================================= =========================================
    v        ArrayLayout(ArrayLayout(signed(v_width), ``V_n`` of the beat's key ``j`` in
             d_head), P)                             ``v[j]``, element ``e`` in lane ``e``
    sign     ArrayLayout(signed(2), P)               ``s_n`` in {-1, 0, +1}; 0 when the key
                                                     has no term (zero score, uniform row,
                                                     ``t_n < 0``)
    shift    ArrayLayout(unsigned(shift_width), P)   ``t_n`` in ``[0, weight_frac]`` (ignored
                                                     when ``sign = 0``)
    count    unsigned(beat_count_width)              keys ``j < count`` (``1 .. P``) belong to
                                                     the row; the fields of keys
                                                     ``j >= count`` are ignored
    c_shift  signed, ``c_shift_range``               ``t_C``; read on the last beat only
                                                     (maclaurin modes only: absent in base2)
    sh       signed, ``shift_range``                 final shift; read on the last beat only
    last     1                                       the row's last beat
    ======== ======================================= =========================================

    A row is the keys ``j < count`` of its beats, in order (any split into beats gives the
    same ``Z``; :func:`damf.golden.shift_accumulate.beats_of_row` and :func:`pack_row` fill
    every beat but the last).

``o``: ``Out(stream.Signature(ArrayLayout(signed(out_width), d_head)))`` -- ``Z_m`` per row.

Structure
---------
* **Front** (one beat per cycle, all stages enabled together): input register; per key and
  lane the term ``V_n << t_n``, sent as ``~(V_n << t_n) = -(V_n << t_n) - 1`` when ``s_n =
  -1`` (the row's count of such keys is added back once per row, not per lane) and cleared
  for ``s_n = 0`` and keys not in the row (the register's synchronous reset), and ``V_n`` or
  0 for ``SV``; per lane a ``parallel``-input adder tree with a register after every level
  (``tree_levels = ceil(log2 parallel)``); the accumulators ``acc`` (``acc_width``, modulo
  ``2^acc_width``: the row's total fits) and ``SV`` (``vsum_width``).  With a row's last beat
  the finished ``acc`` and ``SV`` vectors (and the row's ``t_C`` and ``sh``, decoded) go to a
  **capture register** and the accumulators start the next row at once.
* **End of row** (shared): ``rounders`` units (``round_lanes``, or when 0
  ``ceil(d_head / ceil(seq_len / parallel))``) take ``rounders`` lanes of the capture
  register per cycle, so a row takes ``round_cycles = ceil(d_head / rounders)`` cycles.  Per
  lane, one stage each: select the lane; ``total = acc + (SV << t_C)`` (not in base2); add the
  rounding bias ``2^(r-1) - [total < 0]`` (``r = clip(sh, 0, acc_width + 1)``); arithmetic
  right shift of ``total << out_width`` by ``k = clip(sh, -out_width, acc_width + 1) +
  out_width`` (one shifter for both directions), keeping ``out_width`` bits, while the top
  bits of the biased value (bits ``k - 1`` and up, one mask per row) say whether it overflows;
  saturate into lane ``e`` of the output register.  ``Z`` is valid once every lane is written.

Contract
--------
* Bit-exact with :func:`damf.golden.shift_accumulate.shift_accumulate_row` (the head's
  ``shift_accumulate`` and ``round_shift``).  Widths: accumulator ``acc_width``, value sum
  ``vsum_width``, output ``out_width = v_width + out_guard + out_frac`` (saturating).
* Throughput: one beat per cycle, rows back to back, as long as a row has at least
  ``round_cycles`` beats.  A row of fewer beats makes the input wait: its last beat enters the
  capture register ``round_cycles`` cycles after the previous row's, the whole front holding
  (``i.ready`` low) meanwhile.
* Latency: ``latency = tree_levels + round_cycles + 7`` cycles (base2: ``+ 6``) from the
  handshake of a row's last beat to the handshake of its ``Z`` (sink ready; plus any wait of
  the input, see above, while that beat is in the front); for rows of
  ``b_0, b_1, ...`` beats, source always valid and sink always ready, the first beat's
  handshake to the last ``Z``'s is ``cycles = b_0 + sum_{m >= 1} max(b_m, round_cycles) +
  latency`` (:meth:`~damf.config.ShiftAccumulateConfig.cycles`).
* Backpressure: a ``Z`` not taken stalls the end-of-row units when their next lane is ready
  to be written; the capture register then stays full, and the front stalls when the next
  row's last beat reaches it.  ``i.ready`` depends combinationally on ``o.ready`` (never on
  ``i.valid``).
* ``default`` preset (``parallel`` 2, ``d_head`` 8, ``seq_len`` 8, 2 rounders, latency 12) on
  ECP5 LFE5U-85F (the ``damf synth`` flow, out of context): 2,610 LUTs, 1,983 flip-flops,
  432 carry cells, 123.9 MHz; base2 (latency 11): 1,777 LUTs, 1,415 flip-flops, 155.6 MHz.
  The one-key unit with per-lane rounding it replaces: 9,113 LUTs, 32 MHz.  The critical
  path is the stall chain (``o.valid`` -> end-of-row advance -> capture free -> front
  advance -> capture load enable).  ``bert-base`` with ``parallel`` 8, mode base2 (4
  rounders, ``round_cycles`` 16): 31,072 LUTs, 28,913 flip-flops after ``synth_ecp5`` (place
  and route did not finish in 20 minutes).

Reset
-----
Synchronous ``rst`` clears the valid bits of the front stages, the capture register's
``busy`` flag and group counter and the end-of-row pipeline's valid bits, so a row half
accumulated or being rounded is dropped and ``o.valid`` is low after it; the accumulators
(``acc``, ``SV``, the negative count) restart with the next beat, which is a row's first.
The data registers have no reset (``reset_less``): each is written before it is read, under
the valid bit that travels with it.  There is no memory.
"""

import functools

from amaranth import Array, C, Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import signed_range_width
from ..golden.shift_accumulate import beats_of_row
from ..config import ShiftAccumulateConfig
from .payload import pack, unpack

__all__ = ["ShiftAccumulate", "input_layout", "output_layout", "pack_input", "pack_row", "unpack_output"]


@functools.cache
def input_layout(cfg):
    """The :class:`~amaranth.lib.data.StructLayout` of one input beat (see the module docstring)."""
    P = cfg.parallel
    fields = {
        "v": data.ArrayLayout(data.ArrayLayout(signed(cfg.v_width), cfg.d_head), P),
        "sign": data.ArrayLayout(signed(2), P),
        "shift": data.ArrayLayout(unsigned(cfg.shift_width), P),
        "count": unsigned(cfg.beat_count_width),
        "c_shift": signed(signed_range_width(*cfg.c_shift_range)) if cfg.has_sv else None,
        "sh": signed(signed_range_width(*cfg.shift_range)),
        "last": unsigned(1),
    }
    return data.StructLayout({k: v for k, v in fields.items() if v is not None})


@functools.cache
def output_layout(cfg):
    """``Z_m``: ``ArrayLayout(signed(out_width), d_head)``."""
    return data.ArrayLayout(signed(cfg.out_width), cfg.d_head)


class ShiftAccumulate(wiring.Component):
    """``Z_m = sat(rnd(sum_n s_n (V_n << t_n) + (SV << t_C), sh))`` with shifts and adds only.

    Parameters
    ----------
    config : :class:`~damf.config.ShiftAccumulateConfig`
    """

    def __init__(self, config):
        if not isinstance(config, ShiftAccumulateConfig):
            self._MustUse__silence = True
            raise TypeError(f"Config must be a ShiftAccumulateConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
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
        P, D, U, G = cfg.parallel, cfg.d_head, cfg.rounders, cfg.round_cycles
        AW, OW, VW, SW, F = cfg.acc_width, cfg.out_width, cfg.v_width, cfg.vsum_width, cfg.weight_frac
        sv_on = cfg.has_sv          # base2: no SV term, no SV registers, no negative weights
        layout = input_layout(cfg)
        NW = cfg.count_width        # negative keys of a row, 0..seq_len

        def reg(shape, name):
            """A data register (no reset: only the valid bits and accumulators need one)."""
            return Signal(shape, name=name, reset_less=True)

        adv_f = Signal(name="adv_f")            # the front advances (every front stage at once)
        adv_r = Signal(name="adv_r")            # the end-of-row pipeline advances
        cap_free = Signal(name="cap_free")      # the capture register may be loaded this cycle
        m.d.comb += self.i.ready.eq(adv_f)

        def front(src, suffix):
            """The next front stage's copies of the row fields ``src`` (valid, last, ...)."""
            regs = {n: (Signal if n == "valid" else reg)(Shape.cast(v.shape()), name=f"{n}_{suffix}")
                    for n, v in src.items()}
            with m.If(adv_f):
                m.d.sync += [regs[n].eq(src[n]) for n in regs]
            return regs

        # -- front 0: input register --------------------------------------------------------------
        b0 = reg(layout, "beat0")
        f = front({"valid": self.i.valid}, "0")
        with m.If(adv_f):
            m.d.sync += b0.eq(self.i.payload)

        # -- front 1: per key and lane the term and V_n, cleared for keys not in the row ------------
        # maclaurin: a negative term is sent as ~(V_n << t_n) = -(V_n << t_n) - 1; the row's
        # count of them is added back at the end of the row, once for every lane.
        TW = VW + F
        # the final shift as k = clip(sh, -OW, AW + 1) + OW in [0, OW + AW + 1] (see front 3)
        k = Signal(range(OW + AW + 2), name="k")
        m.d.comb += k.eq(Mux(b0.sh <= -OW, 0, Mux(b0.sh >= AW + 1, OW + AW + 1, b0.sh + OW)))
        fields = {"valid": f["valid"], "last": b0.last, "k": k}
        if sv_on:
            fields["c_shift"] = b0.c_shift
            negs = Signal(range(P + 1), name="negs")
            fields["negs"] = negs
        terms = [[None for _ in range(P)] for _ in range(D)]
        svals = [[None for _ in range(P)] for _ in range(D)]
        key_negs = []
        for j in range(P):
            in_row = Signal(name=f"in_row{j}")
            on = Signal(name=f"on{j}")
            m.d.comb += [in_row.eq(b0.count > j), on.eq(in_row & (b0.sign[j] != 0))]
            if sv_on:
                neg = Signal(name=f"neg{j}")
                m.d.comb += neg.eq(on & b0.sign[j][1])
                key_negs.append(neg)
            for e in range(D):
                v = b0.v[j][e]
                terms[e][j] = reg(signed(TW), f"term{j}_{e}")
                shifted = (v << b0.shift[j])[:TW]
                with m.If(adv_f):
                    with m.If(on):
                        m.d.sync += terms[e][j].eq(shifted ^ neg.replicate(TW) if sv_on else shifted)
                    with m.Else():
                        m.d.sync += terms[e][j].eq(0)
                if sv_on:
                    svals[e][j] = reg(signed(VW), f"vkey{j}_{e}")
                    with m.If(adv_f):
                        m.d.sync += svals[e][j].eq(Mux(in_row, v, 0))
        if sv_on:
            m.d.comb += negs.eq(sum(key_negs))
        f = front(fields, "1")

        # -- front 2: per lane, a parallel-input adder tree, a register after every level -----------
        level = 0
        while len(terms[0]) > 1:
            level += 1
            for vecs, w, name in ((terms, min(TW + level, AW), "tree"), (svals, min(VW + level, SW), "svtree")):
                if vecs[0][0] is None:
                    continue
                for e in range(D):
                    nxt = []
                    for n in range(0, len(vecs[e]), 2):
                        s = reg(signed(w), f"{name}{level}_{n // 2}_{e}")
                        pair = vecs[e][n:n + 2]
                        with m.If(adv_f):
                            m.d.sync += s.eq(pair[0] + pair[1] if len(pair) == 2 else pair[0])
                        nxt.append(s)
                    vecs[e] = nxt
            f = front(f, f"t{level}")

        # -- front 3: accumulators; a row's last beat hands acc, SV and its fields to the capture ---
        acc = [Signal(signed(AW), name=f"acc{e}") for e in range(D)]
        sv = [Signal(signed(SW), name=f"sv{e}") for e in range(D)] if sv_on else []
        acc_sum = [Signal(signed(AW), name=f"acc_sum{e}") for e in range(D)]
        sv_sum = [Signal(signed(SW), name=f"sv_sum{e}") for e in range(D)] if sv_on else []
        m.d.comb += [a.eq(x + t[0]) for a, x, t in zip(acc_sum + sv_sum, acc + sv, terms + svals)]
        counters, counter_sums = acc + sv, acc_sum + sv_sum
        if sv_on:
            nneg = Signal(NW, name="nneg")
            nneg_sum = Signal(NW, name="nneg_sum")
            m.d.comb += nneg_sum.eq(nneg + f["negs"])
            counters, counter_sums = counters + [nneg], counter_sums + [nneg_sum]
        load = Signal(name="cap_load")
        m.d.comb += [adv_f.eq(~(f["valid"] & f["last"] & ~cap_free)),
                     load.eq(adv_f & f["valid"] & f["last"])]
        with m.If(adv_f & f["valid"]):
            with m.If(f["last"]):
                m.d.sync += [a.eq(0) for a in counters]
            with m.Else():
                m.d.sync += [a.eq(x) for a, x in zip(counters, counter_sums)]

        # the row's fields, decoded for the end-of-row units:
        #   c_on, c_amount: SV << t_C when t_C >= 0
        #   bias_m1, bias_c: the rounding bias 2^(r-1) - [total < 0] = bias_m1 + (bias_c & total >= 0),
        #     bias_m1 = 2^(r-1) - 1 (0 when r = 0), bias_c = r > 0, r = clip(sh, 0, AW + 1) = k - OW
        #   k: the right shift of the biased value << OW
        #   mask, k_zero: the biased value fits iff its bits k - 1 and up all equal its sign
        #     (mask: bit i set iff i >= k - 1; k_zero: k = 0, the value must be 0)
        YW = AW + 2                                     # the biased value
        k = f["k"]
        dec = {"bias_m1": Signal(YW, name="bias_m1"), "bias_c": Signal(name="bias_c"),
               "k": Signal.like(k, name="k_row"), "mask": Signal(YW, name="mask"), "k_zero": Signal(name="k_zero")}
        m.d.comb += [dec["bias_m1"].eq(Cat(k > i + 1 + OW if i + 1 <= AW else C(0) for i in range(YW))),
                     dec["bias_c"].eq(k > OW),
                     dec["k"].eq(k),
                     dec["mask"].eq(Cat(k <= i + 1 for i in range(YW))),
                     dec["k_zero"].eq(k == 0)]
        if sv_on:
            c = f["c_shift"]
            dec["c_on"] = Signal(name="c_on")
            dec["c_amount"] = Signal(cfg.shift_width, name="c_amount")
            m.d.comb += [dec["c_on"].eq(c >= 0), dec["c_amount"].eq(c.as_unsigned())]

        cap_busy = Signal(name="cap_busy")
        cap_acc = [reg(signed(AW), f"cap_acc{e}") for e in range(D)]
        cap_sv = [reg(signed(SW), f"cap_sv{e}") for e in range(D)] if sv_on else []
        cap = {n: reg(Shape.cast(s.shape()), f"cap_{n}") for n, s in dec.items()}
        if sv_on:
            cap["nneg"] = reg(NW, "cap_nneg")
            dec["nneg"] = nneg_sum
        with m.If(load):
            m.d.sync += [c.eq(x) for c, x in zip(cap_acc + cap_sv, acc_sum + sv_sum)]
            m.d.sync += [cap[n].eq(dec[n]) for n in cap]

        # -- end of row 0: read rounders lanes of the capture register per cycle --------------------
        rd_group = Signal(range(max(G, 2)), name="rd_group")     # (1 bit, always 0, when G = 1)
        rd = Signal(name="cap_read")
        rd_last = Signal(name="cap_read_last")
        m.d.comb += [rd.eq(adv_r & cap_busy), rd_last.eq(rd & (rd_group == G - 1)),
                     cap_free.eq(~cap_busy | rd_last)]
        m.d.sync += cap_busy.eq(load | (cap_busy & ~rd_last))
        with m.If(rd):
            m.d.sync += rd_group.eq(Mux(rd_group == G - 1, 0, rd_group + 1))

        def lane_of(vec, u, shape):
            """Lane ``group * U + u`` of ``vec`` (0 past ``d_head`` and past the last group, so
            that the selector covers every value of ``rd_group``)."""
            lanes = [vec[e] if e < D else C(0, shape) for e in range(u, D + U, U)][:G]   # groups 0..G-1
            lanes += [C(0, shape) for _ in range(G, 1 << len(rd_group))]
            return lanes[0] if G == 1 else Array(lanes)[rd_group]

        def stage(name, src, keep):
            """The end-of-row registers ``name`` of the fields ``keep`` of ``src``."""
            regs = {n: (Signal if n == "valid" else reg)(Shape.cast(src[n].shape()), name=f"{name}_{n}")
                    for n in keep}
            with m.If(adv_r):
                m.d.sync += [regs[n].eq(src[n]) for n in keep]
            return regs

        s0 = stage("r0", {"valid": rd, "group": rd_group, **cap},
                   ["valid", "group", "bias_m1", "bias_c", "k", "mask", "k_zero"] + (["c_amount"] if sv_on else []))
        x_acc = [reg(signed(AW), f"r0_acc{u}") for u in range(U)]
        x_sv = [reg(signed(SW), f"r0_sv{u}") for u in range(U)] if sv_on else []
        with m.If(adv_r):
            for u in range(U):
                a = lane_of(cap_acc, u, signed(AW))
                m.d.sync += x_acc[u].eq(a + cap["nneg"] if sv_on else a)
                if sv_on:
                    with m.If(cap["c_on"]):
                        m.d.sync += x_sv[u].eq(lane_of(cap_sv, u, signed(SW)))
                    with m.Else():
                        m.d.sync += x_sv[u].eq(0)

        # -- end of row 1: total = acc + (SV << t_C) (maclaurin modes) -------------------------------
        if sv_on:
            s1 = stage("r1", s0, ["valid", "group", "bias_m1", "bias_c", "k", "mask", "k_zero"])
            total = [reg(signed(AW), f"r1_total{u}") for u in range(U)]
            with m.If(adv_r):
                for u in range(U):
                    m.d.sync += total[u].eq(x_acc[u] + (x_sv[u] << s0["c_amount"]))
        else:
            s1, total = s0, x_acc

        # -- end of row 2: + rounding bias, half away from zero ---------------------------------------
        s2 = stage("r2", s1, ["valid", "group", "k", "mask", "k_zero"])
        y = [reg(signed(YW), f"r2_y{u}") for u in range(U)]
        with m.If(adv_r):
            for u in range(U):
                m.d.sync += y[u].eq(total[u] + s1["bias_m1"] + (s1["bias_c"] & ~total[u][-1]))

        # -- end of row 3: one shifter (left or right), overflow from the top bits --------------------
        s3 = stage("r3", s2, ["valid", "group"])
        z = [reg(OW, f"r3_z{u}") for u in range(U)]
        ovf = [reg(1, f"r3_ovf{u}") for u in range(U)]
        neg = [reg(1, f"r3_neg{u}") for u in range(U)]
        with m.If(adv_r):
            for u in range(U):
                top = y[u][-1]
                m.d.sync += [
                    z[u].eq((Cat(C(0, OW), y[u]).as_signed() >> s2["k"])[:OW]),
                    ovf[u].eq(((y[u].as_unsigned() ^ top.replicate(YW)) & s2["mask"]).any()
                              | (s2["k_zero"] & top)),
                    neg[u].eq(top),
                ]

        # -- end of row 4: saturate into the output register; Z valid once every lane is in -----------
        m.d.comb += adv_r.eq(~(s3["valid"] & self.o.valid & ~self.o.ready))
        write = Signal(name="write")
        m.d.comb += write.eq(adv_r & s3["valid"])
        for e in range(D):
            g, u = divmod(e, U)
            sat = Cat((~neg[u]).replicate(OW - 1), neg[u])          # 2^(OW-1) - 1 or -2^(OW-1)
            with m.If(write & (s3["group"] == g)):
                m.d.sync += self.o.payload[e].eq(Mux(ovf[u], sat, z[u]))
        m.d.sync += self.o.valid.eq((write & (s3["group"] == G - 1)) | (self.o.valid & ~self.o.ready))

        return m


# ---- payload helpers (testbenches, vector replay, the head's tests) --------------------------

def pack_input(cfg, v, sign, shift, count, c_shift, sh, last):
    """One input beat as an integer: ``v``, ``sign``, ``shift`` of ``parallel`` keys each
    (``v[j]``: ``d_head`` ints), ``count`` keys of the row, the row's ``c_shift`` (``None`` in
    base2) and ``sh``, ``last``."""
    if cfg.has_sv and c_shift is None:
        raise ValueError(f"c_shift must be an integer in mode {cfg.mode}, not None")
    fields = {"v": v, "sign": sign, "shift": shift, "count": count, "sh": sh, "last": int(bool(last))}
    if cfg.has_sv:
        fields["c_shift"] = c_shift
    return pack(input_layout(cfg), fields)


def pack_row(cfg, V, sign, shift, c_shift, sh, pad=None):
    """The input beats of one row (keys ``V``, ``sign``, ``shift``), as integers
    (:func:`damf.golden.shift_accumulate.beats_of_row`; ``pad`` fills the unused key slots)."""
    beats = beats_of_row(cfg, V, sign, shift, pad)
    return [pack_input(cfg, v, s, t, n, c_shift, sh, b == len(beats) - 1)
            for b, (v, s, t, n) in enumerate(beats)]


def unpack_output(cfg, word):
    """``Z_m`` (``d_head`` ints) of an output payload."""
    return unpack(output_layout(cfg), word)
