"""Baseline integer softmax unit (block ``softmax``): rows of scores in, rows of probabilities
out, ``parallel`` per beat, one pass over each row, rows back to back.

For each row ``s[0 .. n-1]`` (``1 <= n <= L``, ``L = seq_len``, ``n`` chosen at run time) of
signed ``in_width``-bit scores the unit outputs ``prob[i] ~ 2**PW * softmax(alpha * s)[i]``,
``PW = prob_width``, with ``alpha = scale * 2**-scale_frac`` a configuration constant
(``1/sqrt(d_head)`` times the quantization scales of ``Q`` and ``K``).  The arithmetic is
integer only and defined bit for bit by :mod:`damf.golden.softmax`:

* the streaming ("online") softmax of integer attention accelerators (as in ITA, Islamoglu et
  al. 2023), with an I-BERT-style exponential: ``-alpha*log2(e)*s`` is split into an integer
  part ``g`` and a fraction (``exp_frac`` bits) whose ``2**-x`` is a second-order polynomial
  ``p`` (exact at 0 and 1, error 1.9e-3 absolute, 3.8e-3 relative).  The row's reference ``G``
  is the running minimum of ``g`` (an integer, in log2 units), ``e = p >> (g - G)``, and when
  the reference drops by ``k`` the running sum is shifted right by ``k``: the scores are read
  once, on input;
* one reciprocal per row, ``recip = 2**recip_shift // S``, from a pipelined restoring divider
  (``DIV_BITS`` quotient bits per stage, ``div_stages`` stages, a new row every cycle);
* the exponentials wait in a row buffer; the output shifts each beat's by the drop of the
  reference since that beat, then ``prob = min(round(e * recip / 2**(exp_frac + guard)),
  2**PW - 1)``: unsigned, all ``PW`` bits fractional, rounded half up, saturated (1.0 reads
  ``2**PW - 1``).

Ports
-----
``clk``, ``rst``: the ``sync`` domain; ``rst`` (synchronous, active high) drops every row in
progress.

``i``: ``In(stream.Signature(StructLayout({"data": ArrayLayout(signed(in_width), P),
"count": unsigned(count_width), "last": 1})))``, ``P = parallel`` -- a beat of scores:
    ``i__payload[j*in_width +: in_width]`` is lane ``j``; ``count`` (above the lanes) the valid
    lanes ``1 .. P`` (lanes ``j >= count`` are ignored); ``last`` (the top bit) set on the
    row's final beat.  A row is the beats up to its ``last`` one, or its ``max_beats =
    ceil(L/P)``-th beat whether ``last`` is set or not.  A row of ``n`` scores in full beats
    is ``ceil(n/P)`` beats, the last holding ``n - (ceil(n/P) - 1)*P``; any beat may hold fewer.

``o``: ``Out(stream.Signature(StructLayout({"data": ArrayLayout(unsigned(prob_width), P),
"count": unsigned(count_width), "last": 1})))`` -- one beat per input beat, in order, with the
    input beat's ``count``: lane ``j < count`` the probability of the input lane ``j``, lanes
    ``j >= count`` zero; ``last`` set on the row's final beat (also when the row ended by its
    length).

Pipeline and contract
---------------------
* *Front* (never stalls): input register; ``v = -s * exp_mult`` by shifts and adds (the
  canonical signed digits of the constant, at most 9 terms, in two stages: ``v_stage = 2``);
  the polynomial (4 stages: ``A2 * x`` by shifts and adds, ``A1 + ...``, the lane's one
  multiplier ``x * inner``, ``p``) beside the minimum tree over the beat (``tree_stages``: a
  register every ``TREE_LEVELS`` levels) and the running reference; shift amount; ``e``
  (written into the row buffer with the beat's reference and count); beat-sum tree; running
  sum (``sum_stage`` edges after the input handshake).  At a row's end the sum enters the divider; ``div_stages`` later
  the reciprocal, the row's reference and its beat count go into the row queue.
* *Back* (stalls with ``o``): a row's beats are read from the buffer once its reciprocal is in
  the queue; per beat: read, shift amount, shift, multiply, round and saturate (output
  register).  ``o.ready`` low holds the back pipeline; the front keeps going into the buffer.
* Flow control: ``i.ready`` is high while the buffer (``buffer_depth`` beats) has room for a
  beat and, on a row's first beat, fewer than ``buffer_depth`` rows are in flight; it is a
  function of registers only.  ``buffer_depth = max_beats + sum_stage + div_stages + 2`` is
  enough that with a source always valid and a sink always ready ``i.ready`` never falls.
* Cycles (source always valid, sink always ready; ``SoftmaxConfig``): rows are taken back to
  back, one beat per cycle (``row_interval(n) = ceil(n/P)``); a row's first output handshake
  is ``row_latency = sum_stage + div_stages + 7`` cycles after its last input handshake, or
  the cycle after the previous row's last output handshake if that is later; its output beats
  are back to back.  A lone row takes ``row_cycles(n) = 2*ceil(n/P) - 2 + row_latency``
  from its first input to its last output handshake.
* Nothing overflows: every width is derived from the configuration (``SoftmaxConfig``).

Reset
-----
Synchronous ``rst`` clears the valid bits of every stage, the row buffer's and row queue's
pointers and counts (``buf_wptr``, ``rowq_*``, ``used``, ``rows_in_flight``), the beat
counters of the input and output rows: the unit is empty, ``i.ready`` high, and a
half-received row is forgotten (the next beat starts a row).  The
two memories (row buffer, row queue) and the ``reset_less`` data registers are not cleared:
an entry is read only after it has been written since the reset (the pointers say which).
"""

