"""Score unit of the DAMF head (block ``score``): ``A[m, n] = sum_k p[m, k] * q[n, k]``.

The key-side vectors ``q_n`` of one sequence are loaded into a key buffer; every query
``p_m`` then streams its row of scores ``A[m, 0 .. Lk-1]``, ``parallel`` scores per beat.

Ports
-----
``clk``, ``rst``: the ``sync`` domain; ``rst`` (synchronous) forgets the loaded keys.

``k``: ``In(stream.Signature(key_layout))`` -- one key ``q_n`` per beat, a *load* is
    ``Lk`` beats (``1 <= Lk <= seq_len``), the last one with ``last = 1``::

        k__payload[j*pq_width +: pq_width] = q[n][j]      for j < rank
        k__payload[rank*pq_width]          = last

    A load is accepted only between query rows (``k.ready`` is low while a row is issued);
    once its first key is accepted, ``i.ready`` stays low until its last key.  When a key
    and a query are both offered between rows, the key goes first.  Queries accepted before
    a load use the old keys.  Keys beyond ``seq_len`` without ``last`` wrap (not allowed).

``i``: ``In(stream.Signature(ArrayLayout(signed(pq_width), rank)))`` -- one query ``p_m``
    per beat (``i__payload[j*pq_width +: pq_width] = p[m][j]``).  Accepted only once a
    load has completed.

``o``: ``Out(stream.Signature(output_layout))`` -- per query, ``ceil(Lk / parallel)``
    beats in order; beat ``b`` carries ``A[m, b*parallel + j]`` in lane ``j``::

        o__payload[j*score_width +: score_width] = A[m][b*parallel + j]   for j < count
        o__payload[parallel*score_width +: cw]   = count  (valid lanes, 1..parallel)
        o__payload[parallel*score_width + cw]    = last   (1 on the row's last beat)

    with ``cw = bits(parallel)``.  Only the last beat of a row can have ``count <
    parallel``; its lanes ``j >= count`` are undefined (don't care).

Contract
--------
* Exact arithmetic: ``score_width`` (``DamfHeadConfig``) holds every score; nothing
  overflows or rounds.  ``parallel * rank`` multipliers of ``pq_width x pq_width`` bits.
* Key buffer: a ``words x (parallel * rank * pq_width)`` memory (``words =
  ceil(seq_len / parallel)``) with one write lane per key and one synchronous read port.
* Throughput: one output beat per cycle; rows follow back to back (the next query is
  accepted in the cycle that issues the last beat of the current row), so a query takes
  ``ceil(Lk / parallel)`` cycles; a load takes ``Lk`` cycles.
* Latency: the first beat of a row is handed over ``latency = 4`` cycles after the
  query's handshake (sink ready): issue/read, multiply, rank sum, output register.
* One head (``Lk`` keys, then ``Lq`` queries, source always valid, sink always ready)
  takes ``cycles(Lq, Lk) = Lk + Lq * ceil(Lk / parallel) + latency`` cycles from the first
  key handshake to the last score handshake (:meth:`ScoreConfig.cycles`).
* Backpressure stalls the whole pipeline: ``i.ready`` depends combinationally on
  ``o.ready``.
"""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..head_config import ScoreConfig

__all__ = ["Score", "key_layout", "output_layout"]


def key_layout(cfg):
    """One key: ``q`` (rank values) and the load's ``last`` flag."""
    return data.StructLayout({"q": data.ArrayLayout(signed(cfg.pq_width), cfg.rank), "last": unsigned(1)})


def output_layout(cfg):
    """One beat of a score row: ``a`` (parallel scores), ``count`` (valid lanes), ``last``."""
    return data.StructLayout({
        "a": data.ArrayLayout(signed(cfg.score_width), cfg.parallel),
        "count": unsigned(cfg.parallel.bit_length()),
        "last": unsigned(1),
    })


