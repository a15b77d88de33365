"""Packaging (docs/packaging.md): version ranges and the lock file, the wheel in a clean
virtual environment, the FuseSoC core.

``test_wheel_in_clean_venv`` builds the wheel from a copy of the working tree and installs it
with its dependencies (pinned by constraints.txt) into a new virtual environment: that install
needs the network unless pip's cache already holds every wheel (after ``make env`` it does; then
the test takes about a minute).  ``make package`` runs it with its progress printed.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from damf import compare, fusesoc_gen, toolchain

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VENV_BIN = Path(sys.executable).parent


def requirements():
    """Every requirement of pyproject.toml: (where, Requirement)."""
    reqs = [("build-system", r) for r in PYPROJECT["build-system"]["requires"]]
    reqs += [("dependencies", r) for r in PYPROJECT["project"]["dependencies"]]
    for extra, items in PYPROJECT["project"]["optional-dependencies"].items():
        reqs += [(f"extra {extra}", r) for r in items]
    return [(where, Requirement(r)) for where, r in reqs]


def pins():
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line.strip())
            assert m, f"constraints.txt: not an exact pin: {line!r}"
            out[canonical(m[1])] = m[2]
    return out


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- ranges and pins ---------------------------------------------------------------------------

def test_every_requirement_is_a_range():
    for where, req in requirements():
        ops = {s.operator for s in req.specifier}
        assert "==" not in ops and "===" not in ops, f"{where}: {req} is an exact pin (belongs in constraints.txt)"
        assert ops & {">=", ">", "~="} and ops & {"<", "<=", "~="}, f"{where}: {req} needs a lower and an upper bound"


def test_constraints_pin_every_requirement_inside_its_range():
    pinned = pins()
    for where, req in requirements():
        name = canonical(req.name)
        assert name in pinned, f"{where}: {req.name} has no pin in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"{where}: constraints.txt pins {req.name}=={pinned[name]}, outside {req.specifier}"
    # pytest is a test extra, not a runtime dependency; matplotlib only in the plots / eval extras
    runtime = {canonical(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert not runtime & {"pytest", "matplotlib", "fusesoc"}


def test_venv_matches_constraints():
    """.venv holds exactly the pinned versions (make env installs with -c constraints.txt)."""
    wrong = []
    for name, version in pins().items():
        if name == "setuptools":            # a build dependency: used in pip's isolated build only
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} not installed")
            continue
        if have != version:
            wrong.append(f"{name} {have} installed, {version} pinned")
    assert not wrong, "; ".join(wrong) + " (run make env)"


def test_makefile_installs_from_constraints():
    # -W: as if constraints.txt had changed; -o: whatever pyproject.toml's date; -n: print, do not run
    out = subprocess.run(["make", "-n", "-o", "pyproject.toml", "-W", "constraints.txt", "env"], cwd=ROOT,
                         capture_output=True,
                         text=True, check=True).stdout
    install = [line for line in out.splitlines() if "pip install" in line and " -e " in line]
    assert install, f"changing constraints.txt does not reinstall .venv:\n{out}"
    assert "-c constraints.txt" in install[0] and "--build-constraint constraints.txt" in install[0]


# ---- matplotlib is optional --------------------------------------------------------------------

def test_compare_reports_without_matplotlib(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(compare, "have_matplotlib", lambda: False)
    monkeypatch.setattr(compare, "markdown", lambda doc: "report\n")

    def no_plot(*args, **kwargs):
        raise AssertionError("plotted without matplotlib")
    monkeypatch.setattr(compare, "plot_sweeps", no_plot)
    monkeypatch.setattr(compare, "plot_iso", no_plot)
    doc = {"preset": "tiny", "sweeps": {"seq_len": []}, "iso_throughput": [{}]}
    paths = compare.write_reports(doc, tmp_path, progress=said.append)
    assert [p.name for p in paths] == ["compare-tiny.json", "compare-tiny.md"]
    assert json.loads(paths[0].read_text())["preset"] == "tiny"
    assert len(said) == 1 and "plots skipped" in said[0] and "matplotlib" in said[0]


# ---- the FuseSoC core --------------------------------------------------------------------------

def fusesoc_env():
    env = toolchain.environ()           # the venv's Verilator (VERILATOR_ROOT, first on PATH)
    env["PATH"] = str(VENV_BIN) + os.pathsep + env["PATH"]   # damf, fusesoc, python3 with PyYAML
    return env


def fusesoc(tmp_path, *args, cores=()):
    exe = VENV_BIN / "fusesoc"
    if not exe.exists():
        pytest.fail("fusesoc is not installed in .venv: run make env (it is in the test extra)")
    roots = [a for c in (ROOT, *cores) for a in ("--cores-root", str(c))]
    return subprocess.run([str(exe), *roots, "run", "--build-root", str(tmp_path / "build"), *args],
                          cwd=tmp_path, env=fusesoc_env(), capture_output=True, text=True, timeout=300)


def checkout_leftovers():
    """What a FuseSoC run could leave in the checkout: its default build root, generator caches."""
    found = [p for p in ROOT.glob("build/damf_attention_*")] + [ROOT / "fusesoc.conf"]
    found += [p for p in ROOT.glob("**/generator_cache") if ".venv" not in p.parts]
    return sorted(str(p) for p in found if p.exists())


def test_fusesoc_lints_the_generated_head(tmp_path):
    before = checkout_leftovers()
    r = fusesoc(tmp_path, "--target", "lint", "damf:attention:head")
    assert r.returncode == 0, r.stdout + r.stderr
    generated = list((tmp_path / "build").rglob("generator_cache/*/damf-head.v"))
    assert len(generated) == 1, list((tmp_path / "build").rglob("*"))
    # the generator's Verilog is damf generate's, and Verilator linted that file with the waivers
    ref = tmp_path / "ref"
    subprocess.run([str(VENV_BIN / "damf"), "generate", "damf-head", "--set", "seq_len=16", "--out", str(ref)],
                   check=True, capture_output=True)
    assert generated[0].read_bytes() == (ref / "damf-head.v").read_bytes()
    # the returned core: the Verilog, the JSON and the scoped waivers, the top module of BLOCK.json
    core = yaml.safe_load(next(generated[0].parent.glob("*.core")).read_text())
    files = [name for entry in core["filesets"]["rtl"]["files"] for name in entry]
    assert files == ["damf-head.vlt", "damf-head.v", "damf-head.json"]
    assert core["targets"]["default"]["toplevel"] == json.loads((ref / "damf-head.json").read_text())["module"]
    vlt = (generated[0].parent / "damf-head.vlt").read_text()
    assert '-file "*"' not in vlt and vlt.count('-file "*/damf-head.v"') == vlt.count("lint_off") > 0
    vc = next((tmp_path / "build").rglob("lint-verilator/*.vc")).read_text()
    assert "damf-head.vlt" in vc and "damf-head.v" in vc and "--top-module damf_head" in vc
    cfg = next((tmp_path / "build").rglob("lint-verilator/config.mk")).read_text()
    assert re.search(r"VERILATOR_OPTIONS\s*:=\s*-Wall", cfg)
    assert checkout_leftovers() == before


BAD_CORE = """CAPI=2:
name: test:damf:unused:0
filesets:
  deps: {depend: ["damf:attention:generator"]}
  rtl:
    files: [top.v]
    file_type: verilogSource
