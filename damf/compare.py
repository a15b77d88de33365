"""The comparison report of ``damf synth``: DAMF against the conventional baseline.

Written after the per-block synthesis (``damf/synth.py``) as ``reports/compare-PRESET.json``,
``compare-PRESET.md`` and PNG plots.  Three comparisons, each between the parts that do the
same job for one attention head of ``L = seq_len`` queries and keys:

* **score path**: DAMF ``inner-product`` + ``score`` (``X`` in, scores ``A = p q^T`` out; the
  inner-product unit *replaces* the ``Q`` / ``K`` projections) against ``systolic-qk``
  (``Q``, ``K`` in, ``S = Q K^T`` out; the projections that make ``Q`` and ``K`` are *not*
  part of it, so the baseline side is favoured);
* **A' x V**: DAMF ``row-stats`` + ``shift-accumulate`` against ``softmax`` + ``systolic-av``;
* **head**: ``damf-head`` against ``baseline-head``, when both blocks are registered.

Configurations come from one preset through the two head configurations
(:class:`~damf.config.DamfHeadBlockConfig`, :class:`~damf.config.BaselineHeadConfig`),
whose sub-configurations are the parts, so both sides share ``seq_len``, ``d_head`` and the
8-bit inputs (``X``, ``u``, ``v`` / ``Q``, ``K``; ``V`` on both sides).

Area figures are sums over the parts of the tools' numbers (``synth-PRESET.json``); fmax of a
side is the minimum over its parts; cycles per head are composed from the blocks' own
cycle-model properties (each part run alone on a full head, source always valid and sink
always ready), see :func:`damf_score_cycles` and the others.  Sweeps use the fast flows only
(word-level and generic CMOS), cached by the hash of the configuration.
"""

import dataclasses
import hashlib
import importlib.util
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import iso, synth
from .blocks import BLOCKS, SIDES, comparisons
from .config import BaselineHeadConfig
from .golden.damf_head_block import calibrated_base2
from .config import DamfHeadBlockConfig
from .report import number
from .synth import SynthError

__all__ = [
    "TITLES", "head_configs", "part_configs", "damf_score_cycles", "baseline_score_cycles",
    "damf_axv_cycles", "baseline_axv_cycles", "head_cycles", "side_summary", "compare",
    "run_sweeps", "plot_sweeps", "markdown", "write_reports", "run",
]

# The comparisons and their parts, (DAMF parts, baseline parts), are the registered blocks'
# roles (damf.blocks.comparisons(): score, axv, head); their titles and what each side includes:
TITLES = {
    "score": "Score path: DAMF inner-product + score vs systolic-qk",
    "axv": "A' x V: DAMF row-stats + shift-accumulate vs softmax + systolic-av",
    "head": "Head: damf-head vs baseline-head",
}
INCLUDES = {
    "score": ("X (d_model elements per token) in, one score per (query, key) out: the inner-product unit "
              "computes p_m = X_m.u and q_m = X_m.v (the work of the Q and K projections), the score unit "
              "A_mn = p_m q_n",
              "Q and K (d_head elements per token) in, S = Q K^T out; the Q and K projections "
              "(2 d_model d_head MACs per token) are NOT included, which favours the baseline"),
    "axv": ("scores in (from the score unit), Z out: row set-up (N, max, sums, exponents, shifts) and the "
            "shift-and-add accumulation over V, no multiplier",
            "scores in, Z out: integer softmax (exponential, division) and the A' V array"),
    "head": ("X and V in, Z out (inner-product unit, score, row-stats, shift-accumulate, buffers)",
             "Q, K and V in, Z out (systolic-qk, row buffer, softmax, systolic-av, buffers)"),
}

ADDITIVE = {
    "coarse": ("multipliers",),
    "cmos": ("transistors", "cells", "ffs"),
    "ice40": ("luts", "ffs", "carries", "dsps"),
    "ecp5": ("luts", "ffs", "carries", "dsps"),
}

SWEEP_L = (4, 8, 16, 32)
SWEEP_D_HEAD = (4, 8, 16)
SWEEP_PARALLEL = (1, 2, 4, 8)                    # DAMF score (and row-stats) parallel
SWEEP_ARRAY = ((1, 1), (2, 2), (4, 4))           # baseline systolic rows x cols


# ---- configurations ---------------------------------------------------------------------------

def head_configs(preset="default", *, seq_len=None, d_head=None, parallel=None, rows=None, cols=None):
    """``(damf, baseline)`` head configurations of one preset with the same shape overrides.

    ``seq_len`` and ``d_head`` apply to both sides; ``parallel`` to DAMF, ``rows``/``cols`` to
    the baseline.  Everything else (8-bit ``X``, ``u``, ``v``, ``Q``, ``K``, ``V``) is the preset's.
    A preset's ``parallel``, ``rows`` and ``cols`` too large for a short ``seq_len`` (or small
    ``d_head``) are clamped to it, as the configurations require.
    """
    damf = DamfHeadBlockConfig.from_preset(preset)
    base = BaselineHeadConfig.from_preset(preset)
    length = seq_len or damf.seq_len
    d = d_head or base.d_head
    damf = dataclasses.replace(damf, seq_len=length, d_head=d,
                               parallel=parallel if parallel is not None else min(damf.parallel, length))
    base = dataclasses.replace(base, seq_len=length, d_head=d,
                               rows=rows if rows is not None else min(base.rows, length),
                               cols=cols if cols is not None else min(base.cols, length, d))
    return damf, base


