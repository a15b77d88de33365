"""The damf command line: generation, determinism, and clean errors for bad input."""

import json
import subprocess
import sys

import pytest

from damf.blocks import BLOCKS
from damf.config import PRESETS
from damf.config import DEFAULT_PQ_WIDTH


def damf(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "damf.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_help_lists_blocks():
    result = damf("--help")
    assert result.returncode == 0
    for name in BLOCKS:
        assert name in result.stdout


@pytest.mark.parametrize("preset", PRESETS)
def test_generate_is_deterministic_and_pathless(tmp_path, preset):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        for block in BLOCKS:
            result = damf("generate", block, "--preset", preset, "--out", out)
            assert result.returncode == 0, result.stderr
    for block in BLOCKS:
        v = [(o / f"{block}.v").read_text() for o in outs]
        j = [(o / f"{block}.json").read_text() for o in outs]
        assert v[0] == v[1] and j[0] == j[1]
        assert str(tmp_path) not in v[0] and "src = " not in v[0]
        assert json.loads(j[0])["block"] == block


def test_generate_set_and_config(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"d_model": 9, "lanes": 2}')
    result = damf("generate", "inner-product", "--config", cfg, "--set", "rank=3", "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "o" / "inner-product.json").read_text())
    assert (doc["config"]["d_model"], doc["config"]["lanes"], doc["config"]["rank"]) == (9, 2, 3)
    assert doc["derived"]["beats"] == 5


BAD = [
    (["generate", "inner-product", "--set", "d_model=0"], "d_model must be at least 1, not 0"),
    (["generate", "inner-product", "--set", "d_model=-3"], "d_model must be at least 1, not -3"),
    (["generate", "inner-product", "--set", "x_width=1"], "x_width must be at least 2, not 1"),
    (["generate", "inner-product", "--set", "lanes=99"], "lanes must be at most d_model = 16, not 99"),
    (["generate", "inner-product", "--preset", "huge"], "unknown preset 'huge'; expected one of: default, bert-base"),
    (["generate", "attention", "--preset", "default"], "unknown block 'attention'; expected one of: "),
    (["generate", "inner-product", "--set", "depth=3"], "unknown key 'depth' for inner-product; expected one of: "),
    (["generate", "inner-product", "--set", "d_model=sixteen"], "d_model must be an integer, not 'sixteen'"),
    (["generate", "inner-product", "--set", "weights=rom"], "weights must be one of runtime, fixed, not 'rom'"),
    (["generate", "inner-product", "--config", "{cfg}"], "config file '{cfg}' is not valid JSON: "),
    (["generate", "inner-product", "--config", "{missing}"], "cannot read config file '{missing}': No such file or directory"),
    (["generate", "inner-product"], "the following arguments are required: --out"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    (["golden", "--preset", "huge"], "unknown preset 'huge'; expected one of: default, bert-base"),
    (["golden", "--count", "0"], "--count must be at least 1, not 0"),
    (["sim", "--vectors", "{cfg}"], "vector file '{cfg}' is not valid JSON: "),
    (["accuracy", "--seeds", "0"], "--seeds must be at least 1, not 0"),
    (["accuracy", "--length", "9"], "--length must be in [1, seq_len = 8], not 9"),
    (["accuracy", "--logit-gain", "-1"], "--logit-gain must be a positive finite number of at most 1000, not -1"),
    (["accuracy", "--d-model", "12"], "--d-model must be a positive multiple of d_head = 8, not 12"),
    (["accuracy", "--mode", "exp"], "argument --mode: invalid choice: 'exp'"),
    (["accuracy", "--set", "mode=exp"], "mode must be one of maclaurin, maclaurin-abs, base2, not 'exp'"),
    (["accuracy", "--pq-width", "1"], "--pq-width must be an integer in [2, 32] or 'exact', not '1'"),
    (["accuracy", "--pq-width", "ten"], "--pq-width must be an integer in [2, 32] or 'exact', not 'ten'"),
    (["accuracy", "--set", "pq_width=40"], "pq_width must be at most 32, not 40"),
    (["eval", "--pq-width", "8,40"], "--pq-width values must be in [2, 32] or 'exact', not 40"),
    (["eval", "--pq-width", "8,wide"], "--pq-width must be a comma-separated list of integers or 'exact', not '8,wide'"),
    (["generate", "damf-head", "--set", "pq_shift=20"],
     "pq_shift must be at most the inner-product out_width - 1 = 19, not 20"),
    (["synth", "--pnr-timeout", "inf"], "--pnr-timeout must be a positive number of seconds, not inf"),
    (["synth", "--place-iso", "--no-pnr"], "--place-iso places the iso-throughput designs: it cannot go with "),
    (["synth", "--place-iso", "--block", "score"], "--place-iso places the iso-throughput designs: it cannot go with "),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input(tmp_path, args, message):
    """One line on stderr naming expected and given, exit status 2, nothing written."""
    cfg = tmp_path / "broken.json"
    cfg.write_text('{"d_model": 16,')
    paths = {"cfg": cfg, "missing": tmp_path / "missing.json"}
    args = [a.format(**paths) for a in args]
    out = tmp_path / "out"
    if args[0] in ("generate", "golden") and "--out" not in args and "required" not in message:
        args += ["--out", out]
    result = damf(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("damf: error: " + message.format(**paths)), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json"]


def test_accuracy_summary_command():
    """damf accuracy: one table row per mode and reference; the integer head follows its float
    model closely, and base2 follows exact softmax more closely than maclaurin."""
    result = damf("accuracy", "--seeds", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.split("\n", 2)[2])
    assert set(report) == {"maclaurin", "maclaurin-abs", "base2"}
    for mode, refs in report.items():
        assert set(refs) == {"float_damf", "softmax", "own"}
        assert refs["float_damf"]["rel_error"] < 0.05, mode
    assert report["base2"]["softmax"]["rel_error"] < report["maclaurin"]["softmax"]["rel_error"]
    # base2's own softmax is softmax(c ln2 A): the standard one up to c's 12-bit rounding
    assert report["base2"]["softmax"] == pytest.approx(report["base2"]["own"], abs=1e-3)
    assert "accuracy: seed 2/2" in result.stderr
    table = damf("accuracy", "--seeds", "1", "--mode", "base2", "--causal")
    assert table.returncode == 0 and "| base2 | float DAMF |" in table.stdout and "causal" in table.stdout
    assert "maclaurin" not in table.stdout
    # p and q requantized from the preset's exact inner-product width (20 bits), or not at all
    assert f"pq_width {DEFAULT_PQ_WIDTH} (requantized from 20 bits, shift calibrated per head)" in table.stdout
    for arg, text in (("6", "pq_width 6 (requantized from 20 bits"), ("exact", "pq_width 20 (exact)")):
        result = damf("accuracy", "--seeds", "1", "--mode", "base2", "--pq-width", arg)
        assert result.returncode == 0 and text in result.stdout, result.stderr


def _modules(text):
    import re
    return re.findall(r"^module \\?([^\s(]+)", text, re.M)


def test_module_names_and_prefix(tmp_path):
    """Top module PREFIX + the block name without damf- (- as _), default prefix damf_; every
    module of the file starts with the prefix; BLOCK.json names the top."""
    from damf.blocks import module_name
    assert module_name("damf-head") == "damf_head" and module_name("inner-product", "x_") == "x_inner_product"
    for name, block in BLOCKS.items():
        assert block.module == module_name(name), name  # what damf lint, synth and the runner read
    for prefix, top in ((None, "damf_head"), ("acme_", "acme_head")):
        out = tmp_path / (prefix or "default")
        result = damf("generate", "damf-head", "--out", out, *(["--prefix", prefix] if prefix else []))
        assert result.returncode == 0, result.stderr
        mods = _modules((out / "damf-head.v").read_text())
        assert mods[0] == top and len(mods) > 5 and all(m.startswith(top + ".") for m in mods[1:]), mods
        assert json.loads((out / "damf-head.json").read_text())["module"] == top


def test_generate_axis_every_block(tmp_path):
    """--axis on every block: the wrapper is the top (PREFIX BASE_axis, the block below it), every
    stream of the block has its s_axis_/m_axis_ tdata/tvalid/tready/tlast, tdata is the payload
    without `last` rounded up to whole bytes, BLOCK.json says so, and Verilator -Wall is clean."""
    from damf import toolchain
    from damf.blocks import module_name
    from damf.lint import WAIVERS
    env = toolchain.environ()
    for name in BLOCKS:
        plain, axis = tmp_path / name / "plain", tmp_path / name / "axis"
        for out, extra in ((plain, []), (axis, ["--axis"])):
            result = damf("generate", name, "--prefix", "p_", "--out", out, *extra)
            assert result.returncode == 0, result.stderr
        doc = json.loads((axis / f"{name}.json").read_text())
        top = module_name(name, "p_", axis=True)
        assert doc["axis"] is True and doc["module"] == top and doc["block_module"] == f"{top}.{module_name(name, 'p_')}"
        text = (axis / f"{name}.v").read_text()
        mods = _modules(text)
        assert mods[0] == top and doc["block_module"] in mods and all(m.startswith("p_") for m in mods)
        want = {"aclk": 1, "aresetn": 1}
        plain_ports = {p["name"]: p for p in json.loads((plain / f"{name}.json").read_text())["ports"]}
        for port in plain_ports.values():
            if not port["name"].endswith("__payload"):
                continue
            stream = port["name"][:-len("__payload")]
            side = "s_axis" if port["direction"] == "input" else "m_axis"
            bits = port["width"] - any(f["name"] == "last" for f in port.get("fields", []))
            want.update({f"{side}_{stream}_tdata": -(-bits // 8) * 8, f"{side}_{stream}_tvalid": 1,
                         f"{side}_{stream}_tready": 1, f"{side}_{stream}_tlast": 1})
        assert doc["axis_ports"] == want, name
        for port, width in want.items():
            assert (f"  input {port};" in text or f"  output {port};" in text) if width == 1 else \
                f"[{width - 1}:0] {port};" in text, (name, port)
        assert "clk" not in {p.split("_")[0] for p in want} and "\n  input clk;" not in text.split("module \\")[0]
        lint = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, str(WAIVERS),
                               str(axis / f"{name}.v")], env=env, capture_output=True, text=True)
        assert lint.returncode == 0 and "%" not in lint.stderr, (name, lint.stderr)


def _commands():
    """``{command: its argparse parser}`` of the ``damf`` parser."""
    import argparse
    from damf import cli
    top = cli.parser()
    return next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices


def _options(parser):
    return {s: a for a in parser._actions for s in a.option_strings}


# what each command needs besides its folders to get as far as the folder checks
_REQUIRED = {"generate": ["inner-product"], "import": ["ckpt"], "sim": ["--vectors", "v.json"]}


def test_output_folders_are_checked_alike(tmp_path, capsys, monkeypatch):
    """Every command that takes an output folder (--out, --build) refuses an existing file there
    with the same one line and exit status 2 (damf/cli/args.py, written once), before any work."""
    from damf import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    seen = set()
    for command, parser in _commands().items():
        for option in ("--out", "--build"):
            if option not in _options(parser):
                continue
            seen.add((command, option))
            others = [a for o in ("--out", "--build") if o != option and o in _options(parser)
                      and _options(parser)[o].required for a in (o, "o")]
            assert cli.main([command, *_REQUIRED.get(command, []), *others, option, "afile"]) == 2, command
            out, err = capsys.readouterr()
            assert out == "" and err == f"damf: error: {option} must be a directory, not the file 'afile'\n", \
                (command, err)
    assert {c for c, _ in seen} == {"generate", "import", "minilm-head", "golden", "sim", "lint", "synth", "eval",
                                    "finetune"}
    assert {c for c, o in seen if o == "--build"} == {"sim", "synth"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_choice_lists_come_from_their_sources():
    """The command line's choice lists are the registry's: blocks, presets, modes, simulators,
    weight modes -- never a copy that could drift."""
    from damf import cli
    from damf.cli.args import block_list, field_choices, names
    from damf.config import MODES, DamfHeadConfig, InnerProductConfig
    from damf.toolchain import SIMULATORS
    commands = _commands()
    assert list(commands) == ["generate", "import", "minilm-head", "golden", "sim", "lint", "cost", "synth", "eval",
                              "accuracy", "finetune", "bench"]
    choices = {(c, o): tuple(a.choices) for c, p in commands.items() for o, a in _options(p).items() if a.choices}
    assert choices == {("import", "--mode"): MODES, ("minilm-head", "--mode"): MODES,
                       ("accuracy", "--mode"): MODES,
                       ("import", "--weights"): field_choices(InnerProductConfig, "weights"),
                       ("minilm-head", "--weights"): field_choices(InnerProductConfig, "weights"),
                       ("sim", "--sim"): SIMULATORS, ("bench", "--sim"): SIMULATORS}
    assert field_choices(DamfHeadConfig, "mode") == MODES
    for command in ("generate", "accuracy", "cost", "synth"):
        assert names(PRESETS) in _options(commands[command])["--preset"].help, command
    assert [line.split()[0] for line in block_list().splitlines()] == list(BLOCKS)
    assert cli.parser().epilog == "blocks:\n" + block_list()


def test_shared_checks():
    """The range checks every command uses: one line naming what was expected and what was given."""
    from damf.cli.args import int_range, one_of, positive
    from damf.errors import ConfigError
    assert int_range("--n", 3, 1, 64) == 3 and int_range("--n", 10 ** 30, 1) == 10 ** 30
    cases = [(lambda: int_range("--n", 0, 1, 64), "--n must be in [1, 64], not 0"),
             (lambda: int_range("--n", 0, 1), "--n must be at least 1, not 0"),
             (lambda: int_range("--length", 9, 1, 8, hi_name="seq_len"), "--length must be in [1, seq_len = 8], not 9"),
             (lambda: positive("--t", float("inf"), noun="a positive number of seconds"),
              "--t must be a positive number of seconds, not inf"),
             (lambda: positive("--g", float("nan"), at_most=1000, noun="a positive finite number"),
              "--g must be a positive finite number of at most 1000, not nan"),
             (lambda: positive("--lr", 0.0, at_most=1, note=" (Adam's step)"),
              "--lr must be a positive number of at most 1 (Adam's step), not 0"),
             (lambda: one_of("preset", "huge", PRESETS), "unknown preset 'huge'; expected one of: default, bert-base")]
    for check, message in cases:
        with pytest.raises(ConfigError) as e:
            check()
        assert str(e.value) == message