import functools

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import SOFTMAX_POLY_A1, SOFTMAX_POLY_A2, SOFTMAX_POLY_FRAC, SoftmaxConfig
from .payload import pack, unpack

__all__ = ["Softmax", "input_layout", "output_layout", "pack_input", "unpack_output"]


@functools.cache
def input_layout(cfg):
    """One input beat: ``parallel`` signed scores, the valid lanes, the row's ``last`` flag."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.in_width), cfg.parallel),
        "count": unsigned(cfg.count_width),
        "last": 1,
    })


@functools.cache
def output_layout(cfg):
    """One output beat: ``parallel`` unsigned probabilities, the valid lanes, ``last``."""
    return data.StructLayout({
        "data": data.ArrayLayout(unsigned(cfg.prob_width), cfg.parallel),
        "count": unsigned(cfg.count_width),
        "last": 1,
    })


def pack_input(cfg, scores, last, *, pad=()):
    """The ``i`` payload (an int) of one beat carrying ``scores`` (1 .. parallel valid lanes),
    ``count = len(scores)``; lanes past the count hold ``pad`` (default 0), which the unit ignores."""
    lanes = list(scores) + list(pad) + [0] * (cfg.parallel - len(scores) - len(pad))
    return pack(input_layout(cfg), {"data": lanes, "count": len(scores), "last": int(bool(last))})


def unpack_output(cfg, word):
    """``(probabilities of the valid lanes, count, last, all lanes)`` of one ``o`` payload."""
    beat = unpack(output_layout(cfg), word)
    return beat["data"][:beat["count"]], beat["count"], beat["last"], beat["data"]


def _word_layout(cfg):
    """A row-buffer word: one beat's exponentials, its reference, its count."""
    return data.StructLayout({
        "e": data.ArrayLayout(unsigned(cfg.exp_width), cfg.parallel),
        "ref": signed(cfg.ref_width),
        "count": unsigned(cfg.count_width),
    })


def _row_layout(cfg):
    """A row-queue entry: the row's reciprocal, final reference and beats."""
    return data.StructLayout({
        "recip": unsigned(cfg.recip_width),
        "ref": signed(cfg.ref_width),
        "beats": unsigned(cfg.max_beats.bit_length()),
    })


def _csd(n):
    """Canonical signed digits of ``n > 0``: ``[(shift, +1 or -1)]``, no two adjacent, with
    ``n = sum(sign << shift)``."""
    out, shift = [], 0
    while n:
        if n & 1:
            sign = 2 - (n & 3)
            out.append((shift, sign))
            n -= sign
        n >>= 1
        shift += 1
    return out


def _signed_sum(value, digits):
    """``sum(sign * (value << shift))`` over ``digits`` with adders and negations only (a
    multiplication by -1 would be mapped to a DSP)."""
    terms = [(value << shift) if sign > 0 else -(value << shift) for shift, sign in digits]
    return sum(terms[1:], terms[0])