def part_configs(damf, base):
    """Every part's configuration, by block name, derived from the two heads (each registered
    block's ``part_of``)."""
    return {b.name: b.part_of(damf, base) for b in BLOCKS.values() if b.part_of is not None}


# ---- cycles per head (L queries, L keys) ------------------------------------------------------

def damf_score_cycles(ip, score, length):
    """Inner-product unit over all ``L`` tokens (``L * beats + latency``), then the score unit
    loads the ``L`` keys and streams ``L`` query rows (``score.cycles(L, L)``)."""
    parts = {"inner-product": length * ip.beats + ip.latency, "score": score.cycles(length, length)}
    return parts, "inner-product L*beats + latency, then score.cycles(L, L) = L + L*ceil(L/parallel) + latency"


def baseline_score_cycles(qk):
    """The array's ``cycles`` for one ``S`` (every tile of ``Q K^T``)."""
    return {"systolic-qk": qk.cycles}, "systolic-qk.cycles = (tiles - 1)*max(d_head, R, C) + d_head + C + last_rows + 1"


def damf_axv_cycles(rs, sa, length):
    """``L`` rows through ``row-stats`` (back to back), then ``shift-accumulate`` with
    ``B = ceil(L / parallel)`` beats per row (``cycles([B] * L)``)."""
    parts = {"row-stats": rs.cycles([length] * length),
             "shift-accumulate": sa.cycles([sa.row_beats(length)] * length)}
    return parts, ("row-stats.cycles([L]*L) = L*ceil(L/parallel) + setup, then "
                   "shift-accumulate.cycles([B]*L) = B + (L-1)*max(B, round_cycles) + latency")


def baseline_axv_cycles(sm, av, length):
    """``L`` rows through the softmax back to back (``(L - 1) * row_interval(L) + row_cycles(L)``),
    then the ``A' V`` array's ``cycles``."""
    parts = {"softmax": (length - 1) * sm.row_interval(length) + sm.row_cycles(length), "systolic-av": av.cycles}
    return parts, "softmax (L-1)*row_interval(L) + row_cycles(L), then systolic-av.cycles"


def head_cycles(cfg):
    """A head block's own cycle model for a full head: ``cycles_per_head(L)`` or ``cycles``."""
    if hasattr(cfg, "cycles_per_head"):
        return {cfg.block: cfg.cycles_per_head(cfg.seq_len)}, f"{cfg.block}.cycles_per_head(L)"
    return {cfg.block: cfg.cycles}, f"{cfg.block}.cycles"


def cycles_of(name, side, cfgs):
    """``(per-part cycles, composition text)`` of one side of comparison ``name``."""
    length = cfgs["score"].seq_len
    if name == "score":
        return (damf_score_cycles(cfgs["inner-product"], cfgs["score"], length) if side == "damf"
                else baseline_score_cycles(cfgs["systolic-qk"]))
    if name == "axv":
        return (damf_axv_cycles(cfgs["row-stats"], cfgs["shift-accumulate"], length) if side == "damf"
                else baseline_axv_cycles(cfgs["softmax"], cfgs["systolic-av"], length))
    return head_cycles(cfgs["damf-head" if side == "damf" else "baseline-head"])


# ---- area -------------------------------------------------------------------------------------

def side_summary(results):
    """Sum the additive figures of the part results; fmax is the minimum over the parts (None
    if a part has none); flows a part lacks (a sweep's CMOS-only result) are left out."""
    out = {}
    for flow, keys in ADDITIVE.items():
        # a flow a part lacks, or did not run to the end (an ECP5 design over the DSPs is not mapped)
        if not all(all(k in r.get(flow, {}) for k in keys) for r in results):
            continue
        out[flow] = {k: sum(r[flow][k] for r in results) for k in keys}
        if flow in ("ice40", "ecp5"):
            fmaxes = [r[flow].get("fmax_mhz") for r in results]
            out[flow]["fmax_mhz"] = None if None in fmaxes else min(fmaxes)
    return out


def compare(cfgs, results):
    """The comparison tables: ``{name: {"damf": side, "baseline": side}}`` or, for a comparison
    of which no registered block plays a side, ``{"available": False, "missing": [side, ...]}``."""
    out = {}
    for name, sides in comparisons().items():
        missing = [side for side, parts in zip(SIDES, sides) if not parts]
        if missing:
            out[name] = {"available": False, "missing": missing}
            continue
        failed = [f"`{b}`: {results[b]['error']}" for parts in sides for b in parts if "error" in results[b]]
        if failed:
            out[name] = {"available": False, "failed": failed}
            continue
        entry = {"available": True}
        for side, parts in zip(SIDES, sides):
            per_part, how = cycles_of(name, side, cfgs)
            total = sum(per_part.values())
            summary = side_summary([results[b] for b in parts])
            entry[side] = {
                "parts": list(parts), "includes": INCLUDES[name][side == "baseline"],
                "cycles": total, "cycles_by_part": per_part, "cycles_composition": how,
                "area_x_cycles": summary["cmos"]["transistors"] * total, **summary,
                "multipliers_by_part": {b: results[b]["coarse"]["multipliers"] for b in parts},
            }
        out[name] = entry
    return out


# ---- synthesis with a cache -------------------------------------------------------------------

def _key(cfg):
    """Cache folder name: the block and a hash of its configuration JSON (config, derived, version)."""
    return f"{cfg.block}-{hashlib.sha256(cfg.to_json().encode()).hexdigest()[:12]}"


