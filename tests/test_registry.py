"""The block registry (damf/blocks.py): every entry is complete and consistent, and adding a
block is one entry plus its own files -- a toy block (tests/registry_toy.py) registered at run
time is seen by every command: --help, generate, golden, sim --vectors, lint, synth and bench."""

import asyncio
import importlib
import inspect
import json
from pathlib import Path

import pytest

from damf import bench, blocks, cli, formal, soak
from damf.blocks import BLOCKS, SIDES, Block, Figure, Formal, comparisons, get_block, load_vectors
from damf.config import BlockConfig, ConfigError
from damf.golden.vector_checks import VectorSpec
from damf.sim.common_tests import random_vectors_test

HERE = Path(__file__).resolve().parent


# ---- the registered blocks ----------------------------------------------------------------

@pytest.mark.parametrize("name", BLOCKS)
def test_entry_is_complete(name):
    """Each entry names what every tool needs, and the pieces belong together."""
    block = BLOCKS[name]
    assert block.name == name and block.summary
    assert issubclass(block.config_cls, BlockConfig) and block.config_cls.block == name
    assert isinstance(block.vectors, VectorSpec) and callable(block.golden)
    cls = block.component_class()
    assert inspect.isclass(cls) and "elaborate" in dir(cls)
    assert importlib.util.find_spec(block.testbench) is not None
    cfg = block.config_cls.from_preset("default")
    attributes = [f.attribute for f in block.timing]
    assert block.latency is None or block.latency in [f.key for f in block.timing], "latency: one of the figures"
    assert all(hasattr(cfg, a) for a in attributes), attributes
    if block.role is not None:
        assert block.role[1] in SIDES and block.part_of is not None


def test_comparisons_come_from_the_roles():
    """The comparisons of damf synth, in registry order: each side the blocks that play it."""
    assert comparisons() == {
        "score": (("inner-product", "score"), ("systolic-qk",)),
        "axv": (("row-stats", "shift-accumulate"), ("softmax", "systolic-av")),
        "head": (("damf-head",), ("baseline-head",)),
    }


def test_unknown_block():
    with pytest.raises(ConfigError, match=r"^unknown block 'nope'; expected one of: inner-product, "):
        get_block("nope")


def test_the_registry_imports_no_amaranth():
    """The component is imported on first build: a vector file needs no Amaranth (the fresh
    interpreter check is tests/test_golden_imports.py); here, the class is found by its path."""
    block = BLOCKS["score"]
    assert block.rtl == "damf.hdl.score:Score"
    assert block.component_class().__name__ == "Score"


# ---- a toy block, registered for the test ----------------------------------------------------

@pytest.fixture
def toy(monkeypatch):
    """The registry holding only the toy block (so the commands that go over every block are
    quick and can only have found it there), then as it was."""
    monkeypatch.syspath_prepend(str(HERE))        # the toy's module, here and in the simulator
    module = importlib.import_module("registry_toy")
    entry = Block(name=module.NAME, summary="toy: y = -x, one per cycle", config_cls=module.ToyConfig,
                  rtl="registry_toy:ToyNegate", vectors=module.VECTORS, testbench="registry_toy",
                  timing=(Figure("latency", "latency"),), generate_terms=lambda cfg: {"negators": 0.01 * cfg.width},
                  vector_values=lambda cfg: 2, variants=({}, {"width": 3}))
    saved = dict(BLOCKS)
    BLOCKS.clear()
    BLOCKS[entry.name] = entry
    yield entry
    BLOCKS.clear()
    BLOCKS.update(saved)


