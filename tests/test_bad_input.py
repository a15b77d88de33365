"""Bad input of every kind: one line ``damf: error: ...``, exit status 2, no traceback, nothing
written, and within a few seconds (before any expensive work).

The table is grouped by kind (encoding, nesting, types, file system, numeric range,
infinities, contradictions, empty files, sizes); each case runs the real command line in a
fresh folder that holds only the case's input files.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "golden" / "vectors" / "default"


def _vector_file(block, edit):
    doc = json.loads((VECTORS / f"{block}.json").read_text())
    edit(doc)
    return json.dumps(doc)


def _empty(doc):
    doc["inputs"] = {k: [] for k in doc["inputs"]}
    doc["expected"] = {k: [] for k in doc["expected"]}


def _set(key, value):
    def edit(doc):
        doc[key] = value
    return edit


# the input files a case may name, by placeholder
FILES = {
    "latin1": b"\xff\xfe{\"d_model\": 16}",
    "deep": ("[" * 100000 + "]" * 100000).encode(),
    "list_block": _vector_file("inner-product", _set("block", ["inner-product"])).encode(),
    "no_vectors": _vector_file("softmax", _empty).encode(),
    "null_expected": _vector_file("score", _set("expected", None)).encode(),
    "empty": b"",
    "config_list": b"[1, 2, 3]",
    "lanes_text": b'{"lanes": "4"}',
    "blank_sentences": b"# only a comment\n\n",
    "afile": b"not a folder\n",
    # a BLOCK.json with a module but not the rest of the description (docs/schemas/block.schema.json)
    "half_block_json": json.dumps({"block": "damf-head", "generator": "damf 0.1.0", "config": {}, "derived": {},
                                   "module": "damf_head"}).encode(),
    "seed_text": _vector_file("score", _set("seed", "one")).encode(),
}

CASES = [
    # encoding
    ("encoding", ["generate", "inner-product", "--config", "{latin1}", "--out", "o"],
     "config file '{latin1}' is not UTF-8 text (byte 0xff at offset 0)"),
    ("encoding", ["sim", "--vectors", "{latin1}"], "vector file '{latin1}' is not UTF-8 text"),
    ("encoding", ["eval", "--sentences", "{latin1}"], "sentences file '{latin1}' is not UTF-8 text"),
    # nesting
    ("nesting", ["generate", "inner-product", "--config", "{deep}", "--out", "o"],
     "config file '{deep}' nests arrays or objects too deeply"),
    ("nesting", ["sim", "--vectors", "{deep}"], "vector file '{deep}' nests arrays or objects too deeply"),
    ("nesting", ["generate", "inner-product", "--set", "u=" + "[" * 5000 + "]" * 5000, "--out", "o"],
     "u must be a JSON value, not '[[[["),
    # types
    ("types", ["sim", "--vectors", "{list_block}"], "vector file '{list_block}': 'block' must be a block name"),
    ("types", ["generate", "inner-product", "--config", "{config_list}", "--out", "o"],
     "a configuration must be a JSON object, not list"),
    ("types", ["generate", "inner-product", "--config", "{lanes_text}", "--out", "o"],
     "lanes must be an integer, not '4'"),
    ("types", ["sim", "--vectors", "{null_expected}"], "vector file '{null_expected}': "),
    ("types", ["sim", "--vectors", "{seed_text}"], "vector file '{seed_text}': $.seed: must be an integer, not \"one\""),
    ("types", ["golden", "damf-head", "--config", "{half_block_json}", "--out", "o"],
     "config file '{half_block_json}': $: must have a 'ports' member beside 'module' (the description comes whole)"),
    ("types", ["generate", "damf-head", "--config", "{half_block_json}", "--out", "o"],
     "config file '{half_block_json}': $: must have a 'ports' member beside 'module'"),
    ("types", ["golden", "damf-head", "--set", "mode=exp", "--out", "o"],
     "mode must be one of maclaurin, maclaurin-abs, base2, not 'exp'"),
    ("types", ["golden", "attention", "--out", "o"], "unknown block 'attention'; expected one of: inner-product, "),
    ("contradiction", ["golden", "score", "--preset", "default", "--preset", "bert-base", "--out", "o"],
     "damf golden score takes one --preset, not 2"),
    ("contradiction", ["golden", "--set", "mode=base2", "--out", "o"],
     "--config and --set need a BLOCK: damf golden BLOCK [--set KEY=VALUE ...] --out DIR"),
    # file system
    ("filesystem", ["generate", "inner-product", "--out", "{afile}/sub"],
     "--out '{afile}/sub' lies below the file '{afile}', which is not a directory"),
    ("filesystem", ["generate", "inner-product", "--out", "{afile}"], "--out must be a directory, not the file"),
    ("filesystem", ["generate", "inner-product", "--out", "/proc/damf-nowhere"],
     "cannot write '/proc/damf-nowhere/inner-product.v'"),
    ("filesystem", ["generate", "inner-product", "--out", ""], "--out must name a directory, not ''"),
    ("filesystem", ["golden", "--out", "{afile}/x"], "--out '{afile}/x' lies below the file"),
    ("filesystem", ["synth", "--no-pnr", "--build", "{afile}/b"], "--build '{afile}/b' lies below the file"),
    ("filesystem", ["sim", "--vectors", "{missing}"], "cannot read vector file '{missing}': No such file"),
    ("filesystem", ["sim", "--vectors", "."], "vector file '.' is a directory, not a file"),
    ("filesystem", ["minilm-head", "--sentences", "", "--out", "o"], "--sentences must name a file, not ''"),
    # numeric ranges
    ("range", ["golden", "--seed", "-1", "--out", "o"], "--seed must be in [0, 18446744073709551615], not -1"),
    ("range", ["golden", "--count", "0", "--out", "o"], "--count must be at least 1, not 0"),
    ("range", ["minilm-head", "--lanes", "0", "--out", "o"], "lanes must be at least 1, not 0"),
    ("range", ["minilm-head", "--parallel", "0", "--out", "o"], "parallel must be at least 1, not 0"),
    ("range", ["generate", "inner-product", "--set", "rank=64", "--set", "d_model=2", "--set", "lanes=2",
               "--out", "o"], "rank must be at most d_model = 2, not 64"),
    ("range", ["bench", "--repeat", "0"], "--repeat must be at least 1, not 0"),
    ("range", ["synth", "--jobs", "0"], "--jobs must be in [1, 64], not 0"),
    ("range", ["synth", "--jobs", "99999999999"], "--jobs must be in [1, 64], not 99999999999"),
    ("range", ["accuracy", "--logit-gain", "99999999999"], "--logit-gain must be a positive finite number of at most"),
    ("range", ["finetune", "--lr", "99999999999"], "--lr must be a positive number of at most 1"),
    ("range", ["finetune", "--steps", "1000000000"], "--steps must be in [1, 10000], not 1000000000"),
    ("empty", ["eval", "--layers", ""], "--layers must be a comma-separated list of integers, not ''"),
    # infinities and not-a-number
    ("infinity", ["accuracy", "--logit-gain", "inf"], "--logit-gain must be a positive finite number of at most 1000, not inf"),
    ("infinity", ["accuracy", "--logit-gain", "nan"], "--logit-gain must be a positive finite number of at most 1000, not nan"),
    ("infinity", ["synth", "--pnr-timeout", "inf"], "--pnr-timeout must be a positive number of seconds, not inf"),
    ("infinity", ["finetune", "--lr", "inf"], "--lr must be a positive number of at most 1 (Adam's step), not inf"),
    # contradictions
    ("contradiction", ["synth", "--place-iso", "--no-pnr"], "--place-iso places the iso-throughput designs"),
    ("contradiction", ["accuracy", "--length", "9"], "--length must be in [1, seq_len = 8], not 9"),
    # empty files
    ("empty", ["sim", "--vectors", "{no_vectors}"], "vector file '{no_vectors}' holds no vectors"),
    ("empty", ["sim", "--vectors", "{empty}"], "vector file '{empty}' is not valid JSON"),
    ("empty", ["generate", "inner-product", "--config", "{empty}", "--out", "o"], "config file '{empty}' is not valid JSON"),
    ("empty", ["eval", "--sentences", "{blank_sentences}"], "sentences file '{blank_sentences}' holds no sentences"),
    # sizes that cannot finish: refused with an estimate
    ("size", ["golden", "--count", "1000000000", "--out", "o"], "--count 1000000000 would need about "),
    ("size", ["golden", "damf-head", "--preset", "bert-base", "--count", "100000000", "--out", "o"],
     "--count 100000000 would need about "),
    ("size", ["accuracy", "--set", "seq_len=65536"], "an accuracy run at L = 65536, d_model = 32 would need about "),
    ("size", ["accuracy", "--d-model", "10000000"], "an accuracy run at L = 8, d_model = 10000000 would need about "),
    ("size", ["accuracy", "--seeds", "100000000"], "--seeds 100000000 would take about "),
    ("size", ["generate", "score", "--set", "seq_len=65536", "--set", "parallel=65536", "--out", "o"],
     "score with this configuration would take about "),
    ("size", ["generate", "damf-head", "--set", "seq_len=65536", "--set", "d_head=4096", "--out", "o"],
     "damf-head with this configuration would take about "),
    ("size", ["generate", "score", "--set", "seq_len=65536", "--set", "parallel=4096", "--out", "o"],
     "score: port o__payload would be 65,550 bits wide; Amaranth's netlist takes at most 65,535 bits"),
    ("size", ["generate", "inner-product", "--set", "d_model=65536", "--set", "lanes=256", "--set", "rank=64",
              "--out", "o"], "inner-product with this configuration would take about "),
    # --prefix: the start of a Verilog identifier, at most 64 characters, checked before any work
    ("prefix", ["generate", "damf-head", "--prefix", "1a_", "--out", "o"],
     "--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters, not '1a_'"),
    ("prefix", ["generate", "damf-head", "--prefix", "my-ip_", "--axis", "--out", "o"],
     "--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters, not 'my-ip_'"),
    ("prefix", ["generate", "inner-product", "--prefix", "", "--out", "o"],
     "--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters, not ''"),
    ("prefix", ["generate", "inner-product", "--prefix", "a b", "--out", "o"],
     "--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters, not 'a b'"),
    ("prefix", ["generate", "inner-product", "--prefix", "p" * 65, "--out", "o"],
     "--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters, not '" + "p" * 40
     + "...'"),
    ("prefix", ["generate", "score", "--prefix", "x\u00e9_", "--out", "o"],
     "--prefix must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters, not 'x\u00e9_'"),
    # a bad prefix is refused before a size that would take long is even estimated
    ("prefix", ["generate", "inner-product", "--prefix", "9", "--set", "d_model=65536", "--set", "lanes=256",
                "--set", "rank=64", "--out", "o"], "--prefix must be a Verilog identifier"),
]


@pytest.mark.parametrize("kind, args, message", CASES, ids=[f"{k}: {' '.join(a)[:70]}" for k, a, _ in CASES])
def test_bad_input_is_one_line(tmp_path, kind, args, message):
    paths = {"missing": "missing.json"}
    for name, data in FILES.items():
        if any("{" + name + "}" in a for a in args + [message]):
            (tmp_path / f"{name}.in").write_bytes(data)
            paths[name] = f"{name}.in"
    args = [a.format(**paths) if "{" in a and "[[" not in a else a for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "damf.cli", *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - start
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("damf: error: " + message.format(**paths)), lines[0]
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a refused command wrote files"
    assert elapsed < 10, f"refused only after {elapsed:.1f} s"


def test_synth_one_block_without_pnr_runs(tmp_path, monkeypatch):
    """``damf synth --block inner-product --no-pnr --out r`` (documented in docs/synthesis.md) runs
    through the command line to its reports: the repeated option is a list and every step of the
    flow takes it (it once crashed with "unhashable type: 'list'").  A stand-in synthesizer
    records its calls: the Yosys flows themselves are tested in tests/test_synth.py."""
    from damf import cli, synth
    calls = tmp_path / "calls.txt"       # the synthesizer runs in a worker process

    def fake(cfg, work, *, pnr=True, fpga=True, ice40=True, progress=print, pnr_timeout=None):
        with open(calls, "a") as f:
            f.write(f"{cfg.block} {pnr}\n")
        flows = {arch: {"luts": 7, "ffs": 6, "carries": 2, "dsps": 1, "rams": 0, "lutrams": 0, "fmax_mhz": None}
                 for arch in ("ecp5", "ice40")}
        return {"block": cfg.block, "module": "m", "config": cfg.to_dict(), "derived": {},
                "coarse": {"multipliers": 1, "shifters": 0, "adders": 1, "cells": {}},
                "cmos": {"transistors": 100, "cells": 25, "ffs": 10, "cells_by_type": {}, "critical_path_gates": 20},
                "memory": {"bits": 8, "bits_by_kind": {"other": 8}, "transistors": 48, "transistors_per_bit": 6,
                           "memories": []}, **flows}

    monkeypatch.setattr(synth, "synthesize", fake)
    rc = cli.main(["synth", "--block", "inner-product", "--no-pnr", "--jobs", "1",
                   "--out", str(tmp_path / "r"), "--build", str(tmp_path / "b")])
    assert rc == 0
    assert calls.read_text().split("\n") == ["inner-product False", ""]
    report = json.loads((tmp_path / "r" / "synth-default.json").read_text())
    assert [b["block"] for b in report["blocks"]] == ["inner-product"]
