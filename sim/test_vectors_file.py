"""`damf sim --vectors FILE`: replay a vector file on the RTL and report matches/mismatches."""

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cocotb.regression
from damf.blocks import BLOCKS
from damf.sim.block_test import committed_vectors


VECTORS = Path(__file__).resolve().parent.parent / "golden" / "vectors"


def damf_sim(path, simulator, build):
    return subprocess.run([sys.executable, "-m", "damf.cli", "sim", "--vectors", str(path),
                           "--sim", simulator, "--build", str(build)], capture_output=True, text=True)


def test_committed_vectors_match(simulator, request):
    build = request.config.rootpath / "build" / "sim" / "vectors" / simulator
    path = VECTORS / "default" / "inner-product.json"
    n = len(json.loads(path.read_text())["expected"]["p"])
    result = damf_sim(path, simulator, build)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"inner-product on {simulator}: {n}/{n} results match" in result.stdout


def test_mismatches_are_reported(simulator, request, tmp_path):
    build = request.config.rootpath / "build" / "sim" / "vectors-bad" / simulator
    doc = json.loads((VECTORS / "default" / "inner-product.json").read_text())
    doc["expected"]["p"][3][0] += 1
    doc["expected"]["q"][7][0] -= 2
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    result = damf_sim(path, simulator, build)
    n = len(doc["expected"]["p"])
    assert result.returncode == 1
    assert f"{n - 2}/{n} results match" in result.stdout
    got_p, got_q = doc["expected"]["p"][3][0] - 1, doc["expected"]["q"][7][0] + 2
    assert f"mismatch at result 3: p = [{got_p}], expected [{got_p + 1}]" in result.stdout
    assert f"mismatch at result 7: q = [{got_q}], expected [{got_q - 2}]" in result.stdout


def test_every_block_replays_its_committed_file():
    """Each block's ``sim/test_BLOCK.py`` has the configuration of its committed vector file,
    so ``make test`` replays all nine (``damf.sim.block_test.run_block``)."""
    missing = []
    for block in BLOCKS:
        path = Path(__file__).resolve().parent / f"test_{block.replace('-', '_')}.py"
        spec = importlib.util.spec_from_file_location(f"_configs_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not any(committed_vectors(cfg) for cfg in module.CONFIGS.values()):
            missing.append(block)
    assert not missing, f"no sim configuration replays the committed vector file of {missing}"


def test_every_block_names_its_testbench():
    """``damf.blocks`` names each block's testbench; it exists and can replay a vector file: it
    registers the cocotb test ``vectors_file`` (the one ``damf sim --vectors`` runs), made by
    ``vectors_file_test`` for the block's own ``TB``."""
    for block in BLOCKS.values():
        spec = importlib.util.find_spec(block.testbench)
        assert spec is not None, f"{block.name}: no module {block.testbench}"
        module = importlib.import_module(block.testbench)
        test = getattr(module, "vectors_file", None)
        assert isinstance(test, cocotb.regression.TestGenerator), f"{block.testbench} has no vectors_file test"
        assert [(t.name, t.module) for t in test.generate_tests()] == [("vectors_file", block.testbench)]
        assert module.TB.config_cls.block == block.name, f"{block.testbench}.TB is not {block.name}'s"
