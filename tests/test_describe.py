"""BLOCK.json's description of the Verilog top (damf/describe.py) against the Verilog itself.

For every block at every preset, every linted variant and the ``--axis`` wrapper: the
described module and ports (name, direction, width) are exactly those of the generated
Verilog's ``module NAME(...)`` header and its ``input`` / ``output`` declarations, and the
fields of every payload port tile it exactly (no gap, no overlap, widths summing to the
port's width).  The Verilog is parsed here, independently of Amaranth.
"""

import dataclasses
import json
import re

import pytest

from damf import cli
from damf.blocks import BLOCKS, module_name
from damf.verilog import to_verilog
from damf.config import PRESETS
from damf.describe import describe, payload_fields

_DECL = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):0\]\s+)?([A-Za-z_][A-Za-z0-9_$]*)\s*;",
                   re.M)


def verilog_ports(text, module):
    """``{name: (direction, width)}`` of ``module`` in ``text``, from its header and declarations."""
    start = re.search(rf"^module {re.escape(module)}\(([^)]*)\);", text, re.M)
    assert start, f"no module {module} in the Verilog"
    header = [p.strip() for p in start.group(1).split(",")]
    body = text[start.end():text.index("endmodule", start.end())]
    decls = {name: (kind, int(msb) + 1 if msb else 1) for kind, msb, name in _DECL.findall(body)}
    assert sorted(header) == sorted(decls), (header, sorted(decls))
    return decls


def check_tiling(port):
    """The fields of ``port`` cover bits 0 .. width-1 once each, in offset order."""
    pos = 0
    for f in port["fields"]:
        assert f["offset"] == pos, f"{port['name']}: field {f['name']} at {f['offset']}, expected {pos}"
        assert f["width"] >= 1
        pos += f["width"]
    assert pos == port["width"], f"{port['name']}: fields cover {pos} bits of {port['width']}"


def check(cfg, *, prefix="damf_", axis=False):
    text = to_verilog(cfg, prefix=prefix, axis=axis)
    desc = describe(cfg, prefix=prefix, axis=axis)
    assert desc["module"] == module_name(cfg.block, prefix, axis=axis)
    described = {p["name"]: (p["direction"], p["width"]) for p in desc["ports"]}
    assert len(described) == len(desc["ports"]), "a port is described twice"
    assert described == verilog_ports(text, desc["module"])
    by_name = {p["name"]: p for p in desc["ports"]}
    payloads = [s["tdata" if axis else "payload"] for s in desc["streams"]]
    assert payloads, "no streams"
    for s in desc["streams"]:
        names = ("tdata", "tvalid", "tready") if axis else ("payload", "valid", "ready")
        forward = s["direction"]
        backward = "output" if forward == "input" else "input"
        assert [by_name[s[n]]["direction"] for n in names] == [forward, forward, backward]
        if axis:
            assert by_name[s["tlast"]]["direction"] == forward
    for port in desc["ports"]:
        assert ("fields" in port) == (port["name"] in payloads), port["name"]
        if "fields" in port:
            check_tiling(port)
    return desc


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("block", BLOCKS)
def test_ports_are_the_verilog_ports(block, preset):
    check(BLOCKS[block].config_cls.from_preset(preset))


@pytest.mark.parametrize("block, variant", [(b, v) for b, info in BLOCKS.items() for v in info.variants if v],
                         ids=lambda x: json.dumps(x) if isinstance(x, dict) else x)
def test_ports_of_every_variant(block, variant):
    cfg = dataclasses.replace(BLOCKS[block].config_cls.from_preset("default"), **variant)
    check(cfg)


@pytest.mark.parametrize("block", ["inner-product", "damf-head", "softmax"])
def test_axis_and_prefix(block):
    desc = check(BLOCKS[block].config_cls.from_preset("default"), prefix="a_", axis=True)
    assert {p["name"] for p in desc["ports"]} >= {"aclk", "aresetn"}


def test_payload_fields_of_a_nested_layout():
    """The brief's example: x[3] at 24 (8 bits, signed), last at 32 (1 bit)."""
    cfg = BLOCKS["damf-head"].config_cls.from_preset("default")
    x = {p["name"]: p for p in describe(cfg)["ports"]}["x__payload"]
    assert x["width"] == 33
    fields = {f["name"]: f for f in x["fields"]}
    assert fields["x[3]"] == {"name": "x[3]", "offset": 24, "width": 8, "signed": True}
    assert fields["last"] == {"name": "last", "offset": 32, "width": 1, "signed": False}
    from amaranth.lib import data
    from amaranth.hdl import signed
    nested = payload_fields(data.StructLayout({"u": data.ArrayLayout(data.ArrayLayout(signed(3), 2), 2), "k": 1}))
    assert [(f["name"], f["offset"], f["width"]) for f in nested] == [
        ("u[0][0]", 0, 3), ("u[0][1]", 3, 3), ("u[1][0]", 6, 3), ("u[1][1]", 9, 3), ("k", 12, 1)]


@pytest.mark.parametrize("block", BLOCKS)
def test_timing_figures_are_the_configuration(block):
    """Every block lists its figures with a meaning; the numbers are the configuration's."""
    cfg = BLOCKS[block].config_cls.from_preset("default")
    timing = describe(cfg)["timing"]
    assert list(timing) == [f.key for f in BLOCKS[block].timing if f.when is None or f.when(cfg)]
    for key, figure in timing.items():
        assert figure["meaning"] and "\n" not in figure["meaning"] and "``" not in figure["meaning"], key
    if hasattr(cfg, "latency"):
        assert timing["latency"]["cycles"] == cfg.latency == describe(cfg)["latency"]
    if block == "damf-head":
        assert timing["cycles_per_head"]["cycles"] == cfg.cycles_per_head(cfg.seq_len)
        assert timing["row_period"]["cycles"] == cfg.row_period() == cfg.derived()["row_period"]


def test_generate_writes_the_description(tmp_path):
    """`damf generate` puts the description into BLOCK.json next to the configuration."""
    assert cli.main(["generate", "damf-head", "--set", "cross=true", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "damf-head.json").read_text())
    cfg = BLOCKS["damf-head"].config_cls.from_preset("default")
    want = describe(dataclasses.replace(cfg, cross=True))
    for key in ("module", "ports", "streams", "latency", "timing"):
        assert doc[key] == want[key], key
    assert "y__payload" in {p["name"] for p in doc["ports"]}
    assert set(verilog_ports((tmp_path / "damf-head.v").read_text(), doc["module"])) == \
        {p["name"] for p in doc["ports"]}
