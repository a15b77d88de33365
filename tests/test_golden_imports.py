"""``golden/`` holds the bit-exact models, float references and the vector-file format only,
and never imports Amaranth or cocotb -- not on import, and neither does the block registry
when a vector file is loaded or generated through it (a fresh interpreter per check, so
nothing a test imported earlier hides it)."""

import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
MODULES = sorted(p.stem for p in GOLDEN.glob("*.py") if p.stem != "__init__")
VECTORS = GOLDEN / "vectors" / "default"


def imported_after(code):
    """The HDL modules (amaranth, cocotb) in ``sys.modules`` after ``code`` ran in a fresh
    interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'amaranth', 'cocotb'})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_golden_holds_models_and_vector_format_only():
    assert MODULES, "no golden modules found"
    research = {"eval", "finetune", "minilm", "real_head", "cost_model"} & set(MODULES)
    assert not research, f"research code in golden/: {sorted(research)} (belongs in damf/models or damf/)"


@pytest.mark.parametrize("module", MODULES)
def test_import_pulls_in_no_hdl(module):
    assert imported_after(f"import damf.golden.{module}") == []


def test_loading_and_generating_vectors_pulls_in_no_hdl():
    files = sorted(VECTORS.glob("*.json"))
    assert len(files) == 9
    code = ("from damf.blocks import BLOCKS, generate_vectors, load_vectors\n"
            + "".join(f"load_vectors({str(f)!r})\n" for f in files)
            + "for b in BLOCKS.values():\n"
            + "    generate_vectors(b.config_cls.from_preset('default'), seed=1, count=2)\n")
    assert imported_after(code) == []