def _quick(cfg, work):
    r = synth.synthesize(cfg, work, pnr=False, fpga=False, progress=lambda s: None)
    (Path(work) / "result.json").write_text(json.dumps(r, sort_keys=True) + "\n")
    return r


def _full(cfg, work, pnr, ice40=True, pnr_timeout=None):
    r = synth.synthesize(cfg, work, pnr=pnr, ice40=ice40, pnr_timeout=pnr_timeout, progress=lambda s: None)
    (Path(work) / "result.json").write_text(json.dumps(r, sort_keys=True) + "\n")
    return r


def cache_key(cfg, *, full, pnr=True, ice40=True):
    """The cache folder name of ``cfg``'s result: the flows run are part of it, so a result
    without place and route (no fmax) never stands in for one with it."""
    return (("full-" if ice40 else "ecp5-") + ("" if pnr else "nopnr-") if full else "") + _key(cfg)


def synthesize_many(cfgs, cache, *, full=False, pnr=True, jobs=2, known=(), progress=print, ice40=True,
                    pnr_timeout=None):
    """Results of every configuration in ``cfgs`` (a list), from ``known`` results (configs
    already synthesized), the cache folder, or new runs on ``jobs`` processes.  ``ice40=False``
    (full runs only) leaves the iCE40 flows out."""
    cache = Path(cache)
    results, todo = [None] * len(cfgs), {}
    for i, cfg in enumerate(cfgs):
        hit = next((r for r in known if r["block"] == cfg.block and r.get("config") == cfg.to_dict()), None)
        if hit is not None:
            results[i] = hit
            continue
        key = cache_key(cfg, full=full, pnr=pnr, ice40=ice40)
        saved = cache / key / "result.json"
        if saved.exists():
            results[i] = json.loads(saved.read_text())
        else:
            todo.setdefault(key, (cfg, []))[1].append(i)
    if todo:
        progress(f"  compare: synthesizing {len(todo)} configuration(s) on {jobs} process(es): "
                 + ", ".join(cfg.block for cfg, _ in todo.values()) + " ...")
        start = time.monotonic()
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
            futures = {key: pool.submit(_full, cfg, cache / key, pnr, ice40, pnr_timeout) if full
                       else pool.submit(_quick, cfg, cache / key)
                       for key, (cfg, _) in todo.items()}
            for n, (key, future) in enumerate(futures.items(), 1):
                try:
                    r = future.result()
                except Exception as e:      # reported in the comparison, not fatal
                    what = "" if isinstance(e, SynthError) else f"{type(e).__name__}: "
                    r = {"block": todo[key][0].block, "error": what + (str(e).splitlines() or [""])[0]}
                    progress(f"  compare: {r['block']}: {r['error']}")
                for i in todo[key][1]:
                    results[i] = r
                progress(f"  compare: [{n}/{len(futures)}] {todo[key][0].block} done "
                         f"({time.monotonic() - start:.0f} s)")
        progress(f"  compare: done in {time.monotonic() - start:.1f} s")
    return results


# ---- sweeps -----------------------------------------------------------------------------------

def sweep_points(preset, *, lengths=SWEEP_L, d_heads=SWEEP_D_HEAD, parallels=SWEEP_PARALLEL,
                 arrays=SWEEP_ARRAY):
    """``[(sweep, x, (damf_head, baseline_head))]`` of the three sweeps (``None`` for a side a
    point does not vary)."""
    points = []
    for length in lengths:
        points.append(("seq_len", length, head_configs(preset, seq_len=length)))
    for d in d_heads:
        points.append(("d_head", d, head_configs(preset, d_head=d)))
    for p in parallels:
        damf, base = head_configs(preset, parallel=p)
        points.append(("parallel", p * damf.rank, (damf, None)))
    for rows, cols in arrays:
        damf, base = head_configs(preset, rows=rows, cols=cols)
        points.append(("parallel", rows * cols, (None, base)))
    return points


def run_sweeps(preset, cache, *, jobs=2, known=(), progress=print, **grid):
    """Generic CMOS area and cycles of the score and A'xV parts of both sides over the sweeps.

    Returns ``{sweep: [{"x", "side", "comparison", "transistors", "cycles", "multipliers"}]}``;
    on the ``parallel`` sweep ``x`` is the score engine's multipliers (``parallel * rank`` for
    DAMF, ``rows * cols`` for the baseline, whose ``systolic-av`` uses the same array).
    """
    points = sweep_points(preset, **grid)
    comps = comparisons()
    jobs_list, index = [], []
    for n, (name, x, (damf, base)) in enumerate(points):
        for side, head in (("damf", damf), ("baseline", base)):
            if head is None:
                continue
            cfgs = _side_parts(side, head)
            for comp in ("score", "axv"):
                parts = comps[comp][SIDES.index(side)]
                for b in parts:
                    index.append((n, side, comp, b))
                    jobs_list.append(cfgs[b])
    results = synthesize_many(jobs_list, cache, jobs=jobs, known=known, progress=progress)
    by_point = {}
    for (n, side, comp, b), r in zip(index, results):
        by_point.setdefault((n, side, comp), {})[b] = r
    out = {}
    for (n, side, comp), rs in by_point.items():
        if any("error" in r for r in rs.values()):
            continue                # reported by synthesize_many; the point is left out
        name, x, heads = points[n]
        head = heads[0] if side == "damf" else heads[1]
        cfgs = _side_parts(side, head)
        per_part, _ = cycles_of(comp, side, cfgs)
        parts = comps[comp][SIDES.index(side)]
        out.setdefault(name, []).append({
            "x": x, "side": side, "comparison": comp,
            "transistors": sum(rs[b]["cmos"]["transistors"] for b in parts),
            "multipliers": sum(rs[b]["coarse"]["multipliers"] for b in parts),
            "cycles": sum(per_part.values()),
            "config": {"seq_len": head.seq_len, "d_head": head.d_head,
                       **({"parallel": head.parallel} if side == "damf" else {"rows": head.rows, "cols": head.cols})},
        })
    for rows in out.values():
        rows.sort(key=lambda r: (r["comparison"], r["side"], r["x"]))
    return out


