"""``damf generate --prefix``: two differently configured ``damf-head``s, generated with
``--prefix a_`` and ``--prefix b_``, in one design -- a small top written here instantiates
both -- simulated on Icarus and Verilator (``sim/tb_prefix.py``, both bit-exact against the
golden model) and linted together with Verilator ``-Wall``; with the same prefix twice the
module names collide and the design does not compile."""

import dataclasses
import json
import os
import re
import subprocess

import pytest

from damf import toolchain
from damf.config import DamfHeadBlockConfig
from damf.lint import WAIVERS
from damf.sim.runner import SimFailed, run_testbench, write_block

#: two configurations whose Verilog differs (two keys per beat and L 8; one key per beat and L 5)
HEADS = {"a": DamfHeadBlockConfig.from_preset("default"),
         "b": dataclasses.replace(DamfHeadBlockConfig.from_preset("default"), parallel=1, seq_len=5)}


def write_pair(out, prefixes):
    """``damf-head.v`` of each head (``--prefix``) and the top ``pair.v`` instantiating both as
    ``a`` and ``b``, every port brought out as ``INSTANCE_PORT``; returns the Verilog files."""
    out.mkdir(parents=True, exist_ok=True)
    files, decls, insts = [], ["  input clk;", "  input rst;"], []
    names = ["clk", "rst"]
    for inst, prefix in zip(HEADS, prefixes):
        v_path, j_path = write_block(HEADS[inst], out / inst, prefix=prefix)
        doc = json.loads(j_path.read_text())
        files.append(v_path)
        conns = []
        for port in doc["ports"]:
            name = port["name"]
            if name in ("clk", "rst"):
                conns.append(f".{name}({name})")
                continue
            width = f"[{port['width'] - 1}:0] " if port["width"] > 1 else ""
            decls.append(f"  {port['direction']} {width}{inst}_{name};")
            names.append(f"{inst}_{name}")
            conns.append(f".{name}({inst}_{name})")
        insts.append(f"  {doc['module']} {inst} (\n    " + ",\n    ".join(conns) + "\n  );")
    top = out / "pair.v"
    top.write_text("// two damf-heads side by side (sim/test_prefix.py)\nmodule pair (\n  " + ",\n  ".join(names)
                   + "\n);\n" + "\n".join(decls) + "\n" + "\n".join(insts) + "\nendmodule\n")
    return files + [top]


def modules(path):
    return re.findall(r"^module \\?([^\s(]+)", path.read_text(), re.M)


def test_every_module_starts_with_its_prefix(tmp_path):
    a, b, _ = write_pair(tmp_path, ("a_", "b_"))
    assert modules(a)[0] == "a_head" and modules(b)[0] == "b_head"
    for path, prefix in ((a, "a_"), (b, "b_")):
        assert len(modules(path)) > 5 and all(m.startswith(prefix) for m in modules(path)), modules(path)


def lint(files):
    return subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "pair", str(WAIVERS),
                           *map(str, files)], env=toolchain.environ(), capture_output=True, text=True)


def test_two_heads_lint_clean(tmp_path):
    result = lint(write_pair(tmp_path, ("a_", "b_")))
    assert result.returncode == 0 and "%" not in result.stderr, result.stderr


def test_same_prefix_twice_does_not_compile(tmp_path):
    """The mutation: both heads with one prefix give two modules of each name."""
    files = write_pair(tmp_path, ("a_", "a_"))
    result = lint(files)
    assert result.returncode != 0 and "Duplicate declaration of module: 'a_head'" in result.stderr, result.stderr
    toolchain.require("icarus")
    icarus = subprocess.run(["iverilog", "-o", str(tmp_path / "pair.vvp"), "-s", "pair", *map(str, files)],
                            capture_output=True, text=True)
    assert icarus.returncode != 0 and "a_head" in icarus.stderr and "already" in icarus.stderr, icarus.stderr


def test_two_heads_one_design(simulator, request):
    seed = int(os.environ.get("DAMF_SEED", "20261204"))
    build = request.config.rootpath / "build" / "sim" / "prefix" / simulator
    files = write_pair(build / "rtl", ("a_", "b_"))
    env = {"DAMF_SEED": str(seed), **{f"DAMF_CONFIG_{i.upper()}": str(build / "rtl" / i / "damf-head.json")
                                      for i in HEADS}}
    try:
        run_testbench(None, simulator=simulator, module="damf.sim.tb_prefix", build_dir=build,
                      sources=files, toplevel="pair", env=env)
    except SimFailed as e:
        pytest.fail(f"{e} -- {simulator}, seed {seed}: rerun with DAMF_SEED={seed}; build folder {build}",
                    pytrace=False)
