"""Issue 6, hardware on real data: one head of all-MiniLM-L6-v2, real weights and tokens, RTL.

Layer 0, head 0: real quantized singular vectors of the head's fused ``M``, the real token
activations of short real sentences (``damf/models/data/sentences.txt``) and the head's real values,
through the generated ``damf-head`` on each simulator; every element of ``Z`` must equal the
bit-exact golden model (``damf/models/real_head.py``).  Two cases: the paper's rank-2 ``maclaurin``
head, and the configuration ``damf eval`` recommends for a model not trained for DAMF and that
``damf minilm-head`` generates by default: full rank (32), mode ``base2`` with ``c`` from the
real score scale, 8-bit inputs, ``weight_frac`` 8 (at ``seq_len`` 16 to keep the run short).
"""

import subprocess
import sys

import pytest

from damf.models.real_head import real_head_vectors
from damf.golden.vectors import dumps

CASES = {
    "rank2-maclaurin": dict(rank=2, mode="maclaurin", parallel=4),
    "rank32-base2": dict(rank=32, mode="base2", parallel=2, weight_frac=8),   # minilm_head's defaults
}


@pytest.mark.parametrize("case", CASES)
def test_real_head_on_rtl(case, simulator, request):
    build = request.config.rootpath / "build" / "sim" / "real-data" / case / simulator
    build.mkdir(parents=True, exist_ok=True)
    doc = real_head_vectors(layer=0, head=0, count=4, **CASES[case])
    assert len(set(doc["inputs"]["lengths"])) > 1  # sentences of different lengths
    assert doc["config"]["mode"] == CASES[case]["mode"]
    path = build / f"minilm-layer0-head0-{case}.json"
    path.write_text(dumps(doc))
    result = subprocess.run([sys.executable, "-m", "damf.cli", "sim", "--vectors", str(path),
                             "--sim", simulator, "--build", str(build)], capture_output=True, text=True)
    n = len(doc["expected"]["z"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"damf-head on {simulator}: {n}/{n} results match" in result.stdout
