"""``damf import`` (damf/importer.py) on checkpoints the project has never seen.

Each test writes its own tiny random BERT checkpoint (``config.json`` and a
``model.safetensors`` made here with NumPy: 8-byte little-endian header length, a JSON header
of dtype / shape / data_offsets, the raw little-endian data) and checks the import against a
reference written here from the same arrays, not from the project's model code.
"""

import json
import math
import struct
import subprocess
import sys

import numpy as np
import pytest

from damf.cli import main
from damf.golden.damf_float import augment
from damf.golden.quant import quantize
from damf.hdl.inner_product import pack_weight_words
from damf.config import DamfHeadBlockConfig

HIDDEN, HEADS, LAYERS, VOCAB, INTER, POSITIONS = 32, 2, 2, 50, 64, 40
D_HEAD = HIDDEN // HEADS


def write_safetensors(path, tensors, dtype="F32"):
    """The safetensors format: ``<Q`` header length, JSON header, raw little-endian data."""
    np_dtype = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype]
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype=np_dtype).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bert_tensors(seed=0, *, prefix="", qk_std=0.3):
    """Random BERT weights (PyTorch layout, ``out x in``); queries and keys large enough that
    attention is far from uniform (logits of a few units)."""
    rng = np.random.default_rng(seed)
    t = {}

    def lin(name, n_out, n_in, std):
        t[f"{name}.weight"] = rng.normal(0, std, (n_out, n_in))
        t[f"{name}.bias"] = rng.normal(0, 0.1, n_out)

    def ln(name):
        t[f"{name}.weight"] = 1 + rng.normal(0, 0.1, HIDDEN)
        t[f"{name}.bias"] = rng.normal(0, 0.1, HIDDEN)

    t["embeddings.word_embeddings.weight"] = rng.normal(0, 1, (VOCAB, HIDDEN))
    t["embeddings.position_embeddings.weight"] = rng.normal(0, 0.5, (POSITIONS, HIDDEN))
    t["embeddings.token_type_embeddings.weight"] = rng.normal(0, 0.5, (2, HIDDEN))
    ln("embeddings.LayerNorm")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        lin(p + "attention.self.query", HIDDEN, HIDDEN, qk_std)
        lin(p + "attention.self.key", HIDDEN, HIDDEN, qk_std)
        lin(p + "attention.self.value", HIDDEN, HIDDEN, 0.2)
        lin(p + "attention.output.dense", HIDDEN, HIDDEN, 0.1)
        ln(p + "attention.output.LayerNorm")
        lin(p + "intermediate.dense", INTER, HIDDEN, 0.1)
        lin(p + "output.dense", HIDDEN, INTER, 0.1)
        ln(p + "output.LayerNorm")
    return {prefix + k: v.astype(np.float32) for k, v in t.items()}


def bert_config(**overrides):
    return {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": HIDDEN,
            "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "intermediate_size": INTER,
            "vocab_size": VOCAB, "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
            **overrides}


def checkpoint(path, tensors=None, config=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(bert_config() if config is None else config))
    write_safetensors(path / "model.safetensors", bert_tensors() if tensors is None else tensors)
    return path


