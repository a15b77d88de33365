"""Baseline systolic score engine (block ``systolic-qk``): ``S = Q K^T``.

An output-stationary ``R x C`` array (``R = rows``, ``C = cols``) of signed multiply-accumulate
cells computes the attention scores ``S[i, j] = sum_k Q[i, k] * K[j, k]`` for ``Q`` and ``K``
of shape ``L x d_head`` (``L = seq_len``), exactly.  ``S`` is produced one ``R x C`` tile at a
time: the tile with origin ``(r0, c0)`` holds ``S[r0 .. r0+R-1, c0 .. c0+C-1]``, i.e. rows
``r0 ..`` of ``Q`` against rows ``c0 ..`` of ``K``.  There are
``tiles = ceil(L / R) * ceil(L / C)`` tiles, in *stream order*: tile rows outer, tile columns
inner (``(0, 0), (0, C), ..., (R, 0), (R, C), ...``; :meth:`SystolicQKConfig.tile_origins`).

Dataflow (output-stationary)
----------------------------
Cell ``(r, c)`` owns the score ``S[r0 + r, c0 + c]`` of the current tile and accumulates it in
place.  Elements of ``Q`` enter row ``r`` at the left edge and move one cell right per cycle;
elements of ``K`` enter column ``c`` at the top edge and move one cell down per cycle.  The
block skews them internally (row ``r`` of ``Q`` is delayed ``r`` cycles, column ``c`` of ``K``
``c`` cycles), so ``Q[r0+r, k]`` and ``K[c0+c, k]`` meet in cell ``(r, c)`` ``r + c`` cycles
after the beat carrying them.  The per-beat control (valid, first and last step of a tile)
travels along the anti-diagonal wavefront with them, so a cell starts a new tile's sum the
cycle the first step reaches it, while cells further down and right still finish the old
one: consecutive tiles overlap, and there is no fill or drain bubble between them.  When the
last step of a tile reaches a cell, its final sum is copied to the cell's score register;
a row of score registers is complete ``C`` cycles after its last step entered the row and is
sent out as one beat.

Ports
-----
``clk``, ``rst``: the ``sync`` domain; ``rst`` (synchronous, active high) empties the array.

``i``: ``In(stream.Signature(StructLayout({"q": ArrayLayout(signed(q_width), R),
"k": ArrayLayout(signed(k_width), C)})))`` -- one step ``k`` of one tile per beat.
    A tile is ``d_head`` consecutive beats, ``k = 0 .. d_head-1``; tiles follow in stream
    order.  The beat for step ``k`` of tile ``(r0, c0)`` carries::

        i__payload[r*q_width +: q_width]              = Q[r0 + r, k]    for r < R
        i__payload[R*q_width + c*k_width +: k_width]  = K[c0 + c, k]    for c < C

    (lane 0 in the least significant bits).  Lanes past the end of the sequence
    (``r0 + r >= L`` or ``c0 + c >= L``, only in the last tile row / column) are padding:
    any value, ignored.  So ``Q``'s slice is sent again for every tile column, ``K``'s for
    every tile row: ``tiles * d_head`` beats of ``R*q_width + C*k_width`` bits per ``S``.

``o``: ``Out(stream.Signature(ArrayLayout(signed(acc_width), C)))`` -- one row of a tile per beat.
    For every tile in stream order, one beat per row ``r`` with ``r0 + r < L`` (padding rows
    of the last tile row are not sent), in row order::

        o__payload[c*acc_width +: acc_width] = S[r0 + r, c0 + c]    for c < C

    Lanes with ``c0 + c >= L`` (last tile column only) are 0.  Beats per ``S``:
    ``score_beats = L * ceil(L / C)``.

Contract
--------
* Exact arithmetic: ``acc_width`` is the smallest width holding every sum of ``d_head``
  products of a ``q_width``-bit and a ``k_width``-bit signed integer
  (``signed_range_width(d_head * min_product, d_head * max_product)``); nothing overflows,
  rounds or saturates.
* Latency: the first score row of a tile is handed over ``latency = C + 3`` cycles after the
  handshake of the tile's last input beat (``o`` ready); its other rows follow on
  consecutive cycles.  A lone tile takes ``tile_cycles = d_head + R + C + 1`` cycles from its
  first input handshake to its last score handshake (a cell registers its product and
  accumulates it the next cycle, so a multiplier and an adder never share a cycle).
* Throughput: one input beat per cycle within a tile.  After a tile's last beat ``i.ready``
  stays low for ``hold = max(0, max(R, C) - d_head)`` cycles, so tiles start
  ``cycles_per_tile = max(d_head, R, C)`` cycles apart in steady state (the score register
  of a cell is reused after ``C`` cycles, and the ``R`` rows of a tile leave one per cycle).
  With ``d_head >= max(R, C)`` every cell does one MAC per cycle.  One ``S`` takes
  ``cycles = (tiles - 1) * cycles_per_tile + d_head + C + last_rows + 1`` cycles from the first
  input handshake to the last score handshake (``last_rows = L - (ceil(L/R) - 1) * R``),
  with a source always valid and a sink always ready.
* Input gaps travel through the array as bubbles and delay nothing else.  Output
  backpressure stalls the whole block (every register keeps its value): ``i.ready`` depends
  combinationally on ``o.ready``.  All cycle counts above are in cycles where the block is
  not stalled.

Reset
-----
Synchronous ``rst`` returns every register to its reset value (Amaranth resets every
``sync`` signal): the wave valid bits travelling through the array, the tile counters and the
output row flags are cleared, so the tile in progress is abandoned, nothing of it comes out,
and the next input beat starts a new ``S`` at tile 0.  There is no memory.
"""

