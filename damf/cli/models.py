"""``damf eval`` and ``damf finetune``: DAMF on the trained all-MiniLM-L6-v2 (damf.models).
Both take the same ranks, sentences, limit and layers options and write a report folder
whose report names the command that made it."""

from pathlib import Path

from ..limits import MAX_FINETUNE_STEPS, Heartbeat
from ..models import eval as ev, finetune as ft
from ..models.eval import EvalOptions
from .args import add_folder, int_range, positive

__all__ = ["add_eval", "add_finetune", "run_eval", "run_finetune"]

#: ``--layers``: the largest layer index taken before the model says how many it has
MAX_LAYER = 1 << 10


def _add_sentences_args(p, *, limit_help):
    """``--ranks``, ``--sentences``, ``--limit`` (with ``limit_help``) and ``--layers``."""
    p.add_argument("--ranks", default="1,2,4,8,full", metavar="LIST",
                   help="ranks to evaluate, e.g. 1,2,4,8,full (default: 1,2,4,8,full)")
    p.add_argument("--sentences", metavar="FILE",
                   help="one sentence per line, # comments (default: the project's damf/models/data/sentences.txt)")
    p.add_argument("--limit", type=int, metavar="N", help=limit_help)


def add_eval(sub):
    p = sub.add_parser("eval", help="DAMF on a trained transformer (all-MiniLM-L6-v2): report and plots",
                       description="Evaluate DAMF on all-MiniLM-L6-v2: singular-value concentration, score and "
                                   "head-output fidelity per rank (float and bit-exact), end-to-end embedding "
                                   "cosine, width sweeps; writes DIR/report.md, report.json and PNG plots "
                                   "(see docs/eval.md). Progress goes to stderr.")
    _add_sentences_args(p, limit_help="use only the first N sentences")
    p.add_argument("--layers", metavar="LIST", help="layers to put DAMF in and evaluate (default: all)")
    add_folder(p, default="reports/eval")
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
    p.set_defaults(func=run_eval)


def add_finetune(sub):
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
    _add_sentences_args(p, limit_help="use only the first N sentences (a quarter held out)")
    p.add_argument("--layers", metavar="LIST", help="layers to fine-tune and put DAMF in (default: all)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the train / held-out split (default: 0)")
    add_folder(p, default="reports/finetune")
    p.set_defaults(func=run_finetune)


def _layers(text):
    """``--layers``: None (all), or the layer indices (checked against the model when it loads)."""
    return tuple(ev.parse_widths("layers", text, 0, MAX_LAYER)) if text is not None else None


def _sentences(args):
    return Path(args.sentences) if args.sentences else ev.DEFAULT_SENTENCES


def _command(name, first, args, last):
    """The command line a report names: ``first`` options, the sentence options as given, ``last``."""
    return " ".join([f"damf {name}", *first]
                    + ([f"--sentences {args.sentences}"] if args.sentences else [])
                    + ([f"--limit {args.limit}"] if args.limit is not None else [])
                    + ([f"--layers {args.layers}"] if args.layers else [])
                    + last)


def run_eval(args):
    opts = ev.EvalOptions(
        ranks=ev.parse_ranks(args.ranks),
        sentences=_sentences(args),
        limit=args.limit,
        layers=_layers(args.layers),
        x_width=ev.parse_widths("x-width", args.x_width, 2, 24),
        w_width=ev.parse_widths("w-width", args.w_width, 2, 24),
        v_width=ev.parse_widths("v-width", args.v_width, 2, 24),
        weight_frac=ev.parse_widths("weight-frac", args.weight_frac, 0, 30),
        pq_width=ev.parse_pq_widths(args.pq_width),
        out_frac=args.out_frac,
    )
    int_range("--out-frac", opts.out_frac, 0, 16)
    out = Path(args.out)
    ev.read_sentences(opts.sentences, opts.limit)  # bad input fails before the model loads
    with Heartbeat("eval: running", every=30):
        result = ev.run(opts)
    command = _command("eval", [f"--ranks {args.ranks}"], args,
                       [f"--x-width {args.x_width}", f"--w-width {args.w_width}", f"--v-width {args.v_width}",
                        f"--weight-frac {args.weight_frac}", f"--pq-width {args.pq_width}",
                        f"--out-frac {args.out_frac}", f"--out {args.out}"])
    for path in ev.write_report(result, out, command=command):
        print(f"wrote {path}")
    return 0


def run_finetune(args):
    int_range("--steps", args.steps, 1, MAX_FINETUNE_STEPS)
    positive("--lr", args.lr, at_most=1, note=" (Adam's step)")
    int_range("--seed", args.seed, 0)
    opts = ft.FinetuneOptions(
        lambdas=ft.parse_lambdas(args.lambdas),
        steps=args.steps,
        lr=args.lr,
        ranks=ev.parse_ranks(args.ranks),
        sentences=_sentences(args),
        limit=args.limit,
        layers=_layers(args.layers),
        seed=args.seed,
    )
    out = Path(args.out)
    # bad input fails before the model loads: unreadable file, too few sentences
    ft.split_sentences(len(ev.read_sentences(opts.sentences, opts.limit)), opts.seed)
    with Heartbeat("finetune: running", every=30):
        result = ft.run(opts)
    command = _command("finetune", [f"--lambdas {args.lambdas}", f"--steps {args.steps}", f"--lr {args.lr:g}",
                                    f"--ranks {args.ranks}"], args, [f"--seed {args.seed}", f"--out {args.out}"])
    for path in ft.write_report(result, out, command=command):
        print(f"wrote {path}")
    return 0
