"""The pytest side of every block's cocotb testbench, written once (``sim/test_BLOCK.py``
holds only its configurations).

:func:`run_block` builds ``cfg``'s Verilog and runs every cocotb test of the block's
testbench (``sim/tb_BLOCK.py``) on one simulator.  When ``cfg`` is the configuration of the
block's committed vector file (``golden/vectors/default/BLOCK.json``, written by ``make
golden``), the same run also replays that file (the testbench's ``vectors_file`` test) and
every result is compared with the file's expected one, so ``make test`` replays every
block's vector file on both simulators without building anything twice.

Imports pytest: for the test suite only (``damf sim`` uses :mod:`damf.sim.runner`).
"""

import json
import os
from pathlib import Path

import pytest

from ..blocks import get_block, load_vectors
from ..golden import vectors
from .runner import SimFailed, run_testbench

__all__ = ["COMMITTED", "committed_vectors", "run_block"]

#: the committed vector files, one per block (``make golden``)
COMMITTED = Path(vectors.__file__).resolve().parent / "vectors" / "default"

DEFAULT_SEED = 20261122


def _committed(cfg):
    """``(path, expected)`` of the committed vector file of ``cfg``'s block if ``cfg`` is its
    configuration, else None."""
    path = COMMITTED / f"{cfg.block}.json"
    if not path.is_file():
        return None
    file_cfg, _, expected = load_vectors(path, block=cfg.block)
    return (path, expected) if file_cfg == cfg else None


def committed_vectors(cfg):
    """The committed vector file of ``cfg``'s block if ``cfg`` is its configuration, else None."""
    return (_committed(cfg) or (None, None))[0]


def run_block(cfg, *, name, simulator, request, env=None):
    """Run ``cfg``'s testbench on ``simulator`` (a pytest failure names the configuration,
    simulator, seed and build folder); replay the committed vector file when ``cfg`` is its
    configuration.  Returns the replayed file's path, or None."""
    seed = int(os.environ.get("DAMF_SEED", DEFAULT_SEED))
    build = request.config.rootpath / "build" / "sim" / cfg.block / name / simulator
    env = {"DAMF_SEED": str(seed), **(env or {})}
    replay, expected = _committed(cfg) or (None, None)
    results = build / "vectors-results.json"
    if replay is not None:
        build.mkdir(parents=True, exist_ok=True)
        results.unlink(missing_ok=True)
        env.update(DAMF_VECTORS=str(replay), DAMF_RESULTS=str(results))
    where = f"config {name}, {simulator}, seed {seed}: rerun with DAMF_SEED={seed}; build folder {build}"
    try:
        run_testbench(cfg, simulator=simulator, module=get_block(cfg.block).testbench, build_dir=build, env=env)
    except SimFailed as e:
        pytest.fail(f"{e} -- {where}", pytrace=False)
    if replay is not None:
        if not results.is_file():
            pytest.fail(f"the replay of {replay.name} wrote no results -- {where}", pytrace=False)
        matches, total, first = vectors.compare(expected, json.loads(results.read_text()))
        if matches != total:
            shown = "; ".join(f"result {i}: {out} = {g}, expected {e}" for i, out, e, g in first[:3])
            pytest.fail(f"{replay.name}: {matches}/{total} results match ({shown}) -- {where}", pytrace=False)
    return replay