def _side_parts(side, head):
    """The part configurations of one side (``cfgs["score"]`` is always set, for ``seq_len``)."""
    if side == "damf":
        return {"inner-product": head.inner_product, "score": head.score, "row-stats": head.row_stats,
                "shift-accumulate": head.shift_accumulate, "damf-head": head}
    return {"systolic-qk": head.qk, "softmax": head.softmax, "systolic-av": head.av,
            "baseline-head": head, "score": head.qk}


# ---- plots ------------------------------------------------------------------------------------

XLABELS = {"seq_len": "sequence length L", "d_head": "d_head",
           "parallel": "score multipliers (DAMF parallel x rank; baseline rows x cols)"}
LABELS = {("damf", "score"): "DAMF inner-product + score", ("baseline", "score"): "systolic-qk",
          ("damf", "axv"): "DAMF row-stats + shift-accumulate", ("baseline", "axv"): "softmax + systolic-av"}
STYLES = {("damf", "score"): "C0o-", ("baseline", "score"): "C3s-",
          ("damf", "axv"): "C0o--", ("baseline", "axv"): "C3s--"}


def plot_sweeps(preset, sweeps, out_dir):
    """One PNG per sweep (generic CMOS transistors and cycles per head); returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    for name, rows in sweeps.items():
        fig, (ax_a, ax_c) = plt.subplots(1, 2, figsize=(11, 4.2))
        for key, label in LABELS.items():
            pts = [r for r in rows if (r["side"], r["comparison"]) == key]
            if not pts:
                continue
            xs = [r["x"] for r in pts]
            ax_a.plot(xs, [r["transistors"] for r in pts], STYLES[key], label=label)
            ax_c.plot(xs, [r["cycles"] for r in pts], STYLES[key], label=label)
        for ax, ylabel in ((ax_a, "transistors (generic CMOS)"), (ax_c, "cycles per head (L queries)")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(XLABELS[name])
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
        ax_a.legend(fontsize=8)
        fig.suptitle(f"DAMF vs baseline, preset {preset}: sweep of {name}")
        fig.tight_layout()
        path = Path(out_dir) / f"compare-{preset}-{name.replace('_', '-')}.png"
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths


# ---- reports ----------------------------------------------------------------------------------

def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


COLUMNS = (
    ("multipliers", ("coarse", "multipliers"), 0),
    ("transistors (CMOS)", ("cmos", "transistors"), 0),
    ("CMOS cells", ("cmos", "cells"), 0),
    ("CMOS FFs", ("cmos", "ffs"), 0),
    ("iCE40 LUTs", ("ice40", "luts"), 0),
    ("iCE40 DSPs", ("ice40", "dsps"), 0),
    ("iCE40 FFs", ("ice40", "ffs"), 0),
    ("iCE40 fmax MHz", ("ice40", "fmax_mhz"), 1),
    ("ECP5 LUTs", ("ecp5", "luts"), 0),
    ("ECP5 DSPs", ("ecp5", "dsps"), 0),
    ("ECP5 FFs", ("ecp5", "ffs"), 0),
    ("ECP5 fmax MHz", ("ecp5", "fmax_mhz"), 1),
    ("cycles / head", ("cycles",), 0),
    ("transistors x cycles", ("area_x_cycles",), 0),
)


def _get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def markdown(doc):
    preset, L = doc["preset"], doc["shape"]["seq_len"]
    lines = [
        f"# DAMF against the baseline: preset `{preset}`",
        "",
        "Generated by `damf synth` (`damf/compare.py`) from the per-block results of "
        f"`synth-{preset}.json`; every area figure is read from the tools' output and every cycle count",
        "from the blocks' cycle-model properties; none is typed in.",
        "",
        "Shape: " + ", ".join(f"{k} = {v}" for k, v in doc["shape"].items()) + ".",
        "",
        "Conventions: area columns are sums over a side's parts; fmax is the minimum over the parts "
        "(`-` if a part has none); cycles per head are for one head of L queries against L keys, "
        "each part run alone with its source always valid and its sink always ready, parts in "
        "sequence (the composition is given per side); transistors x cycles is the generic CMOS "
        "transistor count times the cycles per head.",
        "",
    ]
    lines += iso_lines(doc)
    header = "| side | parts | " + " | ".join(c[0] for c in COLUMNS) + " |"
    rule = "|---|---|" + "---:|" * len(COLUMNS)
    for name, entry in doc["comparisons"].items():
        lines += [f"## {TITLES[name]}", ""] + _entry_lines(entry, header, rule)
    if doc.get("base2"):
        b2 = doc["base2"]
        lines += ["## Mode base2", "",
                  "The same comparisons with the DAMF head in mode `base2` (docs/numerics.md section 8), the "
                  "mode `damf eval` finds faithful for a trained model that was not trained for DAMF. The score "
                  "path is the same as above; `row-stats` keeps only N and A_max, `shift-accumulate` has no SV "
                  "term, and the head's t_n stage compares A_max - A with weight_frac + 1 constants. "
                  f"c = {b2['c_int']} * 2^-{b2['c_frac']} (chosen to spread random heads over the exponents; "
                  "the area hardly depends on it).", ""]
        for name, entry in b2["comparisons"].items():
            lines += [f"### {TITLES[name]} (base2)", ""] + _entry_lines(entry, header, rule)
    lines += _tail_lines(doc)
    return "\n".join(lines)


ISO_COLUMNS = (
    ("configuration", None, None),
    ("cycles / head", ("cycles_per_head",), 0),
    ("ECP5 fmax MHz", ("fmax_mhz",), 1),
    ("time / head us", ("time_per_head_us",), 2),
    ("logic transistors", ("logic_transistors",), 0),
    ("memory bits", ("memory_bits",), 0),
    ("ECP5 LUTs", ("ecp5", "luts"), 0),
    ("ECP5 FFs", ("ecp5", "ffs"), 0),
    ("ECP5 DSPs", ("ecp5", "dsps"), 0),
    ("ECP5 BRAMs", ("ecp5", "rams"), 0),
    ("logic x time (transistor-us)", ("area_x_time",), 0),
    ("critical path (gates)", ("critical_path_gates",), 0),
    ("time / head (gate delays)", ("time_per_head_gate_delays",), 0),
    ("logic x gate delays", ("area_x_gate_delays",), 0),
)


def _knobs_text(cfg):
    return ", ".join(f"{k} {v}" for k, v in cfg.items() if k not in ("mode", "inputs"))


def _iso_table(point):
    lines = ["| design | " + " | ".join(c[0] for c in ISO_COLUMNS) + " |", "|---|---|" + "---:|" * (len(ISO_COLUMNS) - 1)]
    notes = []
    for d, label in iso.LABELS.items():
        side = point.get(d)
        if side is None:
            continue
        if not side.get("reachable"):
            lines.append(f"| {label} | not reachable with the searched knobs |" + " |" * (len(ISO_COLUMNS) - 1))
            continue
        cells = [_knobs_text(side["config"])] + [
            number(v, 1 if isinstance(v, float) and digits == 0 and v != int(v) else digits)
            for v, digits in ((_get(side, path), digits) for _, path, digits in ISO_COLUMNS[1:])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for note in (side.get("pnr"), side.get("error"), _get(side, ("ecp5", "note"))):
            if note:
                notes.append(f"- {label}: {note}.")
    for d, r in point.get("ratios", {}).items():
        lines.append(f"| {iso.LABELS[d]} / baseline | | {number(r['cycles'], 2)} | | {number(r['time_per_head_us'], 2)} | "
                     f"{number(r['logic_transistors'], 2)} | {number(r['memory_bits'], 2)} | | | | | "
                     f"{number(r['area_x_time'], 2)} | | {number(r.get('time_per_head_gate_delays'), 2)} | "
                     f"{number(r.get('area_x_gate_delays'), 2)} |")
    return lines + [""] + notes + ([""] if notes else [])


def iso_lines(doc):
    """The iso-throughput and iso-area section of the Markdown report."""
    points = doc.get("iso_throughput")
    if not points:
        return []
    preset = doc["preset"]
    lines = ["## Iso-throughput: both heads built for the same cycles per head", "",
             f"![area against time per head](compare-{preset}.png)", "",
             "Each design gets the smallest configuration (by a proxy of its datapath) whose steady-state "
             "cycles per head (`head_interval`: heads back to back, source always valid, sink always ready) "
             "are at most the target; then it is synthesized: logic transistors from the generic CMOS flow "
             "with the memories as black boxes, memory bits apart (by kind in the JSON), ECP5 resources and "
             "fmax from nextpnr (LFE5U-85F, out of context). Time per head = cycles / fmax. All three designs "
             "take X: the baseline's Q / K projection and DAMF's inner products are both in hardware.",
             "",
             "A design that does not fit the LFE5U-85F has no fmax. For every design, fitting or not, the "
             "critical path is also given in gates: the longest register-to-register path of the generic CMOS "
             "netlist (Yosys `ltp -noff`, memories removed), and time per head in gate delays = cycles x that "
             "depth: a technology-independent time, from the same netlist as the logic area.", ""]
    for point in points:
        lines += [f"### {point['target_cycles_per_head']:,} cycles per head "
                  f"({point['scores_per_cycle']:.3g} scores per cycle)", ""] + _iso_table(point)
    area = doc.get("iso_area")
    if area:
        lines += ["### Iso-area", "",
                  "The baseline of the slowest point against the fastest DAMF maclaurin rank-1 head whose "
                  "datapath proxy is no larger.", ""] + _iso_table(area)
    return lines


def plot_iso(out_dir):
    """``compare-PRESET.png`` for every ``compare-*.json`` in ``out_dir`` with iso-throughput
    points: logic area against time per head, one panel per preset, the three designs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir = Path(out_dir)
    docs = []
    for path in sorted(out_dir.glob("compare-*.json")):
        doc = json.loads(path.read_text())
        if doc.get("iso_throughput"):
            docs.append(doc)
    styles = {"damf": "C0o-", "damf_base2": "C2^-", "baseline": "C3s-"}
    paths = []
    for target in docs:
        panels = [target] + [d for d in docs if d["preset"] != target["preset"]]
        rows = [(key, label) for key, label in (
            ("time_per_head_us", "time per head (us, ECP5 fmax; designs placed)"),
            ("time_per_head_gate_delays", "time per head (gate delays: cycles x critical path)"))
            if any(p.get(d, {}).get(key) for doc in panels for p in doc["iso_throughput"] for d in iso.LABELS)]
        if not rows:
            continue
        fig, axes = plt.subplots(len(rows), len(panels), figsize=(5.5 * len(panels), 4.2 * len(rows) + 0.4),
                                 squeeze=False)
        for row, (key, xlabel) in enumerate(rows):
            for ax, doc in zip(axes[row], panels):
                for d, label in iso.LABELS.items():
                    pts = [(p[d][key], p[d]["logic_transistors"]) for p in doc["iso_throughput"]
                           if p.get(d, {}).get(key) and p[d].get("logic_transistors")]
                    if pts:
                        pts.sort()
                        ax.plot([t for t, _ in pts], [a for _, a in pts], styles[d], label=label)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel(xlabel)
                ax.set_ylabel("logic transistors (generic CMOS, memories apart)")
                ax.set_title(f"preset {doc['preset']}")
                ax.grid(True, which="both", alpha=0.3)
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(fontsize=8)
                else:
                    ax.text(0.5, 0.5, "no design placed", transform=ax.transAxes, ha="center")
        fig.suptitle("Iso-throughput: area against time per head (lower left is better)")
        fig.tight_layout()
        path = out_dir / f"compare-{target['preset']}.png"
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        paths.append(path)
    return paths


