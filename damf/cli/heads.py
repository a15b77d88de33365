"""``damf import`` and ``damf minilm-head``: a damf-head for one head of a trained model (a
BERT-family checkpoint, or the packaged all-MiniLM-L6-v2), with its vectors and fidelity.
Both take the same head options; MiniLM's have the model's own defaults."""

from pathlib import Path

from ..config import DEFAULT_PQ_WIDTH, MODES, InnerProductConfig
from ..errors import ConfigError
from ..files import write_atomically
from ..importer import MAX_COUNT, ImportOptions, import_head, minilm_options, plan
from ..models.minilm import model_dir
from ..verilog import DEFAULT_PREFIX
from .args import add_folder, field_choices

__all__ = ["WEIGHT_MODES", "add_import", "add_minilm_head", "run_import", "run_minilm_head"]

#: ``--weights``: the inner-product unit's weight modes
WEIGHT_MODES = field_choices(InnerProductConfig, "weights")


def add_import(sub):
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
    p.set_defaults(func=run_import)


def add_minilm_head(sub):
    p = sub.add_parser("minilm-head", help="damf-head Verilog for one real head of all-MiniLM-L6-v2",
                       description="Generate the damf-head of one head of all-MiniLM-L6-v2 with its real "
                                   "singular vectors baked in (weights=fixed) or loaded at run time, scales "
                                   "calibrated on real sentences, and by default the configuration damf eval "
                                   "recommends for this model: full rank 32, mode base2, 8-bit X', u, v, V, "
                                   "weight_frac 8 (docs/eval.md). damf import on the packaged model: writes "
                                   "DIR/minilm-lLhH.v and .json (with the scales), -vectors.json and "
                                   "-fidelity.md/.json (docs/import.md). Needs the eval extra (make env).")
    _add_head_args(p, minilm=True)
    p.set_defaults(func=run_minilm_head)


def _add_head_args(p, *, minilm):
    """``damf import``'s and ``damf minilm-head``'s head options (MiniLM: its own defaults).
    Their ranges are checked by damf.importer.plan, against the checkpoint where they depend on it."""
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
    add_folder(p)


def _head_options(args):
    """The head options both commands share, as given (None: default)."""
    return dict(layer=args.layer, head=args.head, rank=args.rank, mode=args.mode, weights=args.weights,
                x_width=args.x_width, w_width=args.w_width, v_width=args.v_width, weight_frac=args.weight_frac,
                out_frac=args.out_frac, pq_width=args.pq_width, seq_len=args.seq_len, lanes=args.lanes,
                parallel=args.parallel, count=args.count, prefix=args.prefix,
                sentences=Path(args.sentences) if args.sentences else None)


def _import(checkpoint, opts, out):
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


def run_import(args):
    if not args.checkpoint.strip():
        raise ConfigError(f"CHECKPOINT_DIR must name a directory, not '{args.checkpoint}'")
    opts = ImportOptions(**_head_options(args), seed=args.seed, calibration=args.calibration, name=args.name)
    return _import(Path(args.checkpoint), opts, Path(args.out))


def run_minilm_head(args):
    opts = minilm_options(**_head_options(args))
    try:
        path = model_dir()
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    return _import(path, opts, Path(args.out))
