"""What ``BLOCK.json`` says about the generated Verilog: its top module, every port, the
payload fields inside each stream's payload, and the block's cycle figures.

Everything here is read from the built Amaranth component (its ``signature`` and the
``amaranth.lib.data`` layouts of its payloads) and from the configuration's own properties,
never written by hand per block, so the description cannot drift from the Verilog:
``tests/test_describe.py`` checks it against the ``module NAME(...)`` header and the port
declarations of every block at every preset.  The format is ``docs/schemas/block.schema.json``
and docs/integration-json.md.
"""

import inspect
import re

from amaranth.hdl import Shape, Value
from amaranth.lib import data, stream, wiring

from .blocks import DEFAULT_PREFIX, get_block, module_name
from .hdl.axis import AxisWrapper, stream_fields, tdata_width

__all__ = ["describe", "payload_fields", "TIMING"]


# ---- payloads -------------------------------------------------------------------------------

def payload_fields(shape, name="", offset=0):
    """The leaf fields of a payload shape, flattened: ``[{"name", "offset", "width",
    "signed"}]`` in bit order, for ``StructLayout`` members (``name`` or ``outer.name``) and
    ``ArrayLayout`` elements (``name[i]``, element 0 in the least significant bits),
    recursively; a plain shape is one field."""
    if isinstance(shape, data.ArrayLayout):
        step = Shape.cast(shape.elem_shape).width
        return [f for i in range(shape.length)
                for f in payload_fields(shape.elem_shape, f"{name}[{i}]", offset + i * step)]
    if isinstance(shape, data.Layout):
        out = []
        for key, field in shape:
            out += payload_fields(field.shape, f"{name}.{key}" if name else str(key), offset + field.offset)
        return sorted(out, key=lambda f: f["offset"])
    s = Shape.cast(shape)
    return [{"name": name, "offset": offset, "width": s.width, "signed": s.signed}]


def _streams(signature):
    return {name: member for name, member in signature.members.items()
            if member.is_signature and isinstance(member.signature, stream.Signature)}


def _ports(component, *, clock):
    """``[{"name", "direction", "width"}]`` of the Verilog top of ``component``: ``clk`` and
    ``rst`` (the ``sync`` domain Verilog conversion adds) when ``clock``, then the signature's
    members flattened as Amaranth names them (``x__payload``, ``x__valid``, ...)."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}] if clock else []
    for path, member, value in component.signature.flatten(component):
        ports.append({"name": "__".join(str(p) for p in path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": len(Value.cast(value))})
    return ports


def _block_streams(block, ports):
    """The stream grouping of a block's own ports, and the payload fields on each payload port."""
    by_name = {p["name"]: p for p in ports}
    streams = []
    for name, member in _streams(block.signature).items():
        shape = member.signature.members["payload"].shape
        by_name[f"{name}__payload"]["fields"] = payload_fields(shape)
        streams.append({"name": name, "direction": "input" if member.flow == wiring.In else "output",
                        "payload": f"{name}__payload", "valid": f"{name}__valid", "ready": f"{name}__ready"})
    return streams


def _axis_streams(block, ports):
    """The same for the AXI4-Stream wrapper (``hdl/axis.py``): ``tdata`` holds the payload's
    fields except ``last`` packed from bit 0 in offset order, then zero padding (``pad``)."""
    by_name = {p["name"]: p for p in ports}
    streams = []
    for name, member in _streams(block.signature).items():
        shape = member.signature.members["payload"].shape
        top, has_last = stream_fields(shape)
        flat = payload_fields(shape)
        fields, pos = [], 0
        for top_name, offset, width in top:
            inside = [f for f in flat if offset <= f["offset"] < offset + width]
            fields += [{**f, "offset": pos + f["offset"] - offset} for f in inside]
            pos += width
        pad = tdata_width(top) - pos
        if pad:
            fields.append({"name": "pad", "offset": pos, "width": pad, "signed": False})
        prefix = f"{'s' if member.flow == wiring.In else 'm'}_axis_{name}"
        by_name[f"{prefix}_tdata"]["fields"] = fields
        streams.append({"name": name, "direction": "input" if member.flow == wiring.In else "output",
                        "tdata": f"{prefix}_tdata", "tvalid": f"{prefix}_tvalid", "tready": f"{prefix}_tready",
                        "tlast": f"{prefix}_tlast", "tlast_is": "last" if has_last else "every beat"})
    return streams


# ---- timing ---------------------------------------------------------------------------------