def _entry_lines(entry, header, rule):
    """The table and notes of one comparison entry."""
    lines = []
    if not entry["available"] and "missing" in entry:
        return [f"Not available: no block registered in `damf/blocks.py` plays the "
                f"{' and '.join(entry['missing'])} side.", ""]
    if not entry["available"]:
        return ["Not available: synthesis failed for " + "; ".join(entry["failed"]) + ".", ""]
    lines += [header, rule]
    for side in ("damf", "baseline"):
        s = entry[side]
        lines.append(f"| {'DAMF' if side == 'damf' else 'baseline'} | "
                     + " + ".join(f"`{b}`" for b in s["parts"]) + " | "
                     + " | ".join(number(_get(s, path), digits) for _, path, digits in COLUMNS) + " |")
    ratios = [_ratio(_get(entry["damf"], path), _get(entry["baseline"], path)) for _, path, _ in COLUMNS]
    lines.append("| DAMF / baseline | | " + " | ".join("-" if r is None else f"{r:.2f}" for r in ratios) + " |")
    lines.append("")
    for side in ("damf", "baseline"):
        s = entry[side]
        lines.append(f"- {'DAMF' if side == 'damf' else 'Baseline'} includes: {s['includes']}.")
        lines.append(f"  Cycles: {s['cycles_composition']} = "
                     + " + ".join(f"{v:,} ({k})" for k, v in s["cycles_by_part"].items())
                     + f" = {s['cycles']:,}.")
        lines.append("  Multipliers (`$mul` of the word-level netlist): "
                     + ", ".join(f"`{k}` {v}" for k, v in s["multipliers_by_part"].items()) + ".")
    lines.append("")
    return lines


