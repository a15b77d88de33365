"""Score unit of the DAMF head (block ``score``): ``A[m, n] = sum_k p[m, k] * q[n, k]``.

The key vectors ``q_n`` of a head are loaded into one of two key banks; every query ``p_m``
of that head then streams its row of scores ``A[m, 0 .. Lk-1]``, ``parallel`` scores per
beat.  With two banks the next head's keys load while the current head's queries run.

Ports
-----
``clk``, ``rst``: the ``sync`` domain; ``rst`` (synchronous) forgets both banks.

``k``: ``In(stream.Signature(key_layout))`` -- one key ``q_n`` per beat; a *load* is ``Lk``
    beats (``1 <= Lk <= seq_len``), the last one with ``last = 1``::

        k__payload[j*pq_width +: pq_width] = q[n][j]      for j < rank
        k__payload[rank*pq_width]          = last

``i``: ``In(stream.Signature(query_layout))`` -- one query ``p_m`` per beat; ``last = 1``
    marks the last query of the *set* that uses the current bank::

        i__payload[j*pq_width +: pq_width] = p[m][j]      for j < rank
        i__payload[rank*pq_width]          = last

``o``: ``Out(stream.Signature(output_layout))`` -- per query, ``ceil(Lk / parallel)``
    beats in order; beat ``b`` carries ``A[m, b*parallel + j]`` in lane ``j``::

        o__payload[j*score_width +: score_width] = A[m][b*parallel + j]   for j < count
        o__payload[parallel*score_width +: cw]   = count  (valid lanes, 1..parallel)
        o__payload[parallel*score_width + cw]    = last   (1 on the row's last beat)

    with ``cw = bits(parallel)``.  Only the last beat of a row can have ``count <
    parallel``; its lanes ``j >= count`` are undefined (don't care).

Bank protocol
-------------
* Loads on ``k`` alternate between bank 0 and bank 1; the first load after reset goes to
  bank 0.  A bank is *free* after reset and again once its query set has finished; a load
  into a bank is accepted only while that bank is free (``k.ready`` is low otherwise), so a
  load waits for the set two heads back, never for the set that is running.
* Queries read the oldest loaded bank whose set is not finished, so sets alternate banks like
  loads do.  A query is accepted only once its bank's load has completed (the cycle after
  its last key).  When the query with ``last`` has issued its whole row the bank is free
  (the next load into it may start in the next cycle) and the next query reads the other
  bank; rows follow back to back across sets.
* Each set has at least one query (the one with ``last``); keys beyond ``seq_len`` without
  ``last`` are not allowed (they would run into the other bank).  Driving it: queue every
  head's keys on ``k`` and its queries on ``i`` (``last`` on each set's final query) in any
  interleaving; the unit orders them.

Contract
--------
* Exact arithmetic: ``score_width`` (``DamfHeadConfig``) holds every score; nothing
  overflows or rounds.  ``parallel * rank`` multipliers of ``pq_width x pq_width`` bits
  (one ECP5 ``MULT18X18D`` each up to 18 bits).
* Key banks: one memory of ``2 * words`` words of ``parallel * rank * pq_width`` bits
  (``words = ceil(seq_len / parallel)``), bank ``b`` at words ``b*words ..``, with one write
  port (a write lane per key) and one synchronous read port.  One memory rather than two: a
  load writes one bank while the queries read the other, so one write and one read port
  serve both; the bank is an address offset (no wide multiplexer between two read ports in
  front of the multipliers), and the doubled depth maps to the same block RAM (or LUT RAM)
  as one bank as long as ``2 * words`` fits its depth.
* Throughput: one output beat per cycle; rows back to back (the next query is accepted in
  the cycle that issues the last word of the current row), so a query takes
  ``ceil(Lk / parallel)`` cycles and a load ``Lk`` cycles, overlapping the other bank's set.
* Latency (query handshake to its first beat's handshake, sink ready): issue (the key word
  is read), key word register (a block RAM's clock-to-out alone is about 6 ns on ECP5),
  products; rank 1: the products are the output register, ``latency = 4``; rank > 1:
  product register, the rank-sum adder tree registered every ``rank_levels_per_stage = 2``
  levels, output register, ``latency = 5 + (ceil(log2(rank)) - 1) // 2`` (rank 2..4: 5,
  16: 6, 64: 7).
* Cycles, all keys and queries offered from the start and the sink always ready: one head
  ``cycles(Lq, Lk) = Lk + Lq * ceil(Lk / parallel) + latency`` from the first key handshake
  to the last beat handshake; a sequence of heads :meth:`ScoreConfig.schedule` (load ``j``
  starts at ``max(end of load j-1, bank freed by set j-2) + 1``; set ``j`` at ``max(end of
  load j + 1, the cycle set j-1 issues its last word)``).
* Backpressure stalls the whole pipeline: ``i.ready`` depends combinationally on
  ``o.ready`` while a row is issued; ``k.ready`` only on the bank state.
* Timing (``damf synth`` flows, ECP5 LFE5U-85F out of context, nextpnr seed 1): default
  preset (``pq_width`` 8, rank 1, ``parallel`` 2; keys in LUT RAM) 51 LUTs, 128 FFs,
  2 DSPs, 145 MHz; bert-base (``seq_len`` 128, keys in a block RAM) 119 LUTs, 2 DSPs,
  128 MHz (without the key word register: 72 MHz); rank 16, ``pq_width`` 8 at ``seq_len``
  8: 836 LUTs, 32 DSPs, 124 MHz; rank 64 (full rank at bert-base), ``pq_width`` 8: 4,461
  LUTs, 128 DSPs, 29 block RAMs, 88 MHz, limited by routing to and from the multipliers
  spread over the chip (registers inside the ``MULT18X18D``, which this flow does not
  infer, would remove it; a second product register placed freely did not help).

Reset
-----
Synchronous ``rst`` clears both banks' ``full`` flags (both free; the next load goes to bank
0), the key write pointer (bank, word, lane), the query side (bank being read, issued word,
``busy``, set flags) and the valid bit of every pipeline stage, so a row in flight is dropped
and ``o.valid`` is low after it (every register has a reset value, as Amaranth gives any
``sync`` signal).  The key memory is not cleared: a key word is read only by the queries of a
bank whose load has completed after the reset, so stale keys are never used.  A query offered before any load waits (``i.ready`` low) until its
bank's load is complete.
"""