generate:
  ip: {generator: damf_generate, parameters: {block: inner-product, prefix: u_}}
targets:
  lint:
    filesets: [deps, rtl]
    generate: [ip]
    toplevel: top
    default_tool: verilator
    tools: {verilator: {mode: lint-only, verilator_options: [-Wall]}}
"""


def test_fusesoc_lint_target_fails_on_a_warning(tmp_path):
    """The lint target is real: a top with an unused signal around the generated block fails."""
    cores = tmp_path / "cores"
    cores.mkdir()
    (cores / "unused.core").write_text(BAD_CORE)
    (cores / "top.v").write_text("module top(input wire clk, input wire rst, output wire y);\n"
                                 "  wire unused_net;\n  assign y = 1'b0;\nendmodule\n")
    r = fusesoc(tmp_path, "--target", "lint", "test:damf:unused", cores=[cores])
    assert r.returncode != 0
    assert "UNUSED" in r.stdout + r.stderr


def gen_input(tmp_path, params):
    path = tmp_path / "in.yml"
    path.write_text(json.dumps({"gapi": "1.0", "vlnv": "damf:attention:x-ip:0.1.0", "files_root": str(ROOT),
                                "parameters": params}))       # JSON is YAML
    return path


@pytest.mark.parametrize("params, message", [
    ({"preset": "default"}, r"parameter 'block' is required \(a block name such as damf-head\)"),
    ({"block": "score", "width": 3}, r"unknown parameter 'width' \(known: block, preset, set, prefix, axis\)"),
    ({"block": "score", "set": ["rank=2"]}, r"parameter 'set' must be a dict, not \['rank=2'\]"),
    ({"block": "score", "axis": "yes"}, r"parameter 'axis' must be a bool, not 'yes'"),
    ({"block": "score", "set": {"rank": [2]}}, r"set.rank must be a number or a string, not \[2\]"),
])
def test_generator_refuses_bad_parameters(tmp_path, monkeypatch, capsys, params, message):
    monkeypatch.chdir(tmp_path)
    path = gen_input(tmp_path, params)
    assert fusesoc_gen.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"damf fusesoc generator: error: " + message + r"\n", err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.yml"]


def test_generator_passes_damf_errors_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = gen_input(tmp_path, {"block": "score", "set": {"rank": 0}})
    r = subprocess.run([sys.executable, str(ROOT / "damf" / "fusesoc_gen.py"), str(path)], cwd=tmp_path,
                       env=fusesoc_env(), capture_output=True, text=True)
    assert r.returncode == 2
    assert re.fullmatch(r"damf: error: [^\n]*rank[^\n]*\n", r.stderr), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.yml"]


# ---- the wheel in a clean virtual environment --------------------------------------------------

def say(start, text):
    print(f"[wheel {time.monotonic() - start:5.0f} s] {text}", flush=True)


def run(cmd, start, **kwargs):
    say(start, " ".join(str(c) for c in cmd))
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def copy_tree(dst):
    """The working tree's tracked and not-ignored files (what a clone with these edits holds)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def test_wheel_in_clean_venv(tmp_path):
    start = time.monotonic()
    src, dist, venv, work = (tmp_path / d for d in ("src", "dist", "venv", "work"))
    copy_tree(src)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--build-constraint", CONSTRAINTS,
         "-w", dist, src], start)
    wheels = list(dist.glob("damf_attention-*.whl"))
    assert len(wheels) == 1, wheels
    if os.environ.get("DAMF_WHEEL_OUT"):
        out = Path(os.environ["DAMF_WHEEL_OUT"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheels[0], out)
        say(start, f"copied {wheels[0].name} to {out}")
    run([sys.executable, "-m", "venv", venv], start)
    py = venv / "bin" / "python"
    run([py, "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS, wheels[0]], start)
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "VERILATOR_ROOT")}
    env["PATH"] = str(venv / "bin") + os.pathsep + os.environ["PATH"].replace(str(VENV_BIN) + os.pathsep, "")
    # damf and its testbenches come from the new environment, not from the checkout
    where = run([py, "-c", "import damf, damf.sim.tb_inner_product as t; print(damf.__file__, t.__file__)"],
                start, cwd=work, env=env).stdout
    assert all(str(venv) in p for p in where.split()), where
    # the data files the commands read are installed: the lint waivers, the golden data and
    # vectors of the checkout, and every package-data pattern of pyproject.toml matches
    site = Path(where.split()[0]).parent
    data = [Path("damf/lint.vlt")] + [p.relative_to(ROOT) for p in ROOT.glob("damf/models/data/*.txt")]
    data += [p.relative_to(ROOT) for p in ROOT.glob("golden/vectors/default/*.json")]
    # damf/X is installed as damf/X, golden/X (the package damf.golden) as damf/golden/X
    missing = [str(p) for p in data if not (site / (p.relative_to("damf") if p.parts[0] == "damf" else p)).is_file()]
    assert len(data) > 3 and not missing, f"not in the wheel: {missing}"
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        folder = site.joinpath(*package.split(".")[1:])
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"package data {package}: {pattern} missing from the wheel"
    # no extras: synth must work without matplotlib
    r = subprocess.run([py, "-c", "import matplotlib"], capture_output=True, cwd=work, env=env)
    assert r.returncode != 0, "matplotlib is in the clean environment: the test would not see a missing extra"
    damf = venv / "bin" / "damf"
    run([damf, "generate", "damf-head", "--out", "o"], start, cwd=work, env=env)
    ref = tmp_path / "ref"
    subprocess.run([VENV_BIN / "damf", "generate", "damf-head", "--out", ref], check=True, capture_output=True)
    assert (work / "o" / "damf-head.v").read_bytes() == (ref / "damf-head.v").read_bytes()
    run([damf, "golden", "--out", "g"], start, cwd=work, env=env)
    committed = ROOT / "golden" / "vectors" / "default" / "inner-product.json"
    assert (work / "g" / "default" / "inner-product.json").read_bytes() == committed.read_bytes()
    # one block's vector file (damf golden BLOCK): the same bytes as from the checkout
    run([damf, "golden", "damf-head", "--out", "gh"], start, cwd=work, env=env)
    subprocess.run([VENV_BIN / "damf", "golden", "damf-head", "--out", tmp_path / "ref_g"], check=True,
                   capture_output=True)
    assert (work / "gh" / "damf-head.json").read_bytes() == (tmp_path / "ref_g" / "damf-head.json").read_bytes()
    r = run([damf, "synth", "--block", "inner-product", "--no-pnr", "--out", "r"], start, cwd=work, env=env)
    blocks = json.loads((work / "r" / "synth-default.json").read_text())["blocks"]
    assert [b["block"] for b in blocks] == ["inner-product"]
    assert blocks[0]["cmos"]["transistors"] > 0 and blocks[0]["ecp5"]["luts"] > 0, blocks[0]
    r = run([damf, "sim", "--vectors", "g/default/inner-product.json", "--sim", "icarus"], start, cwd=work, env=env)
    say(start, (r.stdout.strip().splitlines() or ["(no output)"])[-1])
    assert re.search(r"\b(\d+)/\1 results match", r.stdout), r.stdout
    say(start, "generate, golden, golden BLOCK, sim --vectors and synth --no-pnr work from the wheel")