def damf(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the reference: layer 0 of BERT from the arrays written above -----------------------------

def ln_ref(x, g, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * g + b


def layer0_input(t, ids, prefix="", first_position=0):
    e = prefix + "embeddings."
    pos = t[e + "position_embeddings.weight"][first_position:first_position + len(ids)]
    x = t[e + "word_embeddings.weight"][ids] + pos + t[e + "token_type_embeddings.weight"][0]
    return ln_ref(x.astype(np.float64), t[e + "LayerNorm.weight"], t[e + "LayerNorm.bias"])


def head_ref(t, X, head, prefix="", layer=0):
    """Exact softmax attention of one head: torch ``Linear`` is ``x W^T + b``."""
    p = f"{prefix}encoder.layer.{layer}.attention.self."
    cols = slice(head * D_HEAD, (head + 1) * D_HEAD)

    def proj(kind):
        W, b = t[p + kind + ".weight"].astype(np.float64), t[p + kind + ".bias"].astype(np.float64)
        return X @ W[cols].T + b[cols]
    A = proj("query") @ proj("key").T / math.sqrt(D_HEAD)
    P = np.exp(A - A.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    return P @ proj("value"), proj("value")


def check_against_reference(out, name, tensors, *, head, prefix="", first_position=0):
    """X' and V of the vector file are the reference's, quantized; its Z is close to exact
    attention: row cosine above 0.98, and a relative error below 0.35 (base2 normalises each
    row by a power of two near its weight sum, a factor within 2^(+-1/2): docs/numerics.md)."""
    doc = json.loads((out / f"{name}-vectors.json").read_text())
    src, inputs, cfg = doc["source"], doc["inputs"], DamfHeadBlockConfig.from_dict(doc["config"])
    start, num, den, cos = 0, 0.0, 0.0, []
    for ids, n in zip(src["token_ids"], inputs["lengths"]):
        assert n == min(len(ids), cfg.seq_len)
        X = layer0_input(tensors, np.array(ids[:n]), prefix, first_position)
        exact, V = head_ref(tensors, X, head, prefix)
        assert inputs["x"][start:start + n] == quantize(augment(X), cfg.x_width, src["x_frac"]).tolist()
        assert inputs["vals"][start:start + n] == quantize(V, cfg.v_width, src["v_frac"]).tolist()
        Z = np.array(doc["expected"]["z"][start:start + n]) * 2.0 ** -(src["v_frac"] + cfg.out_frac)
        num, den = num + float(np.sum((Z - exact) ** 2)), den + float(np.sum(exact ** 2))
        cos += [float(z @ e / (np.linalg.norm(z) * np.linalg.norm(e))) for z, e in zip(Z, exact)]
        start += n
    rel = math.sqrt(num / den)
    assert rel < 0.35 and np.mean(cos) > 0.98, \
        f"bit-exact Z against the reference's exact attention: rel. error {rel:.3f}, cosine {np.mean(cos):.4f}"
    return doc


# ---- a checkpoint never seen: import, reference, RTL ----------------------------------------

def test_tiny_checkpoint_imports_and_replays_on_the_rtl(tmp_path):
    """The whole path through the real command line: files written, X', V and Z against the
    reference above, the fidelity summary sane, and the vector file bit-exact on Icarus."""
    tensors = bert_tensors()
    ckpt = checkpoint(tmp_path / "tiny", tensors)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "damf.cli", "import", ckpt, "--layer", "0", "--head", "1",
                             "--seq-len", "8", "--lanes", "8", "--out", out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "calibrating layer 0 head 1 on random token ids: 16 sequences of up to 8 tokens, seed 0" in result.stderr
    name = "head-l0h1"
    for suffix in (".v", ".json", "-vectors.json", "-fidelity.md", "-fidelity.json"):
        assert (out / f"{name}{suffix}").is_file(), suffix
    assert not (out / f"{name}-weights.hex").exists()          # fixed weights by default
    meta = json.loads((out / f"{name}.json").read_text())
    assert meta["config"]["rank"] == D_HEAD and meta["config"]["mode"] == "base2"
    assert meta["config"]["d_model"] == HIDDEN + 1 and meta["config"]["d_head"] == D_HEAD
    assert meta["source"]["calibration"].startswith("random token ids")
    assert str(tmp_path) not in (out / f"{name}.v").read_text()
    doc = check_against_reference(out, name, tensors, head=1)
    # the vector file's u, v are the Verilog's constants (replayed below on the fixed-weight RTL)
    assert [list(r) for r in meta["config"]["u"]] == doc["inputs"]["u"]
    fid = json.loads((out / f"{name}-fidelity.json").read_text())
    assert fid["float_rank"]["rel_error"] < 1e-9            # full rank: the SVD rebuilds Q K^T exactly
    assert fid["hardware"]["rel_error"] < 0.35 and fid["hardware"]["cosine_mean"] > 0.98
    assert fid["hardware"]["top1_agreement"] > 0.9 and fid["rows"] > 16
    assert "| damf-head, bit-exact |" in (out / f"{name}-fidelity.md").read_text()
    # the RTL replays the file bit for bit
    sim = subprocess.run([sys.executable, "-m", "damf.cli", "sim", "--vectors", out / f"{name}-vectors.json",
                          "--build", tmp_path / "build"], capture_output=True, text=True)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    total = sum(doc["inputs"]["lengths"])
    assert f"{total}/{total} results match" in sim.stdout, sim.stdout


def test_runtime_weights_and_bert_prefix_at_layer_1(tmp_path, capsys):
    """A ``BertFor...`` checkpoint (``bert.`` names) at layer 1; run-time weights: the hex file
    holds the w stream's words of the vector file's u and v, in order."""
    tensors = bert_tensors(seed=3, prefix="bert.")
    tensors["cls.predictions.bias"] = np.zeros(VOCAB, dtype=np.float32)      # other heads are ignored
    ckpt = checkpoint(tmp_path / "tiny", tensors)
    out = tmp_path / "out"
    code, stdout, err = damf(capsys, "import", ckpt, "--layer", 1, "--head", 0, "--rank", 4, "--weights", "runtime",
                             "--seq-len", 12, "--seed", 7, "--count", 2, "--prefix", "me_", "--name", "h",
                             "--out", out)
    assert code == 0, err
    assert "seed 7" in err and f"wrote {out / 'h-weights.hex'}" in stdout
    doc = json.loads((out / "h-vectors.json").read_text())
    cfg = DamfHeadBlockConfig.from_dict(doc["config"])
    assert cfg.weights == "runtime" and cfg.rank == 4 and doc["count"] == 2 and len(doc["source"]["token_ids"]) == 2
    lines = (out / "h-weights.hex").read_text().splitlines()
    words = [int(w, 16) for w in lines if not w.startswith("//")]
    assert words == pack_weight_words(cfg.inner_product, doc["inputs"]["u"], doc["inputs"]["v"])
    assert len(words) == cfg.inner_product.beats and lines[0].startswith("// h: damf-head w stream")
    assert "module me_head(" in (out / "h.v").read_text()


def test_roberta_positions_start_after_padding(tmp_path, capsys):
    """RoBERTa layout: ``roberta.`` names, positions from ``pad_token_id + 1``."""
    tensors = bert_tensors(seed=5, prefix="roberta.")
    ckpt = checkpoint(tmp_path / "rob", tensors, bert_config(model_type="roberta", pad_token_id=1))
    out = tmp_path / "out"
    code, _, err = damf(capsys, "import", ckpt, "--seq-len", 8, "--count", 3, "--out", out)
    assert code == 0, err
    check_against_reference(out, "head-l0h0", tensors, head=0, prefix="roberta.", first_position=2)
    code, _, err = damf(capsys, "import", ckpt, "--seq-len", POSITIONS - 1, "--out", out)
    assert code == 2 and f"--seq-len must be in [1, {POSITIONS - 2}], not {POSITIONS - 1}" in err


def test_sentences_with_a_tokenizer(tmp_path, capsys):
    """With tokenizer.json and --sentences the calibration is on the sentences, said in the output."""
    tokenizers = pytest.importorskip("tokenizers")
    ckpt = checkpoint(tmp_path / "tok")
    words = ["[UNK]"] + [f"w{i}" for i in range(VOCAB - 1)]
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(ckpt / "tokenizer.json"))
    sentences = tmp_path / "mine.txt"
    sentences.write_text("w1 w2 w3\nw4 w5 w6 w7 w8\n# a comment\nw9 w10\n")
    out = tmp_path / "out"
    code, _, err = damf(capsys, "import", ckpt, "--sentences", sentences, "--seq-len", 4, "--out", out)
    assert code == 0, err
    assert "calibrating layer 0 head 0 on mine.txt" in err
    doc = json.loads((out / "head-l0h0-vectors.json").read_text())
    assert doc["source"]["calibration"] == "mine.txt"
    assert doc["source"]["sentences"] == ["w9 w10", "w1 w2 w3", "w4 w5 w6 w7 w8"]
    assert doc["inputs"]["lengths"] == [2, 3, 4]                      # cut to seq_len
    assert json.loads((out / "head-l0h0.json").read_text())["source"]["calibration"] == "mine.txt"


# ---- the packaged MiniLM: minilm-head is import on its directory ----------------------------

def test_minilm_head_is_import_of_the_packaged_model(tmp_path, capsys):
    pytest.importorskip("tokenizers", reason="the eval extra (make env) provides the model and tokenizer")
    from damf.models.minilm import model_dir
    sentences = tmp_path / "s.txt"
    sentences.write_text("The cat sleeps on the mat.\nA dog runs in the park.\nAttention is computed in hardware.\n")
    common = ["--layer", 1, "--head", 2, "--rank", 4, "--seq-len", 16, "--sentences", sentences]
    code, _, err = damf(capsys, "minilm-head", *common, "--out", tmp_path / "m")
    assert code == 0, err
    assert "minilm-head: calibrating layer 1 head 2 on s.txt" in err
    code, _, err = damf(capsys, "import", model_dir(), *common, "--lanes", 11, "--name", "minilm-l1h2",
                        "--out", tmp_path / "i")
    assert code == 0, err
    m, i = tmp_path / "m" / "minilm-l1h2", tmp_path / "i" / "minilm-l1h2"
    assert m.with_suffix(".v").read_text() == i.with_suffix(".v").read_text()
    vm, vi = (json.loads(p.with_name(p.name + "-vectors.json").read_text()) for p in (m, i))
    assert vm["inputs"] == vi["inputs"] and vm["expected"] == vi["expected"]
    meta = json.loads(m.with_suffix(".json").read_text())
    assert meta["source"]["model"].startswith("all-MiniLM-L6-v2") and meta["config"]["rank"] == 4
    assert sorted(vm["source"]["sentences"]) == sorted(sentences.read_text().splitlines())
    fid = json.loads(m.with_name(m.name + "-fidelity.json").read_text())
    assert fid["sequences"] == 3 and fid["rows"] == sum(vm["inputs"]["lengths"])


# ---- errors: one line, exit 2, nothing written ------------------------------------------------

def _drop(name):
    t = bert_tensors()
    del t[name]
    return t


def _reshape(name, shape):
    t = bert_tensors()
    t[name] = np.zeros(shape, dtype=np.float32)
    return t


GPT2 = {"wte.weight": np.zeros((VOCAB, HIDDEN), dtype=np.float32),
        "h.0.attn.c_attn.weight": np.zeros((HIDDEN, 3 * HIDDEN), dtype=np.float32)}


@pytest.mark.parametrize("case, make, args, message", [
    ("no config", lambda d: (d.mkdir(), write_safetensors(d / "model.safetensors", GPT2)), [],
     "checkpoint '{d}' has no config.json"),
    ("no weights", lambda d: (d.mkdir(), (d / "config.json").write_text(json.dumps(bert_config()))), [],
     "checkpoint '{d}' has no model.safetensors"),
    ("no directory", lambda d: None, [], "checkpoint '{d}' does not exist"),
    ("gpt2", lambda d: checkpoint(d, GPT2, {"model_type": "gpt2", "n_embd": HIDDEN}), [],
     "unsupported architecture: checkpoint '{d}' has model_type 'gpt2'; expected one of bert, roberta, xlm-roberta"),
    ("not bert names", lambda d: checkpoint(d, GPT2), [],
     "unsupported architecture: '{d}/model.safetensors' has no BERT tensor names (embeddings.word_embeddings.weight"),
    ("activation", lambda d: checkpoint(d, config=bert_config(hidden_act="silu")), [],
     "unsupported architecture: checkpoint '{d}' has hidden_act 'silu'"),
    ("missing", lambda d: checkpoint(d, _drop("encoder.layer.1.attention.self.key.bias")), [],
     "'{d}/model.safetensors' lacks tensor encoder.layer.1.attention.self.key.bias (the first missing one)"),
    ("shape", lambda d: checkpoint(d, _reshape("encoder.layer.0.attention.self.query.weight", (HIDDEN, 31))), [],
     f"tensor encoder.layer.0.attention.self.query.weight of '{{d}}/model.safetensors' has shape [{HIDDEN}, 31]; "
     f"expected [{HIDDEN}, {HIDDEN}]"),
    ("garbage", lambda d: (checkpoint(d), (d / "model.safetensors").write_bytes(b"\x10\x00")), [],
     "'{d}/model.safetensors' is not a safetensors file: shorter than its 8-byte header length"),
    ("layer", lambda d: checkpoint(d), ["--layer", "2"], f"--layer must be in [0, {LAYERS - 1}], not 2"),
    ("head", lambda d: checkpoint(d), ["--head", "-1"], f"--head must be in [0, {HEADS - 1}], not -1"),
    ("rank", lambda d: checkpoint(d), ["--rank", "17"], f"--rank must be in [1, {D_HEAD}], not 17"),
    ("tokenizer", lambda d: checkpoint(d), ["--sentences", "{s}"], "--sentences needs checkpoint '{d}' to hold "
     "tokenizer.json"),
    ("width", lambda d: checkpoint(d), ["--x-width", "1"], "--x-width must be in [2, 16], not 1"),
    ("lanes", lambda d: checkpoint(d), ["--lanes", "0"], "lanes must be at least 1, not 0"),
    ("prefix", lambda d: checkpoint(d), ["--prefix", "9x"], "--prefix must be a Verilog identifier"),
])
def test_bad_checkpoints_and_options(tmp_path, capsys, case, make, args, message):
    d = tmp_path / "ckpt"
    make(d)
    s = tmp_path / "s.txt"
    s.write_text("hello\n")
    code, stdout, err = damf(capsys, "import", d, *[a.format(s=s) for a in args], "--out", tmp_path / "out")
    assert code == 2, (case, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("damf: error: " + message.format(d=d)), (case, err)
    assert not (tmp_path / "out").exists()
