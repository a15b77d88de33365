"""``damf golden``: golden vector files, of every block and preset or of one configuration."""

from pathlib import Path

from ..blocks import BLOCKS, generate_vectors, get_block
from ..config import PRESETS
from ..errors import ConfigError
from ..files import write_atomically
from ..golden import vectors
from ..limits import Heartbeat, check_golden_count
from .args import add_folder, config_from_args, int_range, one_of

__all__ = ["add_golden", "run_golden"]


def add_golden(sub):
    p = sub.add_parser("golden", help="write golden vector files for the presets, or for one configuration",
                       description="Without BLOCK: write DIR/PRESET/BLOCK.json golden vector files of every block "
                                   "and preset (make golden).  With BLOCK: write DIR/BLOCK.json for one "
                                   "configuration, built as damf generate builds it (--preset, then --config, "
                                   "then --set).  Format: damf-vectors/1 (golden/vectors.py, "
                                   "docs/schemas/vectors.schema.json).")
    p.add_argument("block", metavar="BLOCK", nargs="?", help="one block (default: every block of every preset)")
    p.add_argument("--preset", action="append", metavar="NAME",
                   help="preset (without BLOCK: repeatable, default all; with BLOCK: one, default: default)")
    p.add_argument("--config", metavar="FILE",
                   help="with BLOCK: JSON config file (a flat object of keys, or a BLOCK.json) over the preset")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="with BLOCK: override one configuration key (repeatable), applied last")
    add_folder(p)
    p.add_argument("--seed", type=int, default=1, help="random seed, 0 .. 2^64 - 1 (default: 1)")
    p.add_argument("--count", type=int, default=64,
                   help="random input vectors per file (default: 64); a count whose files would need more "
                        "than 4 GiB of memory is refused with the estimate")
    p.set_defaults(func=run_golden)


def run_golden(args):
    int_range("--seed", args.seed, 0, 2 ** 64 - 1)
    int_range("--count", args.count, 1)
    if args.block is not None:
        # one configuration of one block, as `damf generate` builds it: DIR/BLOCK.json
        if args.preset and len(args.preset) > 1:
            raise ConfigError(f"damf golden {args.block} takes one --preset, not {len(args.preset)}")
        block = get_block(args.block)
        args.preset = args.preset[0] if args.preset else "default"
        cfgs = {Path(args.out) / f"{block.name}.json": config_from_args(block.config_cls, args)}
    else:
        if args.config is not None or args.set:
            raise ConfigError("--config and --set need a BLOCK: damf golden BLOCK [--set KEY=VALUE ...] --out DIR")
        presets = args.preset or list(PRESETS)
        for name in presets:
            one_of("preset", name, PRESETS)
        cfgs = {Path(args.out) / name / f"{block.name}.json": block.config_cls.from_preset(name)
                for name in presets for block in BLOCKS.values()}
    check_golden_count(cfgs.values(), args.count)
    files = {}
    for path, cfg in cfgs.items():
        with Heartbeat(f"golden: {path.parent.name}/{cfg.block}" if args.block is None else f"golden: {cfg.block}"):
            files[path] = vectors.dumps(generate_vectors(cfg, seed=args.seed, count=args.count))
    write_atomically(files)
    for path in files:
        print(f"wrote {path}")
    return 0
