"""``damf generate``: one block's Verilog and its description; ``damf generate BLOCK --help``
lists the block's configuration keys."""

import argparse
import dataclasses
import json
from pathlib import Path

from ..blocks import get_block
from ..describe import describe
from ..files import write_atomically
from ..limits import GENERATE_BUDGET_S, Heartbeat, check_generate
from ..verilog import DEFAULT_PREFIX, check_prefix, generate, module_name
from .args import add_config_args, add_folder, block_list, config_from_args

__all__ = ["add_generate", "keys_help", "run_generate"]


def add_generate(sub):
    p = sub.add_parser("generate", help="write BLOCK.v and BLOCK.json",
                       description="Write BLOCK.v (Verilog) and BLOCK.json (its configuration and derived widths).",
                       epilog="blocks:\n" + block_list(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("block", metavar="BLOCK", help="block name (see below)")
    add_config_args(p)
    add_folder(p)
    p.add_argument("--prefix", default=DEFAULT_PREFIX, metavar="NAME",
                   help=f"start of every Verilog module name (default {DEFAULT_PREFIX}: top module "
                        f"{DEFAULT_PREFIX}BASE, BASE the block name without damf-, - as _; docs/integration.md)")
    p.add_argument("--axis", action="store_true",
                   help="AXI4-Stream ports (s_axis_NAME_*, m_axis_NAME_*, aclk, aresetn): a wrapper "
                        "PREFIX BASE_axis around the block (docs/integration.md)")
    p.set_defaults(func=run_generate)
    p.epilog = ("damf generate BLOCK --help lists BLOCK's keys with their ranges. A configuration estimated to "
                f"take more than {GENERATE_BUDGET_S // 60} minutes to generate is refused with the estimate; "
                "a long one prints progress every 10 s (docs/limits.md).\n\nblocks:\n" + block_list())


def keys_help(block):
    """``damf generate BLOCK --help``: the block's keys, their defaults, ranges and meaning."""
    cfg = block.config_cls.from_preset("default")
    rows = []
    for f in dataclasses.fields(cfg):
        meta = f.metadata
        lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
        limits = (", ".join(choices) if choices else
                  f"{lo}..{hi}" if lo is not None and hi is not None else
                  f">= {lo}" if lo is not None else f"<= {hi}" if hi is not None else "")
        default = getattr(cfg, f.name)
        default = "none" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        rows.append((f.name, default if len(default) < 24 else default[:20] + "...", limits,
                     " ".join(str(meta.get("doc", "")).split())))
    w = [max(len(r[i]) for r in rows + [("key", "default", "range", "")]) for i in range(3)]
    lines = [f"usage: damf generate {block.name} [--preset NAME] [--config FILE] [--set KEY=VALUE ...] --out DIR",
             "", block.summary, "",
             f"keys (--set KEY=VALUE; defaults of the default preset; combinations are checked too, and a",
             f"configuration estimated to take more than {GENERATE_BUDGET_S // 60} minutes to generate is refused "
             f"with the estimate: docs/limits.md):", "",
             f"  {'key':<{w[0]}}  {'default':<{w[1]}}  {'range':<{w[2]}}  meaning"]
    lines += [f"  {n:<{w[0]}}  {d:<{w[1]}}  {r:<{w[2]}}  {doc}" for n, d, r, doc in rows]
    return "\n".join(lines)


def run_generate(args):
    block = get_block(args.block)
    check_prefix(args.prefix)
    cfg = config_from_args(block.config_cls, args)
    estimate = check_generate(cfg)
    with Heartbeat(f"generate: elaborating {block.name}", estimate=estimate):
        # everything is validated and built before anything is written
        text, ports = generate(cfg, prefix=args.prefix, axis=args.axis)
    out = Path(args.out)
    doc = json.loads(cfg.to_json())
    # the top module (--prefix, --axis), every port with its payload fields, the streams and the
    # cycle figures (damf/describe.py; docs/integration-json.md); with --axis, the AXI4-Stream ports
    doc.update(describe(cfg, prefix=args.prefix, axis=args.axis))
    if args.axis:
        doc.update(axis=True, block_module=f"{doc['module']}.{module_name(block.name, args.prefix)}",
                   axis_ports=ports)
    write_atomically({out / f"{block.name}.v": text,
                      out / f"{block.name}.json": json.dumps(doc, indent=1, sort_keys=True) + "\n"})
    print(f"wrote {out / (block.name + '.v')} and {out / (block.name + '.json')}")
    return 0
