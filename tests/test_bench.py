"""``damf bench``: the synthesis figures it prints from the reports of ``make synth``."""

import json

from damf import bench


def test_synthesis_figures_print_iso_ratios(tmp_path, capsys):
    point = {"target_cycles_per_head": 16384, "ratios": {
        "damf": {"cycles": 1.0, "logic_transistors": 0.5, "time_per_head_us": None, "area_x_time": None},
        "damf_base2": {"cycles": 0.98, "logic_transistors": 1.25, "time_per_head_us": 0.8, "area_x_time": 1.0,
                       "time_per_head_gate_delays": 0.6, "area_x_gate_delays": 0.75}}}
    (tmp_path / "compare-bert-base.json").write_text(json.dumps({"iso_throughput": [point]}))
    bench.synthesis_figures(tmp_path)
    out = capsys.readouterr().out
    assert "no synthesis report yet" in out
    assert "compare-bert-base.json" in out and "compare-default.json" not in out
    lines = [line for line in out.splitlines() if "16,384 cycles" in line]
    assert len(lines) == 2
    assert "damf " in lines[0] and "logic 0.50x" in lines[0] and "time -" in lines[0]
    assert "damf_base2" in lines[1] and "cycles 0.98x" in lines[1] and "logic x time 1.00x" in lines[1]
    assert "time (gate delays) 0.60x  logic x gate delays 0.75x" in lines[1]
    assert "time (gate delays) -" in lines[0]
