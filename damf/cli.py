"""The ``damf`` command line: generate Verilog, write golden vectors, simulate, lint.

Bad input (unknown block, preset or key, invalid value, malformed file) prints one line
``damf: error: ...`` on stderr and exits with status 2, leaving no output files behind.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from . import cost_model
from .blocks import BLOCKS, DEFAULT_PREFIX, check_prefix, generate, get_block, module_name
from .config import PRESETS, ConfigError, InnerProductConfig
from .describe import describe
from .files import check_out_dir, write_atomically
from .toolchain import SIMULATORS
from .limits import GENERATE_BUDGET_S, MAX_FINETUNE_STEPS, MAX_LOGIT_GAIN, Heartbeat, check_accuracy, check_generate, check_golden_count, human_seconds
from .golden import vectors
from .config import DEFAULT_PQ_WIDTH, MODES, DamfHeadConfig
from .golden.damf_head import accuracy_report, format_accuracy
from .importer import MAX_COUNT, ImportOptions, import_head, minilm_options, plan
from .models import eval as ev, finetune as ft
from .models.eval import EvalOptions
from .models.minilm import model_dir

__all__ = ["main"]

#: ``--weights`` of import and minilm-head: the inner-product unit's weight modes
WEIGHT_MODES = InnerProductConfig.__dataclass_fields__["weights"].metadata["choices"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, no usage dump: what was expected and what was given.
        raise ConfigError(message)


def _block_list():
    width = max(map(len, BLOCKS))
    return "\n".join(f"  {name:<{width}}  {b.summary}" for name, b in BLOCKS.items())


def _keys_help(block):
    """``damf generate BLOCK --help``: the block's keys, their defaults, ranges and meaning."""
    import dataclasses
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


def _check_range(option, value, lo, hi):
    """``lo <= value <= hi`` (``hi`` None: no upper bound), else one line naming both."""
    if value < lo or (hi is not None and value > hi):
        expected = f"at least {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{option} must be {expected}, not {value}")
    return value


def _config_from_args(block, args):
    return block.config_cls.build(preset=args.preset, config_file=args.config, assignments=args.set or ())


def _add_config_args(p):
    p.add_argument("--preset", default="default", metavar="NAME",
                   help=f"starting configuration: {', '.join(PRESETS)} (default: default)")
    p.add_argument("--config", metavar="FILE",
                   help="JSON config file (a flat object of keys, or a BLOCK.json) applied over the preset")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one configuration key (repeatable), applied last")


# ---- commands -------------------------------------------------------------------------------

def cmd_generate(args):
    block = get_block(args.block)
    check_prefix(args.prefix)
    cfg = _config_from_args(block, args)
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


def _import_options(args):
    """The head options ``damf import`` and ``damf minilm-head`` share, as given (None: default)."""
    return dict(layer=args.layer, head=args.head, rank=args.rank, mode=args.mode, weights=args.weights,
                x_width=args.x_width, w_width=args.w_width, v_width=args.v_width, weight_frac=args.weight_frac,
                out_frac=args.out_frac, pq_width=args.pq_width, seq_len=args.seq_len, lanes=args.lanes,
                parallel=args.parallel, count=args.count, prefix=args.prefix,
                sentences=Path(args.sentences) if args.sentences else None)


def _run_import(checkpoint, opts, out):
    checked = plan(checkpoint, opts)          # every option and the checkpoint, before any weight loads
    files, summary = import_head(checked, out=out)
    write_atomically(files)
    for path in files:
        print(f"wrote {path}")
    hw, fr = summary["hardware"], summary["float_rank"]
    print(f"fidelity against exact softmax on {summary['rows']} rows: damf-head rel. error {hw['rel_error']:.4f}, "
          f"row cosine {hw['cosine_mean']:.4f}, top-1 {hw['top1_agreement']:.3f} (float rank "
          f"{summary['rank']} alone: rel. error {fr['rel_error']:.4f})")
    return 0


def cmd_import(args):
    if not args.checkpoint.strip():
        raise ConfigError(f"CHECKPOINT_DIR must name a directory, not '{args.checkpoint}'")
    opts = ImportOptions(**_import_options(args), seed=args.seed, calibration=args.calibration, name=args.name)
    return _run_import(Path(args.checkpoint), opts, Path(args.out))


