"""Formal properties of every block's streams (``damf.formal`` runs them with SymbiYosys).

One module rather than one beside each block: the properties are the same four for every
block (stability of ``o``, no ready-from-valid path, transfer counting with a liveness bound,
the block's order rules) and the per-block part is a short :class:`Spec` -- which beats end a
unit on each stream, how many output units the accepted input units justify, the buffering
and latency bounds of the block's docstring, and its order rules.  Kept together, the generic
:class:`Harness` is written once and the nine specs read side by side against the docstrings
they check; the blocks' own modules (and so their Verilog) stay untouched.  Which builder is a
block's, and the small configuration and depths it is checked at, is the block's registry
entry's (``damf/blocks.py``: :class:`~damf.blocks.Formal`).

The harness wraps a block in a top module for formal tools:

* every input stream is driven by ``AnySeq`` (valid and payload), with the source protocol
  assumed: a valid not taken stays valid, with the same payload, in the next cycle;
* every output stream's ready is ``AnySeq``; reset is asserted in the initial cycle only
  (and the sources, reset with the block, offer nothing in it);
* group ``"stable"``: an output beat not taken keeps ``valid`` and its payload;
* group ``"count"``: per stream a count of handshakes and of *units* (a token of ``beats``
  beats, a row up to ``last``, ...); the spec's relations assert ``out <= justified`` and
  ``justified - out <= bound``, and with the sink ready and ``justified > out`` the next
  output unit comes within ``latency`` unstalled cycles;
* group ``"order"``: the spec's order rules (relations between the streams' counts);
* group ``"data"``: the spec's tagged-transfer checks -- an ``AnyConst`` index picks one
  transfer, the harness records its inputs and asserts its output unit (at the same index of
  the output stream) is what the contract computes from them;
* group ``"cover"``: the same registers, and a ``Cover`` per spec (its *witness*) that the
  tagged output is reached for a tag of at least 1 -- so the ``data`` check of the same depth
  is not vacuous: a whole earlier transfer and the tagged one complete within it.

The ready-from-valid check is structural (``damf.formal``: no combinational path from an
input's ``valid`` to its ``ready`` in the flattened design) and needs no properties here.
"""

from dataclasses import dataclass, field

from amaranth import Cat, Elaboratable, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.asserts import AnyConst, AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import stream, wiring

__all__ = ["Spec", "Relation", "Harness", "GROUPS", "stream_ports"]

GROUPS = ("stable", "count", "order", "data", "cover")

COUNT_WIDTH = 8   # counters of handshakes and units; a run of depth <= 255 cannot wrap them


def stream_ports(component):
    """``{name: flow}`` of the stream members of ``component``'s signature, in order."""
    out = {}
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, stream.Signature):
            out[name] = member.flow
    return out


@dataclass(frozen=True)
class Relation:
    """``out`` units of stream ``out`` against the ``justified(counts)`` the inputs allow.

    ``justified`` maps ``{stream: _Port}`` (``.units``, ``.beats``) to a value; ``bound`` is the
    largest ``justified - out`` (the block's buffering); ``latency`` (or ``None``) bounds the
    unstalled cycles from ``justified > out`` to the next output unit with the sink ready.
    """
    out: str
    justified: object
    bound: int
    latency: int = None
    per: str = "units"      # or "beats": count the output's handshakes


@dataclass(frozen=True)
class Spec:
    """What the harness checks of one block (see the module docstring).

    ``units``: ``{stream: n}`` (a unit is ``n`` beats) or ``{stream: f(payload, beat)}`` (the
    beat ends a unit; ``beat`` is its index within the unit); streams not named have units of
    one beat.  ``assume(h)`` and ``order(h)`` return lists of statements (the block's source
    protocol as conditions to assume, its order rules as ``(condition, message)`` pairs); ``h`` is the
    :class:`Harness` during elaboration (``h.ports[name]``: :class:`_Port`).  ``data(h)``
    returns ``(rules, witness)``: the tagged-transfer checks as pairs and the condition that
    the tagged output unit is being checked (with a tag of at least 1).
    """
    name: str
    units: dict = field(default_factory=dict)
    relations: tuple = ()
    assume: object = None
    order: object = None
    data: object = None


