"""``damf lint``: Verilator ``--lint-only -Wall`` on every generated block.

Waivers live in ``damf/lint.vlt`` (a Verilator configuration file), one rule per kind of
warning that Amaranth's Verilog output produces by construction, each with its reason.
Anything else is reported and fails the run.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

from . import toolchain
from .blocks import BLOCKS
from .sim.runner import write_block

__all__ = ["lint", "WAIVERS"]

WAIVERS = Path(__file__).resolve().parent / "lint.vlt"


def lint(*, presets, out):
    env = toolchain.environ()
    failures = 0
    for preset in presets:
        for block, overrides in ((b, o) for b in BLOCKS.values() for o in b.variants):
            cfg = dataclasses.replace(block.config_cls.from_preset(preset), **overrides)
            variant = ",".join(f"{k}={v}" for k, v in overrides.items())
            v_path, _ = write_block(cfg, out / preset / (variant or "preset"))
            cmd = ["verilator", "--lint-only", "-Wall", "--top-module", block.module,
                   str(WAIVERS), str(v_path)]
            result = subprocess.run(cmd, env=env, capture_output=True, text=True)
            warnings = [line for line in result.stderr.splitlines() if line.startswith("%")]
            status = "clean" if result.returncode == 0 and not warnings else f"{len(warnings)} warnings"
            print(f"{preset:>10} {block.name:<16} {variant:<16} {status}", flush=True)
            if status != "clean":
                failures += 1
                sys.stdout.write(result.stderr)
    print(f"lint: {'all clean' if not failures else f'{failures} file(s) with warnings'} "
          f"(waivers: damf/lint.vlt)")
    return 1 if failures else 0