def cmd_minilm_head(args):
    opts = minilm_options(**_import_options(args))
    try:
        path = model_dir()
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    return _run_import(path, opts, Path(args.out))


def cmd_golden(args):
    _check_range("--seed", args.seed, 0, 2 ** 64 - 1)
    _check_range("--count", args.count, 1, None)
    if args.block is not None:
        # one configuration of one block, as `damf generate` builds it: DIR/BLOCK.json
        if args.preset and len(args.preset) > 1:
            raise ConfigError(f"damf golden {args.block} takes one --preset, not {len(args.preset)}")
        block = get_block(args.block)
        args.preset = args.preset[0] if args.preset else "default"
        cfgs = {Path(args.out) / f"{block.name}.json": _config_from_args(block, args)}
    else:
        if args.config is not None or args.set:
            raise ConfigError("--config and --set need a BLOCK: damf golden BLOCK [--set KEY=VALUE ...] --out DIR")
        presets = args.preset or list(PRESETS)
        for name in presets:
            if name not in PRESETS:
                raise ConfigError(f"unknown preset '{name}'; expected one of: {', '.join(PRESETS)}")
        cfgs = {Path(args.out) / name / f"{block.name}.json": block.config_cls.from_preset(name)
                for name in presets for block in BLOCKS.values()}
    check_golden_count(cfgs.values(), args.count)
    files = {}
    for path, cfg in cfgs.items():
        with Heartbeat(f"golden: {path.parent.name}/{cfg.block}" if args.block is None else f"golden: {cfg.block}"):
            files[path] = vectors.dumps(vectors.generate(cfg, seed=args.seed, count=args.count))
    write_atomically(files)
    for path in files:
        print(f"wrote {path}")
    return 0


class _SimLog(logging.Filter):
    """Keeps the simulator's log lines; shows them only with --verbose or on failure."""

    def __init__(self, echo):
        super().__init__()
        self.echo, self.lines = echo, []

    def filter(self, record):
        self.lines.append(record.getMessage())
        return self.echo


