"""Conventional attention head (block ``baseline-head``): ``Z = softmax(alpha * Q K^T) V``.

The baseline DAMF is compared against, composed of the blocks of docs/baseline.md: a
``systolic-qk`` array computes the scores ``S = Q K^T``, a row buffer reassembles rows of
``S`` from the array's tiles, the ``softmax`` unit turns each row into probabilities ``A'``,
and a second array (a ``systolic-av`` instance of the same generator) computes ``Z = A' V``.
All arithmetic is that of the three blocks, bit for bit (golden model:
:mod:`damf.golden.baseline_head`); ``Z`` is exact (the ``A' V`` array's ``acc_width``, no
rounding).

Organisation
------------
Two arrays, not one time-multiplexed array: the ``Q K^T`` and ``A' V`` arrays differ in
operand widths (``q_width`` vs ``prob_width + 1``) and accumulator widths, and the second one
is reused unchanged from ``systolic-av``.  The head works in *tile rows* (``R`` query rows,
``R = rows``):

1. *load*: ``L`` input beats (one token ``t`` per beat: ``Q[t]``, ``K[t]``, ``V[t]``) are written
   into the buffers; ``i.ready`` is high only in this phase.  With ``inputs = "x"`` the head
   takes tokens ``X[t]`` instead (``beats = ceil(d_model / lanes)`` beats each on ``x``) and
   ``V[t]`` on ``v``: ``X`` goes through the *projection*, an inner-product unit
   (``hdl/inner_product.py``, ``BaselineHeadConfig.projection``: ``rank = d_head``, ``u = W_Q^T``,
   ``v = W_K^T``) that gives the exact ``X[t] W_Q`` and ``X[t] W_K``, and a *requantization
   register* that shifts each element right by ``qk_shift`` with rounding half away from zero
   and saturates it to ``q_width`` / ``k_width`` bits (``golden/quant.py`` ``requantize``; the
   rule and the RTL of ``damf-head``'s ``p`` and ``q``, ``docs/numerics.md`` section 3a); its
   output is row ``t`` of ``Q`` and ``K``.  ``x.ready`` and ``v.ready`` are high in this phase
   until the head's ``L`` tokens / rows are in; the load ends when the last rows of ``Q``,
   ``K`` and ``V`` are written.
2. each tile row ``ti`` (query rows ``r0 = ti*R .. r0+n-1``, ``n = min(R, L - r0)``) passes
   three engines in turn:

   a. *scores*: the ``ceil(L/C)`` tiles of the tile row are fed to the ``Q K^T`` array
      (``Q`` rows from ``R`` banks, ``K`` rows from ``C`` banks, element ``k`` of step ``k``
      picked by a multiplexer), and the ``n * ceil(L/C)`` score beats it returns are written
      into bank ``ti mod 2`` of the *score buffer* (``R`` rows of ``ceil(L/C)`` words of ``C``
      scores per bank): the rows of ``S`` are reassembled in place.
   b. *softmax*: the ``n`` rows are sent to the softmax unit (``parallel = C``) back to back,
      each as its ``ceil(L/C)`` score buffer words, one beat of ``C`` scores per word (``count``
      ``C``, the last one ``L - (ceil(L/C) - 1) * C``, with ``last``); its beats of ``C``
      probabilities are written into bank ``ti mod 2`` of the *probability buffer*
      (``ceil(L/C)`` words of ``C x R`` probabilities per bank, element ``c*R + r`` of word
      ``w`` = ``A'[r0 + r, w*C + c]``, written one probability per enable bit): ``A'`` rows ``r0 ..`` are then available ``R`` at a time,
      as the second array's ``Q`` side needs them.
   c. *A' V*: the ``ceil(d_head/C)`` tiles of the tile row are fed to the ``A' V`` array: step
      ``t`` carries ``A'[r0+r, t]`` (column ``t mod C`` of the probability buffer's word
      ``t div C``, zero-extended to ``prob_width + 1`` signed bits) and ``V[t, c0+c]`` (the
      ``V`` buffer's word ``t``, element ``c0 + c``: ``V^T`` by addressing).  Its output is the
      head's output.

   The engines overlap: each starts its next tile row as soon as its own feed of the previous
   one is done and its inputs are ready -- the score feed once the softmax feed has read the
   score bank's previous tile row (``ti - 2``), the softmax feed once the tile row's scores are
   written and the ``A' V`` feed has read the probability bank's previous tile row, the
   ``A' V`` feed once the tile row's probabilities are written.  So the score array computes
   tile row ``ti + 1`` while the softmax and the ``A' V`` array work on ``ti``.
3. after the last tile row's ``A' V`` feed the next head loads while the array drains.  With
   ``banks = 2`` the ``Q``, ``K`` and ``V`` buffers hold two heads (bank ``b`` at word ``b *
   depth`` of each memory): the next head loads into the other bank while this one computes
   (the input is ready while the bank it fills is free: the head two before has taken its last
   ``A' V`` beat), and its engines start the cycle after this head's last ``A' V`` beat (the
   score and probability buffers are free by then).

Ports
-----
``clk``, ``rst``: the ``sync`` domain; ``rst`` (synchronous, active high) abandons the head in
progress and returns to the load phase.

``i`` (``inputs = "qk"``): ``In(stream.Signature(StructLayout({"q": ArrayLayout(signed(q_width), d_head),
"k": ArrayLayout(signed(k_width), d_head), "v": ArrayLayout(signed(v_width), d_head)})))``
    -- token ``t = 0 .. L-1`` per beat, ``L`` beats per head::

        i__payload[e*q_width +: q_width]                            = Q[t, e]
        i__payload[D*q_width + e*k_width +: k_width]                = K[t, e]
        i__payload[D*(q_width + k_width) + e*v_width +: v_width]    = V[t, e]    (e < D = d_head)

``x``, ``v``, ``w`` (``inputs = "x"``, instead of ``i``): the ports of ``damf-head``
    (``hdl/damf_head.py``), same layouts and names, so one source drives either head:

    * ``x``: ``In(stream.Signature(StructLayout({"x": ArrayLayout(signed(x_width), lanes),
      "last": 1})))`` -- token ``t = 0 .. L-1`` as ``beats`` beats, element ``b*lanes + j`` in
      lane ``j`` of beat ``b`` (padding lanes of the last beat ignored).  ``last`` belongs on
      the head's last beat, as for ``damf-head``, but is not read: ``L = seq_len`` is fixed.
    * ``v``: ``In(stream.Signature(StructLayout({"v": ArrayLayout(signed(v_width), d_head),
      "last": 1})))`` -- ``V[t]``, ``t = 0 .. L-1``, one per beat (``last`` not read either);
      ``x`` and ``v`` are independent streams: either may run ahead within the head.
    * ``w`` (``weights = "runtime"`` only): the projection's weight stream, unchanged
      (``hdl/inner_product.py``): ``beats`` words, word ``b`` holding elements
      ``b*lanes ..`` of ``W_Q[:, e]`` for every ``e < d_head``, then those of ``W_K``.  A load
      takes effect for the tokens after it: load between heads (once a head's last ``x`` beat
      is in; it may overlap the head's computation).  ``rst`` forgets the weights (the
      projection's ``loaded`` flag, ``hdl/inner_product.py``): after a reset ``x.ready`` stays
      low until a complete new load has gone in, so no token ever meets undefined weights.

``o``: ``Out(stream.Signature(ArrayLayout(signed(out_width), C)))`` -- the ``A' V`` array's
    stream: for every tile row ``ti``, for every tile column ``c0 = 0, C, ..``, one beat per
    query row ``r0 + r < L`` in row order, ``o__payload[c*out_width +: out_width] =
    Z[r0 + r, c0 + c]`` (0 for ``c0 + c >= d_head``).  ``out_beats = L * ceil(d_head / C)``
    beats per head (:func:`damf.golden.baseline_head.z_beats` gives them in order).

Contract
--------
* ``inputs = "x"``: ``Q``, ``K`` = ``requantize(X W, qk_shift, q_width / k_width)`` (the
  projection is exact, ``projection.out_width`` bits; the requantization rounds half away from
  zero and saturates); then as below.
* ``Z = A' V`` exact, ``A'`` = the softmax unit's probabilities of ``alpha * Q K^T`` (the
  score width is the ``Q K^T`` array's exact ``acc_width``; nothing saturates or wraps except
  the softmax's documented saturation of 1.0 to ``2**prob_width - 1``).
* Cycles (sources always valid, sink always ready): :meth:`BaselineHeadConfig.schedule` gives
  the clock edge of every engine's last beat per tile row, by the rules above (the load ends
  at edge ``load_end``: ``L - 1``, or with ``inputs = "x"`` ``L beats - 1 + projection.latency
  + 1``; an engine starts the edge after its conditions hold, its first beat is taken 2 edges
  later);
  ``cycles`` (first input handshake to last output handshake) is the last ``A' V`` beat plus
  the array's ``latency + last_rows - 1``, and the next head's first beat is accepted the
  cycle after the last ``A' V`` beat (``head_interval``); with ``banks = 2`` the loads overlap
  the computation, ``head_interval = max(load_end + 1, compute_span)``, and
  :meth:`BaselineHeadConfig.heads_schedule` gives every head's first input and last output
  handshake; see docs/baseline.md.
* Input gaps lengthen the load phase only.  Backpressure on ``o`` stalls the ``A' V`` array
  and with it the ``A' V`` feed (and, through the banks, the other engines); the internal
  streams never stall (their sinks are buffers that are always ready).
* Memory: ``Q``, ``K``, ``V`` buffers (``banks * L * d_head`` elements each, ``Q`` in ``R`` banks and
  ``K`` in ``C`` banks of whole tokens), the score buffer (two banks of ``R * ceil(L/C) * C``
  scores), the probability buffer (two banks of ``R * ceil(L/C) * C`` probabilities) and the
  softmax unit's row buffer
  and row queue (``BaselineHeadConfig.memory_bits`` counts the first five,
  ``SoftmaxConfig.memory_bits`` the last two).  With ``inputs = "x"`` the projection's weight
  store (``2 d_model d_head w_width`` bits, a ROM with ``weights = "fixed"``) is counted in
  ``memory_bits`` too (``projection_weight_bits``).

Reset
-----
Synchronous ``rst`` abandons the head in progress: the phase counters of the load and of the
three engines, the bank flags (both banks free) and the valid bits of the systolic arrays and
the softmax unit are cleared, so nothing of the abandoned head comes out and the next input
beat is a head's first.  The score, probability and V buffers (memories) are not cleared: each
word is read only after the current head has written it.  With ``inputs = "x"`` and runtime
weights the projection forgets its weights (``x.ready`` low until a complete new load, see
``w`` under Ports); with fixed weights they are a ROM.
"""

