"""``damf cost``: the analytic cost of one multi-head self-attention layer, standard and DAMF."""

from .. import cost_model
from ..config import PRESETS
from .args import int_range, names

__all__ = ["add_cost", "run_cost"]


def add_cost(sub):
    p = sub.add_parser("cost", help="parameters, MACs and memory accesses of one MHSA layer vs DAMF",
                       description="Analytic cost of one multi-head self-attention layer, standard and DAMF "
                                   "(conventions: docs/cost-model.md).")
    p.add_argument("--preset", default="default", metavar="NAME",
                   help=f"shape to start from: {names(PRESETS)} (default: default)")
    p.add_argument("--d-model", type=int, metavar="N", help="override d_model")
    p.add_argument("--n-heads", type=int, metavar="N", help="override n_heads (must divide d_model)")
    p.add_argument("--seq-len", type=int, metavar="N", help="override the sequence length L")
    p.add_argument("--rank", type=int, metavar="N", help="override the DAMF rank r (pairs per head, at most d_head)")
    p.add_argument("--bits", type=int, default=32, metavar="N",
                   help="bits per value for the byte/MiB figures (default: 32, as fp32 in the paper)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--paper", action="store_true",
                   help="print which counting conventions reproduce the paper's Table II (ignores the shape)")
    p.set_defaults(func=run_cost)


def run_cost(args):
    shape = cost_model.AttentionShape.from_preset(
        args.preset, d_model=args.d_model, n_heads=args.n_heads, seq_len=args.seq_len, rank=args.rank)
    int_range("--bits", args.bits, 1)
    if args.paper:
        print(cost_model.format_candidates(), end="")
        return 0
    print(cost_model.to_json(shape, bits=args.bits) if args.json else cost_model.format_table(shape, bits=args.bits),
          end="")
    return 0