import functools

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import SystolicQKConfig
from .payload import pack, unpack

__all__ = ["SystolicQK", "input_layout", "output_layout", "pack_input_beats", "unpack_output"]


@functools.cache
def input_layout(cfg):
    """Layout of one input beat: ``R`` elements of ``Q`` then ``C`` elements of ``K``."""
    return data.StructLayout({
        "q": data.ArrayLayout(signed(cfg.q_width), cfg.rows),
        "k": data.ArrayLayout(signed(cfg.k_width), cfg.cols),
    })


@functools.cache
def output_layout(cfg):
    """Layout of one output beat: ``C`` scores of one row of a tile."""
    return data.ArrayLayout(signed(cfg.acc_width), cfg.cols)


# Control carried by the wavefront: whether the cell holds a real step, and which step.
_wave_layout = data.StructLayout({
    "valid": 1,
    "first": 1,     # step 0: the cell starts a new sum
    "last": 1,      # step d_head - 1: the cell's sum is final
    "last_row": 1,  # the tile is in the last tile row (its padding rows are not sent)
})


def pack_input_beats(cfg, q, k, pad=lambda: 0):
    """Input words (ints) for one ``S``: ``tiles * d_head`` beats in stream order.

    ``q`` and ``k`` are ``seq_len x d_head`` integers (for a ``systolic-av`` configuration:
    ``q`` is ``A'`` (``seq_len x seq_len``) and ``k`` is ``V^T`` (``d_head x seq_len``)).  Padding lanes take ``pad()`` (the
    block ignores them; testbenches send noise).
    """
    layout, words = input_layout(cfg), []
    for r0, c0 in cfg.tile_origins():
        for step in range(cfg.steps):
            qs = [q[r0 + r][step] if r0 + r < cfg.q_rows else pad() for r in range(cfg.rows)]
            ks = [k[c0 + c][step] if c0 + c < cfg.k_rows else pad() for c in range(cfg.cols)]
            words.append(pack(layout, {"q": qs, "k": ks}))
    return words


def unpack_output(cfg, word):
    """The ``cols`` scores (ints) of an ``o`` payload: one row of a tile."""
    return unpack(output_layout(cfg), word)


