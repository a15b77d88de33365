"""The JSON Schemas of BLOCK.json and damf-vectors/1 (docs/schemas/), the loaders that use them,
and ``damf golden BLOCK``, which writes a vector file for one configuration."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from damf import cli, validate
from damf.blocks import BLOCKS, generate_vectors, load_vectors
from damf.config import PRESETS, ConfigError
from damf.golden import vectors

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "schemas"
VECTOR_FILES = sorted((ROOT / "golden" / "vectors").glob("*/*.json"))


def damf(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "damf.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


# ---- the schemas themselves ---------------------------------------------------------------

@pytest.mark.parametrize("kind", validate.SCHEMAS)
def test_packaged_schema_is_the_published_one(kind):
    """damf/schemas/ (package data, read by the loaders) holds the same bytes as docs/schemas/."""
    name = validate.SCHEMAS[kind]
    assert (ROOT / "damf" / "schemas" / name).read_bytes() == (DOCS / name).read_bytes()
    doc = validate.schema(kind)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # block names are the registry's (damf/blocks.py), checked by the loaders, not listed here
    assert "enum" not in doc["properties"]["block"] and all(
        jsonschema.Draft202012Validator(doc["properties"]["block"]).is_valid(name) for name in BLOCKS)


def test_vector_schema_names_each_blocks_members():
    """The per-block required members of the vector schema are the ones golden/vectors.py writes."""
    rules = {r["if"]["properties"]["block"]["const"]: r["then"]["properties"] for r in validate.schema("vectors")["allOf"]}
    assert set(rules) == set(BLOCKS)
    for block, info in BLOCKS.items():
        doc = generate_vectors(info.config_cls.from_preset("default"), seed=1, count=1)
        assert set(rules[block]["inputs"]["required"]) <= set(doc["inputs"]), block
        assert set(rules[block]["expected"]["required"]) == set(doc["expected"]), block


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_vector_files_validate(path):
    """In full (every row), not only the loader's view."""
    assert VECTOR_FILES
    validate.check(json.loads(path.read_text()), "vectors", path.name)


def _generate(tmp_path, block, *args):
    out = tmp_path / "o"
    assert cli.main(["generate", block, *args, "--out", str(out)]) == 0
    return json.loads((out / f"{block}.json").read_text())


@pytest.mark.parametrize("block", BLOCKS)
def test_generated_block_json_validates(tmp_path, block):
    for args in ([], ["--axis", "--prefix", "x_"]):
        doc = _generate(tmp_path, block, *args)
        validate.check(doc, "block", f"{block}.json")


@pytest.mark.parametrize("block, variant", [(b, v) for b, info in BLOCKS.items() for v in info.variants if v] +
                         [(b, {}) for b in BLOCKS], ids=str)
def test_block_json_of_every_variant_and_preset_validates(block, variant):
    """The document `damf generate` writes (configuration and description; no Verilog needed)."""
    from damf.describe import describe
    for preset in PRESETS:
        cfg = dataclasses.replace(BLOCKS[block].config_cls.from_preset(preset), **variant) if variant else \
            BLOCKS[block].config_cls.from_preset(preset)
        doc = json.loads(cfg.to_json())
        doc.update(describe(cfg))
        validate.check(doc, "block", "BLOCK.json")


# ---- broken documents: one line naming the file, the JSON path and what was wrong ---------

def _vector_doc():
    return json.loads((ROOT / "golden" / "vectors" / "default" / "score.json").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(seed="one"), "$.seed: must be an integer, not \"one\""),
    (lambda d: d.update(count=0), "$.count: must be at least 1, not 0"),
    (lambda d: d.update(comment="mine"), "$: has an unknown member 'comment'"),
    (lambda d: d["inputs"].update(extra={"a": 1}), "$.inputs.extra: must be a list, not {\"a\": 1}"),
    (lambda d: d["expected"].update(b=[[1, 2.5]]), "$.expected.b[0][1]: must be an integer, not 2.5"),
])
def test_broken_vector_files(tmp_path, edit, message):
    doc = _vector_doc()
    edit(doc)
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(vectors.VectorFileError) as e:
        load_vectors(path)
    assert str(e.value) == f"vector file '{path}': {message}"


