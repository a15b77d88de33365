"""The whole DAMF attention head (block ``damf-head``): ``X`` and ``V`` in, ``Z`` out.

The verified blocks wired together, every score computed once, ``parallel`` keys per cycle
from the score unit to ``A' x V``::

    x --> inner-product --> requantize --+-- q --> score.k (two key banks)
                                         +-- p --> p buffer (two banks) --(once per row)--> score.i
    v --> V buffer (two banks, parallel lanes)                                               |
              score.o --> [causal beat filter] --+--> row-stats --> set-up FIFO --+
                                                 +--> row buffer (FIFO) ---------+--> weight stage
                                                                                      |  (parallel lanes)
                                         V_n (parallel per beat) from the V buffer -> shift-accumulate --> o

Self-attention (optionally causal) or cross-attention, modes ``maclaurin``, ``maclaurin-abs``
and ``base2``; bit-exact with :func:`damf.golden.damf_head_block.damf_head_block` (inner
product, requantization of ``p`` and ``q``, then :func:`damf.golden.damf_head.damf_head`).

* **Requantization** (``docs/numerics.md``): every ``p_k``, ``q_k`` of the inner-product unit
  is shifted right by ``pq_shift`` with rounding half away from zero and saturated to
  ``pq_width`` bits, in one register stage; the score unit multiplies ``pq_width``-bit values.
* **One score per (query, key).**  Each query ``p_m`` goes through the score unit once.  Its
  row streams, ``parallel`` scores per beat, into ``row-stats`` and into the row buffer at the
  same time; the weight stage takes a row's beats from the buffer once ``row-stats`` has
  delivered that row's set-up, while the score unit already computes the next rows.
* **Weight stage.**  ``parallel`` lanes per beat in a fixed pipeline (``DamfHeadBlockConfig.weight_stages`` registers).
  Maclaurin modes: ``s_n = sign(A)``, ``t_n = F + P(|A|) - R`` (no term when ``t_n < 0``,
  ``A = 0`` or the row is uniform).  Base2: ``delta = A_max - A`` against the ``F + 1``
  constant thresholds (a thermometer code: ``t_n = F - e``, the weight ``2^t_n`` one-hot, a key
  past the last threshold dropped), the beat's weights summed, the row's ``W`` accumulated and
  ``sh = P(W) - out_frac`` sent with the row's last beat.  ``V_n`` of the beat's ``parallel``
  keys is read from the ``parallel`` lanes of the V buffer (key ``n`` in lane ``n mod
  parallel``, word ``n div parallel``).
* **Causal** (``causal = True``): row ``m`` uses keys ``n <= m``.  The score unit computes
  whole rows; a beat filter cuts each beat to the keys ``n <= m``, ends the row on the beat
  holding key ``m`` and drops the beats after it (they cost the score unit a cycle each, nothing
  downstream), so ``row-stats`` sees ``N = m + 1`` and ``shift-accumulate`` sums ``SV`` over the
  keys it is sent (the prefix sum).
* **Two banks.**  The p buffer, the V buffer and the score unit's keys have two banks: head
  ``h + 1`` is loaded while head ``h`` is queried, so a stream of heads runs at the slower of
  the load (``beats`` cycles per token) and the rows (``row_period`` per row).  A bank is
  free again once its head's last key has left the weight stage.

Ports
-----
``clk``, ``rst``: the ``sync`` domain.

``x``: ``In(stream.Signature(StructLayout({"x": ArrayLayout(signed(x_width), lanes),
    "last": 1})))`` -- the tokens ``X_m``, ``beats = ceil(d_model / lanes)`` beats each, as
    the inner-product unit takes them (``hdl/inner_product.py``: element ``b*lanes + j`` in
    lane ``j`` of beat ``b``, padding lanes ignored).  ``last`` is read on a token's last beat
    and marks the head's last token: its index + 1 is the run-time length ``L``
    (``1..seq_len``).  The block counts tokens: the ``seq_len``-th token of a sequence ends it
    whatever its ``last`` (so a head never exceeds ``seq_len``), and the tokens after it start
    the next head.

``y``: only with ``cross = True`` -- the key-side tokens ``Y_n``, same layout as ``x``;
    ``last`` gives ``Lk`` (``1..seq_len``; the ``seq_len``-th token ends ``Y`` as for ``x``).  A
    head's ``Y`` is accepted after its ``X`` (both go through the one inner-product unit:
    ``p`` is kept from ``X``, ``q`` from ``Y``).

``v``: ``In(stream.Signature(StructLayout({"v": ArrayLayout(signed(v_width), d_head),
    "last": 1})))`` -- the value vectors ``V_n``, ``last`` on ``V_{Lk-1}`` (``Lk = L`` for
    self-attention, the length of ``Y`` for cross-attention); ``V_{seq_len-1}`` ends the
    head's values whatever its ``last``, like the ``seq_len``-th token.

``w``: only with ``weights = "runtime"`` -- the inner-product unit's weight stream
    (``hdl/inner_product.py``: ``beats`` words per load).  ``w.ready`` is low from a head's
    first ``x`` beat until that head's last token (cross: its ``Y``'s last token) has produced
    its ``p`` and ``q``, so a load offered in the middle of a head waits and the head uses one
    weight set; the heads after the load use the new one.  It need not wait for the head's
    ``Z`` rows: the weights are read only by the inner-product unit, and once the head's last
    ``p`` and ``q`` are in the p buffer and the key bank nothing downstream looks at ``u``,
    ``v`` again -- so the load for head ``h + 1`` goes in while head ``h``'s rows stream, and
    the two banks keep overlapping.  When a load and a head's first ``x`` beat are offered
    together with no head open, the load goes first.  After reset ``x.ready`` is low until a
    complete load (see Reset).

``o``: ``Out(stream.Signature(StructLayout({"z": ArrayLayout(signed(out_width), d_head),
    "last": 1})))`` -- ``Z_m`` for ``m = 0 .. Lq-1`` (``Lq = L``, or the length of ``X`` when
    cross), head after head, in order (``out_frac`` fraction bits, saturated); ``last`` is 1
    exactly on each head's row ``Lq - 1`` (the head boundary, also after a head ended by its
    ``seq_len``-th token).  Layout: ``z`` in the low ``d_head * out_width`` bits (element 0 in
    the least significant bits), ``last`` above it.

Protocol
--------
Heads follow each other on ``x`` (then ``y``) and ``v``, each ended by its ``last``; ``x`` and
``v`` may run ahead of each other by up to a head.  A head's tokens are accepted into a free
bank (``x.ready`` / ``v.ready`` low while both banks hold heads that are not finished);
its rows follow on ``o``.  Backpressure on ``o`` stalls the chain back to the score unit and,
once both banks are full, the inputs.

Reset
-----
Synchronous ``rst`` (every ``sync`` register of the block and its sub-blocks returns to its
reset value): both banks free (``busy``, ``issue``, the ``*_fin`` and ``*_known`` flags clear,
the next head loads into bank 0), the x, p/q, v, query, filter and weight-stage counters at
zero, every valid bit of the inner-product, score, row-stats, weight-stage and
shift-accumulate pipelines clear and the row buffer, set-up FIFO and ``last`` FIFO empty: a
head half received or half computed is forgotten and none of its rows comes out; the next
``x`` beat is a head's first.  The memories -- the p buffer, the V buffer, the score unit's
key banks, the inner product's weights -- are not cleared: a p, key or V word is read only by
the queries of a bank loaded after the reset, and the weights only by tokens after a complete
load.  Runtime weights: ``rst`` forgets them (the inner-product unit's ``loaded`` flag) and a
half-received load; a token offered after reset waits, ``x.ready`` low, until a complete
new load -- waiting is safe and free, and a token with no weights is a user error (option
argued in ``hdl/inner_product.py``).  After reset the cycle figures below hold again from
the first ``x`` handshake, as after power-up.

Timing (sources always valid, ``o`` always ready; ``beats = ceil(d_model / lanes)``,
``B = ceil(Lk / parallel)``, ``G = shift_accumulate.round_cycles``): one head alone takes::

    cycles_per_head(Lq, Lk) = beats Ld + 2 B - 1 + latency + (Lq - 1) max(B, G)

from its first ``x`` handshake to its last ``Z`` handshake (``Ld = Lq``, cross ``Lq + Lk``;
causal rows keep fewer beats: :meth:`~damf.config.DamfHeadBlockConfig.schedule`).  Heads
queued back to back: :meth:`~damf.config.DamfHeadBlockConfig.schedule` gives every
``Z``; steady state ``row_period = max(B, G)`` between rows and ``head_interval`` between
heads.  The tests check all of them cycle-exactly.
Multi-head attention: one instance per head (the heads share only ``X``).
"""

