#!/usr/bin/env python3
"""FuseSoC generator ``damf_generate`` (declared in ``damf.core``): ``damf generate`` as a core.

FuseSoC runs this file with the generator input (GAPI 1.0, a YAML file) as its only argument,
in a fresh working folder of its build root.  The input's ``parameters``::

    block: damf-head            # required: any block of `damf --help`
    preset: default             # optional, default "default"
    set: {seq_len: 16, mode: base2}   # optional: --set KEY=VALUE overrides, applied last
    prefix: a_                  # optional: --prefix NAME
    axis: false                 # optional: --axis (AXI4-Stream ports)

It runs ``damf generate BLOCK ... --out .`` in that folder and writes a ``.core`` file named by
the input's ``vlnv`` whose fileset is the generated ``BLOCK.v`` (``verilogSource``),
``BLOCK.json`` (``user``) and ``BLOCK.vlt`` (``vlt``: the Verilator waivers of
``damf/lint.vlt``, each rule narrowed from every file to ``*/BLOCK.v``, so they do not hide
warnings in the rest of the design), with the generated top module as ``toplevel``.  Nothing
is written next to the calling core (its ``files_root``).

The ``damf`` command is the one installed next to the interpreter running this file, else the
first on PATH.  Only the standard library and PyYAML (a FuseSoC dependency) are imported, so the
file runs from a checkout or from an installed wheel alike.  Errors are one line
``damf fusesoc generator: error: ...`` on stderr and exit status 2, before ``damf`` runs.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

KEYS = {"block": str, "preset": str, "set": dict, "prefix": str, "axis": bool}
# the waivers of `damf lint`, next to this file in the checkout and in the installed package
WAIVERS = Path(__file__).resolve().parent / "lint.vlt"
ALL_FILES = '-file "*"'


class GeneratorError(Exception):
    pass


def read_input(path):
    try:
        import yaml
    except ImportError:
        raise GeneratorError("PyYAML is needed to read FuseSoC's generator input: run the generator "
                             "with the Python that has fusesoc installed") from None
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise GeneratorError(f"cannot read the generator input {path}: {type(e).__name__}: "
                             f"{(str(e).splitlines() or [''])[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("vlnv"), str):
        raise GeneratorError(f"{path} is not a FuseSoC generator input (a mapping with 'vlnv' and 'parameters')")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise GeneratorError(f"parameters must be a mapping, not {type(params).__name__}")
    return doc["vlnv"], params


def damf_command(params):
    """The ``damf generate`` command line for ``params`` (validated here, before anything runs)."""
    unknown = sorted(set(params) - set(KEYS))
    if unknown:
        raise GeneratorError(f"unknown parameter '{unknown[0]}' (known: {', '.join(KEYS)})")
    if "block" not in params:
        raise GeneratorError("parameter 'block' is required (a block name such as damf-head)")
    for key, kind in KEYS.items():
        if key in params and not isinstance(params[key], kind):
            raise GeneratorError(f"parameter '{key}' must be a {kind.__name__}, not {params[key]!r}")
    cmd = ["generate", params["block"], "--preset", params.get("preset", "default")]
    for key, value in (params.get("set") or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif not isinstance(value, (int, float, str)):
            raise GeneratorError(f"set.{key} must be a number or a string, not {value!r}")
        cmd += ["--set", f"{key}={value}"]
    if "prefix" in params:
        cmd += ["--prefix", params["prefix"]]
    if params.get("axis"):
        cmd += ["--axis"]
    return cmd + ["--out", "."]


def find_damf():
    here = Path(sys.executable).parent
    path = str(here) + os.pathsep + os.environ.get("PATH", "")
    exe = shutil.which("damf", path=path)
    if exe is None:
        raise GeneratorError("the 'damf' command is not installed: pip install damf-attention "
                             "(into the environment that runs fusesoc)")
    return exe


def scoped_waivers(block):
    """``damf/lint.vlt`` with every rule applied to ``*/BLOCK.v`` only."""
    try:
        text = WAIVERS.read_text(encoding="utf-8")
    except OSError as e:
        raise GeneratorError(f"cannot read the lint waivers {WAIVERS}: {e.strerror}") from None
    rules = [line for line in text.splitlines() if line.startswith("lint_off")]
    if not rules or not all(line.endswith(ALL_FILES) for line in rules):
        raise GeneratorError(f"{WAIVERS}: every lint_off rule must end with {ALL_FILES}")
    return text.replace(ALL_FILES, f'-file "*/{block}.v"')


def core_text(vlnv, block, module):
    # CAPI2 is YAML; JSON strings are valid YAML scalars, so names are quoted with json.dumps
    q = json.dumps
    return "\n".join([
        "CAPI=2:",
        f"name: {q(vlnv)}",
        f"description: {q(f'damf generate {block} (generated by damf_generate)')}",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {q(block + '.vlt')}: {{file_type: vlt}}",
        f"      - {q(block + '.v')}: {{file_type: verilogSource}}",
        f"      - {q(block + '.json')}: {{file_type: user}}",
        "targets:",
        "  default:",
        "    filesets: [rtl]",
        f"    toplevel: {q(module)}",
        "",
    ])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) != 1:
            raise GeneratorError("usage: fusesoc_gen.py GENERATOR_INPUT.yml (FuseSoC passes it)")
        vlnv, params = read_input(argv[0])
        cmd = [find_damf()] + damf_command(params)
        waivers = scoped_waivers(params["block"])
    except GeneratorError as e:
        print(f"damf fusesoc generator: error: {e}", file=sys.stderr)
        return 2
    print("damf fusesoc generator: " + " ".join(["damf"] + cmd[1:]), flush=True)
    result = subprocess.run(cmd)
    if result.returncode:
        return result.returncode
    block = params["block"]
    module = json.loads(Path(f"{block}.json").read_text(encoding="utf-8"))["module"]
    name = vlnv.split(":")[2] if vlnv.count(":") >= 2 else block
    Path(f"{block}.vlt").write_text(waivers, encoding="utf-8")
    core = Path(f"{name}.core")
    core.write_text(core_text(vlnv, block, module), encoding="utf-8")
    print(f"damf fusesoc generator: wrote {core} (toplevel {module})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