def _tail_lines(doc):
    preset = doc["preset"]
    lines = []
    sa = doc["shift_accumulate_multipliers"]
    lines += [f"**A' x V without multipliers**: `shift-accumulate` has {sa} `$mul` cells in its "
              "word-level netlist (`proc; flatten; opt -full; stat`), read from the synthesis result.", ""]
    lines += ["## Width conventions", ""] + [f"- {n}" for n in doc["notes"]] + [""]
    if doc.get("sweeps"):
        lines += ["## Sweeps (generic CMOS transistors, cycles per head)", "",
                  "Score and A' x V parts of both sides, fast flows only (no FPGA mapping, no place and "
                  "route); the other parameters stay at the preset's. On the parallelism sweep, DAMF varies "
                  "`parallel` of `score` and `row-stats`, the baseline the `rows x cols` of both arrays.", ""]
        for name, rows in doc["sweeps"].items():
            png = f"compare-{preset}-{name.replace('_', '-')}.png"
            lines += [f"### {name}", "", f"![{name} sweep]({png})", "",
                      "| comparison | side | x | multipliers | transistors (CMOS) | cycles / head | transistors x cycles |",
                      "|---|---|---:|---:|---:|---:|---:|"]
            for r in rows:
                lines.append(f"| {r['comparison']} | {LABELS[(r['side'], r['comparison'])]} | {r['x']} | "
                             f"{r['multipliers']} | {number(r['transistors'])} | {number(r['cycles'])} | "
                             f"{number(r['transistors'] * r['cycles'])} |")
            lines.append("")
    lines += ["## Cycle models against simulation", ""] + [f"- {c}" for c in CYCLE_CHECKS] + [""]
    return lines


