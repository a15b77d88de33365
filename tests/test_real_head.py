"""The real-model head configuration (``damf/models/real_head.py``) and ``damf minilm-head``."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("tokenizers", reason="the eval extra (make env) provides the model and tokenizer")

from damf.config import DEFAULT_PQ_WIDTH  # noqa: E402
from damf.golden.damf_head_block import damf_head_block  # noqa: E402
from damf.models.real_head import minilm_head, real_head_vectors  # noqa: E402


def damf(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "damf.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_defaults_are_the_eval_recommendation():
    """docs/eval.md section 5: full rank, base2, 8/8/8 bits, p and q requantized to
    DEFAULT_PQ_WIDTH bits, weight_frac 8, out_frac 4."""
    cfg, scales = minilm_head(layer=0, head=0)
    assert (cfg.rank, cfg.mode, cfg.x_width, cfg.w_width, cfg.v_width) == (32, "base2", 8, 8, 8)
    assert (cfg.weight_frac, cfg.out_frac, cfg.seq_len, cfg.d_model, cfg.d_head) == (8, 4, 256, 385, 32)
    assert (cfg.pq_width, cfg.pq_shift) == (DEFAULT_PQ_WIDTH, scales["pq_shift"])
    assert cfg.weights == "fixed" and [list(r) for r in cfg.u] == scales["u"]
    # c = log2(e) 2^-(p_frac + q_frac) / sqrt(32), p_frac = x_frac + u_frac - pq_shift, 12 significant bits
    import math
    c = cfg.c_int * 2.0 ** -cfg.c_frac
    want = math.log2(math.e) * 2.0 ** -(2 * scales["x_frac"] + scales["u_frac"] + scales["v_vec_frac"]
                                        - 2 * scales["pq_shift"]) / math.sqrt(32)
    assert cfg.c_int.bit_length() == 12 and abs(c / want - 1) < 2.0 ** -11


def test_pq_shift_is_calibrated_on_the_sentences():
    """The smallest shift at which no p or q of the calibration tokens saturates."""
    import numpy as np
    from damf.golden.damf_float import augment
    from damf.golden.inner_product import inner_product
    from damf.models.minilm import MiniLM
    from damf.golden.quant import int_range, quantize, requantize
    model = MiniLM()
    hidden = model.encode(["The cat sleeps.", "A dog runs in the park."], keep_hidden=True).hidden[1]
    for pq_width in (6, 10):
        cfg, sc = minilm_head(layer=1, head=3, rank=8, pq_width=pq_width, model=model, hidden=hidden)
        xq = np.concatenate([quantize(augment(X), 8, sc["x_frac"]) for X in hidden])
        p, q = inner_product(cfg.inner_product, xq, sc["u"], sc["v"])
        pq = np.concatenate([p.ravel(), q.ravel()])
        lo, hi = int_range(pq_width)
        wide = requantize(pq, cfg.pq_shift, 40)               # rounded, not saturated
        assert cfg.pq_shift > 0 and lo <= wide.min() and wide.max() <= hi
        narrower = requantize(pq, cfg.pq_shift - 1, 40)
        assert narrower.min() < lo or narrower.max() > hi


def test_vectors_use_the_same_configuration():
    """The RTL test's vector file (sim/test_real_data.py) holds minilm_head's configuration
    (calibrated on the file's sentences, seq_len 16, run-time weights) and the golden Z."""
    from damf.models.minilm import MiniLM
    from damf.config import DamfHeadBlockConfig
    model = MiniLM()
    doc = real_head_vectors(layer=0, head=0, rank=32, mode="base2", count=2, weight_frac=8, model=model)
    hidden = model.encode(doc["source"]["sentences"], keep_hidden=True).hidden[0]
    cfg, scales = minilm_head(layer=0, head=0, seq_len=16, weights="runtime", model=model, hidden=hidden)
    assert DamfHeadBlockConfig.from_dict(doc["config"]) == cfg
    assert doc["inputs"]["u"] == scales["u"] and doc["source"]["x_frac"] == scales["x_frac"]
    inputs = doc["inputs"]
    n = inputs["lengths"][0]
    z = damf_head_block(cfg, inputs["x"][:n], inputs["vals"][:n], inputs["u"], inputs["v"]).tolist()
    assert z == doc["expected"]["z"][:n]


def test_cli_writes_deterministic_verilog_without_paths(tmp_path):
    outs = []
    for name in ("a", "b"):
        result = damf("minilm-head", "--layer", 2, "--head", 5, "--rank", 4, "--seq-len", 32,
                      "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
        assert "calibrating layer 2 head 5" in result.stderr
        # damf import's files (docs/import.md): the head, its real-activation vectors, its fidelity
        outs.append(tuple((tmp_path / name / f"minilm-l2h5{suffix}").read_text()
                          for suffix in (".v", ".json", "-vectors.json", "-fidelity.json")))
        assert not (tmp_path / name / "minilm-l2h5-weights.hex").exists()
    assert outs[0] == outs[1]
    verilog, meta, vectors, fidelity = outs[0]
    assert "module damf_head(" in verilog and str(tmp_path) not in verilog and "/home" not in verilog
    assert str(tmp_path) not in meta + vectors + fidelity
    vec = json.loads(vectors)
    assert vec["format"] == "damf-vectors/1" and vec["config"] == json.loads(meta)["config"]
    assert vec["source"]["calibration"] == "sentences.txt" and len(vec["source"]["sentences"]) == 4
    assert set(json.loads(fidelity)) >= {"hardware", "float_rank", "rows", "sequences"}
    doc = json.loads(meta)
    assert doc["block"] == "damf-head" and doc["config"]["rank"] == 4 and doc["config"]["mode"] == "base2"
    assert doc["source"]["layer"] == 2 and doc["source"]["head"] == 5


@pytest.mark.parametrize("args, message", [
    (["--layer", "6"], "--layer must be in [0, 5], not 6"),
    (["--head", "-1"], "--head must be in [0, 11], not -1"),
    (["--rank", "33"], "--rank must be in [1, 32], not 33"),
    (["--x-width", "1"], "--x-width must be in [2, 16], not 1"),
    (["--pq-width", "1"], "--pq-width must be in [2, 32], not 1"),
    (["--mode", "exp"], "argument --mode: invalid choice: 'exp'"),
    (["--sentences", "{missing}"], "cannot read sentences file"),
])
def test_cli_bad_input(tmp_path, args, message):
    args = [a.format(missing=tmp_path / "missing.txt") for a in args]
    result = damf("minilm-head", *args, "--out", tmp_path / "out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("damf: error: " + message), result.stderr
    assert not (tmp_path / "out").exists()