#: Which configuration properties (or methods, called at ``seq_len``) are a block's cycle
#: figures: ``{block: [(key, attribute, arguments), ...]}``; the first one named ``latency``
#: (or the one listed under ``_LATENCY``) is also ``BLOCK.json``'s top-level ``latency``.
TIMING = {
    "inner-product": [("latency", "latency", None), ("cycles_per_token", "beats", None)],
    "systolic-qk": [("latency", "latency", None), ("cycles_per_tile", "cycles_per_tile", None),
                    ("tile_cycles", "tile_cycles", None), ("cycles", "cycles", None)],
    "systolic-av": [("latency", "latency", None), ("cycles_per_tile", "cycles_per_tile", None),
                    ("tile_cycles", "tile_cycles", None), ("cycles", "cycles", None)],
    "softmax": [("row_latency", "row_latency", None), ("row_cycles", "row_cycles", ("seq_len",)),
                ("row_interval", "row_interval", ("seq_len",))],
    "score": [("latency", "latency", None), ("cycles_per_row", "row_beats", ("seq_len",)),
              ("cycles", "cycles", ("seq_len", "seq_len"))],
    "row-stats": [("setup_cycles", "setup_cycles", None), ("cycles_per_row", "row_cycles", ("seq_len",))],
    "shift-accumulate": [("latency", "latency", None), ("round_cycles", "round_cycles", None)],
    "damf-head": [("latency", "latency", None), ("issue_latency", "issue_latency", None),
                  ("row_latency", "row_latency", None), ("row_period", "row_period", ()),
                  ("cycles_per_head", "cycles_per_head", ("seq_len",)), ("head_interval", "head_interval", None)],
    "baseline-head": [("load_end", "load_end", None), ("cycles", "cycles", None),
                      ("head_interval", "head_interval", None)],
}
#: the figure that is the block's latency when it is not called ``latency``
_LATENCY = {"softmax": "row_latency", "row-stats": "setup_cycles"}

#: meanings of figures whose attribute has no docstring (a plain class attribute), or whose
#: docstring is its base class's (the A' V engine is the Q K^T array with other operands)
_MEANING = {
    ("inner-product", "latency"): "Cycles from the handshake of a token's last beat to o.valid, without backpressure",
    ("systolic-av", "cycles"): "Cycles from the first input handshake to the last Z row's handshake for one "
                               "A' V, with a source always valid and a sink always ready",
}


def _first_clause(text):
    """``text`` up to its first ``: ``, ``. `` or ``; `` outside parentheses."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text[i:i + 2] in (": ", ". ", "; "):
            return text[:i]
    return text.rstrip(".")


def _meaning(cfg, attribute):
    """The first clause of the attribute's docstring, on one line (markup removed); where a
    subclass's docstring is only a formula (``systolic-av``'s), the base class's words."""
    if (cfg.block, attribute) in _MEANING:
        return _MEANING[(cfg.block, attribute)]
    for cls in type(cfg).__mro__:
        member = cls.__dict__.get(attribute)
        if member is None:
            continue
        doc = inspect.getdoc(member.fget if isinstance(member, property) else member) or ""
        text = " ".join(re.sub(r":(attr|meth|func|data):", "", doc).replace("`", "").split())
        if text and not re.fullmatch(r"``[^`]*``\.?", doc.strip()):     # not only a formula
            return _first_clause(text)
    return ""


def _arguments(cfg, attribute, args):
    """`` (lk = seq_len = 8)``: the method's parameters and the values they are called with."""
    names = list(inspect.signature(getattr(cfg, attribute)).parameters)
    return " (" + ", ".join(f"{n} = {a} = {getattr(cfg, a)}" for n, a in zip(names, args)) + ")"


def timing(cfg):
    """``{key: {"cycles": value, "meaning": text}}`` of the block's cycle figures (sources
    always valid, sinks always ready; the models the tests check cycle-exactly)."""
    out = {}
    for key, attribute, args in TIMING[cfg.block]:
        value = getattr(cfg, attribute)
        if args is not None:
            value = value(*(getattr(cfg, a) for a in args))
        meaning = _meaning(cfg, attribute) + (_arguments(cfg, attribute, args) if args else "")
        out[key] = {"cycles": value, "meaning": meaning}
    if cfg.block == "baseline-head" and cfg.banks == 2:
        out["compute_span"] = {"cycles": cfg.compute_span, "meaning": _meaning(cfg, "compute_span")}
    return out


# ---- the whole description ------------------------------------------------------------------

def describe(cfg, *, prefix=DEFAULT_PREFIX, axis=False):
    """``{"module", "latency", "ports", "streams", "timing"}`` of ``damf generate`` for ``cfg``
    (with ``--prefix prefix`` and ``--axis``): the members ``BLOCK.json`` adds to the
    configuration's own (``cfg.to_json()``)."""
    block = get_block(cfg.block)
    component = block.build(cfg)
    component._MustUse__silence = True      # read, never elaborated: no UnusedElaboratable warning
    if axis:
        top = AxisWrapper(component, block_name=module_name(block.name, prefix))
        top._MustUse__silence = True
        ports = _ports(top, clock=False)       # the wrapper drives its own domain from aclk/aresetn
        streams = _axis_streams(component, ports)
    else:
        ports = _ports(component, clock=True)
        streams = _block_streams(component, ports)
    figures = timing(cfg)
    latency = _LATENCY.get(cfg.block, "latency")
    return {"module": module_name(block.name, prefix, axis=axis), "ports": ports, "streams": streams,
            "latency": figures[latency]["cycles"] if latency in figures else None, "timing": figures}
