"""Singular-vector inner-product unit (block ``inner-product``)."""

import functools

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import InnerProductConfig, signed_range_width
from .payload import pack, unpack

__all__ = ["InnerProduct", "input_layout", "weight_word_layout", "output_layout", "lane_groups",
           "LANES_PER_SUM", "pack_weight_words", "pack_tokens", "unpack_output"]

# Lanes summed in one cycle (stage 2): at most three adder levels.  Wider beats are summed in
# groups of at most this many lanes and the stage-3 accumulator adds the group sums, so the adder
# depth per cycle stays bounded as ``lanes`` grows while the latency stays the same.
LANES_PER_SUM = 8


@functools.cache
def input_layout(cfg):
    """Layout of one input beat: ``lanes`` elements of a token."""
    return data.ArrayLayout(signed(cfg.x_width), cfg.lanes)


@functools.cache
def weight_word_layout(cfg):
    """Layout of one weight word: the u and v slices of one beat, for every rank."""
    slice_ = data.ArrayLayout(data.ArrayLayout(signed(cfg.w_width), cfg.lanes), cfg.rank)
    return data.StructLayout({"u": slice_, "v": slice_})


@functools.cache
def output_layout(cfg):
    """Layout of one result: ``p`` (rank values) then ``q`` (rank values)."""
    vec = data.ArrayLayout(signed(cfg.out_width), cfg.rank)
    return data.StructLayout({"p": vec, "q": vec})


def pack_weight_words(cfg, u, v, pad=lambda: 0):
    """Pack rank x d_model integer vectors into ``cfg.beats`` weight words (ints).

    Word ``b`` holds elements ``b*lanes .. b*lanes+lanes-1`` of every u_k and v_k; padding
    lanes of the last word take ``pad()`` (the unit ignores them; testbenches send noise).
    """
    layout, lanes = weight_word_layout(cfg), range(cfg.lanes)

    def beat(vecs, b):
        return [[vec[i] if i < cfg.d_model else pad() for i in (b * cfg.lanes + j for j in lanes)]
                for vec in vecs[:cfg.rank]]
    return [pack(layout, {"u": beat(u, b), "v": beat(v, b)}) for b in range(cfg.beats)]


def pack_tokens(cfg, tokens, pad=lambda: 0):
    """The ``i`` beats of ``tokens`` (each ``d_model`` integers), ``beats`` per token, element
    ``b*lanes + j`` in lane ``j`` of beat ``b``; the padding lanes of a token's last beat take
    ``pad()`` (ignored by the unit; testbenches send noise)."""
    layout, width, out = input_layout(cfg), cfg.beats * cfg.lanes, []
    for token in tokens:
        token = list(token)
        token += [pad() for _ in range(width - len(token))]
        out += [pack(layout, token[b * cfg.lanes:(b + 1) * cfg.lanes]) for b in range(cfg.beats)]
    return out


def unpack_output(cfg, word):
    """``(p, q)`` (rank ints each) of an ``o`` payload."""
    result = unpack(output_layout(cfg), word)
    return result["p"], result["q"]