import functools

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import BaselineHeadConfig
from .damf_head import _requantize, v_layout, x_layout
from .inner_product import InnerProduct, pack_weight_words, weight_word_layout
from .payload import pack, unpack
from .softmax import Softmax
from .systolic_qk import SystolicQK

__all__ = ["BaselineHead", "input_layout", "output_layout", "x_layout", "v_layout", "qkv_words", "x_words",
           "v_words", "w_words", "unpack_output"]


@functools.cache
def input_layout(cfg):
    """One input beat: token ``t``'s rows of ``Q``, ``K`` and ``V``."""
    return data.StructLayout({
        "q": data.ArrayLayout(signed(cfg.q_width), cfg.d_head),
        "k": data.ArrayLayout(signed(cfg.k_width), cfg.d_head),
        "v": data.ArrayLayout(signed(cfg.v_width), cfg.d_head),
    })


@functools.cache
def output_layout(cfg):
    """One output beat: ``C`` elements of one row of ``Z``."""
    return data.ArrayLayout(signed(cfg.out_width), cfg.cols)


def _index(limit, name):
    """A counter register for 0 .. limit-1, at least 1 bit wide (a 0-bit signal would be
    declared ``[-1:0]`` in Verilog)."""
    return Signal(range(max(limit, 2)), name=name)