CYCLE_CHECKS = (
    "`inner-product`: one token per `beats` cycles is what the Amaranth and cocotb tests drive; its `latency` (4) is "
    "used by the testbench only as a time-out bound, not asserted exactly (open).",
    "`systolic-qk`: `cycles`, `cycles_per_tile`, `latency` measured equal on Icarus and Verilator by the cocotb "
    "test `cycles_per_tile` (`sim/test_systolic_qk.py`, table in docs/systolic-qk.md).",
    "`score`: `cycles(Lq, Lk)` measured in the Amaranth simulator by `tests/test_score.py` and in cocotb.",
    "`row-stats`: `setup_cycles` and `row_cycles` measured by `tests/test_row_stats.py::test_setup_cycles`.",
    "`shift-accumulate`: `cycles(rows)` measured by `tests/test_shift_accumulate.py`.",
    "`softmax`: `row_cycles` measured by `tests/test_softmax.py::test_rtl_cycles` and the cocotb test `cycles_per_row`.",
    "`systolic-av`: `cycles` measured by the cocotb cycle test (`sim/test_systolic_av.py`).",
    "heads: `damf-head.cycles_per_head` and `baseline-head.cycles` are measured by the cocotb tests "
    "`cycles_per_head` of `sim/tb_damf_head.py` and `sim/tb_baseline_head.py`.",
)


def width_notes(cfgs):
    ip, sc, qk, sm, av, sa = (cfgs[b] for b in ("inner-product", "score", "systolic-qk", "softmax",
                                                  "systolic-av", "shift-accumulate"))
    return [
        f"Same shape on both sides: seq_len L = {sc.seq_len}, d_head = {qk.d_head} "
        f"(DAMF `shift-accumulate` d_head = {sa.d_head}, `systolic-av` d_head = {av.d_head}).",
        f"8-bit inputs: DAMF X and u, v are {ip.x_width} / {ip.w_width} bits (d_model = {ip.d_model}, "
        f"rank = {ip.rank}); baseline Q, K are {qk.q_width} / {qk.k_width} bits; V is {sa.v_width} bits (DAMF) "
        f"and {av.k_width} bits (baseline).",
        f"DAMF's p and q are the {ip.out_width}-bit inner products of X requantized to {sc.pq_width} bits, "
        f"so its scores are {sc.score_width} bits, against {qk.acc_width}-bit scores of the 8-bit Q, K in the "
        "baseline; in these part comparisons the baseline's own projection and requantization are not "
        "counted (the iso-throughput heads count both sides' projections).",
        f"Baseline probabilities A' are {sm.prob_width} bits (signed {av.q_width} bits into systolic-av); DAMF "
        f"weights are powers of two, shifts of 0 .. weight_frac = {sa.weight_frac}.",
        f"Parallelism at the preset: DAMF score parallel = {sc.parallel} ({sc.parallel * sc.rank} score "
        f"multipliers of {sc.pq_width} x {sc.pq_width} bits); baseline {qk.rows} x {qk.cols} arrays "
        f"({qk.rows * qk.cols} multipliers of {qk.q_width} x {qk.k_width} bits each); the parallelism sweep "
        "shows both sides over a range.",
    ]


def have_matplotlib():
    """Whether the plots can be drawn: matplotlib is optional (extras ``plots`` and ``eval``)."""
    return importlib.util.find_spec("matplotlib") is not None


def write_reports(doc, out_dir, *, plots=True, progress=print):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    preset = doc["preset"]
    if plots and (doc.get("sweeps") or doc.get("iso_throughput")) and not have_matplotlib():
        progress("compare: plots skipped: matplotlib is not installed (pip install 'damf-attention[plots]')")
        plots = False
    paths = [out_dir / f"compare-{preset}.json", out_dir / f"compare-{preset}.md"]
    if plots and doc.get("sweeps"):
        paths += plot_sweeps(preset, doc["sweeps"], out_dir)
    paths[0].write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    paths[1].write_text(markdown(doc))
    if plots and doc.get("iso_throughput"):
        paths += plot_iso(out_dir)
    return paths


BASE2_COMPARISONS = ("axv", "head")     # the comparisons whose DAMF side depends on the mode


def base2_head(damf):
    """The preset's DAMF head in mode base2, with ``c`` from
    :func:`damf.golden.damf_head_block.calibrated_base2`: the preset has no real-valued score
    scale, so ``c`` is chosen to spread random heads over the exponents (realistic threshold
    constants; area hardly depends on them)."""
    return calibrated_base2(damf)


def base2_doc(cfgs, results):
    """The A' x V and head comparisons with the DAMF side in mode base2, and ``c``."""
    entries = compare(cfgs, results)
    head = cfgs["damf-head"]
    return {"c_int": head.c_int, "c_frac": head.c_frac,
            "comparisons": {name: entries[name] for name in BASE2_COMPARISONS if name in entries}}


def build_doc(preset, cfgs, results, sweeps):
    comparisons = compare(cfgs, results)
    return {
        "preset": preset,
        "shape": {"seq_len": cfgs["score"].seq_len, "d_head": cfgs["systolic-qk"].d_head,
                  "d_model": cfgs["inner-product"].d_model, "rank": cfgs["score"].rank,
                  "parallel": cfgs["score"].parallel, "rows": cfgs["systolic-qk"].rows,
                  "cols": cfgs["systolic-qk"].cols},
        "comparisons": comparisons,
        "shift_accumulate_multipliers": results["shift-accumulate"]["coarse"]["multipliers"],
        "notes": width_notes(cfgs),
        "sweeps": sweeps,
    }


