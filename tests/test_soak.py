"""The soak machinery (``damf.soak``, ``sim/tb_soak.py``): options, every block's harness, and
a short soak of the inner-product unit on Verilator that passes, then fails on an injected
mismatch."""

import importlib
import re

import pytest

from damf import soak
from damf.blocks import BLOCKS
from damf.sim.tb_soak import Soak, soak_of

CYCLES = 3000


@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_has_a_soak_harness(name):
    """Each block's testbench holds its harness, ``SOAK``, driving that testbench's ``TB``."""
    harness, testbench = soak_of(name), importlib.import_module(BLOCKS[name].testbench)
    assert isinstance(harness, Soak) and harness is testbench.SOAK
    assert harness.tb is testbench.TB and harness.tb.config_cls.block == name
    assert harness.unit and callable(harness.batch) and callable(harness.decode)


@pytest.mark.parametrize("argv, message", [
    (["--cycles", "0"], r"--cycles must be a positive integer, not 0"),
    (["--cycles", "many"], r"--cycles must be a positive integer, not 'many'"),
    (["--seed", "-1"], r"--seed must be an integer >= 0, not -1"),
    (["--block", "nope"], r"unknown block 'nope'; expected one of: inner-product, .*"),
    (["--frobnicate"], r"unrecognized arguments: --frobnicate"),
])
def test_bad_options(argv, message, capsys):
    assert soak.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(f"damf: error: {message}\n", err)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return tmp_path_factory.mktemp("soak")


def test_short_soak_checks_every_result(build):
    r = soak.soak_block("inner-product", cycles=CYCLES, seed=3, build=build, echo=False)
    assert "failure" not in r, r.get("failure")
    assert r["cycles"] >= CYCLES
    assert r["results"] > 0
    # a token takes `beats` cycles at best: the results cannot outnumber the cycles that way
    assert r["results"] <= r["cycles"] // BLOCKS["inner-product"].config_cls.from_preset("default").beats
    assert r["seed"] == 3 and r["wall_s"] > 0


def test_injected_mismatch_fails(build):
    r = soak.soak_block("inner-product", cycles=CYCLES, seed=3, build=build, echo=False,
                        env={"DAMF_SOAK_CORRUPT": "17"})
    assert "failure" in r
    assert r["mismatch"]["index"] == 17 and r["results"] == 17
    assert "corrupted" in r["mismatch"]["expected"]