class _Port:
    """One stream of the block as the harness sees it: handshake, unit end and counters."""

    def __init__(self, m, name, iface, unit):
        self.name, self.iface = name, iface
        self.fire = Signal(name=f"{name}_fire")
        m.d.comb += self.fire.eq(iface.valid & iface.ready)
        self.beats = Signal(COUNT_WIDTH, name=f"{name}_beats")      # handshakes so far
        self.units = Signal(COUNT_WIDTH, name=f"{name}_units")      # whole units so far
        self.beat = Signal(COUNT_WIDTH, name=f"{name}_beat")        # index within the unit
        self.end = Signal(name=f"{name}_end")                       # this beat ends a unit
        if unit is None:
            unit = 1
        if isinstance(unit, int):
            m.d.comb += self.end.eq(self.beat == unit - 1)
        else:
            m.d.comb += self.end.eq(unit(iface.payload, self.beat))
        with m.If(self.fire):
            m.d.sync += self.beats.eq(self.beats + 1)
            with m.If(self.end):
                m.d.sync += [self.units.eq(self.units + 1), self.beat.eq(0)]
            with m.Else():
                m.d.sync += self.beat.eq(self.beat + 1)


class Harness(Elaboratable):
    """Top module for formal tools: ``dut`` with its streams' environment and ``groups``'s
    properties (a subset of :data:`GROUPS`)."""

    def __init__(self, dut, spec, groups=GROUPS):
        unknown = set(groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"Groups must be among {', '.join(GROUPS)}, not {', '.join(sorted(unknown))}")
        self.dut, self.spec, self.groups = dut, spec, tuple(groups)
        self.ports = {}
        self.started = None
        self.messages = {}    # name of each assertion's signal -> what it says

    def check(self, cond, message):
        """Assert ``cond``, through a signal ``ok<n>`` that names the assertion in traces."""
        ok = Signal(name=f"ok{len(self.messages)}")
        self.messages[ok.name] = message
        self._m.d.comb += [ok.eq(cond), Assert(ok, message)]

    @property
    def m(self):
        """The module being elaborated (for a spec's own registers)."""
        return self._m

    def counter(self, cond, name):
        """Cycles so far in which ``cond`` held (``COUNT_WIDTH`` bits)."""
        count = Signal(COUNT_WIDTH, name=name)
        with self._m.If(cond):
            self._m.d.sync += count.eq(count + 1)
        return count

    def anyconst(self, shape, name):
        """A signal holding one arbitrary value for the whole run (a tag)."""
        sig = Signal(shape, name=name)
        self._m.d.comb += sig.eq(AnyConst(shape))
        return sig

    def elaborate(self, platform):
        m = self._m = Module()
        spec, dut = self.spec, self.dut
        m.submodules.dut = dut

        # -- reset in the initial cycle only; `started` from the first cycle after it -------
        started = self.started = Signal(name="started", reset_less=True)
        m.d.sync += started.eq(1)
        m.d.comb += Assume(ResetSignal() == Initial())

        # -- the environment: sources keep an offered beat, sinks are arbitrary -------------
        self.ports = {}
        for name, flow in stream_ports(dut).items():
            iface = getattr(dut, name)
            width = len(iface.payload.as_value())
            waiting = Signal(name=f"{name}_waiting", reset_less=True)
            held = Signal(width, name=f"{name}_held", reset_less=True)
            m.d.sync += [waiting.eq(iface.valid & ~iface.ready), held.eq(iface.payload.as_value())]
            stalled = started & waiting
            if flow == wiring.In:
                m.d.comb += [iface.valid.eq(AnySeq(1)), iface.payload.eq(AnySeq(width))]
                m.d.comb += Assume(~stalled | (iface.valid & (iface.payload.as_value() == held)))
                m.d.comb += Assume(~ResetSignal() | ~iface.valid)     # sources are reset too
            else:
                m.d.comb += iface.ready.eq(AnySeq(1))
                if "stable" in self.groups:
                    self.check(~stalled | iface.valid, f"{name}.valid fell while stalled")
                    self.check(~stalled | (iface.payload.as_value() == held),
                               f"{name}.payload changed while stalled")
            self.ports[name] = _Port(m, name, iface, spec.units.get(name))

        if spec.assume is not None:
            m.d.comb += [Assume(cond) for cond in spec.assume(self)]

        # -- transfer counting and bounded liveness ------------------------------------------
        if "count" in self.groups:
            for k, rel in enumerate(spec.relations):
                out = self.ports[rel.out]
                done = out.units if rel.per == "units" else out.beats
                what = f"{rel.out} {rel.per}"
                justified = Signal(COUNT_WIDTH + 2, name=f"justified{k}")
                m.d.comb += justified.eq(rel.justified(self.ports))
                self.check(done <= justified, f"{what}: more than the accepted inputs justify")
                self.check(justified - done <= rel.bound, f"{what}: more than {rel.bound} in flight")
                if rel.latency is not None:
                    wait = Signal(COUNT_WIDTH, name=f"wait{k}")
                    pending = justified > done
                    with m.If(~pending | (out.fire & (out.end if rel.per == "units" else 1))):
                        m.d.sync += wait.eq(0)
                    with m.Elif(out.iface.ready):
                        m.d.sync += wait.eq(wait + 1)
                    self.check(wait <= rel.latency, f"{what}: none within {rel.latency} cycles")

        if "order" in self.groups and spec.order is not None:
            for cond, message in spec.order(self):
                self.check(cond, message)

        if ("data" in self.groups or "cover" in self.groups) and spec.data is not None:
            rules, witness = spec.data(self)
            if "data" in self.groups:
                for cond, message in rules:
                    self.check(cond, message)
            if "cover" in self.groups:
                m.d.comb += Cover(witness, "the tagged transfer completes")
        return m