import functools

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import DamfHeadBlockConfig
from .inner_product import InnerProduct, weight_word_layout
from .payload import pack, unpack
from .row_stats import RowStats, pow2_exp
from .score import Score
from .shift_accumulate import ShiftAccumulate

__all__ = ["DamfHead", "x_layout", "v_layout", "o_layout", "x_beats", "v_words", "unpack_last",
           "unpack_output"]


@functools.cache
def x_layout(cfg):
    """One beat of ``X``: ``lanes`` elements and the head's ``last`` flag."""
    return data.StructLayout({"x": data.ArrayLayout(signed(cfg.x_width), cfg.lanes), "last": unsigned(1)})


@functools.cache
def v_layout(cfg):
    """One value vector ``V_n`` and the ``last`` flag."""
    return data.StructLayout({"v": data.ArrayLayout(signed(cfg.v_width), cfg.d_head), "last": unsigned(1)})


@functools.cache
def o_layout(cfg):
    """One output row ``Z_m`` and ``last`` (1 on a head's row ``Lq - 1``)."""
    return data.StructLayout({"z": data.ArrayLayout(signed(cfg.out_width), cfg.d_head), "last": unsigned(1)})


class DamfHead(wiring.Component):
    """One DAMF attention head from tokens ``X`` and values ``V`` to ``Z``.

    Parameters
    ----------
    config : :class:`~damf.config.DamfHeadBlockConfig`

    Ports, protocol and timing: module docstring (``hdl/damf_head.py``).
    """

    def __init__(self, config):
        if not isinstance(config, DamfHeadBlockConfig):
            self._MustUse__silence = True
            raise TypeError(f"Config must be a DamfHeadBlockConfig, not {config!r}")
        self._config = config
        members = {
            "x": In(stream.Signature(x_layout(config))),
            "v": In(stream.Signature(v_layout(config))),
            "o": Out(stream.Signature(o_layout(config))),
        }
        if config.cross:
            members["y"] = In(stream.Signature(x_layout(config)))
        if config.weights == "runtime":
            members["w"] = In(stream.Signature(weight_word_layout(config.inner_product)))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        L, K, P, F = cfg.seq_len, cfg.rank, cfg.parallel, cfg.weight_frac
        beats = cfg.inner_product.beats
        words = -(-L // P)                            # V words per bank (P keys each)
        base2 = cfg.mode == "base2"
        m = Module()
        m.submodules.inner_product = ip = InnerProduct(cfg.inner_product)
        m.submodules.score = sc = Score(cfg.score)
        m.submodules.row_stats = rs = RowStats(cfg.row_stats)
        m.submodules.shift_accumulate = sa = ShiftAccumulate(cfg.shift_accumulate)
        idx = range(max(2, L))

        # -- the two banks: heads are loaded into them in turn, one while the other is queried --
        # Per bank b: busy[b] from the end of its load until its head's last key has left the
        # weight stage; issue[b] from the end of its load until its last query is issued;
        # lq_last[b] / lk_last[b] = Lq - 1 / Lk - 1, valid once lq_known[b] / lk_known[b];
        # x_fin[b], v_fin[b], pq_fin[b]: the x (and y), v and p/q sides are done with its load.
        def per_bank(name, shape=1):
            return [Signal(shape, name=f"{name}{b}") for b in range(2)]

        def pick(regs, bank):
            return Mux(bank, regs[1], regs[0])

        def at(bank, b):
            return bank if b else ~bank

        busy, issue = per_bank("busy"), per_bank("issue")
        lq_last, lk_last = per_bank("lq_last", idx), per_bank("lk_last", idx)
        lq_known, lk_known = per_bank("lq_known"), per_bank("lk_known")
        x_fin, v_fin, pq_fin = per_bank("x_fin"), per_bank("v_fin"), per_bank("pq_fin")
        if not cfg.cross:
            lk_last, lk_known = lq_last, lq_known
        loaded = [Signal(name=f"loaded{b}") for b in range(2)]
        m.d.comb += [loaded[b].eq(pq_fin[b] & v_fin[b]) for b in range(2)]

        # -- load, x side: X (then Y when cross) into the inner-product unit -------------------
        xb = Signal(name="xb")                       # the bank the x side fills
        x_beat = Signal(range(max(2, beats)), name="x_beat")
        x_tok = Signal(idx, name="x_tok")            # tokens of the current sequence so far
        x_open = ~pick(busy, xb) & ~pick(x_fin, xb)
        tok_end = x_beat == beats - 1
        head_start = Signal(name="head_start")      # the first x beat of a head is accepted
        head_pq = Signal(name="head_pq")              # a head's last q (and p) leave requantization
        heads_open = Signal(range(3), name="heads_open")   # heads between the two
        m.d.sync += heads_open.eq(heads_open + head_start - head_pq)
        if cfg.weights == "runtime":
            w_open = heads_open == 0                  # no head is reading the weights
            m.d.comb += [ip.w.payload.eq(self.w.payload), ip.w.valid.eq(self.w.valid & w_open),
                         self.w.ready.eq(ip.w.ready & w_open)]
        if cfg.cross:
            y_phase = Signal(name="y_phase")         # 0: X of the head, 1: its Y
            x_take, y_take = x_open & ~y_phase, x_open & y_phase
            m.d.comb += [
                ip.i.payload.eq(Mux(y_phase, self.y.payload.x.as_value(), self.x.payload.x.as_value())),
                ip.i.valid.eq((self.x.valid & x_take) | (self.y.valid & y_take)),
                self.x.ready.eq(ip.i.ready & x_take),
                self.y.ready.eq(ip.i.ready & y_take),
            ]
            in_fire = (self.x.valid & self.x.ready) | (self.y.valid & self.y.ready)
            seq_last = Mux(y_phase, self.y.payload.last, self.x.payload.last)
            m.d.comb += head_start.eq(self.x.valid & self.x.ready & (x_beat == 0) & (x_tok == 0))
        else:
            m.d.comb += [ip.i.payload.eq(self.x.payload.x), ip.i.valid.eq(self.x.valid & x_open),
                         self.x.ready.eq(ip.i.ready & x_open)]
            in_fire = self.x.valid & self.x.ready
            seq_last = self.x.payload.last
            m.d.comb += head_start.eq(in_fire & (x_beat == 0) & (x_tok == 0))
        seq_end = seq_last | (x_tok == L - 1)        # last, or the seq_len-th token
        with m.If(in_fire):
            m.d.sync += x_beat.eq(Mux(tok_end, 0, x_beat + 1))
            with m.If(tok_end):
                m.d.sync += x_tok.eq(x_tok + 1)
                with m.If(seq_end):
                    m.d.sync += x_tok.eq(0)
                    for b in range(2):
                        with m.If(at(xb, b)):
                            if cfg.cross:
                                with m.If(y_phase):
                                    m.d.sync += [lk_last[b].eq(x_tok), lk_known[b].eq(1), x_fin[b].eq(1)]
                                with m.Else():
                                    m.d.sync += [lq_last[b].eq(x_tok), lq_known[b].eq(1)]
                            else:
                                m.d.sync += [lq_last[b].eq(x_tok), lq_known[b].eq(1), x_fin[b].eq(1)]
                    if cfg.cross:
                        m.d.sync += y_phase.eq(~y_phase)
                        with m.If(y_phase):
                            m.d.sync += xb.eq(~xb)
                    else:
                        m.d.sync += xb.eq(~xb)

        # -- requantization of p and q (docs/numerics.md): round by pq_shift, saturate ---------
        rq_valid = Signal(name="rq_valid")
        rq_ready = Signal(name="rq_ready")
        rq_p = [Signal(signed(cfg.pq_width), name=f"rq_p{k}") for k in range(K)]
        rq_q = [Signal(signed(cfg.pq_width), name=f"rq_q{k}") for k in range(K)]
        m.d.comb += ip.o.ready.eq(~rq_valid | rq_ready)
        with m.If(ip.o.ready):
            m.d.sync += rq_valid.eq(ip.o.valid)
            for k in range(K):
                m.d.sync += [rq_p[k].eq(_requantize(ip.o.payload.p[k], cfg.pq_shift, cfg.pq_width)),
                             rq_q[k].eq(_requantize(ip.o.payload.q[k], cfg.pq_shift, cfg.pq_width))]

        # -- load, p/q side: q to the score unit's key bank, p to the p buffer -----------------
        # (cross: the first Lq results are X's, only p kept; the next Lk are Y's, only q kept)
        pb = Signal(name="pb")                       # the bank the p/q side fills
        q_n = Signal(idx, name="q_n")                # results of the current sequence so far
        p_shape = data.ArrayLayout(signed(cfg.pq_width), K)
        m.submodules.p_buffer = pbuf = Memory(shape=p_shape, depth=2 * L, init=[])
        p_wr = pbuf.write_port()
        p_rd = pbuf.read_port(domain="sync")
        k_fire = Signal(name="k_fire")
        p_fire = Signal(name="p_fire")
        p_end = pick(lq_known, pb) & (q_n == pick(lq_last, pb))
        k_end = pick(lk_known, pb) & (q_n == pick(lk_last, pb))
        if cfg.cross:
            q_phase = Signal(name="q_phase")         # 0: p of X to the p buffer, 1: q of Y to the keys
            m.d.comb += [
                sc.k.valid.eq(rq_valid & q_phase), rq_ready.eq(Mux(q_phase, sc.k.ready, 1)),
                p_fire.eq(rq_valid & ~q_phase),
            ]
            with m.If(p_fire):
                m.d.sync += q_n.eq(q_n + 1)
                with m.If(p_end):
                    m.d.sync += [q_n.eq(0), q_phase.eq(1)]
            with m.If(k_fire):
                m.d.sync += q_n.eq(q_n + 1)
                with m.If(k_end):
                    m.d.sync += [q_n.eq(0), q_phase.eq(0)]
        else:
            m.d.comb += [sc.k.valid.eq(rq_valid), rq_ready.eq(sc.k.ready), p_fire.eq(k_fire)]
            with m.If(k_fire):
                m.d.sync += q_n.eq(Mux(k_end, 0, q_n + 1))
        m.d.comb += [k_fire.eq(sc.k.valid & sc.k.ready), sc.k.payload.last.eq(k_end),
                     p_wr.addr.eq(Mux(pb, q_n + L, q_n)), p_wr.en.eq(p_fire)]
        for k in range(K):
            m.d.comb += [sc.k.payload.q[k].eq(rq_q[k]), p_wr.data[k].eq(rq_p[k])]
        m.d.comb += head_pq.eq(k_fire & k_end)
        with m.If(k_fire & k_end):
            m.d.sync += pb.eq(~pb)
            for b in range(2):
                with m.If(at(pb, b)):
                    m.d.sync += pq_fin[b].eq(1)

        # -- load, v side: V_n to lane n % parallel of the V buffer, word n // parallel --------
        vb = Signal(name="vb")                       # the bank the v side fills
        v_shape = data.ArrayLayout(signed(cfg.v_width), cfg.d_head)
        v_lane = Signal(range(max(2, P)), name="v_lane")
        v_word = Signal(range(max(2, words)), name="v_word")
        v_rd = []
        v_fire = self.v.valid & self.v.ready
        m.d.comb += self.v.ready.eq(~pick(busy, vb) & ~pick(v_fin, vb))
        for j in range(P):
            mem = Memory(shape=v_shape, depth=2 * words, init=[])
            m.submodules[f"v_buffer{j}"] = mem
            wr = mem.write_port()
            v_rd.append(mem.read_port(domain="sync"))
            m.d.comb += [wr.addr.eq(Mux(vb, v_word + words, v_word)), wr.data.eq(self.v.payload.v),
                         wr.en.eq(v_fire & (v_lane == j))]
        v_end = self.v.payload.last | ((v_word == (L - 1) // P) & (v_lane == (L - 1) % P))  # or V_{seq_len-1}
        with m.If(v_fire):
            m.d.sync += [v_lane.eq(Mux(v_lane == P - 1, 0, v_lane + 1)),
                         v_word.eq(Mux(v_lane == P - 1, v_word + 1, v_word))]
            with m.If(v_end):
                m.d.sync += [vb.eq(~vb), v_lane.eq(0), v_word.eq(0)]
                for b in range(2):
                    with m.If(at(vb, b)):
                        m.d.sync += v_fin[b].eq(1)

        # -- a bank is loaded: hand it to the query side ---------------------------------------
        busy_clr = [Signal(name=f"busy_clr{b}") for b in range(2)]
        issue_clr = [Signal(name=f"issue_clr{b}") for b in range(2)]
        for b in range(2):
            with m.If(loaded[b]):
                m.d.sync += [busy[b].eq(1), issue[b].eq(1), x_fin[b].eq(0), v_fin[b].eq(0),
                             pq_fin[b].eq(0), lq_known[b].eq(0)]
                if cfg.cross:
                    m.d.sync += lk_known[b].eq(0)
            with m.Else():
                with m.If(busy_clr[b]):
                    m.d.sync += busy[b].eq(0)
                with m.If(issue_clr[b]):
                    m.d.sync += issue[b].eq(0)

        # -- query: issue p_m once per row, last on the head's last row ------------------------
        qy_bank = Signal(name="qy_bank")
        iss_m = Signal(idx, name="iss_m")
        iss_valid = Signal(name="iss_valid")
        iss_last = Signal(name="iss_last")
        can_issue = pick(issue, qy_bank)
        iss_adv = ~iss_valid | sc.i.ready
        iss_end = iss_m == pick(lq_last, qy_bank)
        m.d.comb += [p_rd.addr.eq(Mux(qy_bank, iss_m + L, iss_m)), p_rd.en.eq(iss_adv),
                     sc.i.valid.eq(iss_valid), sc.i.payload.p.eq(p_rd.data), sc.i.payload.last.eq(iss_last)]
        with m.If(iss_adv):
            m.d.sync += [iss_valid.eq(can_issue), iss_last.eq(iss_end)]
            with m.If(can_issue):
                m.d.sync += iss_m.eq(Mux(iss_end, 0, iss_m + 1))
                with m.If(iss_end):
                    m.d.sync += qy_bank.eq(~qy_bank)
                    m.d.comb += [issue_clr[b].eq(qy_bank == b) for b in range(2)]

        # -- score rows: [causal beat filter] -> row-stats and the row buffer, once each --------
        beat = Signal.like(sc.o.payload, name="beat")  # the beat as the row's keys see it
        drop = Signal(name="drop")                   # a beat of keys the row does not attend
        if cfg.causal:
            # row m keeps keys n <= m; the beat holding key m ends the row, later ones drop
            fil_bank = Signal(name="fil_bank")
            out_row = Signal(idx, name="out_row")    # the row of the beats on sc.o
            pos = Signal(range(L + P + 1), name="pos")  # key index of lane 0 of the beat
            rest = Signal(signed(len(pos) + 2), name="rest")
            count = sc.o.payload.count
            m.d.comb += [
                rest.eq(out_row + 1 - pos),
                drop.eq(pos > out_row),
                beat.a.eq(sc.o.payload.a),
                beat.count.eq(Mux(rest < count, rest, count)),
                beat.last.eq(sc.o.payload.last | (rest <= count)),
            ]
            with m.If(sc.o.valid & sc.o.ready):
                m.d.sync += pos.eq(Mux(sc.o.payload.last, 0, pos + count))
                with m.If(sc.o.payload.last):
                    m.d.sync += out_row.eq(out_row + 1)
                    with m.If(out_row == pick(lq_last, fil_bank)):
                        m.d.sync += [out_row.eq(0), fil_bank.eq(~fil_bank)]
        else:
            m.d.comb += beat.eq(sc.o.payload)
        row_layout = sc.o.payload.shape()
        row_width = len(sc.o.payload.as_value())
        m.submodules.row_buffer = rbuf = SyncFIFOBuffered(width=row_width, depth=cfg.row_buffer_depth)
        fwd = Signal(name="fwd")
        m.d.comb += [
            fwd.eq(sc.o.valid & ~drop),
            rs.i.payload.eq(beat), rs.i.valid.eq(fwd & rbuf.w_rdy),
            rbuf.w_data.eq(beat.as_value()), rbuf.w_en.eq(fwd & rs.i.ready),
            sc.o.ready.eq(drop | (rs.i.ready & rbuf.w_rdy)),
        ]

        # -- row set-ups, in row order ---------------------------------------------------------
        su_layout = rs.o.payload.shape()
        m.submodules.setup_buffer = sbuf = SyncFIFO(width=len(rs.o.payload.as_value()), depth=4)
        m.d.comb += [sbuf.w_data.eq(rs.o.payload.as_value()), sbuf.w_en.eq(rs.o.valid),
                     rs.o.ready.eq(sbuf.w_rdy)]
        r_beat = data.View(row_layout, rbuf.r_data)
        r_su = data.View(su_layout, sbuf.r_data)

        # -- weight stage: parallel keys per beat, a fixed pipeline in lock step ---------------
        adv = Signal(name="adv")
        pop = Signal(name="pop")
        m.d.comb += [pop.eq(adv & rbuf.r_rdy & sbuf.r_rdy), rbuf.r_en.eq(pop),
                     sbuf.r_en.eq(pop & r_beat.last)]
        wt_bank = Signal(name="wt_bank")
        wt_row = Signal(idx, name="wt_row")
        wt_beat = Signal(range(max(2, words)), name="wt_beat")
        wt_head_last = Signal(name="wt_head_last")
        m.d.comb += wt_head_last.eq(r_beat.last & (wt_row == pick(lq_last, wt_bank)))
        with m.If(pop):
            m.d.sync += wt_beat.eq(Mux(r_beat.last, 0, wt_beat + 1))
            with m.If(r_beat.last):
                m.d.sync += wt_row.eq(wt_row + 1)
                with m.If(wt_head_last):
                    m.d.sync += [wt_row.eq(0), wt_bank.eq(~wt_bank)]

        def stage(prev, name, **new):
            """The next pipeline stage: registers of ``prev`` (carried) and of ``new``.  A value is
            an Amaranth value, ``(value, shape)`` or a list of either (one per lane)."""
            out = {}
            for key, item in {**prev, **new}.items():
                def one(v, label):
                    value, shape = v if isinstance(v, tuple) else (v, None)
                    if shape is None:
                        shape = value.shape()
                    reg = Signal(shape, name=label)
                    with m.If(adv):
                        m.d.sync += reg.eq(value)
                    return reg
                if isinstance(item, list):
                    out[key] = [one(v, f"{name}_{key}{j}") for j, v in enumerate(item)]
                else:
                    out[key] = one(item, f"{name}_{key}")
            return out

        def carry(s, *drop):
            return {k: v for k, v in s.items() if k not in drop}

        lanes = range(P)
        sign_shape, shift_shape = signed(2), unsigned(cfg.shift_accumulate.shift_width)
        setup = {"a_max": r_su.a_max} if base2 else {
            "r": r_su.r, "uniform": r_su.uniform, "c_shift": r_su.c_shift, "sh": r_su.sh}
        stages = [stage({}, "sA", valid=pop, a=[r_beat.a[j] for j in lanes],
                        on=[j < r_beat.count for j in lanes], count=r_beat.count, last=r_beat.last,
                        first=wt_beat == 0, bank=wt_bank, word=wt_beat, head_last=wt_head_last, **setup)]
        s = stages[-1]
        if base2:
            # delta = A_max - A; e = #{k <= F: delta >= theta_k}; a key with delta >= theta_(F+1)
            # is dropped; t_n = F - e (thermometer code); W += 2^t_n; sh = P(W) - of on the last key
            stages.append(stage(carry(s, "a"), "sB", delta=[
                ((s["a_max"] - s["a"][j]).as_unsigned()[:cfg.delta_width], unsigned(cfg.delta_width))
                for j in lanes]))
            s = stages[-1]
            stages.append(stage(carry(s, "delta"), "sC", ge=[
                Cat(*[s["delta"][j] >= theta for theta in cfg.base2_thresholds]) for j in lanes]))
            s = stages[-1]
            sign, shift, weight = [], [], []
            for j in lanes:
                ge = s["ge"][j]
                keep = s["on"][j] & ~ge[F]
                t_sel = F
                for k in range(F):
                    t_sel = Mux(ge[k], F - 1 - k, t_sel)
                onehot = Cat(*[ge[F - 1 - t] & ~ge[F - t] if t < F else ~ge[0] for t in range(F + 1)])
                sign.append((keep, sign_shape))
                shift.append((Mux(keep, t_sel, 0), shift_shape))
                weight.append((Mux(keep, onehot, 0), unsigned(F + 1)))
            stages.append(stage(carry(s, "ge", "on"), "sD", sign=sign, shift=shift, weight=weight))
            s = stages[-1]
            stages.append(stage(carry(s, "weight"), "sE", wsum=(sum(s["weight"]), unsigned(cfg.wsum_width))))
            s = stages[-1]
            w_row = Signal(unsigned(cfg.wsum_width), name="w_row")   # the row's W up to this beat
            with m.If(adv & s["valid"]):
                m.d.sync += w_row.eq(Mux(s["first"], 0, w_row) + s["wsum"])
            stages.append(stage(carry(s, "wsum"), "sF"))
            s = stages[-1]
            i_w = pow2_exp(m, w_row, max(1, cfg.wsum_exp_max.bit_length()), "p_w")
            stages.append(stage(s, "sG", sh=(i_w - cfg.out_frac, signed(len(sa.i.payload.sh)))))
        else:
            # s_n = sign(A), t_n = F + P(|A|) - R; no term when t_n < 0, A = 0, the row uniform
            ew = cfg.row_stats.exp_width
            stages.append(stage(carry(s, "a"), "sB",
                                neg=[s["a"][j] < 0 for j in lanes], nz=[s["a"][j] != 0 for j in lanes],
                                mag=[(Mux(s["a"][j] < 0, -s["a"][j], s["a"][j]), unsigned(cfg.score_width))
                                     for j in lanes]))
            s = stages[-1]
            stages.append(stage(carry(s, "mag"), "sC", i_a=[
                pow2_exp(m, s["mag"][j], ew, f"p_a{j}") for j in lanes]))
            s = stages[-1]
            sign, shift = [], []
            for j in lanes:
                t_n = Signal(signed(ew + 2 + F.bit_length()), name=f"t_n{j}")
                on = Signal(name=f"term_on{j}")
                m.d.comb += [t_n.eq(F + s["i_a"][j] - s["r"]),
                             on.eq(s["on"][j] & s["nz"][j] & ~s["uniform"] & (t_n >= 0))]
                sign.append((Mux(on, Mux(s["neg"][j], -1, 1), 0), sign_shape))
                shift.append((Mux(on, t_n, 0), shift_shape))
            stages.append(stage(carry(s, "i_a", "neg", "nz", "on", "r", "uniform"), "sD", sign=sign, shift=shift))
        final, pre = stages[-1], stages[-2]
        # a row's head_last flag waits in a FIFO beside shift-accumulate for the row's Z (the bank,
        # and so lq_last, may be refilled before then); deep enough never to hold the input
        m.submodules.last_buffer = lbuf = SyncFIFO(width=1, depth=cfg.shift_accumulate.latency + 2)
        room = ~final["last"] | lbuf.w_rdy
        m.d.comb += adv.eq(~final["valid"] | (sa.i.ready & room))

        # V_n of the final stage's beat: read with the stage before it
        for j in lanes:
            m.d.comb += [v_rd[j].addr.eq(Mux(pre["bank"], pre["word"] + words, pre["word"])),
                         v_rd[j].en.eq(adv),
                         sa.i.payload.v[j].eq(v_rd[j].data),
                         sa.i.payload.sign[j].eq(final["sign"][j]),
                         sa.i.payload.shift[j].eq(final["shift"][j])]
        m.d.comb += [sa.i.valid.eq(final["valid"] & room), sa.i.payload.count.eq(final["count"]),
                     sa.i.payload.last.eq(final["last"]), sa.i.payload.sh.eq(final["sh"])]
        if not base2:
            m.d.comb += sa.i.payload.c_shift.eq(final["c_shift"])
        with m.If(sa.i.valid & sa.i.ready & final["head_last"]):
            m.d.comb += [busy_clr[b].eq(final["bank"] == b) for b in range(2)]

        m.d.comb += [lbuf.w_data.eq(final["head_last"]), lbuf.w_en.eq(sa.i.valid & sa.i.ready & final["last"])]

        # -- output: Z_m and last (the head's row Lq - 1) ----------------------------------------
        m.d.comb += [self.o.payload.z.eq(sa.o.payload), self.o.payload.last.eq(lbuf.r_data),
                     self.o.valid.eq(sa.o.valid), sa.o.ready.eq(self.o.ready),
                     lbuf.r_en.eq(self.o.valid & self.o.ready)]
        return m


def _requantize(x, shift, width):
    """``x`` rounded by a right shift of ``shift`` (half away from zero) and saturated to a
    ``width``-bit signed value (``golden/quant.py`` ``requantize``; ``docs/numerics.md``).
    Saturation looks at the bits above ``width - 1``: all equal to the sign bit, or not."""
    if shift > 0:
        x = ((x + ((1 << (shift - 1)) - (x < 0))) >> shift).as_signed()
    if len(x) <= width:
        return x
    top = x[width - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    return Mux(fits, x[:width].as_signed(), Mux(x[-1], -(1 << (width - 1)), (1 << (width - 1)) - 1))


# ---- payload helpers (testbenches, vector replay): the layouts above through hdl.payload ------

def x_beats(cfg, X, *, last=True):
    """The ``x`` payloads of tokens ``X`` (``L x d_model``), ``last`` on the last token unless
    ``last`` is false (the padding lanes of a token's last beat 0)."""
    lanes, beats, layout, out = cfg.lanes, cfg.inner_product.beats, x_layout(cfg), []
    for t, row in enumerate(X):
        row = list(row) + [0] * (beats * lanes - len(row))
        for b in range(beats):
            end = last and t == len(X) - 1 and b == beats - 1
            out.append(pack(layout, {"x": row[b * lanes:(b + 1) * lanes], "last": int(end)}))
    return out


def v_words(cfg, V, *, last=True):
    """The ``v`` payloads of values ``V`` (``L x d_head``), ``last`` on the last one unless
    ``last`` is false."""
    layout = v_layout(cfg)
    return [pack(layout, {"v": row, "last": int(last and n == len(V) - 1)}) for n, row in enumerate(V)]


def unpack_last(cfg, word):
    """The ``last`` flag of an ``o`` payload."""
    return unpack(o_layout(cfg), word)["last"]


def unpack_output(cfg, word):
    """``Z_m`` (``d_head`` ints) of an ``o`` payload (its ``last`` flag: :func:`unpack_last`)."""
    return unpack(o_layout(cfg), word)["z"]