def _select(options, index):
    """``options[index]`` through a multiplexer whose case statement is complete: the options
    are padded with the last one up to ``2**len(index)`` (``index`` never exceeds the real ones)."""
    options = list(options)
    options += [options[-1]] * ((1 << len(index)) - len(options))
    return Array(options)[index]


def _count(m, sig, limit, enable):
    """``sig`` counts 0 .. limit-1 and wraps when ``enable``; returns the wrap condition."""
    wrap = sig == limit - 1
    with m.If(enable):
        m.d.sync += sig.eq(Mux(wrap, 0, sig + 1))
    return wrap


class BaselineHead(wiring.Component):
    """Conventional attention head: ``systolic-qk`` -> row buffer -> ``softmax`` -> ``systolic-av``.

    Parameters
    ----------
    config : :class:`~damf.config.BaselineHeadConfig`

    The ports, protocol, phases, cycle counts and memories are specified in the docstring of
    this module (:mod:`damf.hdl.baseline_head`).
    """

    def __init__(self, config):
        if not isinstance(config, BaselineHeadConfig):
            self._MustUse__silence = True  # never built, so never "unused"
            raise TypeError(f"Config must be a BaselineHeadConfig, not {config!r}")
        self._config = config
        if config.inputs == "qk":
            members = {"i": In(stream.Signature(input_layout(config)))}
        else:
            members = {"x": In(stream.Signature(x_layout(config))), "v": In(stream.Signature(v_layout(config)))}
            if config.weights == "runtime":
                members["w"] = In(stream.Signature(weight_word_layout(config.projection)))
        super().__init__({**members, "o": Out(stream.Signature(output_layout(config)))})

    @property
    def config(self):
        return self._config

    @property
    def cycles(self):
        return self._config.cycles

    def _load_qkv(self, m, busy):
        """inputs=qk: token ``t``'s ``Q``, ``K`` and ``V`` rows from one ``i`` beat, ``i.ready``
        high while the bank to load is not ``busy``.  Returns the load's write strobes, rows and addresses (see
        :meth:`elaborate`)."""
        L = self._config.seq_len
        accept = Signal()
        m.d.comb += [self.i.ready.eq(~busy), accept.eq(self.i.valid & self.i.ready)]
        t_in = _index(L, "t_in")
        last = _count(m, t_in, L, accept)
        p = self.i.payload
        return accept, p.q, p.k, accept, p.v, t_in, last, accept & last

    def _load_x(self, m, busy):
        """inputs=x: ``x`` through the projection (inner-product unit) and the requantization
        register into the ``Q``/``K`` rows, ``v`` beside it; the load is done once all ``L`` rows
        of ``Q``, ``K`` and ``V`` are written.  Returns what :meth:`_load_qkv` returns."""
        cfg = self._config
        L, D, beats = cfg.seq_len, cfg.d_head, cfg.projection.beats
        m.submodules.projection = ip = InnerProduct(cfg.projection)
        x_fin = Signal(name="x_fin")          # the head's L tokens are in the projection
        qk_fin = Signal(name="qk_fin")        # its L rows of Q and K are written
        v_fin = Signal(name="v_fin")          # its L rows of V are written

        # x side: L tokens of `beats` beats into the projection (`last` is not read: L is fixed)
        x_open = ~busy & ~x_fin
        m.d.comb += [ip.i.payload.eq(self.x.payload.x), ip.i.valid.eq(self.x.valid & x_open),
                     self.x.ready.eq(ip.i.ready & x_open)]
        if cfg.weights == "runtime":
            wiring.connect(m, wiring.flipped(self.w), ip.w)
        x_fire = self.x.valid & self.x.ready
        x_beat, x_tok = _index(beats, "x_beat"), _index(L, "x_tok")
        with m.If(_count(m, x_beat, beats, x_fire) & x_fire):
            with m.If(_count(m, x_tok, L, x_fire)):
                m.d.sync += x_fin.eq(1)

        # requantization of Q and K (docs/numerics.md section 3a): round by qk_shift, saturate
        rq_valid = Signal(name="rq_valid")
        rq_q = Signal(data.ArrayLayout(signed(cfg.q_width), D), name="rq_q")
        rq_k = Signal(data.ArrayLayout(signed(cfg.k_width), D), name="rq_k")
        m.d.comb += ip.o.ready.eq(1)          # the buffers always take a row
        m.d.sync += rq_valid.eq(ip.o.valid)
        for e in range(D):
            m.d.sync += [rq_q[e].eq(_requantize(ip.o.payload.p[e], cfg.qk_shift, cfg.q_width)),
                         rq_k[e].eq(_requantize(ip.o.payload.q[e], cfg.qk_shift, cfg.k_width))]
        t_qk = _index(L, "t_qk")
        qk_last = _count(m, t_qk, L, rq_valid)

        # v side: L rows of V
        t_v = _index(L, "t_v")
        m.d.comb += self.v.ready.eq(~busy & ~v_fin)
        v_fire = self.v.valid & self.v.ready
        v_last = _count(m, t_v, L, v_fire)

        load_done = Signal(name="load_done")
        m.d.comb += load_done.eq((qk_fin | (rq_valid & qk_last)) & (v_fin | (v_fire & v_last)))
        with m.If(load_done):
            m.d.sync += [x_fin.eq(0), qk_fin.eq(0), v_fin.eq(0)]
        with m.Else():
            with m.If(rq_valid & qk_last):
                m.d.sync += qk_fin.eq(1)
            with m.If(v_fire & v_last):
                m.d.sync += v_fin.eq(1)
        return rq_valid, rq_q, rq_k, v_fire, self.v.payload.v, t_v, qk_last, load_done

    def elaborate(self, platform):
        cfg = self._config
        qc, sc, ac = cfg.qk, cfg.softmax, cfg.av
        R, C, D, L = cfg.rows, cfg.cols, cfg.d_head, cfg.seq_len
        TC = qc.tile_cols          # tiles across S
        TA = ac.tile_cols          # tiles across Z
        m = Module()

        m.submodules.qk = qk = SystolicQK(qc)
        m.submodules.softmax = sm = Softmax(sc)
        m.submodules.av = av = SystolicQK(ac)
        wiring.connect(m, wiring.flipped(self.o), av.o)

        # -- buffers (at least 2 words: a 1-word memory would have a 0-bit address) ----------
        def memory(name, shape, depth, **kw):
            mem = Memory(shape=shape, depth=max(depth, 2), init=[])
            m.submodules[name] = mem
            return mem.write_port(**kw), mem.read_port()

        def token(width):  # one word = one token's row of d_head elements
            return data.ArrayLayout(signed(width), D)

        # Q, K, V buffers: `banks` heads each (bank b at word b * depth)
        NB = cfg.banks
        q_bank = [memory(f"q_bank{r}", token(cfg.q_width), NB * qc.tile_rows) for r in range(R)]
        k_bank = [memory(f"k_bank{c}", token(cfg.k_width), NB * TC) for c in range(C)]
        v_wr, v_rd = memory("v_buf", token(cfg.v_width), NB * L)
        # score and probability buffers: two banks each (tile row ti uses bank ti % 2), so the
        # score array can fill one while the softmax and the A' V feed work on the other
        s_wr, s_rd = memory("s_buf", data.ArrayLayout(signed(qc.acc_width), C), 2 * R * TC)
        # word w, element c*R + r = A'[r0 + r, w*C + c]: a softmax beat writes C columns of one
        # row (one lane of each column), an A' V step reads one column of every row
        p_wr, p_rd = memory("p_buf", data.ArrayLayout(unsigned(cfg.prob_width), C * R), 2 * TC,
                            granularity=1)  # one probability per write enable bit

        TR = cfg.tile_rows

        def rows_of(tile_row):  # query rows of a tile row
            return Mux(tile_row == TR - 1, qc.last_rows, R)

        def bank(tile_row, words):  # first word of the tile row's bank
            return Mux(tile_row[0], words, 0)

        running = Signal(name="running")      # the head's tile rows are in progress (not loading)
        if NB == 1:
            load_busy = running               # the one bank holds a head: no load
            l_bank = c_bank = None

            def in_bank(_, depth, addr):
                return addr
        else:
            # full[b]: bank b holds a loaded head that is not finished; the load side fills
            # bank l_bank, the engines work on bank c_bank (heads in turn)
            full = [Signal(name=f"full{b}") for b in range(2)]
            l_bank, c_bank = Signal(name="load_bank"), Signal(name="compute_bank")
            load_busy = Mux(l_bank, full[1], full[0])
            m.d.comb += running.eq(Mux(c_bank, full[1], full[0]))

            def in_bank(b, depth, addr):      # word addr of bank b
                return Mux(b, addr + depth, addr)

        # -- load: Q and K row t into Q bank t % R and K bank t % C, V row t into V word t -------
        if cfg.inputs == "qk":
            qk_we, q_row, k_row, v_we, v_row, v_addr, qk_last, load_done = self._load_qkv(m, load_busy)
        else:
            qk_we, q_row, k_row, v_we, v_row, v_addr, qk_last, load_done = self._load_x(m, load_busy)
        qb_sel, qb_addr = _index(R, "qb_sel"), _index(qc.tile_rows, "qb_addr")
        kb_sel, kb_addr = _index(C, "kb_sel"), _index(TC, "kb_addr")
        with m.If(qk_we):
            with m.If(_count(m, qb_sel, R, qk_we)):
                m.d.sync += qb_addr.eq(qb_addr + 1)
            with m.If(_count(m, kb_sel, C, qk_we)):
                m.d.sync += kb_addr.eq(kb_addr + 1)
            with m.If(qk_last):
                m.d.sync += [qb_sel.eq(0), kb_sel.eq(0), qb_addr.eq(0), kb_addr.eq(0)]
        with m.If(load_done):
            if NB == 1:
                m.d.sync += running.eq(1)
            else:
                m.d.sync += l_bank.eq(~l_bank)
                for b in range(2):
                    with m.If(l_bank == b):
                        m.d.sync += full[b].eq(1)
        for r, (wr, _) in enumerate(q_bank):
            m.d.comb += [wr.addr.eq(in_bank(l_bank, TR, qb_addr)), wr.data.eq(q_row),
                         wr.en.eq(qk_we & (qb_sel == r))]
        for c, (wr, _) in enumerate(k_bank):
            m.d.comb += [wr.addr.eq(in_bank(l_bank, TC, kb_addr)), wr.data.eq(k_row),
                         wr.en.eq(qk_we & (kb_sel == c))]
        m.d.comb += [v_wr.addr.eq(in_bank(l_bank, L, v_addr)), v_wr.data.eq(v_row), v_wr.en.eq(v_we)]

        # -- progress of the tile rows through the three engines ---------------------------------
        q_next = _index(TR + 1, "qk_next")    # tile rows started on the Q K^T feed
        s_done = _index(TR + 1, "s_done")     # tile rows whose scores are all written
        f_next = _index(TR + 1, "sm_next")    # tile rows started on the softmax feed
        f_done = _index(TR + 1, "sm_done")    # tile rows fed to the softmax completely
        w_done = _index(TR + 1, "p_done")     # tile rows whose probabilities are all written
        a_next = _index(TR + 1, "av_next")    # tile rows started on the A' V feed
        a_done = _index(TR + 1, "av_done")    # tile rows fed to the A' V array completely

        # -- scores: feed tiles (ti, tj), steps k; the read ports are the payload register ----
        qk_go = Signal(name="qk_go")         # more beats to issue in this tile row
        qk_fv = Signal(name="qk_fv")         # the read data is a beat on offer
        qk_adv = Signal(name="qk_adv")
        q_cur = _index(TR, "qk_tile_row")
        q_step, q_step_d = _index(D, "qk_step"), _index(D, "qk_step_d")
        q_tj = _index(TC, "qk_tj")
        m.d.comb += [qk_adv.eq(~qk_fv | qk.i.ready), qk.i.valid.eq(qk_fv)]
        issue = qk_adv & qk_go
        with m.If(qk_adv):
            m.d.sync += [qk_fv.eq(qk_go), q_step_d.eq(q_step)]
        with m.If(_count(m, q_step, D, issue) & issue):
            with m.If(_count(m, q_tj, TC, issue)):
                m.d.sync += qk_go.eq(0)
        for r, (_, rd) in enumerate(q_bank):
            m.d.comb += [rd.addr.eq(in_bank(c_bank, TR, q_cur)), rd.en.eq(qk_adv),
                         qk.i.payload.q[r].eq(rd.data[q_step_d])]
        for c, (_, rd) in enumerate(k_bank):
            m.d.comb += [rd.addr.eq(in_bank(c_bank, TC, q_tj)), rd.en.eq(qk_adv),
                         qk.i.payload.k[c].eq(rd.data[q_step_d])]
        # a tile row starts once the feed is idle and the softmax has read the bank's last user
        qk_start = running & ~qk_go & ~qk_fv & (q_next != TR) & (q_next <= f_done + 1)
        with m.If(qk_start):
            m.d.sync += [qk_go.eq(1), q_cur.eq(q_next), q_next.eq(q_next + 1)]

        # score beats -> score buffer word r * TC + tj of the tile row's bank
        m.d.comb += qk.o.ready.eq(1)
        s_row, s_tj = _index(R, "s_row"), _index(TC, "s_tj")
        got = qk.o.valid
        row_end = s_row == rows_of(s_done) - 1
        with m.If(got):
            m.d.sync += s_row.eq(Mux(row_end, 0, s_row + 1))
            with m.If(row_end):
                m.d.sync += s_tj.eq(Mux(s_tj == TC - 1, 0, s_tj + 1))
                with m.If(s_tj == TC - 1):
                    m.d.sync += s_done.eq(s_done + 1)
        m.d.comb += [s_wr.addr.eq(bank(s_done, R * TC) + s_row * TC + s_tj), s_wr.data.eq(qk.o.payload),
                     s_wr.en.eq(got)]

        # -- softmax: rows r < n, each TC beats: score buffer word r * TC + tj, C scores --------
        sm_go, sm_fv, sm_adv = Signal(name="sm_go"), Signal(name="sm_fv"), Signal(name="sm_adv")
        f_cur = _index(TR, "sm_tile_row")
        j_word, j_row = _index(TC, "sm_word"), _index(R, "sm_row")
        j_last_d = Signal(name="sm_last_d")
        m.d.comb += [sm_adv.eq(~sm_fv | sm.i.ready), sm.i.valid.eq(sm_fv)]
        sm_issue = sm_adv & sm_go
        with m.If(sm_adv):
            m.d.sync += [sm_fv.eq(sm_go), j_last_d.eq(j_word == TC - 1)]
        with m.If(_count(m, j_word, TC, sm_issue) & sm_issue):
            with m.If(j_row == rows_of(f_cur) - 1):
                m.d.sync += [j_row.eq(0), sm_go.eq(0)]
            with m.Else():
                m.d.sync += j_row.eq(j_row + 1)
        m.d.comb += [
            s_rd.addr.eq(bank(f_cur, R * TC) + j_row * TC + j_word), s_rd.en.eq(sm_adv),
            sm.i.payload.data.eq(s_rd.data),
            sm.i.payload.count.eq(Mux(j_last_d, qc.last_cols, C)),
            sm.i.payload.last.eq(j_last_d),
        ]
        # a tile row starts once its scores are written, the feed is idle and the A' V feed has
        # read the probability bank's last user
        sm_start = running & ~sm_go & ~sm_fv & (f_next != TR) & (f_next < s_done) & (f_next <= a_done + 1)
        with m.If(sm_start):
            m.d.sync += [sm_go.eq(1), f_cur.eq(f_next), f_next.eq(f_next + 1)]
        with m.If(sm_fv & sm.i.ready & ~sm_go):   # the tile row's last beat is taken
            m.d.sync += f_done.eq(f_done + 1)

        # probability beats -> probability buffer word tj of the tile row's bank, lane r
        m.d.comb += sm.o.ready.eq(1)
        p_row, p_word = _index(R, "p_row"), _index(TC, "p_word")
        p_got = sm.o.valid
        p_row_end = _count(m, p_word, TC, p_got)
        with m.If(p_got & p_row_end):
            m.d.sync += p_row.eq(Mux(p_row == rows_of(w_done) - 1, 0, p_row + 1))
            with m.If(p_row == rows_of(w_done) - 1):
                m.d.sync += w_done.eq(w_done + 1)
        p_lane = Signal(R, name="p_lane")   # one-hot: the row's lane
        m.d.comb += [p_lane.eq(1 << p_row), p_wr.addr.eq(bank(w_done, TC) + p_word),
                     p_wr.en.eq(Mux(p_got, Cat(*([p_lane] * C)), 0))]
        for c in range(C):
            for r in range(R):
                m.d.comb += p_wr.data[c * R + r].eq(sm.o.payload.data[c])

        # -- A' V: tiles (ti, tj), steps t: A'[r0 + r, t] and V[t, tj*C + c] ------------------
        av_go, av_fv, av_adv = Signal(name="av_go"), Signal(name="av_fv"), Signal(name="av_adv")
        a_cur = _index(TR, "av_tile_row")
        a_step, a_tj, a_tj_d = _index(L, "av_step"), _index(TA, "av_tj"), \
            _index(TA, "av_tj_d")
        a_word, a_col, a_col_d = _index(TC, "av_word"), _index(C, "av_col"), _index(C, "av_col_d")
        m.d.comb += [av_adv.eq(~av_fv | av.i.ready), av.i.valid.eq(av_fv)]
        av_issue = av_adv & av_go
        with m.If(av_adv):
            m.d.sync += [av_fv.eq(av_go), a_tj_d.eq(a_tj), a_col_d.eq(a_col)]
        with m.If(av_issue):   # step t = a_word * C + a_col
            with m.If((a_col == C - 1) | (a_step == L - 1)):
                m.d.sync += [a_col.eq(0), a_word.eq(Mux(a_step == L - 1, 0, a_word + 1))]
            with m.Else():
                m.d.sync += a_col.eq(a_col + 1)
        with m.If(_count(m, a_step, L, av_issue) & av_issue):
            with m.If(_count(m, a_tj, TA, av_issue)):
                m.d.sync += av_go.eq(0)
        m.d.comb += [p_rd.addr.eq(bank(a_cur, TC) + a_word), p_rd.en.eq(av_adv),
                     v_rd.addr.eq(in_bank(c_bank, L, a_step)), v_rd.en.eq(av_adv)]
        for r in range(R):
            m.d.comb += av.i.payload.q[r].eq(_select((p_rd.data[c * R + r] for c in range(C)), a_col_d))
        for c in range(C):
            # lane c of tile column tj is V element tj*C + c (padding lanes: any element)
            m.d.comb += av.i.payload.k[c].eq(_select((v_rd.data[tj * C + c] for tj in range(TA)
                                                      if tj * C + c < D), a_tj_d))
        # a tile row starts once its probabilities are written and the feed is idle
        av_start = running & ~av_go & ~av_fv & (a_next != TR) & (a_next < w_done)
        with m.If(av_start):
            m.d.sync += [av_go.eq(1), a_cur.eq(a_next), a_next.eq(a_next + 1)]

        # -- the head is done once the last tile row is fed to the A' V array: load the next ----
        with m.If(av_fv & av.i.ready & ~av_go):   # the tile row's last beat is taken
            with m.If(a_done == TR - 1):
                m.d.sync += [q_next.eq(0), s_done.eq(0), f_next.eq(0), f_done.eq(0),
                             w_done.eq(0), a_next.eq(0), a_done.eq(0)]
                if NB == 1:
                    m.d.sync += running.eq(0)
                else:                         # the bank is free: the next bank's head goes on
                    m.d.sync += c_bank.eq(~c_bank)
                    for b in range(2):
                        with m.If(c_bank == b):
                            m.d.sync += full[b].eq(0)
            with m.Else():
                m.d.sync += a_done.eq(a_done + 1)
        return m