def cmd_sim(args):
    from .sim.runner import SimFailed, run_testbench    # lazy, as below: cocotb-test only when simulating
    cfg, inputs, expected = vectors.load(args.vectors, block=args.block)
    build = Path(args.build) / cfg.block
    build.mkdir(parents=True, exist_ok=True)
    results = (build / "results.json").resolve()
    if results.exists():
        results.unlink()
    print(f"simulating {cfg.block} on {args.sim} with {args.vectors} ...", flush=True)
    start = time.monotonic()
    log = _SimLog(echo=args.verbose)
    logging.getLogger("cocotb").addFilter(log)
    try:
        with Heartbeat(f"sim: {cfg.block} on {args.sim}"):
            run_testbench(cfg, simulator=args.sim, module=get_block(cfg.block).testbench,
                          build_dir=build / args.sim, testcase="vectors_file",
                          env={"DAMF_VECTORS": str(Path(args.vectors).resolve()), "DAMF_RESULTS": str(results)})
    except SimFailed as e:
        if not args.verbose:
            print("\n".join(log.lines[-60:]), file=sys.stderr)
        print(f"damf: simulation failed: {e} (build folder {build / args.sim})", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("cocotb").removeFilter(log)
    got = json.loads(results.read_text())
    matches, total, first = vectors.compare(expected, got)
    print(f"{cfg.block} on {args.sim}: {matches}/{total} results match {args.vectors} "
          f"({time.monotonic() - start:.1f} s)")
    for index, name, exp, g in first:
        print(f"  mismatch at result {index}: {name} = {g}, expected {exp}")
    return 0 if matches == total else 1


def cmd_lint(args):
    from .lint import lint      # lazy: lint, synth, bench import cocotb-test (sim.runner); keeps start-up fast
    return lint(presets=args.preset or list(PRESETS), out=Path(args.out))


def cmd_cost(args):
    shape = cost_model.AttentionShape.from_preset(
        args.preset, d_model=args.d_model, n_heads=args.n_heads, seq_len=args.seq_len, rank=args.rank)
    if args.bits < 1:
        raise ConfigError(f"--bits must be at least 1, not {args.bits}")
    if args.paper:
        print(cost_model.format_candidates(), end="")
        return 0
    print(cost_model.to_json(shape, bits=args.bits) if args.json else cost_model.format_table(shape, bits=args.bits),
          end="")
    return 0


def cmd_synth(args):
    from .synth import SynthError   # lazy (sim.runner, as lint)
    from .synth_run import run      # lazy (sim.runner, as lint)
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset '{args.preset}'; expected one of: {', '.join(PRESETS)}")
    _check_range("--jobs", args.jobs, 1, 64)
    if args.pnr_timeout is not None and not 0 < args.pnr_timeout < float("inf"):
        raise ConfigError(f"--pnr-timeout must be a positive number of seconds, not {args.pnr_timeout:g}")
    if args.place_iso and (args.no_pnr or args.no_iso or args.block):
        raise ConfigError("--place-iso places the iso-throughput designs: it cannot go with --no-pnr, --no-iso "
                          "or --block")
    try:
        return run(preset=args.preset, blocks=args.block, out=args.out, build=args.build, pnr=not args.no_pnr,
                   compare=not args.no_compare, sweep=False if args.no_sweep else None, jobs=args.jobs,
                   pnr_timeout=args.pnr_timeout, iso_points=not args.no_iso, place_iso=args.place_iso)
    except SynthError as e:
        print(f"damf: synthesis failed: {e}", file=sys.stderr)
        return 1


def cmd_eval(args):
    opts = ev.EvalOptions(
        ranks=ev.parse_ranks(args.ranks),
        sentences=Path(args.sentences) if args.sentences else ev.DEFAULT_SENTENCES,
        limit=args.limit,
        layers=tuple(int(x) for x in ev.parse_widths("layers", args.layers, 0, 1 << 10)) if args.layers is not None else None,
        x_width=ev.parse_widths("x-width", args.x_width, 2, 24),
        w_width=ev.parse_widths("w-width", args.w_width, 2, 24),
        v_width=ev.parse_widths("v-width", args.v_width, 2, 24),
        weight_frac=ev.parse_widths("weight-frac", args.weight_frac, 0, 30),
        pq_width=ev.parse_pq_widths(args.pq_width),
        out_frac=args.out_frac,
    )
    if not 0 <= opts.out_frac <= 16:
        raise ConfigError(f"--out-frac must be in [0, 16], not {opts.out_frac}")
    out = Path(args.out)
    ev.read_sentences(opts.sentences, opts.limit)  # bad input fails before the model loads
    with Heartbeat("eval: running", every=30):
        result = ev.run(opts)
    command = " ".join(["damf eval", f"--ranks {args.ranks}"]
                       + ([f"--sentences {args.sentences}"] if args.sentences else [])
                       + ([f"--limit {args.limit}"] if args.limit is not None else [])
                       + ([f"--layers {args.layers}"] if args.layers else [])
                       + [f"--x-width {args.x_width}", f"--w-width {args.w_width}", f"--v-width {args.v_width}",
                          f"--weight-frac {args.weight_frac}", f"--pq-width {args.pq_width}",
                          f"--out-frac {args.out_frac}", f"--out {args.out}"])
    for path in ev.write_report(result, out, command=command):
        print(f"wrote {path}")
    return 0


def _pq_width_arg(text, exact_width):
    """``--pq-width``: an integer in [2, 32] or ``exact`` (the inner product's ``exact_width``)."""
    text = str(text).strip()
    if text == "exact":
        return exact_width
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 2 <= value <= 32:
        raise ConfigError(f"--pq-width must be an integer in [2, 32] or 'exact', not '{text}'")
    return value


def cmd_accuracy(args):
    import dataclasses
    cfg = DamfHeadConfig.build(preset=args.preset, config_file=args.config, assignments=args.set or ())
    exact_width = InnerProductConfig.from_preset(args.preset).out_width
    if args.pq_width is not None:
        cfg = dataclasses.replace(cfg, pq_width=_pq_width_arg(args.pq_width, exact_width))
    modes = tuple(args.mode or MODES)
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, not {args.seeds}")
    length = cfg.seq_len if args.length is None else args.length
    if not 1 <= length <= cfg.seq_len:
        raise ConfigError(f"--length must be in [1, seq_len = {cfg.seq_len}], not {length}")
    if not 0 < args.logit_gain <= MAX_LOGIT_GAIN:
        raise ConfigError(f"--logit-gain must be a positive finite number of at most {MAX_LOGIT_GAIN}, "
                          f"not {args.logit_gain:g}")
    d_model = 4 * cfg.d_head if args.d_model is None else args.d_model
    if d_model < cfg.d_head or d_model % cfg.d_head:
        raise ConfigError(f"--d-model must be a positive multiple of d_head = {cfg.d_head}, not {d_model}")
    per_seed = check_accuracy(length=length, d_model=d_model, seeds=args.seeds, modes=len(modes))
    start = time.monotonic()

    def progress(msg):
        done = int(msg.split()[1].split("/")[0]) if msg.startswith("seed ") else 0
        left = (time.monotonic() - start) / done * (args.seeds - done) if done else per_seed * args.seeds
        print(f"accuracy: {msg}, about {human_seconds(left)} left", file=sys.stderr, flush=True)

    with Heartbeat("accuracy: running", estimate=per_seed * args.seeds):
        report = accuracy_report(cfg, length=length, seeds=args.seeds, logit_gain=args.logit_gain,
                                 causal=args.causal, modes=modes, d_model=d_model, exact_width=exact_width,
                                 progress=progress)
    pq = (f"pq_width {cfg.pq_width} (requantized from {exact_width} bits, shift calibrated per head)"
          if cfg.pq_width < exact_width else f"pq_width {cfg.pq_width} (exact)")
    print(f"# damf-head accuracy: preset {args.preset}, L = {length}, d_head = {cfg.d_head}, "
          f"d_model = {d_model}, rank {cfg.rank}, {pq}, v_width {cfg.v_width}, "
          f"weight_frac {cfg.weight_frac}, out_frac {cfg.out_frac}, logit gain {args.logit_gain:g}"
          f"{', causal' if args.causal else ''}; mean of {args.seeds} random attention layers\n")
    print(json.dumps(report, indent=1, sort_keys=True) if args.json else format_accuracy(report), end="")
    return 0


def cmd_finetune(args):
    _check_range("--steps", args.steps, 1, MAX_FINETUNE_STEPS)
    if not 0 < args.lr <= 1:
        raise ConfigError(f"--lr must be a positive number of at most 1 (Adam's step), not {args.lr:g}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be at least 0, not {args.seed}")
    opts = ft.FinetuneOptions(
        lambdas=ft.parse_lambdas(args.lambdas),
        steps=args.steps,
        lr=args.lr,
        ranks=ev.parse_ranks(args.ranks),
        sentences=Path(args.sentences) if args.sentences else ev.DEFAULT_SENTENCES,
        limit=args.limit,
        layers=tuple(ev.parse_widths("layers", args.layers, 0, 1 << 10)) if args.layers is not None else None,
        seed=args.seed,
    )
    out = Path(args.out)
    # bad input fails before the model loads: unreadable file, too few sentences
    ft.split_sentences(len(ev.read_sentences(opts.sentences, opts.limit)), opts.seed)
    with Heartbeat("finetune: running", every=30):
        result = ft.run(opts)
    command = " ".join(["damf finetune", f"--lambdas {args.lambdas}", f"--steps {args.steps}",
                        f"--lr {args.lr:g}", f"--ranks {args.ranks}"]
                       + ([f"--sentences {args.sentences}"] if args.sentences else [])
                       + ([f"--limit {args.limit}"] if args.limit is not None else [])
                       + ([f"--layers {args.layers}"] if args.layers else [])
                       + [f"--seed {args.seed}", f"--out {args.out}"])
    for path in ft.write_report(result, out, command=command):
        print(f"wrote {path}")
    return 0


def cmd_bench(args):
    from .bench import run      # lazy (sim.runner, as lint)
    if args.repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, not {args.repeat}")
    return run(repeat=args.repeat, sims=args.sim or SIMULATORS)


def _add_head_args(p, *, minilm):
    """``damf import``'s and ``damf minilm-head``'s head options (MiniLM: its own defaults)."""
    p.add_argument("--layer", type=int, default=0, help="layer 0..5 (default: 0)" if minilm else
                   "layer, 0 .. num_hidden_layers - 1 (default: 0)")
    p.add_argument("--head", type=int, default=0, help="head 0..11 (default: 0)" if minilm else
                   "head, 0 .. num_attention_heads - 1 (default: 0)")
    p.add_argument("--rank", type=int, default=32 if minilm else None,
                   help="singular pairs kept, 1..32 (default: 32, full)" if minilm else
                   "singular pairs kept, 1 .. d_head (default: d_head, full)")
    p.add_argument("--mode", default="base2", choices=MODES,
                   help="softmax approximation (default: base2)")
    p.add_argument("--weights", default="fixed", choices=WEIGHT_MODES,
                   help="fixed: u, v are constants of the Verilog; runtime: loaded over the w stream, words in "
                        "NAME-weights.hex (default: fixed)")
    p.add_argument("--x-width", type=int, default=8, help="bits of X' (default: 8)")
    p.add_argument("--w-width", type=int, default=8, help="bits of u and v (default: 8)")
    p.add_argument("--v-width", type=int, default=8, help="bits of V (default: 8)")
    p.add_argument("--weight-frac", type=int, default=8, help="damf-head weight_frac (default: 8)")
    p.add_argument("--out-frac", type=int, default=4, help="fraction bits of Z above V's (default: 4)")
    p.add_argument("--pq-width", type=int, default=DEFAULT_PQ_WIDTH,
                   help=f"bits of p and q after requantization; the shift is calibrated on the calibration "
                        f"tokens (default: {DEFAULT_PQ_WIDTH})")
    if minilm:
        p.add_argument("--seq-len", type=int, default=256, help="maximum tokens per head (default: 256, the model's)")
        p.add_argument("--lanes", type=int, default=11, help="X' elements per beat (default: 11; 385 = 35 x 11)")
    else:
        p.add_argument("--seq-len", type=int, help="maximum tokens per head (default: 256, or the checkpoint's "
                                                   "positions if fewer)")
        p.add_argument("--lanes", type=int, help="X' elements per beat (default: the largest divisor of "
                                                 "hidden_size + 1 in 8..16, else 16)")
    p.add_argument("--parallel", type=int, default=4, help="scores per cycle (default: 4)")
    p.add_argument("--sentences", metavar="FILE",
                   help="calibration sentences (default: the project's damf/models/data/sentences.txt)" if minilm else
                   "calibrate on these sentences (one a line; needs tokenizer.json in CHECKPOINT_DIR; default: "
                   "random token ids)")
    p.add_argument("--count", type=int, default=4, metavar="N",
                   help=f"calibration sequences in the vector file, 1..{MAX_COUNT} (default: 4)")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, metavar="NAME",
                   help=f"start of every Verilog module name (default {DEFAULT_PREFIX}: top module "
                        f"{DEFAULT_PREFIX}head; docs/integration.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")


