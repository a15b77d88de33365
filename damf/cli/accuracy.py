"""``damf accuracy``: the bit-exact damf-head against float DAMF and exact softmax, on random
float attention layers."""

import dataclasses
import json
import sys
import time

from ..config import MODES, DamfHeadConfig, InnerProductConfig
from ..errors import ConfigError
from ..golden.damf_head import accuracy_report, format_accuracy
from ..limits import MAX_LOGIT_GAIN, Heartbeat, check_accuracy, human_seconds
from .args import add_config_args, config_from_args, int_range, positive

__all__ = ["add_accuracy", "run_accuracy"]


def add_accuracy(sub):
    p = sub.add_parser("accuracy", help="accuracy of the bit-exact damf-head against float DAMF and exact softmax",
                       description="Run the bit-exact DAMF head (golden model) in each mode on the quantized "
                                   "heads of random float attention layers and print relative error, row cosine "
                                   "and attention-argmax agreement against float DAMF, exact softmax and the "
                                   "softmax each mode approximates (docs/numerics.md section 12).")
    add_config_args(p)
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
    p.set_defaults(func=run_accuracy)


def _pq_width(text, exact_width):
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


def run_accuracy(args):
    cfg = config_from_args(DamfHeadConfig, args)
    exact_width = InnerProductConfig.from_preset(args.preset).out_width
    if args.pq_width is not None:
        cfg = dataclasses.replace(cfg, pq_width=_pq_width(args.pq_width, exact_width))
    modes = tuple(args.mode or MODES)
    int_range("--seeds", args.seeds, 1)
    length = cfg.seq_len if args.length is None else args.length
    int_range("--length", length, 1, cfg.seq_len, hi_name="seq_len")
    positive("--logit-gain", args.logit_gain, at_most=MAX_LOGIT_GAIN, noun="a positive finite number")
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