class SystolicQK(wiring.Component):
    """Output-stationary ``rows x cols`` systolic array computing ``S = Q K^T``, tile by tile.

    Parameters
    ----------
    config : :class:`~damf.config.SystolicQKConfig`

    The ports, stream protocol, bit layouts, latency and cycle counts are specified in the
    docstring of this module (:mod:`damf.hdl.systolic_qk`).
    """

    def __init__(self, config):
        if not isinstance(config, SystolicQKConfig):  # SystolicAVConfig is one too
            self._MustUse__silence = True  # never built, so never "unused"
            raise TypeError(f"Config must be a SystolicQKConfig, not {config!r}")
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

    @property
    def cycles_per_tile(self):
        return self._config.cycles_per_tile

    @property
    def acc_width(self):
        return self._config.acc_width

    def elaborate(self, platform):
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m = Module()

        # Global stall: every register advances when the output register is free.
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # -- input: step and tile counters, hold between short tiles --------------------------
        accept = Signal()
        step = Signal(range(cfg.steps), name="step")        # step k of the next beat
        first = step == 0
        last = step == cfg.steps - 1
        if cfg.hold:
            hold = Signal(range(cfg.hold + 1), name="hold")  # cycles until the next tile may start
            m.d.comb += self.i.ready.eq(advance & (hold == 0))
            with m.If(advance):
                with m.If(accept & last):
                    m.d.sync += hold.eq(cfg.hold)
                with m.Elif(hold != 0):
                    m.d.sync += hold.eq(hold - 1)
        else:
            m.d.comb += self.i.ready.eq(advance)
        m.d.comb += accept.eq(self.i.valid & self.i.ready)

        pad_rows = cfg.last_rows < R   # the last tile row has padding rows (not sent)
        pad_cols = cfg.last_cols < C   # the last tile column has padding columns (zeroed)
        tile_col = Signal(range(cfg.tile_cols), name="tile_col")
        tile_row = Signal(range(cfg.tile_rows), name="tile_row")
        if cfg.steps > 1:
            with m.If(accept):
                m.d.sync += step.eq(Mux(last, 0, step + 1))
        if pad_rows or pad_cols:
            with m.If(accept & last):
                m.d.sync += tile_col.eq(Mux(tile_col == cfg.tile_cols - 1, 0, tile_col + 1))
                if pad_rows:
                    with m.If(tile_col == cfg.tile_cols - 1):
                        m.d.sync += tile_row.eq(Mux(tile_row == cfg.tile_rows - 1, 0, tile_row + 1))

        # -- stage 0: register the beat; K's padding lanes read as 0 -------------------------
        q_edge = [Signal(signed(cfg.q_width), name=f"q{r}_skew0") for r in range(R)]
        k_edge = [Signal(signed(cfg.k_width), name=f"k{c}_skew0") for c in range(C)]
        wave = [Signal(_wave_layout, name=f"wave{s}") for s in range(R + C)]
        with m.If(advance):
            for r in range(R):
                m.d.sync += q_edge[r].eq(self.i.payload.q[r])
            for c in range(C):
                k = self.i.payload.k[c]
                if pad_cols and c >= cfg.last_cols:
                    k = Mux(tile_col == cfg.tile_cols - 1, 0, k)
                m.d.sync += k_edge[c].eq(k)
            m.d.sync += [
                wave[0].valid.eq(accept),
                wave[0].first.eq(first),
                wave[0].last.eq(last),
                wave[0].last_row.eq(tile_row == cfg.tile_rows - 1),
            ]

        # -- skew: Q row r waits r cycles, K column c waits c cycles; control moves along ----
        #    the anti-diagonals (cell (r, c) multiplies under wave[r + c], accumulates under
        #    wave[r + c + 1])
        def skew(first_reg, depth, shape, prefix):
            reg = first_reg
            for j in range(1, depth + 1):
                nxt = Signal(shape, name=f"{prefix}_skew{j}")
                with m.If(advance):
                    m.d.sync += nxt.eq(reg)
                reg = nxt
            return reg

        q_left = [skew(q_edge[r], r, signed(cfg.q_width), f"q{r}") for r in range(R)]
        k_top = [skew(k_edge[c], c, signed(cfg.k_width), f"k{c}") for c in range(C)]
        with m.If(advance):
            for s in range(1, R + C):
                m.d.sync += wave[s].eq(wave[s - 1])

        # -- the array: cell (r, c) accumulates Q[r0+r, k] * K[c0+c, k] ----------------------
        acc_shape = signed(cfg.acc_width)
        score = [[Signal(acc_shape, name=f"score_{r}_{c}") for c in range(C)] for r in range(R)]
        q_in = [[None] * C for _ in range(R)]   # Q element reaching cell (r, c) this cycle
        k_in = [[None] * C for _ in range(R)]   # K element reaching cell (r, c) this cycle
        for r in range(R):
            for c in range(C):
                if c == 0:
                    q_in[r][c] = q_left[r]
                else:  # registered in the cell to the left
                    q_in[r][c] = Signal(signed(cfg.q_width), name=f"q_{r}_{c}")
                    with m.If(advance):
                        m.d.sync += q_in[r][c].eq(q_in[r][c - 1])
                if r == 0:
                    k_in[r][c] = k_top[c]
                else:  # registered in the cell above
                    k_in[r][c] = Signal(signed(cfg.k_width), name=f"k_{r}_{c}")
                    with m.If(advance):
                        m.d.sync += k_in[r][c].eq(k_in[r - 1][c])

                # the product is registered, the sum one cycle later (under the next wave)
                prod = Signal(signed(cfg.product_width), name=f"prod_{r}_{c}")
                with m.If(advance):
                    m.d.sync += prod.eq(q_in[r][c] * k_in[r][c])
                ctl = wave[r + c + 1]
                acc = Signal(acc_shape, name=f"acc_{r}_{c}")
                mac = Signal(acc_shape, name=f"mac_{r}_{c}")
                m.d.comb += mac.eq(Mux(ctl.first, 0, acc) + prod)
                with m.If(advance & ctl.valid):
                    m.d.sync += acc.eq(mac)
                    with m.If(ctl.last):
                        m.d.sync += score[r][c].eq(mac)

        # -- output: row r is complete the cycle after its last cell took its final sum ------
        row_done = [Signal(name=f"row{r}_done") for r in range(R)]
        with m.If(advance):
            for r in range(R):
                ctl = wave[r + C]
                done = ctl.valid & ctl.last
                if pad_rows and r >= cfg.last_rows:
                    done = done & ~ctl.last_row
                m.d.sync += row_done[r].eq(done)
            # Rows of a tile complete one per cycle and tiles are at least R cycles apart, so at
            # most one row is done at a time.
            m.d.sync += self.o.valid.eq(Cat(row_done).any())
            for r in range(R):
                with (m.If if r == 0 else m.Elif)(row_done[r]):
                    for c in range(C):
                        m.d.sync += self.o.payload[c].eq(score[r][c])

        return m