class Score(wiring.Component):
    """Outer product of the query stream ``p`` and a buffered key sequence ``q``.

    Parameters
    ----------
    config : :class:`~damf.head_config.ScoreConfig`

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
            "i": In(stream.Signature(data.ArrayLayout(signed(config.pq_width), config.rank))),
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
        P, K = cfg.parallel, cfg.rank
        m = Module()

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # -- key buffer: `words` words of `parallel` keys, one write lane per key -------------
        key_bits = K * cfg.pq_width
        m.submodules.keys = keys = Memory(shape=unsigned(P * key_bits), depth=cfg.words, init=[])
        wr = keys.write_port(granularity=key_bits)
        rd = keys.read_port(domain="sync")
        key_word = data.View(data.ArrayLayout(data.ArrayLayout(signed(cfg.pq_width), K), P), rd.data)

        wr_word = Signal(range(max(2, cfg.words)), name="wr_word")   # position of the next key
        wr_lane = Signal(range(max(2, P)), name="wr_lane")
        last_word = Signal(range(max(2, cfg.words)), name="last_word")  # of the loaded sequence
        last_count = Signal(range(P + 1), name="last_count", init=P)
        loaded = Signal(name="loaded")
        loading = Signal(name="loading")
        busy = Signal(name="busy")                           # a row is being issued
        word = Signal(range(max(2, cfg.words)), name="word")         # next word of the row
        p_reg = Signal(data.ArrayLayout(signed(cfg.pq_width), K), name="p_reg")

        # -- key load -------------------------------------------------------------------------
        key_fire = Signal()
        m.d.comb += [
            self.k.ready.eq(~busy),
            key_fire.eq(self.k.valid & self.k.ready),
            loading.eq((wr_word != 0) | (wr_lane != 0)),
            wr.addr.eq(wr_word),
            wr.data.eq(self.k.payload.q.as_value().replicate(P)),
        ]
        for j in range(P):
            m.d.comb += wr.en[j].eq(key_fire & (wr_lane == j))
        with m.If(key_fire):
            with m.If(self.k.payload.last):
                m.d.sync += [wr_word.eq(0), wr_lane.eq(0), last_word.eq(wr_word),
                             last_count.eq(wr_lane + 1), loaded.eq(1)]
            with m.Elif(wr_lane == P - 1):
                m.d.sync += [wr_lane.eq(0), wr_word.eq(wr_word + 1)]
            with m.Else():
                m.d.sync += wr_lane.eq(wr_lane + 1)

        # -- query accept and issue: one buffer word per cycle ---------------------------------
        issue = Signal()
        issue_last = Signal()
        m.d.comb += [
            issue.eq(busy & advance),
            issue_last.eq(word == last_word),
            self.i.ready.eq(loaded & ~loading & ~self.k.valid & (~busy | (advance & issue_last))),
            rd.addr.eq(word),
            rd.en.eq(advance),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), word.eq(0), p_reg.eq(self.i.payload)]
        with m.Elif(issue):
            with m.If(issue_last):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += word.eq(word + 1)

        # -- stage 0: the word is read; the row's control travels alongside --------------------
        s0_valid = Signal(name="s0_valid")
        s0_last = Signal(name="s0_last")
        s0_count = Signal(range(P + 1), name="s0_count")
        s0_p = Signal(data.ArrayLayout(signed(cfg.pq_width), K), name="s0_p")
        with m.If(advance):
            m.d.sync += [s0_valid.eq(issue), s0_last.eq(issue_last),
                         s0_count.eq(Mux(issue_last, last_count, P)), s0_p.eq(p_reg)]

        # -- stage 1: parallel * rank multipliers ---------------------------------------------
        s1_valid = Signal(name="s1_valid")
        s1_last = Signal(name="s1_last")
        s1_count = Signal(range(P + 1), name="s1_count")
        prod_width = 2 * cfg.pq_width
        s1_prod = [[Signal(signed(prod_width), name=f"s1_prod{j}_{k}") for k in range(K)] for j in range(P)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(s0_valid), s1_last.eq(s0_last), s1_count.eq(s0_count)]
            for j in range(P):
                for k in range(K):
                    m.d.sync += s1_prod[j][k].eq(s0_p[k] * key_word[j][k])

        # -- stage 2: sum over the rank; the output register -----------------------------------
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(s1_valid), self.o.payload.last.eq(s1_last),
                         self.o.payload.count.eq(s1_count)]
            for j in range(P):
                total = s1_prod[j][0]
                for k in range(1, K):
                    total = total + s1_prod[j][k]
                m.d.sync += self.o.payload.a[j].eq(total)

        return m



# ---- payload helpers for testbenches (plain integers, lane 0 in the least significant bits) ---

def _pack(values, width):
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def _signed(v, width):
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def pack_key(cfg, q, last):
    """The ``k`` payload of key ``q`` (rank values)."""
    return _pack(q, cfg.pq_width) | (int(bool(last)) << (cfg.rank * cfg.pq_width))


def pack_query(cfg, p):
    """The ``i`` payload of query ``p`` (rank values)."""
    return _pack(p, cfg.pq_width)


def unpack_output(cfg, word):
    """``(scores, count, last)`` of an ``o`` payload; ``scores`` holds the ``count`` valid lanes."""
    w, P = cfg.score_width, cfg.parallel
    cw = P.bit_length()
    count = (word >> (P * w)) & ((1 << cw) - 1)
    last = bool((word >> (P * w + cw)) & 1)
    return [_signed(word >> (j * w), w) for j in range(count)], count, last


def pack_output(cfg, scores, last):
    """An ``o`` payload (also the ``row-stats`` input) carrying ``scores`` (1..parallel)."""
    w, P = cfg.score_width, cfg.parallel
    count = len(scores)
    return _pack(scores, w) | (count << (P * w)) | (int(bool(last)) << (P * w + P.bit_length()))