# ---- payload helpers (testbenches, vector replay): the layouts through hdl.payload -------------

def qkv_words(cfg, q, k, v):
    """inputs=qk: the ``seq_len`` ``i`` payloads of one head, token ``t``'s rows ``q[t]``,
    ``k[t]``, ``v[t]`` (``d_head`` ints each) in beat ``t``."""
    layout = input_layout(cfg)
    return [pack(layout, {"q": q[t], "k": k[t], "v": v[t]}) for t in range(cfg.seq_len)]


def x_words(cfg, X, pad=lambda: 0):
    """inputs=x: the ``x`` payloads of one head's tokens ``X`` (``seq_len x d_model``), ``beats``
    per token, ``last`` on the last token's last beat; the padding lanes of a token's last beat
    take ``pad()`` (ignored by the head: testbenches send noise)."""
    lanes, beats, layout, out = cfg.lanes, cfg.projection.beats, x_layout(cfg), []
    for t, row in enumerate(X):
        row = list(row) + [pad() for _ in range(beats * lanes - len(row))]
        for b in range(beats):
            last = t == len(X) - 1 and b == beats - 1
            out.append(pack(layout, {"x": row[b * lanes:(b + 1) * lanes], "last": int(last)}))
    return out


def v_words(cfg, V):
    """inputs=x: the ``v`` payloads of one head's values ``V`` (``seq_len x d_head``), ``last`` on
    the last."""
    layout = v_layout(cfg)
    return [pack(layout, {"v": row, "last": int(t == len(V) - 1)}) for t, row in enumerate(V)]


def unpack_output(cfg, word):
    """The ``C`` elements (ints) of one ``o`` beat: part of a row of ``Z``."""
    return unpack(output_layout(cfg), word)


def w_words(cfg, wq, wk, pad=lambda: 0):
    """inputs=x, weights=runtime: the ``w`` payloads loading ``W_Q^T`` (``wq``) and ``W_K^T``
    (``wk``), ``d_head x d_model`` each: the projection's weight words (``u = wq``, ``v = wk``)."""
    return pack_weight_words(cfg.projection, wq, wk, pad)
