"""The DAMF-vs-baseline comparison: cycle composition, sums, and reports from real tool runs.

The tool runs use a tiny preset (4 tokens, d_head 4, 4-bit inputs) and the fast flows only.
"""

import json

import pytest

from damf import compare
from damf.blocks import comparisons
from damf.config import PRESETS, Preset
from damf.config import DEFAULT_PQ_WIDTH

TINY = Preset(name="tiny", description="a tiny shape for the tool runs", d_model=4, n_heads=1, d_head=4,
              seq_len=4, rank=1, lanes=2, x_width=4, w_width=4,
              extra={"q_width": 4, "k_width": 4, "v_width": 4, "prob_width": 4, "rows": 2, "cols": 2,
                     "parallel": 2})


def test_cycle_composition_default():
    damf, base = compare.head_configs("default")
    cfgs = compare.part_configs(damf, base)
    L, beats, par = 8, 16 // 4, 2
    # naive formulas from docs/damf-head.md, docs/systolic-qk.md and docs/baseline.md
    parts, _ = compare.cycles_of("score", "damf", cfgs)
    assert parts == {"inner-product": L * beats + 4, "score": L + L * -(-L // par) + 4}
    parts, _ = compare.cycles_of("score", "baseline", cfgs)
    assert parts == {"systolic-qk": (4 - 1) * 8 + 8 + 4 + 4 + 1}           # 2 x 2 tiles of 4 x 4
    parts, _ = compare.cycles_of("axv", "damf", cfgs)
    rs, sa = cfgs["row-stats"], cfgs["shift-accumulate"]
    beats_row = -(-L // par)
    assert parts == {"row-stats": L * beats_row + rs.setup_cycles,
                     "shift-accumulate": beats_row + (L - 1) * max(beats_row, sa.round_cycles) + sa.latency}
    parts, _ = compare.cycles_of("axv", "baseline", cfgs)
    # softmax with 4 scores per beat: rows of 2 beats back to back, latency sum_stage 11 +
    # div_stages ceil((8 + 6 + 2) / 2) + 7 = 26
    beats, latency = L // 4, 11 + (8 + L.bit_length() + 2 + 2) // 2 + 7
    assert parts == {"softmax": (L - 1) * beats + 2 * beats - 2 + latency, "systolic-av": (4 - 1) * 8 + 8 + 4 + 4 + 1}


def test_shared_widths():
    """Both heads of one preset share L, d_head and 8-bit inputs; their parts are the presets'."""
    damf, base = compare.head_configs("default", seq_len=16, d_head=4)
    cfgs = compare.part_configs(damf, base)
    assert {cfgs[b].seq_len for b in ("score", "row-stats", "shift-accumulate", "systolic-qk",
                                      "softmax", "systolic-av")} == {16}
    assert cfgs["shift-accumulate"].d_head == cfgs["systolic-qk"].d_head == cfgs["systolic-av"].d_head == 4
    assert cfgs["inner-product"].x_width == cfgs["systolic-qk"].q_width == 8
    assert cfgs["softmax"].in_width == cfgs["systolic-qk"].acc_width
    # p and q requantized to min(DEFAULT_PQ_WIDTH, out_width) bits before the score multipliers
    assert cfgs["score"].pq_width == damf.pq_width == min(DEFAULT_PQ_WIDTH, cfgs["inner-product"].out_width)


def _fake(block, mults, transistors, fmax):
    return {"block": block, "coarse": {"multipliers": mults},
            "cmos": {"transistors": transistors, "cells": transistors // 4, "ffs": 10},
            "ice40": {"luts": 5, "ffs": 6, "carries": 1, "dsps": mults, "fmax_mhz": fmax},
            "ecp5": {"luts": 7, "ffs": 6, "carries": 2, "dsps": mults, "fmax_mhz": fmax}}


def test_side_summary_sums_and_min_fmax():
    s = compare.side_summary([_fake("a", 2, 100, 90.0), _fake("b", 0, 60, 70.0)])
    assert s["cmos"] == {"transistors": 160, "cells": 40, "ffs": 20}
    assert s["coarse"]["multipliers"] == 2
    assert s["ecp5"]["luts"] == 14 and s["ecp5"]["fmax_mhz"] == 70.0
    assert compare.side_summary([_fake("a", 1, 4, None), _fake("b", 1, 4, 50.0)])["ice40"]["fmax_mhz"] is None
    # a CMOS-only result (sweeps) has no FPGA figures to sum
    assert set(compare.side_summary([{"coarse": {"multipliers": 0}, "cmos": {"transistors": 1, "cells": 1, "ffs": 0}}])) \
        == {"coarse", "cmos"}


@pytest.fixture
def without_damf_head():
    """The registry without ``damf-head``, then as it was and in its order (monkeypatch's
    ``delitem`` would put the entry back at the end, and other tests read the order)."""
    from damf import blocks
    saved = dict(blocks.BLOCKS)
    del blocks.BLOCKS["damf-head"]
    yield
    blocks.BLOCKS.clear()
    blocks.BLOCKS.update(saved)


def test_head_not_registered(without_damf_head):
    damf, base = compare.head_configs("default")
    cfgs = compare.part_configs(damf, base)
    results = {b: _fake(b, 0 if b == "shift-accumulate" else 1, 1000, 80.0) for b in cfgs}
    doc = compare.build_doc("default", cfgs, results, {})
    assert doc["comparisons"]["head"] == {"available": False, "missing": ["damf"]}
    score = doc["comparisons"]["score"]
    assert score["damf"]["cmos"]["transistors"] == 2000 and score["baseline"]["cmos"]["transistors"] == 1000
    assert score["damf"]["area_x_cycles"] == 2000 * score["damf"]["cycles"]
    text = compare.markdown(doc)
    assert "Not available: no block registered in `damf/blocks.py` plays the damf side." in text
    assert "`shift-accumulate` has 0 `$mul` cells" in text


def test_failed_part_is_reported():
    damf, base = compare.head_configs("default")
    cfgs = compare.part_configs(damf, base)
    results = {b: _fake(b, 1, 1000, 80.0) for b in cfgs}
    results["baseline-head"] = {"block": "baseline-head", "error": "yosys failed"}
    doc = compare.build_doc("default", cfgs, results, {})
    assert doc["comparisons"]["head"] == {"available": False, "failed": ["`baseline-head`: yosys failed"]}
    assert "synthesis failed for `baseline-head`: yosys failed" in compare.markdown(doc)


def test_cache_key_keeps_flows_apart():
    """A result without place and route (no fmax) must never be read back for a run with it,
    nor a fast-flow result for a full one."""
    damf, base = compare.head_configs("default")
    cfg = compare.part_configs(damf, base)["damf-head"]
    keys = {compare.cache_key(cfg, full=full, pnr=pnr, ice40=ice40)
            for full in (False, True) for pnr in (False, True) for ice40 in (False, True)}
    assert len(keys) == 5       # fast flows: one key; full: ice40 x pnr
    assert compare.cache_key(cfg, full=True) == "full-" + compare._key(cfg)


def test_tiny_run_with_tools(tmp_path, monkeypatch):
    """Real yosys runs (fast flows, no place and route) on a tiny preset and a two-point sweep."""
    monkeypatch.setitem(PRESETS, "tiny", TINY)
    # the heads take minutes; tested by their owners
    monkeypatch.setattr(compare, "comparisons", lambda: {k: v for k, v in comparisons().items() if k != "head"})
    grid = {"lengths": (2, 4), "d_heads": (4,), "parallels": (2,), "arrays": ((2, 2),)}
    log = []
    doc = compare.run(preset="tiny", results=[], out=tmp_path / "reports", build=tmp_path / "build",
                      fpga=False, grid=grid, progress=log.append)
    written = json.loads((tmp_path / "reports" / "compare-tiny.json").read_text())
    assert written == json.loads(json.dumps(doc))
    assert doc["shift_accumulate_multipliers"] == 0
    axv = doc["comparisons"]["axv"]
    assert axv["damf"]["multipliers_by_part"]["shift-accumulate"] == 0
    assert axv["baseline"]["multipliers_by_part"]["systolic-av"] == 4       # a 2 x 2 array
    # the side's area is the sum of its parts' results (cached next to the build)
    cfgs = compare.part_configs(*compare.head_configs("tiny"))
    cached = [json.loads(p.read_text()) for p in (tmp_path / "build" / "compare").glob("*/result.json")]
    by_block = {r["block"]: r for r in cached if r["config"] == cfgs[r["block"]].to_dict()}
    assert axv["damf"]["cmos"]["transistors"] == sum(by_block[b]["cmos"]["transistors"]
                                                     for b in ("row-stats", "shift-accumulate"))
    assert "ecp5" not in axv["damf"]                                          # fast flows only
    # sweeps: every point of both sides, the L = 4 point equal to the preset's parts
    xs = {(r["side"], r["comparison"]): [p["x"] for p in doc["sweeps"]["seq_len"]
                                         if (p["side"], p["comparison"]) == (r["side"], r["comparison"])]
          for r in doc["sweeps"]["seq_len"]}
    assert all(v == [2, 4] for v in xs.values()) and len(xs) == 4
    at4 = [p for p in doc["sweeps"]["seq_len"] if p["x"] == 4 and p["comparison"] == "score" and p["side"] == "baseline"]
    assert at4[0]["transistors"] == doc["comparisons"]["score"]["baseline"]["cmos"]["transistors"]
    assert sorted({p["x"] for p in doc["sweeps"]["parallel"]}) == [2, 4]
    for name in ("seq-len", "d-head", "parallel"):
        png = tmp_path / "reports" / f"compare-tiny-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "reports" / "compare-tiny.md").read_text()
    assert "| DAMF | `row-stats` + `shift-accumulate` | 0 |" in text
    assert "![seq_len sweep](compare-tiny-seq-len.png)" in text
    # mode base2: row-stats keeps only N and A_max and shift-accumulate has no SV term: smaller
    b2 = doc["base2"]["comparisons"]["axv"]["damf"]
    assert b2["multipliers_by_part"]["shift-accumulate"] == 0
    assert b2["cmos"]["transistors"] < axv["damf"]["cmos"]["transistors"]
    assert b2["cycles"] < axv["damf"]["cycles"]                 # 1-cycle row set-up instead of 4
    assert "## Mode base2" in text and "### A' x V: DAMF row-stats + shift-accumulate vs softmax + systolic-av (base2)" in text
    # a second run synthesizes nothing: everything comes from the cache
    log.clear()
    again = compare.run(preset="tiny", results=[], out=tmp_path / "reports2", build=tmp_path / "build",
                        fpga=False, grid=grid, progress=log.append)
    assert not any("synthesizing" in line for line in log)
    assert again["comparisons"] == doc["comparisons"]


def test_planned_runs_default():
    """`damf synth` queues the comparison's own designs with the blocks: the base2 parts (with
    the preset's flows) and every iso design (ECP5 only), each labelled."""
    runs = compare.planned_runs("default")
    labels = [label for label, _, _ in runs]
    parts = [b for sides in comparisons().values() for side in sides for b in side]
    assert labels[:len(parts)] == [f"part {b}" for b in parts]
    assert labels[len(parts):len(parts) + 3] == ["base2 row-stats", "base2 shift-accumulate", "base2 damf-head"]
    assert all(ice40 for label, _, ice40 in runs if not label.startswith("iso"))
    iso_runs = [(label, cfg) for label, cfg, ice40 in runs if label.startswith("iso") and not ice40]
    assert len(iso_runs) == len(runs) - len(parts) - 3 >= 6
    assert {cfg.block for _, cfg in iso_runs} == {"damf-head", "baseline-head"}
    assert len(compare.planned_runs("default", iso_points=False)) == len(parts) + 3
    assert len(compare.planned_runs("default", iso_points=False, base2_parts=False)) == len(parts)


def _fake_synthesizer(calls):
    """A stand-in for :func:`damf.synth.synthesize` that appends ``key pnr ice40`` to ``calls``."""

    def fake(cfg, work, *, pnr=True, fpga=True, ice40=True, progress=print, pnr_timeout=None):
        with open(calls, "a") as f:
            f.write(f"{compare._key(cfg)} {int(pnr)} {int(ice40)}\n")
        flows = {"ecp5": {"luts": 7, "ffs": 6, "carries": 2, "dsps": 1, "rams": 0, "lutrams": 0,
                          "fmax_mhz": 100.0}}
        if ice40:
            flows["ice40"] = {"luts": 5, "ffs": 6, "carries": 1, "dsps": 1, "rams": 0, "fmax_mhz": 90.0}
        return {"block": cfg.block, "module": "m", "config": cfg.to_dict(), "derived": {},
                "coarse": {"multipliers": 1, "shifters": 0, "adders": 1, "cells": {}},
                "cmos": {"transistors": 100, "cells": 25, "ffs": 10, "cells_by_type": {}, "critical_path_gates": 20},
                "memory": {"bits": 8, "bits_by_kind": {"other": 8}, "transistors": 48, "transistors_per_bit": 6,
                           "memories": []}, **flows}
    return fake


def test_synth_run_queues_every_design_once(tmp_path, monkeypatch, capsys):
    """One pool for the blocks and the comparison's designs: each is synthesized once, and the
    comparison then runs nothing of its own (a fake synthesizer counts the calls)."""
    from damf import synth, synth_run
    calls = tmp_path / "calls.txt"
    monkeypatch.setattr(synth, "synthesize", _fake_synthesizer(calls))
    monkeypatch.setattr(compare, "plot_iso", lambda out_dir: [])
    synth_run.run(preset="default", blocks=None, out=tmp_path / "reports", build=tmp_path / "build", sweep=False,
              jobs=2)
    lines = [line.split()[0] for line in calls.read_text().splitlines()]
    assert len(lines) == len(set(lines))                  # nothing twice
    planned = {compare._key(cfg) for _, cfg, _ in compare.planned_runs("default")}
    assert planned <= set(lines)
    out = capsys.readouterr().out
    assert "compare: synthesizing" not in out             # ... all of them in the one pool
    assert f"damf synth (default): {len(lines)} designs on 2 process(es), largest first" in out
    doc = json.loads((tmp_path / "reports" / "compare-default.json").read_text())
    assert len(doc["iso_throughput"]) == 3
    point = doc["iso_throughput"][0]
    assert point["damf"]["time_per_head_gate_delays"] == point["damf"]["cycles_per_head"] * 20


@pytest.mark.parametrize("place_iso", [False, True])
def test_synth_run_bert_base_flows(tmp_path, monkeypatch, capsys, place_iso):
    """At bert-base: no iCE40 anywhere, no place and route (the iso designs' with
    ``--place-iso``), no base2 parts."""
    from damf import synth, synth_run
    from damf.blocks import BLOCKS
    calls = tmp_path / "calls.txt"
    monkeypatch.setattr(synth, "synthesize", _fake_synthesizer(calls))
    monkeypatch.setattr(compare, "plot_iso", lambda out_dir: [])
    synth_run.run(preset="bert-base", blocks=None, out=tmp_path / "reports", build=tmp_path / "build", jobs=2,
              place_iso=place_iso)
    runs = {key: (pnr, ice40) for key, pnr, ice40 in (line.split() for line in calls.read_text().splitlines())}
    blocks = {compare._key(BLOCKS[b].config_cls.from_preset("bert-base")) for b in BLOCKS}
    planned = compare.planned_runs("bert-base")
    iso = {compare._key(cfg) for label, cfg, _ in planned if label.startswith("iso")}
    parts = {compare._key(cfg) for label, cfg, _ in planned if label.startswith("part")}
    assert set(runs) == blocks | parts | iso and parts - blocks        # a part is not a preset block there
    assert all(runs[k] == ("0", "0") for k in blocks | parts)
    assert all(runs[k] == (str(int(place_iso)), "0") for k in iso)
    doc = json.loads((tmp_path / "reports" / "compare-bert-base.json").read_text())
    assert "base2" not in doc and len(doc["iso_throughput"]) == 3
    out = capsys.readouterr().out
    assert "no iCE40 flows at this preset; the preset's blocks without place and route" in out
    assert ("; the iso designs without place and route" in out) is not place_iso
    assert "; no base2 part tables" in out