def test_toy_help_and_generate(toy, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    assert "toy-negate" in capsys.readouterr().out
    assert cli.main(["generate", "toy-negate", "--help"]) == 0
    assert "width  8        2..32  bits of a signed input x" in capsys.readouterr().out
    assert cli.main(["generate", "toy-negate", "--set", "width=5", "--out", str(tmp_path)]) == 0
    verilog = (tmp_path / "toy-negate.v").read_text()
    assert "module damf_toy_negate(" in verilog
    doc = json.loads((tmp_path / "toy-negate.json").read_text())
    assert doc["config"] == {"width": 5} and doc["derived"]["out_width"] == 6
    assert doc["latency"] == 1 and doc["timing"]["latency"]["cycles"] == 1
    assert {p["name"]: p["width"] for p in doc["ports"]}["o__payload"] == 6
    assert cli.main(["generate", "toy-negate", "--set", "width=1", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_toy_golden_sim_and_lint(toy, tmp_path, capsys):
    assert cli.main(["golden", "--out", str(tmp_path / "g")]) == 0
    files = sorted(p.relative_to(tmp_path / "g").as_posix() for p in (tmp_path / "g").rglob("*.json"))
    assert files == ["bert-base/toy-negate.json", "default/toy-negate.json"]
    cfg, inputs, expected = load_vectors(tmp_path / "g" / "default" / "toy-negate.json")
    assert expected["y"][:2] == [[128], [-127]] and len(inputs["x"]) == 5 + 64
    capsys.readouterr()
    assert cli.main(["sim", "--vectors", str(tmp_path / "g" / "default" / "toy-negate.json"),
                     "--build", str(tmp_path / "b")]) == 0
    assert "toy-negate on icarus: 69/69 results match" in capsys.readouterr().out
    assert cli.main(["lint", "--out", str(tmp_path / "l")]) == 0
    out = capsys.readouterr().out
    assert out.count("toy-negate") == 4 and "lint: all clean" in out    # two variants, two presets


def test_toy_synth_and_bench(toy, tmp_path, capsys):
    assert cli.main(["synth", "--block", "toy-negate", "--no-pnr", "--out", str(tmp_path / "r"),
                     "--build", str(tmp_path / "b"), "--jobs", "1"]) == 0
    report = json.loads((tmp_path / "r" / "synth-default.json").read_text())
    assert [b["block"] for b in report["blocks"]] == ["toy-negate"]
    assert report["blocks"][0]["ecp5"]["luts"] > 0
    rows = bench.generation_times(1)
    assert [(preset, name) for preset, name, *_ in rows] == [("default", "toy-negate"), ("bert-base", "toy-negate")]


# ---- the formal harnesses ---------------------------------------------------------------------

@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_has_a_formal_harness(name):
    """Each entry says how ``python -m damf.formal`` checks it: a spec builder that exists, a
    small configuration its class accepts, a depth for every bounded check."""
    harness, cls = BLOCKS[name].formal, BLOCKS[name].config_cls
    assert isinstance(harness, Formal)
    assert callable(harness.spec_builder())
    cls.from_dict(harness.config, base=cls.from_preset("default"))
    assert set(harness.depths) == {"stable", "count", "order", "data"} and min(harness.depths.values()) >= 1


def test_formal_depths_are_checked():
    with pytest.raises(ValueError, match=r"^Formal depths must be among stable, count, order, data, not cuont$"):
        Formal(spec="damf.hdl.formal:score_spec", config={}, depths={"cuont": 3})


def test_toy_has_no_formal_harness(toy, tmp_path, capsys):
    """The formal driver passes a block without a harness by in one line, and refuses it by name."""
    assert formal.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "toy-negate        skipped: no formal harness" and out[1].startswith("== 0 of 0 checks passed")
    assert formal.main(["toy-negate", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("damf: error: block 'toy-negate' has no formal harness "
                                       "(no formal= in its entry in damf/blocks.py)\n")


# ---- the common testbench tests and the soak harnesses -----------------------------------------

@pytest.mark.parametrize("name", BLOCKS)
def test_every_testbench_has_the_common_tests(name):
    """Each block's testbench registers the tests written once in ``sim/common_tests.py``, under
    the names the tools run: the random test under the four mixes of stalls, and the replay."""
    testbench = importlib.import_module(BLOCKS[name].testbench)
    tests = [t.name for t in testbench.random_vectors.generate_tests()] + [testbench.vectors_file.name]
    assert tests == [f"random_vectors/stalls={s}" for s in ("none", "idle", "backpressure", "both")] + ["vectors_file"]
    assert {t.module for t in testbench.random_vectors.generate_tests()} | {testbench.vectors_file.module} \
        == {BLOCKS[name].testbench}


def test_toy_has_no_soak_harness(toy, tmp_path, capsys):
    """The soak driver passes a block without a harness by in one line, and refuses it by name."""
    assert soak.main(["--build", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "[1/1] toy-negate: skipped: no soak harness (no SOAK in its testbench registry_toy)"
    assert not any(tmp_path.iterdir())      # nothing built
    assert soak.main(["--block", "toy-negate", "--build", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("damf: error: block 'toy-negate' has no soak harness "
                                       "(no SOAK in its testbench registry_toy)\n")


def test_the_random_test_runs_each_mix(monkeypatch):
    """The common random test calls the block's ``run`` once per mix of source idling and sink
    backpressure, with that mix's probabilities (the block's defaults) and options."""
    monkeypatch.delenv("DAMF_IDLE", raising=False)
    monkeypatch.delenv("DAMF_BACKPRESSURE", raising=False)
    calls = []

    async def run(dut, idle, backpressure, **options):
        calls.append((dut, idle, backpressure, options))

    generator = random_vectors_test(run, timeout={}, doc="d", backpressure=0.5,
                                    options=lambda stalls: {"split": stalls == "both"})
    for test in generator.generate_tests():
        asyncio.run(test.func("dut", **test.kwargs))
    assert calls == [("dut", 0.0, 0.0, {"split": False}), ("dut", 0.3, 0.0, {"split": False}),
                     ("dut", 0.0, 0.5, {"split": False}), ("dut", 0.3, 0.5, {"split": True})]
