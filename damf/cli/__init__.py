"""The ``damf`` command line: generate Verilog, write golden vectors, simulate, lint.

Bad input (unknown block, preset or key, invalid value, malformed file) prints one line
``damf: error: ...`` on stderr and exits with status 2, leaving no output files behind.

One module per command or group of commands that share options, each with ``add_COMMAND``
(its parser) and ``run_COMMAND`` (the command): :mod:`.generate`; :mod:`.heads` (import,
minilm-head); :mod:`.golden`; :mod:`.sim`; :mod:`.tools` (lint, synth, bench); :mod:`.cost`;
:mod:`.accuracy`; :mod:`.models` (eval, finetune).  What they share -- the error convention,
range and name checks, output-folder checks, common options -- is in :mod:`.args`.
"""

import argparse
import sys

from ..blocks import BLOCKS, get_block
from ..errors import ConfigError
from . import accuracy, cost, generate, golden, heads, models, sim, tools
from .args import EXIT_BAD_INPUT, Parser, bad_input, block_list, check_before_work

__all__ = ["COMMANDS", "main", "parser"]

#: every command's parser, in the order ``damf --help`` lists them
COMMANDS = (generate.add_generate, heads.add_import, heads.add_minilm_head, golden.add_golden, sim.add_sim,
            tools.add_lint, cost.add_cost, tools.add_synth, models.add_eval, accuracy.add_accuracy,
            models.add_finetune, tools.add_bench)


def parser():
    """The ``damf`` parser: one subparser a command, each running its ``func``."""
    top = Parser(
        prog="damf",
        description="DAMF attention hardware: Verilog generators, golden models and testbenches.",
        epilog="blocks:\n" + block_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add in COMMANDS:
        add(sub)
    return top


def main(argv=None):
    top = parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["generate"] and ({"-h", "--help"} & set(argv)) and set(argv) & set(BLOCKS):
        print(generate.keys_help(get_block(next(a for a in argv if a in BLOCKS))))
        return 0
    try:
        args = top.parse_args(argv)
        if args.command is None:
            top.print_help()
            return EXIT_BAD_INPUT
        check_before_work(args)
        return args.func(args)
    except ConfigError as e:
        return bad_input(e)