import functools

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import ScoreConfig
from .payload import pack, unpack

__all__ = ["Score", "key_layout", "query_layout", "output_layout",
           "pack_key", "pack_query", "unpack_output", "pack_output"]


@functools.cache
def key_layout(cfg):
    """One key: ``q`` (rank values) and the load's ``last`` flag."""
    return data.StructLayout({"q": data.ArrayLayout(signed(cfg.pq_width), cfg.rank), "last": unsigned(1)})


@functools.cache
def query_layout(cfg):
    """One query: ``p`` (rank values) and ``last``, the last query of the set using the bank."""
    return data.StructLayout({"p": data.ArrayLayout(signed(cfg.pq_width), cfg.rank), "last": unsigned(1)})


@functools.cache
def output_layout(cfg):
    """One beat of a score row: ``a`` (parallel scores), ``count`` (valid lanes), ``last``."""
    return data.StructLayout({
        "a": data.ArrayLayout(signed(cfg.score_width), cfg.parallel),
        "count": unsigned(cfg.parallel.bit_length()),
        "last": unsigned(1),
    })


class Score(wiring.Component):
    """Outer product of the query stream ``p`` and two banks of buffered keys ``q``.

    Parameters
    ----------
    config : :class:`~damf.config.ScoreConfig`

    The stream protocol, payload layouts, latency and throughput are in the module
    docstring (``hdl/score.py``).
    """

    def __init__(self, config):
        if not isinstance(config, ScoreConfig):
            self._MustUse__silence = True
            raise TypeError(f"Config must be a ScoreConfig, not {config!r}")
        self._config = config
        super().__init__({
            "k": In(stream.Signature(key_layout(config))),
            "i": In(stream.Signature(query_layout(config))),
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
        P, K, W = cfg.parallel, cfg.rank, cfg.words
        m = Module()

        adv = Signal(name="adv")                  # the pipeline moves (stalls only on o)
        m.d.comb += adv.eq(~self.o.valid | self.o.ready)

        # -- key banks: one memory, bank b at words b*W .. b*W + W - 1 -----------------------
        key_bits = K * cfg.pq_width
        m.submodules.keys = keys = Memory(shape=unsigned(P * key_bits), depth=2 * W, init=[])
        wr = keys.write_port(granularity=key_bits)
        rd = keys.read_port(domain="sync")
        addr = range(2 * W)

        full = [Signal(name=f"full{b}") for b in range(2)]     # loaded, query set not finished
        last_word = [Signal(addr, name=f"last_word{b}") for b in range(2)]
        last_count = [Signal(range(P + 1), name=f"last_count{b}", init=P) for b in range(2)]

        def pick(pair, bank):
            return Mux(bank, pair[1], pair[0])

        # -- key load: alternate banks, each accepted only while its bank is free -------------
        wr_bank = Signal(name="wr_bank")
        wr_addr = Signal(addr, name="wr_addr")
        wr_lane = Signal(range(max(2, P)), name="wr_lane")
        key_fire = Signal(name="key_fire")
        m.d.comb += [
            self.k.ready.eq(~pick(full, wr_bank)),
            key_fire.eq(self.k.valid & self.k.ready),
            wr.addr.eq(wr_addr),
            wr.data.eq(self.k.payload.q.as_value().replicate(P)),
        ]
        for j in range(P):
            m.d.comb += wr.en[j].eq(key_fire & (wr_lane == j))
        with m.If(key_fire):
            with m.If(self.k.payload.last):
                m.d.sync += [wr_bank.eq(~wr_bank), wr_addr.eq(Mux(wr_bank, 0, W)), wr_lane.eq(0)]
                for b in range(2):
                    with m.If(wr_bank == b):
                        m.d.sync += [full[b].eq(1), last_word[b].eq(wr_addr), last_count[b].eq(wr_lane + 1)]
            with m.Elif(wr_lane == P - 1):
                m.d.sync += [wr_lane.eq(0), wr_addr.eq(wr_addr + 1)]
            with m.Else():
                m.d.sync += wr_lane.eq(wr_lane + 1)

        # -- queries: accept, then issue one key word per cycle --------------------------------
        rd_bank = Signal(name="rd_bank")          # the bank of the current query set
        busy = Signal(name="busy")                # a row is being issued
        word = Signal(addr, name="word")          # its next word
        row_last_word = Signal(addr, name="row_last_word")
        row_last_count = Signal(range(P + 1), name="row_last_count")
        set_last = Signal(name="set_last")        # the row is its set's last: frees the bank
        p_reg = Signal(data.ArrayLayout(signed(cfg.pq_width), K), name="p_reg")
        issue, issue_last, set_done = Signal(name="issue"), Signal(name="issue_last"), Signal(name="set_done")
        next_bank = Signal(name="next_bank")      # the bank the next query reads
        m.d.comb += [
            issue.eq(busy & adv),
            issue_last.eq(word == row_last_word),
            set_done.eq(issue & issue_last & set_last),
            next_bank.eq(rd_bank ^ set_done),
            self.i.ready.eq(pick(full, next_bank) & (~busy | (issue & issue_last))),
            rd.addr.eq(word),
            rd.en.eq(adv),
        ]
        with m.If(set_done):
            m.d.sync += rd_bank.eq(~rd_bank)
            for b in range(2):
                with m.If(rd_bank == b):
                    m.d.sync += full[b].eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), word.eq(Mux(next_bank, W, 0)), p_reg.eq(self.i.payload.p),
                         set_last.eq(self.i.payload.last),
                         row_last_word.eq(pick(last_word, next_bank)),
                         row_last_count.eq(pick(last_count, next_bank))]
        with m.Elif(issue):
            with m.If(issue_last):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += word.eq(word + 1)

        # -- stage 0: the key word is read; the row's control travels alongside ------------------
        s0_valid = Signal(name="s0_valid")
        s0_last = Signal(name="s0_last")
        s0_count = Signal(range(P + 1), name="s0_count")
        s0_p = Signal(data.ArrayLayout(signed(cfg.pq_width), K), name="s0_p")
        with m.If(adv):
            m.d.sync += [s0_valid.eq(issue), s0_last.eq(issue_last),
                         s0_count.eq(Mux(issue_last, row_last_count, P)), s0_p.eq(p_reg)]

        def register(value, name):
            reg = Signal(value.shape(), name=name)
            with m.If(adv):
                m.d.sync += reg.eq(value)
            return reg

        # -- stage 1: the key word registered (a block RAM's clock-to-out is half a cycle) --------
        ctl = {name: register(v, f"s1_{name}") for name, v in
               {"valid": s0_valid, "last": s0_last, "count": s0_count}.items()}
        s1_p = register(s0_p.as_value(), "s1_p")
        s1_keys = register(rd.data, "s1_keys")
        p_vec = data.View(data.ArrayLayout(signed(cfg.pq_width), K), s1_p)
        key_word = data.View(data.ArrayLayout(data.ArrayLayout(signed(cfg.pq_width), K), P), s1_keys)

        # -- stage 2: parallel * rank multipliers, registered (rank 1: the output register) ------
        products = [[p_vec[k] * key_word[j][k] for k in range(K)] for j in range(P)]

        if K > 1:
            products = [[register(x, f"prod{j}_{k}") for k, x in enumerate(row)]
                        for j, row in enumerate(products)]
            ctl = {name: register(v, f"prod_{name}") for name, v in ctl.items()}

        # -- rank sums: an adder tree, registered every `levels_per_stage` levels ----------------
        for level in range(1, cfg.rank_levels + 1):
            products = [[row[i] + row[i + 1] if i + 1 < len(row) else row[i] for i in range(0, len(row), 2)]
                        for row in products]
            if level % cfg.rank_levels_per_stage == 0 and level < cfg.rank_levels:
                products = [[register(x, f"sum{level}_{j}_{i}") for i, x in enumerate(row)]
                            for j, row in enumerate(products)]
                ctl = {name: register(v, f"sum{level}_{name}") for name, v in ctl.items()}

        # -- the output register ---------------------------------------------------------------
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(ctl["valid"]), self.o.payload.last.eq(ctl["last"]),
                         self.o.payload.count.eq(ctl["count"])]
            for j in range(P):
                m.d.sync += self.o.payload.a[j].eq(products[j][0])

        return m


# ---- payload helpers (testbenches, vector replay): the layouts above through hdl.payload ------

def pack_key(cfg, q, last):
    """The ``k`` payload of key ``q`` (rank values); ``last`` ends the load."""
    return pack(key_layout(cfg), {"q": q, "last": int(bool(last))})


def pack_query(cfg, p, last=False):
    """The ``i`` payload of query ``p`` (rank values); ``last`` ends the bank's query set."""
    return pack(query_layout(cfg), {"p": p, "last": int(bool(last))})


def unpack_output(cfg, word):
    """``(scores, count, last)`` of an ``o`` payload; ``scores`` holds the ``count`` valid lanes."""
    beat = unpack(output_layout(cfg), word)
    return beat["a"][:beat["count"]], beat["count"], bool(beat["last"])


def pack_output(cfg, scores, last, *, pad=()):
    """An ``o`` payload (also the ``row-stats`` input) carrying ``scores`` (1..parallel),
    ``count = len(scores)``; the lanes past the count hold ``pad`` (default 0)."""
    lanes = list(scores) + list(pad)
    return pack(output_layout(cfg), {"a": lanes + [0] * (cfg.parallel - len(lanes)),
                                     "count": len(scores), "last": int(bool(last))})