def main(argv=None):
    parser = _Parser(
        prog="damf",
        description="DAMF attention hardware: Verilog generators, golden models and testbenches.",
        epilog="blocks:\n" + _block_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("generate", help="write BLOCK.v and BLOCK.json",
                       description="Write BLOCK.v (Verilog) and BLOCK.json (its configuration and derived widths).",
                       epilog="blocks:\n" + _block_list(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("block", metavar="BLOCK", help="block name (see below)")
    _add_config_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, metavar="NAME",
                   help=f"start of every Verilog module name (default {DEFAULT_PREFIX}: top module "
                        f"{DEFAULT_PREFIX}BASE, BASE the block name without damf-, - as _; docs/integration.md)")
    p.add_argument("--axis", action="store_true",
                   help="AXI4-Stream ports (s_axis_NAME_*, m_axis_NAME_*, aclk, aresetn): a wrapper "
                        "PREFIX BASE_axis around the block (docs/integration.md)")
    p.set_defaults(func=cmd_generate)
    p.epilog = ("damf generate BLOCK --help lists BLOCK's keys with their ranges. A configuration estimated to "
                f"take more than {GENERATE_BUDGET_S // 60} minutes to generate is refused with the estimate; "
                "a long one prints progress every 10 s (docs/limits.md).\n\nblocks:\n" + _block_list())

    p = sub.add_parser("import", help="damf-head Verilog, vectors and fidelity for one head of your BERT checkpoint",
                       description="Import one attention head of a BERT-family checkpoint directory (config.json "
                                   "and model.safetensors with the usual BERT tensor names, model_type bert, "
                                   "roberta or xlm-roberta): DIR/NAME.v and .json (real singular vectors, fixed or "
                                   "--weights runtime plus NAME-weights.hex), NAME-vectors.json (real activations "
                                   "and the expected Z, for damf sim --vectors) and NAME-fidelity.md/.json "
                                   "(against exact softmax). Calibrated on --sentences (needs tokenizer.json in "
                                   "the directory) or else on random token ids (--seed). See docs/import.md.")
    p.add_argument("checkpoint", metavar="CHECKPOINT_DIR", help="folder with config.json and model.safetensors")
    _add_head_args(p, minilm=False)
    p.add_argument("--seed", type=int, default=0, help="seed of the random token ids (default: 0)")
    p.add_argument("--calibration", type=int, default=16, metavar="N",
                   help="random calibration sequences, 1..256 (default: 16; with --sentences: every sentence)")
    p.add_argument("--name", metavar="NAME", help="file names NAME.v, NAME.json, ... (default: head-lLhH)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("minilm-head", help="damf-head Verilog for one real head of all-MiniLM-L6-v2",
                       description="Generate the damf-head of one head of all-MiniLM-L6-v2 with its real "
                                   "singular vectors baked in (weights=fixed) or loaded at run time, scales "
                                   "calibrated on real sentences, and by default the configuration damf eval "
                                   "recommends for this model: full rank 32, mode base2, 8-bit X', u, v, V, "
                                   "weight_frac 8 (docs/eval.md). damf import on the packaged model: writes "
                                   "DIR/minilm-lLhH.v and .json (with the scales), -vectors.json and "
                                   "-fidelity.md/.json (docs/import.md). Needs the eval extra (make env).")
    _add_head_args(p, minilm=True)
    p.set_defaults(func=cmd_minilm_head)

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
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--seed", type=int, default=1, help="random seed, 0 .. 2^64 - 1 (default: 1)")
    p.add_argument("--count", type=int, default=64,
                   help="random input vectors per file (default: 64); a count whose files would need more "
                        "than 4 GiB of memory is refused with the estimate")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("sim", help="run the RTL against a vector file",
                       description="Generate the block of a vector file, simulate it on its inputs, "
                                   "and report matches and the first mismatches.")
    p.add_argument("block", metavar="BLOCK", nargs="?", help="block name (default: the file's)")
    p.add_argument("--vectors", required=True, metavar="FILE",
                   help="vector file (format in golden/vectors.py; UTF-8 JSON, at most 1 GiB, at least one vector)")
    p.add_argument("--sim", default="icarus", choices=SIMULATORS, help="simulator (default: icarus)")
    p.add_argument("--build", default="build/vectors", metavar="DIR", help="build folder (default: build/vectors)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the simulator's log (default: only on failure)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("lint", help="Verilator --lint-only -Wall on every generated block",
                       description="Generate every block for the presets and lint each with Verilator -Wall.")
    p.add_argument("--preset", action="append", metavar="NAME", help="preset (repeatable; default: all)")
    p.add_argument("--out", default="build/lint", metavar="DIR", help="build folder (default: build/lint)")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("cost", help="parameters, MACs and memory accesses of one MHSA layer vs DAMF",
                       description="Analytic cost of one multi-head self-attention layer, standard and DAMF "
                                   "(conventions: docs/cost-model.md).")
    p.add_argument("--preset", default="default", metavar="NAME",
                   help=f"shape to start from: {', '.join(PRESETS)} (default: default)")
    p.add_argument("--d-model", type=int, metavar="N", help="override d_model")
    p.add_argument("--n-heads", type=int, metavar="N", help="override n_heads (must divide d_model)")
    p.add_argument("--seq-len", type=int, metavar="N", help="override the sequence length L")
    p.add_argument("--rank", type=int, metavar="N", help="override the DAMF rank r (pairs per head, at most d_head)")
    p.add_argument("--bits", type=int, default=32, metavar="N",
                   help="bits per value for the byte/MiB figures (default: 32, as fp32 in the paper)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--paper", action="store_true",
                   help="print which counting conventions reproduce the paper's Table II (ignores the shape)")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("synth", help="Yosys/nextpnr area and fmax reports of every block",
                       description="Synthesize every block of a preset the same way (generic CMOS, iCE40, ECP5, "
                                   "nextpnr fmax) and write reports/synth-PRESET.json and .md; then compare DAMF "
                                   "with the baseline (reports/compare-PRESET.json, .md and PNG sweeps).")
    p.add_argument("--preset", default="default", metavar="NAME", help=f"{', '.join(PRESETS)} (default: default)")
    p.add_argument("--block", action="append", metavar="BLOCK", help="only this block (repeatable; default: all)")
    p.add_argument("--out", default="reports", metavar="DIR", help="report folder (default: reports)")
    p.add_argument("--build", default="build/synth", metavar="DIR", help="work folder (default: build/synth)")
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no fmax)")
    p.add_argument("--no-compare", action="store_true",
                   help="skip the DAMF-vs-baseline comparison (reports/compare-PRESET.*; only run without --block)")
    p.add_argument("--no-sweep", action="store_true",
                   help="comparison without the shape sweeps and their plots (they run at the default preset only)")
    p.add_argument("--no-iso", action="store_true",
                   help="comparison without the iso-throughput points (damf/iso.py)")
    p.add_argument("--pnr-timeout", type=float, metavar="SECONDS",
                   help="stop each place-and-route run after this long and report it as not placed "
                        "(default: none at the default preset, 900 at bert-base)")
    p.add_argument("--place-iso", action="store_true",
                   help="place and route the iso-throughput designs that fit the LFE5U-85F at a preset that "
                        "leaves it out (bert-base: the rank-1 DAMF heads, about 12 minutes each)")
    p.add_argument("--jobs", type=int, default=2, metavar="N",
                   help="synthesis processes run at once, 1..64 (default: 2)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("eval", help="DAMF on a trained transformer (all-MiniLM-L6-v2): report and plots",
                       description="Evaluate DAMF on all-MiniLM-L6-v2: singular-value concentration, score and "
                                   "head-output fidelity per rank (float and bit-exact), end-to-end embedding "
                                   "cosine, width sweeps; writes DIR/report.md, report.json and PNG plots "
                                   "(see docs/eval.md). Progress goes to stderr.")
    p.add_argument("--ranks", default="1,2,4,8,full", metavar="LIST",
                   help="ranks to evaluate, e.g. 1,2,4,8,full (default: 1,2,4,8,full)")
    p.add_argument("--sentences", metavar="FILE",
                   help="one sentence per line, # comments (default: the project's damf/models/data/sentences.txt)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N sentences")
    p.add_argument("--layers", metavar="LIST", help="layers to put DAMF in and evaluate (default: all)")
    p.add_argument("--out", default="reports/eval", metavar="DIR", help="output directory (default: reports/eval)")
    p.add_argument("--x-width", default="8,6,10,12", metavar="LIST",
                   help="bits of X' = [X, 1]: the baseline, then values to sweep (default: 8,6,10,12)")
    p.add_argument("--w-width", default="8,6,10,12", metavar="LIST",
                   help="bits of u and v: baseline, then sweep (default: 8,6,10,12)")
    p.add_argument("--v-width", default="8,6,10", metavar="LIST",
                   help="bits of V: baseline, then sweep (default: 8,6,10)")
    p.add_argument("--weight-frac", default="12,8,16", metavar="LIST",
                   help="damf-head weight_frac: baseline, then sweep (default: 12,8,16)")
    pq_sweep = ",".join(map(str, EvalOptions.pq_width))
    p.add_argument("--pq-width", default=pq_sweep, metavar="LIST",
                   help="bits of p and q after requantization (shift calibrated per head), or 'exact': "
                        f"baseline, then sweep (default: {pq_sweep})")
    p.add_argument("--out-frac", type=int, default=4, metavar="N", help="damf-head out_frac (default: 4)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("accuracy", help="accuracy of the bit-exact damf-head against float DAMF and exact softmax",
                       description="Run the bit-exact DAMF head (golden model) in each mode on the quantized "
                                   "heads of random float attention layers and print relative error, row cosine "
                                   "and attention-argmax agreement against float DAMF, exact softmax and the "
                                   "softmax each mode approximates (docs/numerics.md section 12).")
    _add_config_args(p)
    p.add_argument("--mode", action="append", choices=MODES,
                   help="mode to evaluate (repeatable; default: all three)")
    p.add_argument("--length", type=int, metavar="L", help="tokens per head (default: seq_len)")
    p.add_argument("--d-model", type=int, metavar="N", help="d_model of the random layer (default: 4 d_head)")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="random layers averaged (default: 3); runs needing more than 4 GiB (L up to about 4096) "
                        "or estimated at more than an hour are refused with the estimate")
    p.add_argument("--logit-gain", type=float, default=1.0, metavar="G",
                   help=f"sharpen the attention: logits times G, at most {MAX_LOGIT_GAIN} (default: 1)")
    p.add_argument("--pq-width", metavar="N|exact",
                   help="bits of p and q after requantization (2..32), or 'exact': the preset's "
                        "inner-product out_width, no requantization (default: the configuration's "
                        "pq_width); p and q are exact at the out_width, then shifted right by the "
                        "smallest shift at which no value of the head saturates")
    p.add_argument("--causal", action="store_true", help="causal attention")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=cmd_accuracy)

    p = sub.add_parser("finetune", help="fine-tune all-MiniLM-L6-v2's Q/K factors with the DAMF loss L_MS",
                       description="Fine-tune each head's query/key factors A = [Wq; bq], B = [Wk; bk] of "
                                   "all-MiniLM-L6-v2 by self-distillation plus lambda * L_MS(A B^T) "
                                   "(L_MS = 1 - sigma_max / sum sigma), for several lambdas; then measure "
                                   "concentration, held-out head error and held-out end-to-end cosine with "
                                   "DAMF per rank. Writes DIR/report.md, report.json and PNG plots "
                                   "(see docs/eval.md). Progress goes to stderr.")
    p.add_argument("--lambdas", default="0,0.01,0.1,1", metavar="LIST",
                   help="weights of L_MS, 0 being the control (default: 0,0.01,0.1,1)")
    p.add_argument("--steps", type=int, default=200, metavar="N",
                   help="Adam steps per layer, 1..10000 (default: 200; about 0.3-1 s a step and layer)")
    p.add_argument("--lr", type=float, default=1e-3, metavar="X",
                   help="Adam learning rate, in (0, 1] (default: 0.001)")
    p.add_argument("--ranks", default="1,2,4,8,full", metavar="LIST",
                   help="ranks to evaluate, e.g. 1,2,4,8,full (default: 1,2,4,8,full)")
    p.add_argument("--sentences", metavar="FILE",
                   help="one sentence per line, # comments (default: the project's damf/models/data/sentences.txt)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N sentences (a quarter held out)")
    p.add_argument("--layers", metavar="LIST", help="layers to fine-tune and put DAMF in (default: all)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the train / held-out split (default: 0)")
    p.add_argument("--out", default="reports/finetune", metavar="DIR",
                   help="output directory (default: reports/finetune)")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("bench", help="print generation times, simulation speed and headline ratios",
                       description="Benchmarks that print figures (Verilog generation time per preset, "
                                   "simulator cycles per second, cost-model and synthesis ratios).")
    p.add_argument("--repeat", type=int, default=3, help="generation runs per block, best kept (default: 3)")
    p.add_argument("--sim", action="append", choices=SIMULATORS,
                   help="simulator to measure (repeatable; default: both)")
    p.set_defaults(func=cmd_bench)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["generate"] and ({"-h", "--help"} & set(argv)) and set(argv) & set(BLOCKS):
        print(_keys_help(get_block(next(a for a in argv if a in BLOCKS))))
        return 0
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        block = getattr(args, "block", None)
        for name in block if isinstance(block, list) else [block] if block is not None else []:
            get_block(name)       # an unknown block name: one line, before any work
        for option in ("sentences", "config", "vectors"):      # input files: a name, not ''
            value = getattr(args, option, None)
            if value is not None and not str(value).strip():
                raise ConfigError(f"--{option} must name a file, not '{value}'")
        for option in ("out", "build"):     # output folders: checked before any work
            if getattr(args, option, None) is not None:
                check_out_dir(getattr(args, option), f"--{option}")
        return args.func(args)
    except ConfigError as e:
        print(f"damf: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
