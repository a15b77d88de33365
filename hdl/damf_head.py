"""The whole DAMF attention head (block ``damf-head``): ``X`` and ``V`` in, ``Z`` out.

The verified blocks wired together, with the per-key ``t_n`` stage and the buffers between
them::

    x --> inner-product --+-- q --> score.k (key buffer)
                          +-- p --> p buffer --(each row twice)--> score.i
    v --> V buffer                                                   |
                                   pass 1: score.o --> row-stats --> row set-up register
                                   pass 2: score.o --> serialiser --> t_n stage --> shift-accumulate --> o
                                                       (one key per cycle)  ^ V_n from the V buffer

Self-attention (optionally causal) or cross-attention, modes ``maclaurin``, ``maclaurin-abs``
and ``base2``; bit-exact with
:func:`damf.golden.damf_head_block.damf_head_block` (inner product, then
:func:`damf.golden.damf_head.damf_head`).  Widths and rounding are those of the parts
(``DamfHeadConfig``); the composition adds none: ``p`` and ``q`` are exact, ``Z`` has
``out_width = v_width + out_guard + out_frac`` bits, rounded half away from zero and saturated.

Mode ``base2`` (``docs/numerics.md`` section 8): ``row-stats`` returns only ``N`` and
``A_max``; the ``t_n`` stage compares ``A_max - A`` with the ``F + 1`` constant thresholds
(a thermometer code: ``t_n = F - e`` by a priority mux, the weight ``2^t_n`` one-hot), drops a
key past the last threshold, sums the weights into ``W`` and sends ``sh = P(W) - out_frac``
with the row's last key; ``shift-accumulate`` has no ``SV`` term.

Causal (``causal = True``): row ``m`` uses keys ``n <= m`` only.  The score unit still
computes whole rows; a beat filter between it and ``row-stats`` / the serialiser cuts each
beat to the keys ``n <= m``, ends the row on the beat holding key ``m`` and drops the beats
after it, so ``row-stats`` sees ``N = m + 1`` and ``shift-accumulate`` sums ``SV`` over the
keys it is sent (the prefix sum) with no change to either block.

Ports
-----
``clk``, ``rst``: the ``sync`` domain.

``x``: ``In(stream.Signature(StructLayout({"x": ArrayLayout(signed(x_width), lanes),
    "last": 1})))`` -- the tokens ``X_m``, ``beats = ceil(d_model / lanes)`` beats each, as
    the inner-product unit takes them (``hdl/inner_product.py``: element ``b*lanes + j`` in
    lane ``j`` of beat ``b``, padding lanes ignored).  ``last`` is read on a token's last beat
    and marks the head's last token: its index + 1 is the run-time length ``L``
    (``1..seq_len``; more than ``seq_len`` tokens without ``last`` is not allowed).

``y``: only with ``cross = True`` -- the key-side tokens ``Y_n``, same layout as ``x``;
    ``last`` gives ``Lk`` (``1..seq_len``).  Accepted after ``x``'s last token (both go through
    the one inner-product unit: ``p`` is kept from ``X``, ``q`` from ``Y``).

``v``: ``In(stream.Signature(StructLayout({"v": ArrayLayout(signed(v_width), d_head),
    "last": 1})))`` -- the value vectors ``V_n``, ``last`` on ``V_{Lk-1}`` (``Lk = L`` for
    self-attention, the length of ``Y`` for cross-attention).

``w``: only with ``weights = "runtime"`` -- the inner-product unit's weight stream, passed
    through unchanged (load ``u``, ``v`` between heads, before a head's first ``X`` beat).

``o``: ``Out(stream.Signature(ArrayLayout(signed(out_width), d_head)))`` -- ``Z_m`` for
    ``m = 0 .. Lq-1`` (``Lq = L``, or the length of ``X`` when cross), in order (``out_frac`` fraction bits, saturated).

Protocol
--------
A head is a *load* then a *query* phase.  Load: ``x`` (then ``y`` when cross) and ``v`` are
accepted in any interleaving until each has delivered its ``last`` and the last ``q`` has
reached the score unit's key buffer (``p`` goes to the p buffer, ``V`` to the V buffer).  Query: for each
``m``, ``p_m`` goes through the score unit twice.  Pass 1 streams the row ``A[m, :]`` to
``row-stats`` (``R``, ``t_C``, ``sh``, uniform flag).  Pass 2 recomputes the row (no row
buffer; the score unit is idle otherwise) and a serialiser hands one score per cycle to the
``t_n`` stage: ``s_n = sign(A_mn)``, ``t_n = F + P(|A_mn|) - R``, sent with ``s_n = 0`` when
``t_n < 0``, ``A_mn = 0`` or the row is uniform (as
:func:`damf.golden.shift_accumulate.rows_from_trace`), with ``V_n`` read from the V buffer,
to ``shift-accumulate``.  Rows overlap: pass 1 of row ``m + 1`` is issued right after pass 2
of row ``m`` and its set-up waits in ``row-stats``.  ``x`` and ``v`` are held (``ready``
low) during the query phase; the next head's load starts when the last key of the last row
has entered ``shift-accumulate`` (its ``Z`` rows still drain).  Backpressure on ``o`` stalls
the chain back to the score unit.

Timing (sources always valid, ``o`` always ready), from the first ``x`` handshake to the
last ``Z`` handshake of a head of ``L`` tokens (``beats = ceil(d_model / lanes)``,
``B = ceil(L / parallel)``, ``S`` = ``row-stats``' ``setup_cycles``, 4 in the maclaurin modes)::

    cycles_per_head(L) = beats L + B + L + latency + (L - 1) max(B + S + parallel (B - 1), L + 1)

and for cross-attention (``Lq`` queries, ``Lk`` keys, ``B = ceil(Lk / parallel)``)::

    cycles_per_head(Lq, Lk) = beats (Lq + Lk) + B + Lk + latency + (Lq - 1) max(B + S + parallel (B - 1), Lk + 1)

with ``latency = 13 + S`` (17: inner-product unit 4, score 4, row-stats ``S``, shift-accumulate
3 and two hand-over registers).  A row takes the score unit's pass 1 (``B`` beats), the wait
for its set-up (``S``) and pass 2 (a beat per ``parallel`` keys serialised), unless the
serialiser (``L`` keys, 1 cycle to change rows) is slower.  Causal: row ``m`` keeps
``b_m = ceil((m + 1) / parallel)`` beats of each pass (the other ``B - b_m`` are dropped, one
per cycle) and::

    cycles_per_head(L) = beats L + latency + max(B - S, 0) + 2
                         + sum_{m=1}^{L-1} max(G_{m-1} + max(B + 1, b_m + S) + 1, m + 2)
    G_m = parallel (b_m - 1) + B - b_m  if b_m >= 2,  max(2B - 1, S) - max(B, S)  if b_m = 1

(:meth:`~damf.head_config.DamfHeadBlockConfig.cycles_per_head`; the terms are explained at
:meth:`~damf.head_config.DamfHeadBlockConfig.row_period`; the causal sum is exact for every
``S <= 4``).  The tests check all three cycle-exactly.  A head queued right behind another
takes the same, counted from its own first ``x`` handshake.
Multi-head attention: one instance per head (the heads share only ``X``).
"""

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..head_config import DamfHeadBlockConfig
from .inner_product import InnerProduct, weight_word_layout
from .row_stats import RowStats, pow2_exp
from .score import Score
from .shift_accumulate import ShiftAccumulate