def test_a_broken_vector_file_on_the_command_line(tmp_path):
    doc = _vector_doc()
    doc["seed"] = -1
    (tmp_path / "v.json").write_text(json.dumps(doc))
    result = damf("sim", "--vectors", "v.json", "--build", "b", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "damf: error: vector file 'v.json': $.seed: must be at least 0, not -1\n"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("timing"), "$: must have a 'timing' member beside 'module' (the description comes whole); "
                                 "it has: "),
    (lambda d: d.update(generator=3), "$.generator: must be a string, not 3"),
    (lambda d: d["ports"][2].update(width="33"), "$.ports[2].width: must be an integer, not \"33\""),
    (lambda d: d["ports"][2]["fields"][0].update(offset=-1), "$.ports[2].fields[0].offset: must be at least 0, not -1"),
    (lambda d: d["ports"][0].update(direction="inout"), "$.ports[0].direction: must be one of \"input\", \"output\", "
                                                        "not \"inout\""),
    (lambda d: d["streams"][0].update(valid=3), "$.streams[0].valid: must be a string, not 3"),
    (lambda d: d.update(module="2head"), "$.module: must match ^[A-Za-z_][A-Za-z0-9_]*$, not \"2head\""),
])
def test_broken_block_json_as_config(tmp_path, edit, message):
    """`--config BLOCK.json` checks the whole document against the schema, before any work."""
    doc = _generate(tmp_path, "damf-head")
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    from damf.config import DamfHeadBlockConfig
    with pytest.raises(ConfigError) as e:
        DamfHeadBlockConfig.build(config_file=path)
    assert str(e.value).startswith(f"config file '{path}': {message}")
    # a good one is read back as the same configuration
    good = tmp_path / "o" / "damf-head.json"
    assert DamfHeadBlockConfig.build(config_file=good) == DamfHeadBlockConfig.from_preset("default")


# ---- damf golden BLOCK ----------------------------------------------------------------------

def test_golden_block_writes_one_configuration(tmp_path):
    out = tmp_path / "d"
    assert cli.main(["golden", "score", "--set", "parallel=1", "--count", "3", "--seed", "5",
                     "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["score.json"]
    cfg, inputs, expected = load_vectors(out / "score.json")
    want = dataclasses.replace(BLOCKS["score"].config_cls.from_preset("default"), parallel=1)
    assert cfg == want
    assert (out / "score.json").read_text() == vectors.dumps(generate_vectors(want, seed=5, count=3))
    # --config takes a BLOCK.json, --preset one preset
    assert cli.main(["generate", "damf-head", "--set", "mode=base2", "--out", str(tmp_path / "g")]) == 0
    assert cli.main(["golden", "damf-head", "--config", str(tmp_path / "g" / "damf-head.json"),
                     "--set", "cross=true", "--count", "2", "--out", str(out)]) == 0
    cfg, _, _ = load_vectors(out / "damf-head.json")
    assert (cfg.mode, cfg.cross, cfg.causal) == ("base2", True, False)
    assert cli.main(["golden", "inner-product", "--preset", "bert-base", "--count", "1", "--out", str(out)]) == 0
    assert load_vectors(out / "inner-product.json")[0].d_model == 768


def test_golden_without_block_keeps_the_preset_tree(tmp_path):
    assert cli.main(["golden", "--preset", "default", "--count", "2", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == sorted(f"{b}.json" for b in BLOCKS)


def test_documented_golden_damf_head_reproduces_on_icarus(tmp_path):
    """docs/damf-head.md: base2 causal vectors from the command line, replayed on the RTL."""
    result = damf("golden", "damf-head", "--set", "mode=base2", "--set", "causal=true", "--count", "4",
                  "--out", "d", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cfg, _, expected = load_vectors(tmp_path / "d" / "damf-head.json")
    assert (cfg.mode, cfg.causal) == ("base2", True)
    result = damf("sim", "--vectors", "d/damf-head.json", "--build", "b", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    n = len(expected["z"])
    assert f"damf-head on icarus: {n}/{n} results match d/damf-head.json" in result.stdout