class _Pipe:
    """Names and makes the registers of a free-running pipeline."""

    def __init__(self, m):
        self.m = m

    def reg(self, value, name, *, enable=None, reset=False):
        """A register of ``value`` (reset-less unless ``reset``), loaded every cycle or when ``enable``."""
        sig = Signal(Value.cast(value).shape(), name=name, reset_less=not reset)
        if enable is None:
            self.m.d.sync += sig.eq(value)
        else:
            with self.m.If(enable):
                self.m.d.sync += sig.eq(value)
        return sig

    def delay(self, value, cycles, name, *, reset=False):
        """``value`` delayed by ``cycles`` registers."""
        for c in range(cycles):
            value = self.reg(value, f"{name}_d{c}", reset=reset)
        return value

    def tree(self, leaves, op, levels_per_stage, name):
        """Reduce ``leaves`` with ``op`` as a balanced tree, a register every
        ``levels_per_stage`` levels and after the last one (none for a single leaf)."""
        nodes, level = list(leaves), 0
        while len(nodes) > 1:
            nodes = [op(nodes[i], nodes[i + 1]) if i + 1 < len(nodes) else nodes[i]
                     for i in range(0, len(nodes), 2)]
            level += 1
            if level % levels_per_stage == 0 or len(nodes) == 1:
                nodes = [self.reg(n, f"{name}_l{level}_{i}") for i, n in enumerate(nodes)]
        return nodes[0]


