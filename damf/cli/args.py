"""What every ``damf`` command shares, written once: the parser that turns a usage error into
one line, the ``damf: error: ...`` / exit status 2 convention, the range and name checks, the
output-folder and input-file checks run before any work, and the options several commands take.

Every check raises :class:`~damf.errors.ConfigError` with one line naming what was expected and
what was given; :func:`bad_input` prints it.  Choice lists are never written out here: they
come from where they are defined (:data:`damf.blocks.BLOCKS`, :data:`damf.config.PRESETS`, a
configuration field's ``choices``, :data:`damf.toolchain.SIMULATORS`,
:data:`damf.golden.damf_head.MODES`).
"""

import argparse
import math
import sys

from ..blocks import BLOCKS, get_block
from ..config import PRESETS
from ..errors import ConfigError
from ..files import check_out_dir

__all__ = ["EXIT_BAD_INPUT", "INPUT_FILES", "OUTPUT_FOLDERS", "Parser", "add_config_args", "add_folder",
           "bad_input", "block_list", "check_before_work", "config_from_args", "field_choices", "int_range",
           "names", "one_of", "positive"]

#: the exit status of bad input (argparse's own for usage errors)
EXIT_BAD_INPUT = 2
#: options naming an input file: a name, not '' (the file itself is read by the command)
INPUT_FILES = ("sentences", "config", "vectors")
#: options naming an output folder: checked (damf.files.check_out_dir) before any work
OUTPUT_FOLDERS = ("out", "build")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a :class:`ConfigError` (one line, no usage dump)."""

    def error(self, message):
        # One line, no usage dump: what was expected and what was given.
        raise ConfigError(message)


def bad_input(error):
    """Print ``damf: error: ...`` (one line) on stderr; the exit status of bad input."""
    print(f"damf: error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


# ---- checks (each returns the value, or raises ConfigError) --------------------------------

def int_range(option, value, lo, hi=None, *, hi_name=None):
    """``lo <= value <= hi`` (``hi`` None: no upper bound), else one line naming both;
    ``hi_name`` names where ``hi`` comes from (``in [1, seq_len = 8]``)."""
    if value < lo or (hi is not None and value > hi):
        top = hi if hi_name is None else f"{hi_name} = {hi}"
        expected = f"at least {lo}" if hi is None else f"in [{lo}, {top}]"
        raise ConfigError(f"{option} must be {expected}, not {value}")
    return value


def positive(option, value, *, at_most=None, noun="a positive number", note=""):
    """``0 < value <= at_most``, or without ``at_most`` a positive finite number (NaN and
    infinity refused either way), else ``OPTION must be NOUN [of at most A]NOTE, not VALUE``."""
    if not (0 < value <= at_most if at_most is not None else 0 < value < math.inf):
        limit = "" if at_most is None else f" of at most {at_most}"
        raise ConfigError(f"{option} must be {noun}{limit}{note}, not {value:g}")
    return value


def one_of(kind, value, choices):
    """``value`` if it is one of ``choices``, else ``unknown KIND 'VALUE'; expected one of: ...``."""
    if value not in choices:
        raise ConfigError(f"unknown {kind} '{value}'; expected one of: {names(choices)}")
    return value


def check_before_work(args):
    """The checks every command gets after parsing and before its own: block names, input-file
    names (not ''), output folders (:data:`OUTPUT_FOLDERS`, damf.files.check_out_dir)."""
    block = getattr(args, "block", None)
    for name in block if isinstance(block, list) else [block] if block is not None else []:
        get_block(name)       # an unknown block name: one line, before any work
    for option in INPUT_FILES:      # input files: a name, not ''
        value = getattr(args, option, None)
        if value is not None and not str(value).strip():
            raise ConfigError(f"--{option} must name a file, not '{value}'")
    for option in OUTPUT_FOLDERS:     # output folders: checked before any work
        if getattr(args, option, None) is not None:
            check_out_dir(getattr(args, option), f"--{option}")


# ---- choice lists, from where they are defined -----------------------------------------------

def names(choices):
    """``a, b, c``: a choice list as the help texts and messages show it."""
    return ", ".join(choices)


def field_choices(config_cls, name):
    """The ``choices`` of configuration field ``name`` (its dataclass metadata)."""
    return config_cls.__dataclass_fields__[name].metadata["choices"]


def block_list():
    """Every block and its summary, one a line (the epilog of ``damf --help``)."""
    width = max(map(len, BLOCKS))
    return "\n".join(f"  {name:<{width}}  {b.summary}" for name, b in BLOCKS.items())


# ---- options several commands take -----------------------------------------------------------

def add_folder(p, option="--out", *, default=None, what="output directory"):
    """An output folder option (:data:`OUTPUT_FOLDERS`): required without a default."""
    p.add_argument(option, required=default is None, default=default, metavar="DIR",
                   help=what if default is None else f"{what} (default: {default})")


def add_config_args(p):
    """``--preset``, ``--config``, ``--set``: one configuration, built by :func:`config_from_args`."""
    p.add_argument("--preset", default="default", metavar="NAME",
                   help=f"starting configuration: {names(PRESETS)} (default: default)")
    p.add_argument("--config", metavar="FILE",
                   help="JSON config file (a flat object of keys, or a BLOCK.json) applied over the preset")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one configuration key (repeatable), applied last")


def config_from_args(config_cls, args):
    """The configuration of ``--preset``, then ``--config``, then each ``--set``."""
    return config_cls.build(preset=args.preset, config_file=args.config, assignments=args.set or ())
