"""AXI4-Stream wrapper around any block (``damf generate BLOCK --axis``).

:class:`AxisWrapper` turns every stream member of a block's signature into AXI4-Stream
ports and adds nothing else: no register, no buffer, so the block's latency, throughput and
critical path are unchanged (the handshake wires pass straight through).

* Input stream ``NAME`` -> ``s_axis_NAME_tdata``, ``_tvalid``, ``_tready``, ``_tlast``;
  output stream ``NAME`` -> ``m_axis_NAME_tdata``, ``_tvalid``, ``_tready``, ``_tlast``.
* ``tdata`` is the payload with its ``last`` field (if any) taken out: the remaining fields
  of the block's ``StructLayout`` in the layout's order (lowest offset first), packed from
  bit 0 with no gaps, exactly as the block packs them (element 0 of an array in the least
  significant bits, signed values in two's complement), then zero-padded to a whole number
  of bytes.  Pad bits are 0 on outputs and ignored on inputs.  A payload without a
  ``last`` field (an array, a plain shape) is ``tdata`` as it is, padded the same way.
* ``tlast``: a payload field named ``last`` is ``tlast`` (both directions).  An input without
  one ignores ``tlast``.  An output without one drives ``tlast`` high on every transfer
  whose beat ends a result; every such output of the blocks here is one beat per result
  (``_RESULT_BEATS`` would list an exception), so ``tlast`` is 1 on every beat.
* ``aclk`` is the block's ``sync`` clock and ``aresetn`` its reset, active low and
  synchronous (``rst = ~aresetn``), as AXI4-Stream specifies ``ARESETn``.
* Members that are not streams pass through under their own names.

The layout of every port of every block is documented in docs/integration.md;
``BLOCK.json`` records the wrapper's ports and widths under ``"axis_ports"``.
"""

from amaranth import ClockDomain, Module
from amaranth.hdl import Cat, Const, Shape, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxisWrapper", "stream_fields", "tdata_width"]

#: output streams without a ``last`` field whose results span several beats:
#: ``{(block, stream): beats per result}``.  Empty: every such output of the blocks here
#: carries one result per beat (a Z row, a (p, q) pair, a row's statistics, a tile row).
_RESULT_BEATS = {}


def _is_stream(member):
    return member.is_signature and isinstance(member.signature, stream.Signature)


def stream_fields(shape):
    """``(fields, has_last)`` of a stream payload: ``fields`` = ``[(name, offset, width)]`` of
    the bits that go into ``tdata``, in ``tdata`` order; ``has_last``: a 1-bit ``last`` field."""
    if isinstance(shape, data.StructLayout):
        fields = sorted(((name, f.offset, Shape.cast(f.shape).width) for name, f in shape),
                        key=lambda f: f[1])
        last = [f for f in fields if f[0] == "last"]
        if last and last[0][2] != 1:
            raise ValueError(f"a 'last' field must be 1 bit wide, not {last[0][2]}")
        return [f for f in fields if f[0] != "last"], bool(last)
    width = Shape.cast(shape).width
    return [("", 0, width)], False


def tdata_width(fields):
    """Bits of ``tdata``: the fields' total rounded up to whole bytes (at least one byte)."""
    bits = sum(w for _, _, w in fields)
    return max(8, -(-bits // 8) * 8)


class AxisWrapper(wiring.Component):
    """AXI4-Stream ports around ``block`` (a ``wiring.Component`` with ``sync``-domain
    streams); ``block_name`` names the block's submodule (Verilog ``TOP.block_name``)."""

    def __init__(self, block, *, block_name="block"):
        if not isinstance(block, wiring.Component):
            raise TypeError(f"block must be a wiring.Component, not {block!r}")
        self._block, self._block_name = block, block_name
        self._streams = {}
        members = {"aclk": In(1), "aresetn": In(1)}
        for name, member in block.signature.members.items():
            if not _is_stream(member):
                members[name] = member
                continue
            shape = member.signature.members["payload"].shape
            fields, has_last = stream_fields(shape)
            side, flow = ("s_axis", In) if member.flow == In else ("m_axis", Out)
            back = Out if flow == In else In
            prefix = f"{side}_{name}"
            members.update({f"{prefix}_tdata": flow(tdata_width(fields)), f"{prefix}_tvalid": flow(1),
                            f"{prefix}_tready": back(1), f"{prefix}_tlast": flow(1)})
            self._streams[name] = (prefix, fields, has_last, member.flow)
        super().__init__(members)

    @property
    def block(self):
        return self._block

    def elaborate(self, platform):
        m = Module()
        m.submodules[self._block_name] = blk = self._block

        # -- clock and reset: aclk, and aresetn active low (synchronous) ---------------------
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]

        # -- streams: tdata <-> the payload without `last`, tlast <-> `last` -----------------
        for name, (prefix, fields, has_last, flow) in self._streams.items():
            port = getattr(blk, name)
            bits = Value.cast(port.payload)
            tdata, tvalid, tready, tlast = (getattr(self, f"{prefix}_{s}") for s in ("tdata", "tvalid", "tready",
                                                                                        "tlast"))
            if flow == In:
                pos = 0
                for _, offset, width in fields:
                    m.d.comb += bits[offset:offset + width].eq(tdata[pos:pos + width])
                    pos += width
                if has_last:
                    m.d.comb += port.payload.last.eq(tlast)
                m.d.comb += [port.valid.eq(tvalid), tready.eq(port.ready)]
            else:
                packed = Cat(*(bits[offset:offset + width] for _, offset, width in fields))
                m.d.comb += tdata.eq(packed)  # zero-extended: the pad bits are 0
                if has_last:
                    m.d.comb += tlast.eq(port.payload.last)
                elif (self._block_name, name) in _RESULT_BEATS:
                    raise NotImplementedError(f"{self._block_name}.{name}: results of several beats")
                else:
                    m.d.comb += tlast.eq(Const(1, 1))
                m.d.comb += [tvalid.eq(port.valid), port.ready.eq(tready)]

        # -- everything else passes through ---------------------------------------------------
        for name, member in self.signature.members.items():
            if name in ("aclk", "aresetn") or any(name.startswith(p + "_") for p, *_ in self._streams.values()):
                continue
            if member.flow == In:
                m.d.comb += getattr(blk, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(blk, name))
        return m