class Softmax(wiring.Component):
    """Integer softmax over rows of up to ``seq_len`` scores, ``parallel`` per beat, one pass.

    Parameters
    ----------
    config : :class:`~damf.config.SoftmaxConfig`

    The ports, protocol, arithmetic, pipeline and cycle counts are specified in the docstring
    of this module (:mod:`damf.hdl.softmax`).
    """

    def __init__(self, config):
        if not isinstance(config, SoftmaxConfig):
            self._MustUse__silence = True  # never built, so never "unused"
            raise TypeError(f"Config must be a SoftmaxConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        })

    @property
    def config(self):
        return self._config

    @property
    def row_latency(self):
        return self._config.row_latency

    def elaborate(self, platform):
        cfg = self._config
        P, EF, F = cfg.parallel, cfg.exp_frac, cfg.exp_shift
        B, D, T = cfg.max_beats, cfg.buffer_depth, cfg.tree_stages
        g_hi = cfg.ref_range[1]
        g_shape = signed(cfg.ref_width)
        m = Module()
        pipe = _Pipe(m)

        m.submodules.buffer = buf = Memory(shape=_word_layout(cfg), depth=D, init=[])
        m.submodules.rows = rowq = Memory(shape=_row_layout(cfg), depth=D, init=[])
        buf_wr, buf_rd = buf.write_port(), buf.read_port()
        row_wr, row_rd = rowq.write_port(), rowq.read_port(domain="comb")

        def wrap(ptr):
            return Mux(ptr == D - 1, 0, ptr + 1)

        # -- input: flow control (registers only) and row framing ------------------------------
        used = Signal(range(D + 1), name="used")        # beats accepted, not yet read back
        in_flight = Signal(range(D + 1), name="rows_in_flight")
        beat = Signal(range(max(B, 2)), name="in_beat")  # beats of the current row so far
        accept = Signal(name="accept")
        end_in = Signal(name="end_in")
        m.d.comb += [
            self.i.ready.eq((used < D) & ((beat != 0) | (in_flight < D))),
            accept.eq(self.i.valid & self.i.ready),
            end_in.eq(self.i.payload.last | (beat == B - 1)),
        ]
        with m.If(accept):
            m.d.sync += beat.eq(Mux(end_in, 0, beat + 1))

        # edge 0: input register
        val0 = pipe.reg(accept, "val0", reset=True)
        first0 = pipe.reg(beat == 0, "first0")
        end0 = pipe.reg(end_in, "end0")
        cnt0 = pipe.reg(self.i.payload.count, "cnt0")
        s0 = [pipe.reg(self.i.payload.data[j], f"s0_{j}") for j in range(P)]

        # edges 1, 2 (V = v_stage): v = -s * exp_mult by shifts and adds over the canonical
        # signed digits of exp_mult (at most 9), in groups of 4 (edge 1) and their sum (edge 2);
        # g = v >> F (the integer part), x = the top EF fraction bits
        V = cfg.v_stage
        digits = _csd(cfg.exp_mult)
        groups = [digits[i:i + 4] for i in range(0, len(digits), 4)]
        v1 = []
        for j in range(P):
            parts = [pipe.reg(_signed_sum(s0[j], [(shift, -sign) for shift, sign in group]), f"vpart{n}_{j}")
                     for n, group in enumerate(groups)]
            v = Signal(signed(cfg.v_width), name=f"v_{j}", reset_less=True)
            m.d.sync += v.eq(sum(parts))
            v1.append(v)
        val1 = pipe.delay(val0, V, "val_v", reset=True)
        first1, end1, cnt1 = pipe.delay(first0, V, "first_v"), pipe.delay(end0, V, "end_v"), pipe.delay(cnt0, V, "cnt_v")
        mask1 = [pipe.delay(pipe.reg(cnt0 > j, f"mask0_{j}"), V - 1, f"mask_v{j}") for j in range(P)]
        g1, x1 = [], []
        for j in range(P):
            g, x = Signal(g_shape, name=f"g1_{j}"), Signal(EF, name=f"x1_{j}")
            m.d.comb += g.eq(v1[j] >> F)
            # v sign-extended past bit F first: exp_shift may exceed v's own width (small scores)
            vx = Cat(v1[j], v1[j][-1].replicate(max(0, F + 1 - len(v1[j]))))
            m.d.comb += x.eq(vx[F - EF:F] if F >= EF else Cat(Const(0, EF - F), v1[j][:F]))
            g1.append(g)
            x1.append(x)

        # edges V+1 .. V+T: the beat's smallest g (lanes past count read as the largest g)
        low_b = pipe.tree([Mux(mask1[j], g1[j], g_hi) for j in range(P)],
                          lambda a, b: Mux(a < b, a, b), cfg.TREE_LEVELS, "gmin")
        val_t = pipe.delay(val1, T, "val_t", reset=True)
        first_t = pipe.delay(first1, T, "first_t")

        # edge V+1+T: the running reference G (smallest g of the row so far); V+2+T: the drop
        # k of the reference with this beat (the running sum's shift, at most sum_width)
        ref = Signal(g_shape, name="ref")                # G of the row so far
        drop = Signal(signed(cfg.ref_width + 1), name="drop")
        m.d.comb += drop.eq(ref - low_b)
        lower = first_t | (drop > 0)
        new_ref = Mux(lower, low_b, ref)
        with m.If(val_t):
            m.d.sync += ref.eq(new_ref)
        cap = cfg.sum_width
        ref_r = pipe.reg(new_ref, "ref_r")
        drop_r = pipe.reg(Mux(first_t | (drop <= 0), 0, drop), "drop_r")
        k_r = pipe.reg(Mux(drop_r > cap, cap, drop_r[:cap.bit_length()]), "k_r")

        # edges V+1 .. V+4: p = 2**EF + (x * (A1 + ((A2 * x) >> EF))) >> POLY_FRAC, per lane
        a2_digits = _csd(SOFTMAX_POLY_A2)
        a2_groups = [a2_digits[i:i + 3] for i in range(0, len(a2_digits), 3)]
        p5 = []
        for j in range(P):
            # A2 * x by shifts and adds (its signed digits in groups of 3, then their sum)
            ax2 = [pipe.reg(_signed_sum(x1[j], group), f"ax{n}_{j}")
                   for n, group in enumerate(a2_groups)]
            inner3 = Signal(signed(SOFTMAX_POLY_FRAC + 2), name=f"inner3_{j}", reset_less=True)
            m.d.sync += inner3.eq(SOFTMAX_POLY_A1 + (sum(ax2) >> EF))
            x3 = pipe.delay(x1[j], 2, f"x_{j}")
            prod4 = Signal(signed(EF + SOFTMAX_POLY_FRAC + 3), name=f"poly4_{j}", reset_less=True)
            m.d.sync += prod4.eq(x3 * inner3)
            p = Signal(cfg.exp_width, name=f"p5_{j}", reset_less=True)
            m.d.sync += p.eq((1 << EF) + (prod4 >> SOFTMAX_POLY_FRAC))
            p5.append(p)

        # edge zs = exp_stage - 1: shift amounts z = min(g - G, EF + 1); edge exp_stage: e
        es = cfg.exp_stage
        zs = es - 1
        ref_z = pipe.delay(ref_r, zs - 1 - (V + 1 + T), "ref_z")
        z_bits = (EF + 1).bit_length()
        e_lanes = []
        for j in range(P):
            g = pipe.delay(g1[j], zs - 1 - V, f"g_{j}")
            diff = Signal(unsigned(cfg.ref_width + 1), name=f"gdiff_{j}")
            m.d.comb += diff.eq(g - ref_z)
            z = pipe.reg(Mux(diff > EF + 1, EF + 1, diff[:z_bits]), f"z_{j}")
            p = pipe.delay(p5[j], zs - (V + 4), f"p_{j}")
            mask = pipe.delay(mask1[j], zs - V, f"mask_{j}")
            e_lanes.append(pipe.reg(Mux(mask, p >> z, 0), f"e_{j}"))
        val_e = pipe.delay(val_t, es - V - T, "val_e", reset=True)
        first_e = pipe.delay(first_t, es - V - T, "first_e")
        end_e, cnt_e = pipe.delay(end1, es - V, "end_e"), pipe.delay(cnt1, es - V, "cnt_e")
        ref_e, k_e = pipe.delay(ref_z, es - (zs - 1), "ref_e"), pipe.delay(k_r, es - (V + 2 + T), "k_e")

        # -- row buffer: one word per beat ---------------------------------------------------
        wptr = Signal(range(D), name="buf_wptr")
        with m.If(val_e):
            m.d.sync += wptr.eq(wrap(wptr))
        m.d.comb += [buf_wr.addr.eq(wptr), buf_wr.en.eq(val_e),
                     buf_wr.data.ref.eq(ref_e), buf_wr.data.count.eq(cnt_e)]
        m.d.comb += [buf_wr.data.e[j].eq(e_lanes[j]) for j in range(P)]

        # edges exp_stage+1 .. +T: the beat's sum; edge sum_stage: the running sum
        beat_sum = pipe.tree(e_lanes, lambda a, b: a + b, cfg.TREE_LEVELS, "esum")
        val_s = pipe.delay(val_e, T, "val_s", reset=True)
        first_s, end_s = pipe.delay(first_e, T, "first_s"), pipe.delay(end_e, T, "end_s")
        ref_s, k_s = pipe.delay(ref_e, T, "ref_s"), pipe.delay(k_e, T, "k_s")
        total = Signal(cfg.sum_width, name="total")
        nbeats = Signal(range(B + 1), name="row_beats")
        with m.If(val_s):
            m.d.sync += [total.eq(Mux(first_s, 0, total >> k_s) + beat_sum),
                         nbeats.eq(Mux(first_s, 1, nbeats + 1))]
        div_v = pipe.reg(val_s & end_s, "div_v", reset=True)
        div_ref = pipe.reg(ref_s, "div_ref")

        # -- reciprocal: recip = 2**recip_shift // total, DIV_BITS quotient bits per stage ------
        rem = Const(1 << (EF - 2), cfg.sum_width + 1)   # 2**recip_shift >> recip_width
        quo, divisor, d_ref, d_beats, d_v = Const(0, 1), total, div_ref, nbeats, div_v
        todo = cfg.recip_width
        for stage in range(cfg.div_stages):
            bits = todo - cfg.DIV_BITS * (cfg.div_stages - 1 - stage)
            for b in range(bits):
                # one restoring step: the sign of shifted - divisor is the quotient bit
                shifted = Cat(Const(0, 1), rem[:cfg.sum_width])
                trial = Signal(signed(cfg.sum_width + 2), name=f"div{stage}_trial{b}")
                m.d.comb += trial.eq(shifted - divisor)
                ge = ~trial[-1]
                rem = Mux(ge, trial[:cfg.sum_width + 1], shifted)
                quo = Cat(ge, quo)
            todo -= bits
            rem = pipe.reg(rem, f"div{stage}_rem")
            quo = pipe.reg(quo[:cfg.recip_width - todo], f"div{stage}_q")
            divisor = pipe.reg(divisor, f"div{stage}_d")
            d_ref, d_beats = pipe.reg(d_ref, f"div{stage}_ref"), pipe.reg(d_beats, f"div{stage}_beats")
            d_v = pipe.reg(d_v, f"div{stage}_v", reset=True)

        # -- row queue ---------------------------------------------------------------------------
        qw, qr = Signal(range(D), name="rowq_wptr"), Signal(range(D), name="rowq_rptr")
        queued = Signal(range(D + 1), name="rowq_count")
        m.d.comb += [row_wr.addr.eq(qw), row_wr.en.eq(d_v), row_wr.data.recip.eq(quo),
                     row_wr.data.ref.eq(d_ref), row_wr.data.beats.eq(d_beats), row_rd.addr.eq(qr)]
        with m.If(d_v):
            m.d.sync += qw.eq(wrap(qw))

        # -- back: read a row's beats once its reciprocal is queued; stalls with o -------------
        adv = Signal(name="adv")
        issue, pop = Signal(name="issue"), Signal(name="pop")
        rptr = Signal(range(D), name="buf_rptr")
        rbeat = Signal(range(max(B, 2)), name="out_beat")
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            issue.eq(adv & (queued != 0)),
            pop.eq(issue & (rbeat == row_rd.data.beats - 1)),
            buf_rd.addr.eq(rptr),
            buf_rd.en.eq(adv),
        ]
        with m.If(issue):
            m.d.sync += [rptr.eq(wrap(rptr)), rbeat.eq(Mux(pop, 0, rbeat + 1))]
        with m.If(pop):
            m.d.sync += qr.eq(wrap(qr))
        m.d.sync += [
            queued.eq(queued + d_v - pop),
            used.eq(used + accept - issue),
            in_flight.eq(in_flight + (accept & (beat == 0)) - pop),
        ]

        # read (edge 1 of the back), shift amount (2), shift (3), multiply (4), output (5)
        o_v1 = pipe.reg(issue, "o_v1", enable=adv, reset=True)
        o_last1 = pipe.reg(pop, "o_last1", enable=adv)
        o_recip1 = pipe.reg(row_rd.data.recip, "o_recip1", enable=adv)
        o_ref1 = pipe.reg(row_rd.data.ref, "o_ref1", enable=adv)
        word = buf_rd.data
        o_v2 = pipe.reg(o_v1, "o_v2", enable=adv, reset=True)
        o_last2, o_recip2 = pipe.reg(o_last1, "o_last2", enable=adv), pipe.reg(o_recip1, "o_recip2", enable=adv)
        o_cnt2 = pipe.reg(word.count, "o_cnt2", enable=adv)
        o_e2 = [pipe.reg(word.e[j], f"o_e2_{j}", enable=adv) for j in range(P)]
        since = Signal(unsigned(cfg.ref_width + 1), name="o_since")
        m.d.comb += since.eq(word.ref - o_ref1)
        o_k2 = pipe.reg(Mux(since > EF + 1, EF + 1, since[:z_bits]), "o_k2", enable=adv)
        o_v3 = pipe.reg(o_v2, "o_v3", enable=adv, reset=True)
        o_last3, o_recip3 = pipe.reg(o_last2, "o_last3", enable=adv), pipe.reg(o_recip2, "o_recip3", enable=adv)
        o_cnt3 = pipe.reg(o_cnt2, "o_cnt3", enable=adv)
        o_e3 = [pipe.reg(o_e2[j] >> o_k2, f"o_e3_{j}", enable=adv) for j in range(P)]
        o_v4 = pipe.reg(o_v3, "o_v4", enable=adv, reset=True)
        o_last4, o_cnt4 = pipe.reg(o_last3, "o_last4", enable=adv), pipe.reg(o_cnt3, "o_cnt4", enable=adv)
        o_prod4 = []
        for j in range(P):
            prod = Signal(cfg.exp_width + cfg.recip_width, name=f"o_prod4_{j}", reset_less=True)
            with m.If(adv):
                m.d.sync += prod.eq(o_e3[j] * o_recip3)
            o_prod4.append(prod)
        shift = EF + cfg.guard
        limit = (1 << cfg.prob_width) - 1
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(o_v4), self.o.payload.last.eq(o_last4), self.o.payload.count.eq(o_cnt4)]
        for j in range(P):
            scaled = Signal(cfg.exp_width + cfg.recip_width, name=f"o_scaled_{j}")
            m.d.comb += scaled.eq((o_prod4[j] + (1 << (shift - 1))) >> shift)
            with m.If(adv):
                m.d.sync += self.o.payload.data[j].eq(Mux(scaled > limit, limit, scaled))
        return m