# ---- per-block specs: the contracts of the blocks' docstrings ------------------------------

def _ceil_div(a, b):
    return -(-a // b)


def _min(a, b):
    return Mux(a < b, a, b)


def _tag(h, name):
    """An arbitrary unit index, fixed for the run (the transfer a data check follows)."""
    return h.anyconst(unsigned(COUNT_WIDTH), f"tag_{name}")


def inner_product_spec(cfg):
    """``hdl/inner_product.py``: one result per token of ``beats`` beats, in token order,
    ``latency`` cycles after its last beat; weight loads of ``beats`` words go between tokens,
    first when both are offered, and tokens use the vectors loaded before them."""
    B, R = cfg.beats, cfg.rank

    def order(h):
        w, i = h.ports["w"], h.ports["i"]
        return [
            (~(w.fire & (w.beat == 0)) | (i.beat == 0), "a weight load started inside a token"),
            ((w.beat == 0) | ~i.iface.ready, "i.ready during a weight load"),
            (~(i.fire & (i.beat == 0) & (w.beat == 0) & w.iface.valid),
             "a token went before an offered weight load"),
        ]

    def data(h):
        m, i, o = h.m, h.ports["i"], h.ports["o"]
        rules = []
        # -- the tagged token: its beats, the weights in effect, then its result --------------
        tag = _tag(h, "token")
        lanes = [[Signal(signed(cfg.x_width), name=f"x{b}_{j}") for j in range(cfg.lanes)]
                 for b in range(B)]
        with m.If(i.fire & (i.units == tag)):
            for b in range(B):
                with m.If(i.beat == b):
                    m.d.sync += [lanes[b][j].eq(i.iface.payload[j]) for j in range(cfg.lanes)]
        if "w" in h.ports:
            w = h.ports["w"]
            u, v = ([[[Signal(signed(cfg.w_width), name=f"{f}{k}_{b}_{j}") for j in range(cfg.lanes)]
                      for b in range(B)] for k in range(R)] for f in "uv")
            snap_u = [[[Signal.like(x, name=f"snap_{x.name}") for x in row] for row in vec] for vec in u]
            snap_v = [[[Signal.like(x, name=f"snap_{x.name}") for x in row] for row in vec] for vec in v]
            with m.If(w.fire):
                for b in range(B):
                    with m.If(w.beat == b):
                        for k in range(R):
                            m.d.sync += [u[k][b][j].eq(w.iface.payload.u[k][j]) for j in range(cfg.lanes)]
                            m.d.sync += [v[k][b][j].eq(w.iface.payload.v[k][j]) for j in range(cfg.lanes)]
            with m.If(i.fire & (i.units == tag) & i.end):
                for k in range(R):
                    for b in range(B):
                        m.d.sync += [snap_u[k][b][j].eq(u[k][b][j]) for j in range(cfg.lanes)]
                        m.d.sync += [snap_v[k][b][j].eq(v[k][b][j]) for j in range(cfg.lanes)]
            wu, wv = snap_u, snap_v
        else:
            wu = [[[cfg.u[k][b * cfg.lanes + j] if b * cfg.lanes + j < cfg.d_model else 0
                    for j in range(cfg.lanes)] for b in range(B)] for k in range(R)]
            wv = [[[cfg.v[k][b * cfg.lanes + j] if b * cfg.lanes + j < cfg.d_model else 0
                    for j in range(cfg.lanes)] for b in range(B)] for k in range(R)]
        used = [(b, j) for b in range(B) for j in range(cfg.lanes) if b * cfg.lanes + j < cfg.d_model]
        mine = o.fire & (o.units == tag) & (i.units > tag)
        for k in range(R):
            p = sum(lanes[b][j] * wu[k][b][j] for b, j in used)
            q = sum(lanes[b][j] * wv[k][b][j] for b, j in used)
            rules.append((~mine | ((o.iface.payload.p[k] == p) & (o.iface.payload.q[k] == q)),
                          f"the tagged token's p[{k}], q[{k}] are not X.u, X.v of the weights before it"))
        return rules, mine & (tag >= 1)

    return Spec("inner-product", units={"i": B, "w": B},
                relations=(Relation("o", lambda p: p["i"].units, cfg.latency, cfg.latency),),
                order=order if cfg.weights == "runtime" else None, data=data)


def systolic_spec(cfg):
    """``hdl/systolic_qk.py`` (``systolic-qk``, and ``systolic-av`` on its array: the spec is
    named by ``cfg.block``): tiles of ``steps`` beats; ``R`` score rows per tile (``seq_len`` a
    multiple of ``rows`` here), in stream order, the first ``latency`` cycles after the tile's
    last beat; tiles overlap, at most ``ceil(tile_cycles / cycles_per_tile)`` in the array;
    each row the tile's products."""
    R, C, D = cfg.rows, cfg.cols, cfg.steps
    if cfg.q_rows % R or cfg.k_rows % C:
        raise ValueError(f"The formal spec wants no padding rows or columns, not {cfg!r}")
    in_flight = _ceil_div(cfg.tile_cycles, cfg.cycles_per_tile)

    def data(h):
        m, i, o = h.m, h.ports["i"], h.ports["o"]
        tag = _tag(h, "tile")
        acc = [[Signal(signed(len(o.iface.payload[c])), name=f"s{r}_{c}") for c in range(C)] for r in range(R)]
        with m.If(i.fire & (i.units == tag)):
            for r in range(R):
                for c in range(C):
                    m.d.sync += acc[r][c].eq(acc[r][c] + i.iface.payload.q[r] * i.iface.payload.k[c])
        rules = []
        for r in range(R):
            mine = o.fire & (o.beats == tag * R + r) & (i.units > tag)
            rules.append((~mine | (o.iface.payload.as_value() == Cat(*acc[r])),
                          f"row {r} of the tagged tile is not its sum of products"))
        return rules, mine & (tag >= 1)      # ``mine`` of the tile's last row

    return Spec(cfg.block, units={"i": D},
                relations=(Relation("o", lambda p: R * p["i"].units, R * in_flight, cfg.latency, per="beats"),),
                data=data)


def _row_length_at_most(h, stream, n):
    """Source protocol: a row (``last``-ended) has at most ``n`` beats."""
    port = h.ports[stream]
    return [~(port.iface.valid & (port.beat == n - 1)) | port.iface.payload.last]


def score_spec(cfg):
    """``hdl/score.py``: loads of at most ``seq_len`` keys (``last`` ends one), queries, one row
    of ``ceil(Lk / parallel)`` beats per query in query order; a query is accepted only once
    its bank's load has completed (a key load goes before a waiting query), a load starts
    only once the set two loads back has taken its last query; the tagged query's row is
    ``p . q_n`` over the keys of its set's load, with ``count`` and ``last``."""
    P, Lmax = cfg.parallel, cfg.seq_len
    if P != 1:
        raise ValueError(f"The formal spec of score wants parallel = 1, not {P}")

    def order(h):
        m, k, i, o = h.m, h.ports["k"], h.ports["i"], h.ports["o"]
        sets = h.counter(i.fire & i.iface.payload.last, "sets")      # query sets accepted
        return [
            (~i.fire | (k.units > sets), "a query was accepted before its bank's keys were loaded"),
            (~(k.fire & (k.beat == 0)) | (k.units <= sets + 1),
             "a load started before the set two loads back was accepted"),
        ]

    def data(h):
        m, k, i, o = h.m, h.ports["k"], h.ports["i"], h.ports["o"]
        sets = h.counter(i.fire & i.iface.payload.last, "sets")      # query sets accepted
        rules = []
        # -- a tagged load and a tagged query: the query's row if it reads that load -----------
        tag_load, tag_query = _tag(h, "load"), _tag(h, "query")
        keys = [Signal(signed(cfg.pq_width), name=f"key{n}") for n in range(Lmax)]
        length = Signal(range(Lmax + 1), name="load_length")
        with m.If(k.fire & (k.units == tag_load)):
            for n in range(Lmax):
                with m.If(k.beat == n):
                    m.d.sync += keys[n].eq(k.iface.payload.q[0])
            with m.If(k.iface.payload.last):
                m.d.sync += length.eq(k.beat + 1)
        p = Signal(signed(cfg.pq_width), name="query_p")
        reads = Signal(name="query_reads_load")                 # the tagged query uses that load
        with m.If(i.fire & (i.units == tag_query)):
            m.d.sync += [p.eq(i.iface.payload.p[0]), reads.eq(sets == tag_load)]
        mine = o.fire & (o.units == tag_query) & (i.units > tag_query) & reads
        for n in range(Lmax):
            beat = mine & (o.beat == n)
            rules.append((~beat | (o.iface.payload.a[0] == p * keys[n]), f"score {n} of the tagged row"))
            rules.append((~beat | (o.iface.payload.last == (length == n + 1)), f"last of beat {n} of the tagged row"))
        rules.append((~mine | (o.iface.payload.count == 1), "count of the tagged row"))
        rules.append((~mine | (o.beat < length), "the tagged row is longer than its load"))
        return rules, mine & o.iface.payload.last & (tag_query >= 1) & (tag_load >= 1)

    return Spec("score", units={"k": lambda pl, beat: pl.last, "o": lambda pl, beat: pl.last},
                assume=lambda h: _row_length_at_most(h, "k", Lmax),
                relations=(Relation("o", lambda p: p["i"].units, cfg.latency + 1, cfg.latency + cfg.words),),
                order=order, data=data)


def row_stats_spec(cfg):
    """``hdl/row_stats.py``: rows of ``last``-ended beats (``count`` in 1..parallel, at most
    ``seq_len`` scores), one result per row in order ``setup_cycles`` after its last beat; the
    tagged row's ``N`` and ``A_max``."""
    P, L = cfg.parallel, cfg.seq_len
    if P != 1:
        raise ValueError(f"The formal spec of row-stats wants parallel = 1, not {P}")

    def assume(h):
        i = h.ports["i"]
        return _row_length_at_most(h, "i", L) + [~i.iface.valid | (i.iface.payload.count == 1)]

    def data(h):
        m, i, o = h.m, h.ports["i"], h.ports["o"]
        tag = _tag(h, "row")
        n = Signal(range(L + 1), name="row_n")
        a_max = Signal(signed(cfg.score_width), name="row_a_max")
        with m.If(i.fire & (i.units == tag)):
            m.d.sync += n.eq(i.beat + 1)
            with m.If((i.beat == 0) | (i.iface.payload.a[0] > a_max)):
                m.d.sync += a_max.eq(i.iface.payload.a[0])
        mine = o.fire & (o.units == tag) & (i.units > tag)
        return [(~mine | (o.iface.payload.n == n), "N of the tagged row"),
                (~mine | (o.iface.payload.a_max == a_max), "A_max of the tagged row")], mine & (tag >= 1)

    return Spec("row-stats", units={"i": lambda pl, beat: pl.last}, assume=assume,
                relations=(Relation("o", lambda p: p["i"].units, cfg.setup_cycles + 1, cfg.setup_cycles),),
                data=data)


def shift_accumulate_spec(cfg):
    """``hdl/shift_accumulate.py``: rows of ``last``-ended beats (fields in their documented
    ranges, at most ``seq_len`` keys), one ``Z`` per row in order, ``latency`` cycles after
    the row's last beat once it is in the front; the tagged row's ``Z`` is
    ``sat(round_shift(sum_n s_n (V_n << t_n) + (SV << t_C), sh))`` of its keys (the golden
    model's formula, written out for the configuration's ranges)."""
    P, L = cfg.parallel, cfg.seq_len
    if P != 1:
        raise ValueError(f"The formal spec of shift-accumulate wants parallel = 1, not {P}")

    def assume(h):
        pl, valid = h.ports["i"].iface.payload, h.ports["i"].iface.valid
        conds = [pl.count == 1, pl.sign[0] != -2, pl.shift[0] <= cfg.weight_frac,
                 (pl.sh >= cfg.shift_range[0]) & (pl.sh <= cfg.shift_range[1])]
        if cfg.has_sv:
            conds.append((pl.c_shift >= cfg.c_shift_range[0]) & (pl.c_shift <= cfg.c_shift_range[1]))
        return _row_length_at_most(h, "i", L) + [~valid | c for c in conds]

    def data(h):
        m, i, o = h.m, h.ports["i"], h.ports["o"]
        pl, D, F = i.iface.payload, cfg.d_head, cfg.weight_frac
        wide = signed(cfg.out_width + cfg.acc_width + 4)
        tag = _tag(h, "row")
        acc = [Signal(wide, name=f"row_acc{e}") for e in range(D)]       # sum s_n (V_n << t_n)
        sv = [Signal(wide, name=f"row_sv{e}") for e in range(D)]         # sum V_n
        sh = Signal.like(pl.sh, name="row_sh")
        c_shift = Signal.like(pl.c_shift, name="row_c_shift") if cfg.has_sv else None
        with m.If(i.fire & (i.units == tag)):
            for e in range(D):
                v = pl.v[0][e]
                term = Mux(pl.shift[0] == 0, v, 0)
                for t in range(1, F + 1):
                    term = Mux(pl.shift[0] == t, v << t, term)
                sign = pl.sign[0]
                m.d.sync += acc[e].eq(acc[e] + Mux(sign == 1, term, Mux(sign == -1, -term, 0)))
                m.d.sync += sv[e].eq(sv[e] + v)
            m.d.sync += sh.eq(pl.sh)
            if c_shift is not None:
                m.d.sync += c_shift.eq(pl.c_shift)
        lo, hi = -(1 << (cfg.out_width - 1)), (1 << (cfg.out_width - 1)) - 1
        rules = []
        mine = o.fire & (o.units == tag) & (i.units > tag)
        for e in range(D):
            # total = acc + (SV << t_C), t_C >= 0 here (c_shift_range), then round_shift(total, sh)
            total = Signal(wide, name=f"row_total{e}")
            if c_shift is not None:
                if cfg.c_shift_range[0] < 0:
                    raise ValueError(f"The formal spec of shift-accumulate wants t_C >= 0, not {cfg.c_shift_range}")
                add = 0
                for t in range(cfg.c_shift_range[0], cfg.c_shift_range[1] + 1):
                    add = Mux(c_shift == t, sv[e] << t, add)
                m.d.comb += total.eq(acc[e] + add)
            else:
                m.d.comb += total.eq(acc[e])
            # golden.damf_head.round_shift with a constant shift per value of sh: right shifts
            # round half away from zero, left shifts saturate; then saturate to out_width bits
            z = 0
            for s_ in range(cfg.shift_range[0], cfg.shift_range[1] + 1):
                if s_ > 0:
                    r = min(s_, cfg.acc_width + 1)
                    val = (total + (1 << (r - 1)) - (total < 0)) >> r
                else:
                    val = total << min(-s_, cfg.out_width)
                z = Mux(sh == s_, val, z)
            ref = Signal(wide, name=f"row_z{e}")
            m.d.comb += ref.eq(z)
            sat = Mux(ref > hi, hi, Mux(ref < lo, lo, ref))
            rules.append((~mine | (o.iface.payload[e] == sat), f"Z[{e}] of the tagged row"))
        return rules, mine & (tag >= 1)

    return Spec("shift-accumulate", units={"i": lambda pl, beat: pl.last}, assume=assume,
                relations=(Relation("o", lambda p: p["i"].units, cfg.latency + 1, cfg.latency),), data=data)


def softmax_spec(cfg):
    """``hdl/softmax.py``: rows end with ``last`` or their ``max_beats``-th beat; one output
    beat per input beat, in order, with its ``count``, ``last`` on each row's final beat; at
    most ``buffer_depth + 5`` beats and rows in flight (the buffer and the back pipeline); a row's first output ``row_latency``
    cycles after its last input (or after the previous row's output)."""
    Mb = cfg.max_beats

    def assume(h):
        i = h.ports["i"]
        return [~i.iface.valid | ((i.iface.payload.count >= 1) & (i.iface.payload.count <= cfg.parallel))]

    def data(h):
        m, i, o = h.m, h.ports["i"], h.ports["o"]
        tag = _tag(h, "beat")
        count = Signal.like(i.iface.payload.count, name="beat_count")
        end = Signal(name="beat_ends_row")
        with m.If(i.fire & (i.beats == tag)):
            m.d.sync += [count.eq(i.iface.payload.count), end.eq(i.end)]
        mine = o.fire & (o.beats == tag) & (i.beats > tag)
        rules = [(~mine | (o.iface.payload.count == count), "count of the tagged beat"),
                 (~mine | (o.iface.payload.last == end), "last of the tagged beat")]
        for j in range(cfg.parallel):
            rules.append((~mine | (count > j) | (o.iface.payload.data[j] == 0), f"lane {j} past count not 0"))
        return rules, mine & (tag >= 1)

    units = {"i": lambda pl, beat: pl.last | (beat == Mb - 1), "o": lambda pl, beat: pl.last}
    # in flight: the buffer_depth beats (and rows) that i.ready admits -- counted from their
    # acceptance until the back pipeline reads them -- plus the back pipeline's own 5 registers
    # (read, shift amount, shift, multiply, output: hdl/softmax.py), which hold a beat each when
    # o stalls.  BMC with the bound buffer_depth alone found 26 beats in flight (22 + 4).
    capacity = cfg.buffer_depth + 5
    return Spec("softmax", units=units, assume=assume, data=data, relations=(
        Relation("o", lambda p: p["i"].units, capacity, cfg.row_latency + 2 * Mb),
        Relation("o", lambda p: p["i"].beats, capacity, per="beats"),
    ))


def damf_head_spec(cfg):
    """``hdl/damf_head.py`` with fixed weights, ``lanes = d_model`` (a token per beat) and every
    head of ``seq_len`` tokens (``last`` on the ``seq_len``-th ``x`` and ``v`` beat): ``seq_len``
    rows per head once both its ``X`` and ``V`` are in; at most ``4 seq_len`` rows in flight: two
    heads in the banks and, with the sink stalled, the rows of two more that have left the
    weight stage (a bank is free once its head's last key has left it) and wait in the
    shift-accumulate pipeline -- BMC found 4 heads accepted with no ``Z`` taken, so the bound
    of two heads the docstring suggests counts banks, not rows."""
    L = cfg.seq_len
    if cfg.inner_product.beats != 1 or cfg.cross or cfg.weights != "fixed":
        raise ValueError("The formal spec of damf-head wants one beat per token, self-attention "
                         "and fixed weights")

    def assume(h):
        return [~h.ports[s].iface.valid | (h.ports[s].iface.payload.last == (h.ports[s].beat == L - 1))
                for s in ("x", "v")]

    def heads(p):
        return L * _min(p["x"].units, p["v"].units)

    return Spec("damf-head", units={"x": L, "v": L}, assume=assume,
                relations=(Relation("o", heads, 4 * L, cfg.latency + cfg.head_interval, per="beats"),))


def baseline_head_spec(cfg):
    """``hdl/baseline_head.py`` with ``inputs = "qk"``: heads of ``seq_len`` beats, ``out_beats``
    output beats per head once it is in, at most ``banks`` heads buffered beside the one
    computing."""
    if cfg.inputs != "qk":
        raise ValueError("The formal spec of baseline-head wants inputs = 'qk'")
    return Spec("baseline-head", units={"i": cfg.seq_len}, relations=(
        Relation("o", lambda p: cfg.out_beats * p["i"].units, cfg.out_beats * (cfg.banks + 1),
                 cfg.cycles, per="beats"),))