class InnerProduct(wiring.Component):
    """Streams token vectors ``X_m`` and produces ``p_m = X_m . u_k`` and ``q_m = X_m . v_k``.

    Parameters
    ----------
    config : :class:`~damf.config.InnerProductConfig`

    Ports
    -----
    i : ``In(stream.Signature(ArrayLayout(signed(x_width), lanes)))``
        One beat carries ``lanes`` elements of ``X_m``, element ``b*lanes + j`` in lane ``j``
        (lane 0 in the least significant bits).  A token is ``beats = ceil(d_model / lanes)``
        consecutive beats; in the last beat only the first ``last_lanes`` lanes are used, the
        others are ignored (any value).
    o : ``Out(stream.Signature(StructLayout({"p": ArrayLayout(signed(out_width), rank),
        "q": ArrayLayout(signed(out_width), rank)})))``
        One result per token, in token order.
    w : ``In(stream.Signature(weight_word_layout))`` -- only when ``weights == "runtime"``
        A weight load is ``beats`` consecutive words; word ``b`` holds elements
        ``b*lanes .. b*lanes+lanes-1`` of ``u_0 .. u_{rank-1}`` then of ``v_0 .. v_{rank-1}``.
        A load starts only between tokens (``w.ready`` is low while a token is partly
        received); once its first word is accepted, ``i.ready`` stays low until its last.
        When a token and a load are both offered between tokens, the load goes first.
        Tokens accepted before a load use the old vectors, tokens after it the new ones.
        Padding lanes of the last word are ignored (any value).  Before the first complete
        load after reset ``i.ready`` is low: tokens wait for weights (see Reset).

    Reset
    -----
    Synchronous ``rst`` clears the beat counter of the token being received, the word counter
    of a weight load, the valid bits of the four pipeline stages (a result in flight is
    dropped, ``o.valid`` is low after it) and, with runtime weights, the ``loaded`` flag.  The
    weight memory itself is *not* cleared (an ASIC's RAM comes up undefined; clearing it would
    take ``beats`` cycles or a second write path): instead ``i.ready`` stays low until
    ``loaded``, which is set when the last word of a complete load is accepted.  So a token
    offered after reset waits (it is not accepted, whatever it is) until a whole new load has
    gone in, and a load interrupted by ``rst`` is forgotten: its half-written words are
    overwritten by the next complete load before any token reads them.  This costs one flip-flop
    and an AND in ``i.ready``, nothing in the read -> multiply path (masking the weights to
    zero until the first load would keep "before the first load the vectors are zero", but put
    a gate in front of every multiplier for the sake of a token the user should not send).
    With ``weights == "fixed"`` the vectors are a ROM initialised in the Verilog, never
    written: the unit is ready for tokens right after reset.

    Contract
    --------
    * Exact arithmetic: ``out_width`` holds every possible sum of ``d_model`` products of a
      ``x_width``-bit and a ``w_width``-bit signed integer; nothing overflows or rounds.
    * Throughput: one beat per cycle, so one result every ``beats`` cycles in steady state.
    * Latency: ``o.valid`` rises ``latency`` = 4 cycles after the handshake of a token's last
      beat when ``o`` is not stalled (stages: input/weight read, multiply, lane sum,
      accumulate).
    * Backpressure stalls the whole pipeline: ``i.ready`` (and ``w.ready``) depend
      combinationally on ``o.ready``.
    """

    def __init__(self, config):
        if not isinstance(config, InnerProductConfig):
            self._MustUse__silence = True  # never built: no "unused elaboratable" warning
            raise TypeError(f"Config must be an InnerProductConfig, not {config!r}")
        self._config = config
        members = {
            "i": In(stream.Signature(input_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        }
        if config.weights == "runtime":
            members["w"] = In(stream.Signature(weight_word_layout(config)))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        return self._config.latency

    @property
    def out_width(self):
        return self._config.out_width

    def elaborate(self, platform):
        cfg = self._config
        m = Module()

        # Global stall: every stage advances when the output register is free.
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # -- weight store: one word per beat, read synchronously alongside stage 0 -----------
        word = weight_word_layout(cfg)
        if cfg.weights == "fixed":
            init = pack_weight_words(cfg, *cfg.fixed_vectors())
        else:
            init = []                                           # never read before written
        m.submodules.weights = weights = Memory(shape=unsigned(cfg.word_width), depth=cfg.beats, init=init)
        rd = weights.read_port(domain="sync")

        beat = Signal(range(cfg.beats), name="beat")          # next beat of the current token
        accept = Signal()                                       # i handshake this cycle

        if cfg.weights == "runtime":
            wr = weights.write_port()
            load = Signal(range(cfg.beats), name="load_word")  # next word of the current load
            loading = Signal()                                  # a load is partly received
            m.d.comb += loading.eq(load != 0)
            loaded = Signal(name="loaded")                      # a complete load since reset
            with m.If(self.w.valid & self.w.ready & (load == cfg.beats - 1)):
                m.d.sync += loaded.eq(1)
            # A load starts only between tokens and, once started, blocks tokens.
            m.d.comb += self.w.ready.eq(beat == 0)
            m.d.comb += [
                wr.addr.eq(load),
                wr.data.eq(self.w.payload.as_value()),
                wr.en.eq(self.w.valid & self.w.ready),
            ]
            if cfg.beats > 1:
                with m.If(self.w.valid & self.w.ready):
                    with m.If(load == cfg.beats - 1):
                        m.d.sync += load.eq(0)
                    with m.Else():
                        m.d.sync += load.eq(load + 1)
            token_ok = loaded & ~loading & ~((beat == 0) & self.w.valid)
        else:
            token_ok = Const(1)

        m.d.comb += [
            self.i.ready.eq(advance & token_ok),
            accept.eq(self.i.valid & self.i.ready),
            rd.addr.eq(beat),
            rd.en.eq(advance),
        ]
        if cfg.beats > 1:
            with m.If(accept):
                with m.If(beat == cfg.beats - 1):
                    m.d.sync += beat.eq(0)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)

        # -- stage 0: register the beat, padding lanes of the last beat forced to zero -------
        s0_valid = Signal(name="s0_valid")
        s0_first = Signal(name="s0_first")
        s0_last = Signal(name="s0_last")
        s0_x = Signal(data.ArrayLayout(signed(cfg.x_width), cfg.lanes), name="s0_x")
        is_last = beat == cfg.beats - 1
        with m.If(advance):
            m.d.sync += [
                s0_valid.eq(accept),
                s0_first.eq(beat == 0),
                s0_last.eq(is_last),
            ]
            for j in range(cfg.lanes):
                if j < cfg.last_lanes:
                    m.d.sync += s0_x[j].eq(self.i.payload[j])
                else:
                    m.d.sync += s0_x[j].eq(Mux(is_last, 0, self.i.payload[j]))
        s0_w = data.View(word, rd.data)

        # -- stage 1: 2 * rank * lanes multipliers -------------------------------------------
        s1_valid = Signal(name="s1_valid")
        s1_first = Signal(name="s1_first")
        s1_last = Signal(name="s1_last")
        prod_shape = signed(cfg.product_width)
        s1_prod = {
            (vec, k, j): Signal(prod_shape, name=f"s1_{vec}{k}_prod{j}")
            for vec in ("u", "v") for k in range(cfg.rank) for j in range(cfg.lanes)
        }
        with m.If(advance):
            m.d.sync += [s1_valid.eq(s0_valid), s1_first.eq(s0_first), s1_last.eq(s0_last)]
            for (vec, k, j), sig in s1_prod.items():
                m.d.sync += sig.eq(s0_x[j] * s0_w[vec][k][j])

        # -- stage 2: sums over groups of at most LANES_PER_SUM lanes ----------------------------
        s2_valid = Signal(name="s2_valid")
        s2_first = Signal(name="s2_first")
        s2_last = Signal(name="s2_last")
        groups = lane_groups(cfg.lanes)
        s2_sum = {
            (vec, k, g): Signal(signed(cfg.lane_sum_width if len(groups) == 1 else
                                       signed_range_width(*cfg.sum_range(len(lanes)))),
                                name=f"s2_{vec}{k}_sum" if len(groups) == 1 else f"s2_{vec}{k}_sum{g}")
            for vec in ("u", "v") for k in range(cfg.rank) for g, lanes in enumerate(groups)
        }
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2_first.eq(s1_first), s2_last.eq(s1_last)]
            for (vec, k, g), sig in s2_sum.items():
                m.d.sync += sig.eq(_adder_tree([s1_prod[vec, k, j] for j in groups[g]]))

        # -- stage 3: accumulate the group sums over the beats; the accumulators are the output
        # register --------------------------------------------------------------------------------
        with m.If(advance):
            m.d.sync += self.o.valid.eq(s2_valid & s2_last)
            with m.If(s2_valid):
                for vec in ("u", "v"):
                    for k in range(cfg.rank):
                        acc = self.o.payload["p" if vec == "u" else "q"][k]
                        m.d.sync += acc.eq(_adder_tree([Mux(s2_first, 0, acc)] +
                                                       [s2_sum[vec, k, g] for g in range(len(groups))]))

        return m


def lane_groups(lanes):
    """The lanes summed together in stage 2: consecutive groups of at most
    :data:`LANES_PER_SUM`, as equal as possible (one group when ``lanes <= LANES_PER_SUM``)."""
    n = -(-lanes // LANES_PER_SUM)
    bounds = [lanes * g // n for g in range(n + 1)]
    return [list(range(bounds[g], bounds[g + 1])) for g in range(n)]


def _adder_tree(terms):
    """Balanced sum of ``terms`` (Amaranth widens each addition, so nothing overflows)."""
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            pairs.append(terms[-1])
        terms = pairs
    return terms[0]