__all__ = ["DamfHead", "x_layout", "v_layout"]


def x_layout(cfg):
    """One beat of ``X``: ``lanes`` elements and the head's ``last`` flag."""
    return data.StructLayout({"x": data.ArrayLayout(signed(cfg.x_width), cfg.lanes), "last": unsigned(1)})


def v_layout(cfg):
    """One value vector ``V_n`` and the ``last`` flag."""
    return data.StructLayout({"v": data.ArrayLayout(signed(cfg.v_width), cfg.d_head), "last": unsigned(1)})


class DamfHead(wiring.Component):
    """One DAMF attention head from tokens ``X`` and values ``V`` to ``Z``.

    Parameters
    ----------
    config : :class:`~damf.head_config.DamfHeadBlockConfig`

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
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.out_width), config.d_head))),
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
        m = Module()
        m.submodules.inner_product = ip = InnerProduct(cfg.inner_product)
        m.submodules.score = sc = Score(cfg.score)
        m.submodules.row_stats = rs = RowStats(cfg.row_stats)
        m.submodules.shift_accumulate = sa = ShiftAccumulate(cfg.shift_accumulate)
        idx = range(max(2, L))

        query = Signal(name="query")                 # 0: load phase, 1: query phase
        last_idx = Signal(idx, name="last_idx")      # L - 1
        x_done, q_done, v_done = (Signal(name=n) for n in ("x_done", "q_done", "v_done"))
        x_beat = Signal(range(max(2, beats)), name="x_beat")
        x_tok = Signal(idx, name="x_tok")            # tokens accepted so far
        q_n = Signal(idx, name="q_n")                # p, q results stored so far
        v_n = Signal(idx, name="v_n")                # V_n stored so far
        head_end = Signal(name="head_end")           # the last key enters shift-accumulate

        # -- load: X (then Y when cross) through the inner-product unit ------------------------
        if cfg.weights == "runtime":
            m.d.comb += [ip.w.payload.eq(self.w.payload), ip.w.valid.eq(self.w.valid),
                         self.w.ready.eq(ip.w.ready)]
        x_take = ~query & ~x_done
        tok_end = x_beat == beats - 1
        if cfg.cross:
            y_done = Signal(name="y_done")
            y_tok = Signal(idx, name="y_tok")
            k_last_idx = Signal(idx, name="k_last_idx")  # Lk - 1
            y_take = ~query & x_done & ~y_done
            m.d.comb += [
                ip.i.payload.eq(Mux(x_done, self.y.payload.x.as_value(), self.x.payload.x.as_value())),
                ip.i.valid.eq((self.x.valid & x_take) | (self.y.valid & y_take)),
                self.x.ready.eq(ip.i.ready & x_take),
                self.y.ready.eq(ip.i.ready & y_take),
            ]
            in_fire = (self.x.valid & self.x.ready) | (self.y.valid & self.y.ready)
            with m.If(self.y.valid & self.y.ready & tok_end):
                m.d.sync += y_tok.eq(y_tok + 1)
                with m.If(self.y.payload.last):
                    m.d.sync += [y_done.eq(1), k_last_idx.eq(y_tok)]
        else:
            m.d.comb += [ip.i.payload.eq(self.x.payload.x), ip.i.valid.eq(self.x.valid & x_take),
                         self.x.ready.eq(ip.i.ready & x_take)]
            in_fire = self.x.valid & self.x.ready
        with m.If(in_fire):
            m.d.sync += x_beat.eq(Mux(tok_end, 0, x_beat + 1))
        with m.If(self.x.valid & self.x.ready & tok_end):
            m.d.sync += x_tok.eq(x_tok + 1)
            with m.If(self.x.payload.last):
                m.d.sync += [x_done.eq(1), last_idx.eq(x_tok)]

        # -- load: q to the score unit's key buffer, p to the p buffer -------------------------
        # (cross: the first Lq results are X's, only p kept; the next Lk are Y's, only q kept)
        p_shape = data.ArrayLayout(signed(cfg.pq_width), K)
        m.submodules.p_buffer = pbuf = Memory(shape=p_shape, depth=L, init=[])
        p_wr = pbuf.write_port()
        p_rd = pbuf.read_port(domain="comb")
        k_fire = Signal(name="k_fire")
        p_fire = Signal(name="p_fire")
        if cfg.cross:
            px_done = Signal(name="px_done")         # every p of X is in the p buffer
            k_n = Signal(idx, name="k_n")
            m.d.comb += [
                sc.k.valid.eq(ip.o.valid & px_done), ip.o.ready.eq(Mux(px_done, sc.k.ready, 1)),
                sc.k.payload.last.eq(y_done & (k_n == k_last_idx)),
                p_fire.eq(ip.o.valid & ~px_done),
            ]
            with m.If(p_fire & x_done & (q_n == last_idx)):
                m.d.sync += px_done.eq(1)
            with m.If(k_fire):
                m.d.sync += k_n.eq(k_n + 1)
            loaded = px_done & q_done & v_done
        else:
            m.d.comb += [
                sc.k.valid.eq(ip.o.valid), ip.o.ready.eq(sc.k.ready),
                sc.k.payload.last.eq(x_done & (q_n == last_idx)),
                p_fire.eq(k_fire),
            ]
            loaded = q_done & v_done
        m.d.comb += [k_fire.eq(sc.k.valid & sc.k.ready), p_wr.addr.eq(q_n), p_wr.en.eq(p_fire)]
        for k in range(K):
            m.d.comb += [sc.k.payload.q[k].eq(ip.o.payload.q[k]), p_wr.data[k].eq(ip.o.payload.p[k])]
        with m.If(p_fire):
            m.d.sync += q_n.eq(q_n + 1)
        with m.If(k_fire & sc.k.payload.last):
            m.d.sync += q_done.eq(1)

        # -- load: V to the V buffer -----------------------------------------------------------
        v_shape = data.ArrayLayout(signed(cfg.v_width), cfg.d_head)
        m.submodules.v_buffer = vbuf = Memory(shape=v_shape, depth=L, init=[])
        v_wr = vbuf.write_port()
        v_rd = vbuf.read_port(domain="sync")
        m.d.comb += [self.v.ready.eq(~query & ~v_done), v_wr.addr.eq(v_n), v_wr.data.eq(self.v.payload.v),
                     v_wr.en.eq(self.v.valid & self.v.ready)]
        with m.If(self.v.valid & self.v.ready):
            m.d.sync += v_n.eq(v_n + 1)
            with m.If(self.v.payload.last):
                m.d.sync += v_done.eq(1)

        # -- query: issue p_m twice per row (pass 1, pass 2) -----------------------------------
        iss_m = Signal(idx, name="iss_m")
        iss_pass = Signal(name="iss_pass")
        iss_done = Signal(name="iss_done")
        m.d.comb += [p_rd.addr.eq(iss_m), sc.i.payload.eq(p_rd.data), sc.i.valid.eq(query & ~iss_done)]
        with m.If(sc.i.valid & sc.i.ready):
            m.d.sync += iss_pass.eq(~iss_pass)
            with m.If(iss_pass):
                m.d.sync += iss_m.eq(iss_m + 1)
                with m.If(iss_m == last_idx):
                    m.d.sync += iss_done.eq(1)

        # -- phases ------------------------------------------------------------------------------
        with m.If(~query & loaded):
            m.d.sync += [query.eq(1), iss_m.eq(0), iss_pass.eq(0), iss_done.eq(0)]
        with m.If(head_end):
            m.d.sync += [query.eq(0), x_done.eq(0), q_done.eq(0), v_done.eq(0),
                         x_tok.eq(0), q_n.eq(0), v_n.eq(0)]
            if cfg.cross:
                m.d.sync += [y_done.eq(0), px_done.eq(0), y_tok.eq(0), k_n.eq(0)]

        # -- score rows: pass 1 to row-stats, pass 2 to the serialiser (alternating rows) ------
        route = Signal(name="route")                 # 0: pass 1, 1: pass 2
        ser_take = Signal(name="ser_take")
        beat = Signal.like(sc.o.payload, name="beat")  # the beat as the row's keys see it
        drop = Signal(name="drop")                   # a beat of keys the row does not attend
        if cfg.causal:
            # causal: row m keeps keys n <= m; the beat holding key m ends the row, later ones drop
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
                with m.If(sc.o.payload.last & route):
                    m.d.sync += out_row.eq(out_row + 1)
            with m.If(head_end):
                m.d.sync += out_row.eq(0)
        else:
            m.d.comb += beat.eq(sc.o.payload)
        m.d.comb += [
            rs.i.payload.eq(beat), rs.i.valid.eq(sc.o.valid & ~route & ~drop),
            sc.o.ready.eq(drop | Mux(route, ser_take, rs.i.ready)),
        ]
        with m.If(sc.o.valid & sc.o.ready & sc.o.payload.last):
            m.d.sync += route.eq(~route)

        # -- row set-up register: the set-up of the row being serialised -----------------------
        base2 = cfg.mode == "base2"
        su_valid = Signal(name="su_valid")
        m.d.comb += rs.o.ready.eq(~su_valid)
        if base2:
            # base2: the row's A_max (the exponents, W and sh are made per key below)
            su = {"a_max": Signal(signed(cfg.score_width), name="su_a_max")}
        else:
            ew = cfg.row_stats.exp_width
            su = {"r": Signal(unsigned(ew), name="su_r"), "uniform": Signal(name="su_uniform"),
                  "c_shift": Signal.like(rs.o.payload.c_shift, name="su_c_shift"),
                  "sh": Signal.like(rs.o.payload.sh, name="su_sh")}
        with m.If(rs.o.valid & rs.o.ready):
            m.d.sync += su_valid.eq(1)
            m.d.sync += [reg.eq(getattr(rs.o.payload, name)) for name, reg in su.items()]

        # -- serialiser: one score of a pass-2 beat per cycle ----------------------------------
        s1_valid = Signal(name="s1_valid")
        advance = Signal(name="advance")
        m.d.comb += advance.eq(~s1_valid | sa.i.ready)
        h_valid = Signal(name="h_valid")
        h_beat = Signal.like(sc.o.payload, name="h_beat")
        lane = Signal(range(max(2, P)), name="lane")
        key_n = Signal(idx, name="key_n")
        emit, lane_end, row_end = Signal(name="emit"), Signal(name="lane_end"), Signal(name="row_end")
        m.d.comb += [
            emit.eq(h_valid & su_valid & advance),
            lane_end.eq(lane == h_beat.count - 1),
            row_end.eq(h_beat.last & lane_end),
            ser_take.eq(~h_valid | (emit & lane_end)),
        ]
        with m.If(route & sc.o.valid & ~drop & ser_take):
            m.d.sync += [h_valid.eq(1), h_beat.eq(beat), lane.eq(0)]
        with m.Elif(emit & lane_end):
            m.d.sync += h_valid.eq(0)
        with m.Elif(emit):
            m.d.sync += lane.eq(lane + 1)
        with m.If(emit):
            m.d.sync += key_n.eq(Mux(row_end, 0, key_n + 1))
            with m.If(row_end):
                m.d.sync += su_valid.eq(0)

        # -- stage 1: the key's score and its row's set-up; V_n read alongside -----------------
        s1_a = Signal(signed(cfg.score_width), name="s1_a")
        s1_last = Signal(name="s1_last")
        s1 = {name: Signal.like(reg, name=f"s1_{name}") for name, reg in su.items()}
        m.d.comb += [v_rd.addr.eq(key_n), v_rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(emit), s1_a.eq(h_beat.a[lane]), s1_last.eq(row_end)]
            m.d.sync += [s1[name].eq(reg) for name, reg in su.items()]

        m.d.comb += [sa.i.valid.eq(s1_valid), sa.i.payload.v.eq(v_rd.data), sa.i.payload.last.eq(s1_last)]
        if base2:
            # -- base2 t_n stage: delta = A_max - A; e = #{k <= F: delta >= theta_k}; a key with
            # delta >= theta_(F+1) is dropped; t_n = F - e; W += 2^t_n; sh = P(W) - of on the last key
            delta = Signal(unsigned(cfg.delta_width), name="delta")
            m.d.comb += delta.eq(s1["a_max"] - s1_a)
            ge = [Signal(name=f"ge{k}") for k in range(1, F + 2)]   # ge[k-1]: delta >= theta_k
            for g, theta in zip(ge, cfg.base2_thresholds):
                m.d.comb += g.eq(delta >= theta)
            keep = Signal(name="keep")
            t_n = Signal(range(F + 1), name="t_n")
            m.d.comb += keep.eq(~ge[F])
            # e is a thermometer code over ge[0..F-1]: t_n = F - e, and the weight 2^t_n is one-hot
            t_sel = F
            for k in range(F):
                t_sel = Mux(ge[k], F - 1 - k, t_sel)
            m.d.comb += t_n.eq(t_sel)
            weight = Signal(unsigned(F + 1), name="weight")
            onehot = [ge[F - 1 - t] & ~ge[F - t] if t < F else ~ge[0] for t in range(F + 1)]
            m.d.comb += weight.eq(Mux(keep, Cat(*onehot), 0))
            w_acc = Signal(unsigned(cfg.wsum_width), name="w_acc")
            w_row = Signal(unsigned(cfg.wsum_width), name="w_row")
            m.d.comb += w_row.eq(w_acc + weight)
            i_w = pow2_exp(m, w_row, max(1, cfg.wsum_exp_max.bit_length()), "p_w")
            with m.If(sa.i.valid & sa.i.ready):
                m.d.sync += w_acc.eq(Mux(s1_last, 0, w_row))
            m.d.comb += [
                sa.i.payload.sign.eq(keep),
                sa.i.payload.shift.eq(Mux(keep, t_n, 0)),
                sa.i.payload.sh.eq(i_w - cfg.out_frac),
            ]
        else:
            # -- t_n stage: s_n = sign(A), t_n = F + P(|A|) - R; no term when t_n < 0, A = 0, uniform
            mag = Signal(unsigned(cfg.score_width), name="mag")
            m.d.comb += mag.eq(Mux(s1_a < 0, -s1_a, s1_a))
            i_a = pow2_exp(m, mag, ew, "p_a")
            t_n = Signal(signed(ew + 2 + F.bit_length()), name="t_n")
            on = Signal(name="term_on")
            m.d.comb += [
                t_n.eq(F + i_a - s1["r"]),
                on.eq((s1_a != 0) & ~s1["uniform"] & (t_n >= 0)),
                sa.i.payload.sign.eq(Mux(on, Mux(s1_a < 0, -1, 1), 0)),
                sa.i.payload.shift.eq(Mux(on, t_n, 0)),
                sa.i.payload.c_shift.eq(s1["c_shift"]),
                sa.i.payload.sh.eq(s1["sh"]),
            ]
        rows_done = Signal(idx, name="rows_done")
        with m.If(sa.i.valid & sa.i.ready & s1_last):
            m.d.sync += rows_done.eq(rows_done + 1)
            with m.If(rows_done == last_idx):
                m.d.sync += rows_done.eq(0)
                m.d.comb += head_end.eq(1)

        # -- output ------------------------------------------------------------------------------
        m.d.comb += [self.o.payload.eq(sa.o.payload), self.o.valid.eq(sa.o.valid), sa.o.ready.eq(self.o.ready)]
        return m


# ---- payload helpers for testbenches (plain integers, lane 0 in the least significant bits) ---

def _pack(values, width):
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def x_beats(cfg, X):
    """The ``x`` payloads of tokens ``X`` (``L x d_model``), ``last`` on the last token."""
    lanes, out = cfg.lanes, []
    for t, row in enumerate(X):
        row = list(row) + [0] * (cfg.inner_product.beats * lanes - len(row))
        for b in range(cfg.inner_product.beats):
            word = _pack(row[b * lanes:(b + 1) * lanes], cfg.x_width)
            last = t == len(X) - 1 and b == cfg.inner_product.beats - 1
            out.append(word | (int(last) << (lanes * cfg.x_width)))
    return out


def v_words(cfg, V):
    """The ``v`` payloads of values ``V`` (``L x d_head``), ``last`` on the last one."""
    return [_pack(row, cfg.v_width) | (int(n == len(V) - 1) << (cfg.d_head * cfg.v_width))
            for n, row in enumerate(V)]


def unpack_output(cfg, word):
    """``Z_m`` (``d_head`` ints) of an ``o`` payload."""
    w, out = cfg.out_width, []
    for _ in range(cfg.d_head):
        x = word & ((1 << w) - 1)
        word >>= w
        out.append(x - (1 << w) if x >> (w - 1) else x)
    return out
