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

__all__ = ["describe", "payload_fields", "timing"]


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
    subclass's docstring is only a formula, the base class's words."""
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
    for figure in get_block(cfg.block).timing:
        if figure.when is not None and not figure.when(cfg):
            continue
        value = getattr(cfg, figure.attribute)
        if figure.args is not None:
            value = value(*(getattr(cfg, a) for a in figure.args))
        meaning = figure.meaning or _meaning(cfg, figure.attribute)
        if figure.args:
            meaning += _arguments(cfg, figure.attribute, figure.args)
        out[figure.key] = {"cycles": value, "meaning": meaning}
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
    return {"module": module_name(block.name, prefix, axis=axis), "ports": ports, "streams": streams,
            "latency": figures[block.latency]["cycles"] if block.latency else None, "timing": figures}