def run_iso(preset, cache, *, pnr=True, jobs=2, pnr_timeout=None, progress=print):
    """The iso-throughput points and the iso-area point of ``preset`` (``damf/iso.py``): the
    configurations chosen, synthesized (CMOS and ECP5 flows), reported."""
    points = iso.iso_configs(preset, progress=progress)
    area = iso.iso_area_configs(preset, points)
    todo = [(n, d, cfg) for n, p in enumerate(points + ([area] if area else []))
            for d, cfg in p["configs"].items() if cfg is not None]
    for n, d, cfg in todo:
        progress(f"  iso ({preset}) point {n + 1}: {iso.LABELS[d]}: {iso.knobs(cfg)}, "
                 f"{iso._interval(cfg):,} cycles per head")
    results = synthesize_many([cfg for _, _, cfg in todo], cache, full=True, ice40=False, pnr=pnr, jobs=jobs,
                              pnr_timeout=pnr_timeout, progress=progress)
    by_point = {}
    for (n, d, _), r in zip(todo, results):
        by_point.setdefault(n, {})[d] = r
    out = [iso.point_report(p, by_point.get(n, {})) for n, p in enumerate(points)]
    area_out = iso.point_report(area, by_point.get(len(points), {})) if area else None
    return out, area_out


def _needed_parts(cfgs):
    """The part configurations of the comparisons, in order."""
    return [cfgs[b] for parts in comparisons().values() for side in parts for b in side]


def _needed_base2(cfgs_b2):
    """The DAMF parts whose configuration depends on the mode, from base2 part configurations."""
    comps = comparisons()
    return [cfgs_b2[b] for name in BASE2_COMPARISONS if name in comps for b in comps[name][0]]


def planned_runs(preset, *, iso_points=True, ice40=True, base2_parts=True):
    """The full-flow runs :func:`run` makes beyond the preset's own blocks, so that ``damf
    synth`` can queue them with the blocks: ``[(label, cfg, with_ice40)]`` (the parts, which
    are mostly the preset's blocks themselves, the base2 parts, then every design of the iso-throughput and iso-area points, which run without iCE40)."""
    damf, base = head_configs(preset)
    cfgs = part_configs(damf, base)
    # the parts (at bert-base some differ from the preset's blocks: damf synth skips the same)
    runs = [(f"part {cfg.block}", cfg, ice40) for cfg in _needed_parts(cfgs)]
    if base2_parts:
        runs += [(f"base2 {cfg.block}", cfg, ice40) for cfg in _needed_base2(part_configs(base2_head(damf), base))]
    if iso_points:
        points = iso.iso_configs(preset, progress=lambda text: None)
        area = iso.iso_area_configs(preset, points)
        runs += [(f"iso point {n + 1} {d}", cfg, False) for n, p in enumerate(points + ([area] if area else []))
                 for d, cfg in p["configs"].items() if cfg is not None]
    return runs


def run(*, preset, results, out, build, pnr=True, fpga=True, sweep=True, jobs=None, progress=print, grid=None,
        pnr_timeout=None, iso_points=True, ice40=True, parts_pnr=None, iso_pnr=None, base2_parts=True):
    """Write the comparison of ``preset`` from the per-block ``results`` of ``damf synth``.

    Parts whose configuration (derived from the two heads) is not among ``results`` are
    synthesized here with the same flows (cached under ``build/compare``); ``fpga=False``
    runs only the fast flows for them (no FPGA columns).  ``parts_pnr`` (default: ``pnr``)
    places and routes the parts, ``iso_pnr`` (default: ``pnr``) the iso-throughput designs;
    ``base2_parts=False`` leaves out the part tables in mode base2.
    """
    parts_pnr = pnr if parts_pnr is None else parts_pnr
    iso_pnr = pnr if iso_pnr is None else iso_pnr
    start = time.monotonic()
    jobs = jobs or min(2, os.cpu_count() or 1)
    cache = Path(build) / "compare"
    damf, base = head_configs(preset)
    cfgs = part_configs(damf, base)
    needed = _needed_parts(cfgs)
    progress(f"compare ({preset}): {len(needed)} parts")
    full = synthesize_many(needed, cache, full=fpga, pnr=parts_pnr, jobs=jobs, known=results, progress=progress,
                           pnr_timeout=pnr_timeout, ice40=ice40)
    by_block = {cfg.block: r for cfg, r in zip(needed, full)}
    sweeps = (run_sweeps(preset, cache, jobs=jobs, known=list(results) + full, progress=progress, **(grid or {}))
              if sweep else {})
    doc = build_doc(preset, cfgs, by_block, sweeps)
    if base2_parts:
        # the base2 mode: only row-stats, shift-accumulate and the head differ (the score path does not)
        cfgs_b2 = part_configs(base2_head(damf), base)
        needed_b2 = _needed_base2(cfgs_b2)
        progress(f"compare ({preset}): {len(needed_b2)} base2 parts")
        full_b2 = synthesize_many(needed_b2, cache, full=fpga, pnr=parts_pnr, jobs=jobs, known=results,
                                  progress=progress, pnr_timeout=pnr_timeout, ice40=ice40)
        doc["base2"] = base2_doc(cfgs_b2, {**by_block, **{c.block: r for c, r in zip(needed_b2, full_b2)}})
    if iso_points and fpga:
        doc["iso_throughput"], doc["iso_area"] = run_iso(preset, cache, pnr=iso_pnr, jobs=jobs, pnr_timeout=pnr_timeout,
                                                         progress=progress)
    paths = write_reports(doc, out, progress=progress)
    progress(f"wrote {', '.join(str(p) for p in paths)} ({time.monotonic() - start:.0f} s)")
    return doc
