"""Iso-throughput comparison: DAMF and the baseline head built for the same cycles per head.

For each throughput point (a target ``T`` of cycles per head) every design is given the
smallest configuration, by a proxy of its datapath area, whose steady-state cycles per head
(``head_interval``: heads queued back to back, sources always valid, sink always ready) are
at most ``T``; the chosen configurations are then synthesized with the flows of
``damf/synth.py`` and reported in **time** (cycles / ECP5 fmax), logic area (generic CMOS,
memories as black boxes), memory bits by kind, ECP5 resources and area x time.

The designs (all taking ``X``, so both pay for their projections the same way):

* ``damf``: the DAMF head in the paper's mode ``maclaurin`` at rank 1;
* ``damf_base2``: the DAMF head in mode ``base2`` at full rank (``rank = d_head``), the
  configuration ``damf eval`` finds faithful to a model trained without DAMF;
* ``baseline``: the conventional head with ``inputs = x`` (the Q / K projection in hardware).

The knobs searched are the ones that set throughput: ``lanes`` (elements of ``X`` taken per
cycle: the load of a head is ``L * ceil(d_model / lanes)`` cycles on both sides) and
``parallel`` (DAMF: keys per cycle from the score unit to ``A' x V``) or ``rows x cols``
(baseline: both arrays; the softmax takes ``cols`` scores per cycle).  Everything else is
the preset's.  The proxy (:func:`proxy_area`) only ranks candidates; every reported area is
read from the tools.
"""

import dataclasses
import functools

from .config import BaselineHeadConfig
from .golden.damf_head_block import calibrated_base2
from .config import DamfHeadBlockConfig

__all__ = ["DESIGNS", "TARGETS", "targets", "proxy_area", "choose", "iso_configs", "iso_area_configs",
           "side_report", "point_report"]

DESIGNS = ("damf", "damf_base2", "baseline")
LABELS = {"damf": "DAMF maclaurin, rank 1", "damf_base2": "DAMF base2, full rank",
          "baseline": "baseline (inputs = x)"}

# Target cycles per head.  The load of a head's X, L * ceil(d_model / lanes) cycles, is
# what both sides share, so the targets are loads at whole lanes: at bert-base 2, 3 and 6
# lanes (49,152, 32,768 and 16,384 cycles; 1/3, 1/2 and 1 score a cycle).  Higher rates are
# a matter of scale: the full-rank projections (2 L d_model d_head = 12.6M MACs a head, on
# both the baseline and the base2 sides) need 768 multipliers at 16,384 cycles a head, about
# what the generic CMOS flow and one LFE5U-85F take in the time `make synth` is given.
# At the default preset (L = 8) the ranges barely meet: DAMF's slowest head is its load at one
# lane (128 cycles), the baseline's fastest 75 (an 8 x 8 array; its pipeline latencies, not
# its work, set that), so the third point is one only DAMF reaches.
TARGETS = {"default": (128, 80, 64), "bert-base": (49152, 32768, 16384)}
# A design meets a target with at most this much more: the knobs are whole numbers, so no
# design hits a target exactly; two designs that meet it are within 2 x TOLERANCE of each other
# from above, and the search takes the cheapest, so they end close below it.
TOLERANCE = 0.05
ARRAY_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def targets(preset, seq_len):
    """``[(scores_per_cycle, target_cycles_per_head)]`` of a preset (``L^2 / T`` scores a cycle)."""
    return [(seq_len * seq_len / t, t) for t in TARGETS.get(preset, TARGETS["default"])]


# ---- the designs and their knobs ---------------------------------------------------------------

def base_configs(preset):
    """``{design: configuration}`` at the preset's own knobs."""
    damf = DamfHeadBlockConfig.from_preset(preset)
    damf = dataclasses.replace(damf, mode="maclaurin", rank=1)
    base2 = calibrated_base2(dataclasses.replace(damf, rank=damf.d_head))   # pq_shift does not depend on rank
    # two banks of Q, K, V as DAMF has two of p, q, V: the next head loads while this one computes
    baseline = dataclasses.replace(BaselineHeadConfig.from_preset(preset), inputs="x", banks=2)
    return {"damf": damf, "damf_base2": base2, "baseline": baseline}


def lane_choices(d_model):
    """Every ``lanes`` that gives a distinct ``beats = ceil(d_model / lanes)``, ascending."""
    return sorted({-(-d_model // b) for b in range(1, d_model + 1)})


def parallel_choices(seq_len):
    """Every ``parallel`` that gives a distinct ``ceil(L / parallel)``, ascending."""
    return sorted({-(-seq_len // b) for b in range(1, seq_len + 1)})


def proxy_area(cfg):
    """A proxy of datapath area, only to rank candidate configurations: the bit-products of the
    multipliers (``a x b`` bits each) plus, for DAMF, one adder bit per key, lane and bit of ``V``
    in the shift-add tree."""
    if isinstance(cfg, DamfHeadBlockConfig):
        ip = 2 * cfg.lanes * cfg.rank * cfg.x_width * cfg.w_width
        score = cfg.parallel * cfg.rank * cfg.pq_width ** 2
        shift_add = cfg.parallel * cfg.d_head * (cfg.v_width + cfg.weight_frac)
        return ip + score + shift_add
    qk, av = cfg.qk, cfg.av
    projection = 2 * cfg.lanes * cfg.d_head * cfg.x_width * cfg.w_width if cfg.inputs == "x" else 0
    return projection + cfg.rows * cfg.cols * (qk.q_width * qk.k_width + av.q_width * av.k_width)


def knobs(cfg):
    if isinstance(cfg, DamfHeadBlockConfig):
        return {"lanes": cfg.lanes, "parallel": cfg.parallel, "rank": cfg.rank, "mode": cfg.mode}
    return {"lanes": cfg.lanes, "rows": cfg.rows, "cols": cfg.cols, "inputs": cfg.inputs}


@functools.lru_cache(maxsize=None)
def _interval(cfg):
    try:
        return cfg.head_interval
    except Exception:       # a candidate the configuration refuses (ConfigError) is no candidate
        return None


def _min_lanes(make, lanes, target):
    """The smallest ``lanes`` in the ascending ``lanes`` whose ``make(lanes)`` meets ``target``
    (the interval falls as lanes grow), or None."""
    lo, hi, best = 0, len(lanes) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        cfg = make(lanes[mid])
        iv = _interval(cfg) if cfg is not None else None
        if iv is not None and iv <= target:
            best, hi = cfg, mid - 1
        else:
            lo = mid + 1
    return best


def _replace(cfg, **kw):
    try:
        return dataclasses.replace(cfg, **kw)
    except Exception:
        return None


@functools.lru_cache(maxsize=None)       # damf synth asks for the same points twice
def choose(cfg, target):
    """The candidate of ``cfg``'s design with the smallest :func:`proxy_area` whose
    ``head_interval`` is at most ``target * (1 + TOLERANCE)`` (ties: the slower one), or None if
    none reaches it."""
    target = target * (1 + TOLERANCE)
    lanes = lane_choices(cfg.d_model)
    if isinstance(cfg, DamfHeadBlockConfig):
        others = [{"parallel": p} for p in parallel_choices(cfg.seq_len)]
    else:
        cols_max = min(cfg.seq_len, cfg.d_head)
        others = [{"rows": r, "cols": c} for r in ARRAY_SIZES if r <= cfg.seq_len
                  for c in ARRAY_SIZES if c <= cols_max]
    best = None
    for kw in others:
        cand = _min_lanes(lambda n, kw=kw: _replace(cfg, lanes=n, **kw), lanes, target)
        if cand is None:
            continue
        key = (proxy_area(cand), -_interval(cand))
        if best is None or key < best[0]:
            best = (key, cand)
    return None if best is None else best[1]


def iso_configs(preset, progress=print):
    """``[{"scores_per_cycle", "target_cycles_per_head", "configs": {design: cfg or None}}]``."""
    bases = base_configs(preset)
    length = bases["damf"].seq_len
    points = []
    for s, target in targets(preset, length):
        progress(f"  iso-throughput ({preset}): choosing configurations for {target:,} cycles per head "
                 f"({s:.3g} scores per cycle) ...")
        points.append({"scores_per_cycle": s, "target_cycles_per_head": target,
                       "configs": {d: choose(cfg, target) for d, cfg in bases.items()}})
    return points


def iso_area_configs(preset, points):
    """One iso-area point: the baseline of the slowest throughput point against the fastest DAMF
    maclaurin rank-1 configuration whose proxy area does not exceed the baseline's.
    ``{"configs": {"damf": cfg, "baseline": cfg}}`` or None."""
    base = next((p["configs"]["baseline"] for p in points if p["configs"]["baseline"] is not None), None)
    if base is None:
        return None
    best = _fastest_within(base_configs(preset)["damf"], proxy_area(base))
    return None if best is None else {"configs": {"damf": best, "baseline": base}}


@functools.lru_cache(maxsize=None)
def _fastest_within(damf, budget):
    """The DAMF configuration (knobs ``lanes``, ``parallel``) with the fewest cycles per head
    whose proxy area is at most ``budget`` (ties: the smaller), or None."""
    best = None
    for n in lane_choices(damf.d_model):
        for p in parallel_choices(damf.seq_len):
            cand = _replace(damf, lanes=n, parallel=p)
            if cand is None or proxy_area(cand) > budget:
                continue
            iv = _interval(cand)
            if iv is not None and (best is None or (iv, proxy_area(cand)) < best[0]):
                best = ((iv, proxy_area(cand)), cand)
    return None if best is None else best[1]


# ---- reports -------------------------------------------------------------------------------------

def side_report(cfg, result):
    """One design of one point: its knobs, cycles, the synthesis figures and time per head."""
    if cfg is None:
        return {"reachable": False}
    ecp5 = result.get("ecp5", {}) if result else {}
    # routed fmax; else nextpnr's estimate after placement when routing was stopped by the
    # time limit (said in fmax_source); else none
    fmax, source = ecp5.get("fmax_mhz"), "ECP5 place and route"
    if fmax is None and ecp5.get("fmax_placement_estimate_mhz"):
        fmax, source = ecp5["fmax_placement_estimate_mhz"], "ECP5 placement estimate (routing stopped at the time limit)"
    cycles = _interval(cfg)
    single = cfg.cycles_per_head(cfg.seq_len) if isinstance(cfg, DamfHeadBlockConfig) else cfg.cycles
    out = {"reachable": True, "block": cfg.block, "config": knobs(cfg), "cycles_per_head": cycles,
           "cycles_single_head": single, "proxy_area": proxy_area(cfg)}
    if result is None or "error" in result:
        out["error"] = (result or {}).get("error", "not synthesized")
        return out
    mem = result["memory"]
    logic = result["cmos"]["transistors"]
    time_us = cycles / fmax if fmax else None
    depth = result["cmos"].get("critical_path_gates")
    out.update({
        "fmax_mhz": fmax, "fmax_source": source if fmax else None, "time_per_head_us": time_us,
        "critical_path_gates": depth,
        "time_per_head_gate_delays": cycles * depth if depth else None,
        "area_x_gate_delays": logic * cycles * depth if depth else None,
        "area_x_cycles": logic * cycles,
        "logic_transistors": logic, "memory_bits": mem["bits"], "memory_bits_by_kind": mem["bits_by_kind"],
        "memory_transistors": mem["transistors"],
        "area_x_time": logic * time_us if time_us else None,
        "area_with_memory_x_time": (logic + mem["transistors"]) * time_us if time_us else None,
        "multipliers": result["coarse"]["multipliers"],
        "ecp5": {k: ecp5.get(k) for k in ("luts", "ffs", "dsps", "rams", "lutrams", "note") if k in ecp5},
    })
    if ecp5.get("pnr"):
        out["pnr"] = ecp5["pnr"]
    elif fmax is None:
        out["pnr"] = "not placed and routed in this run (--no-pnr, or a preset that leaves it out: --place-iso)"
    return out


def _ratio(a, b):
    return None if a is None or not b else a / b


def point_report(point, results):
    """A point of ``iso_throughput``: every design's :func:`side_report` and, for each DAMF
    design, its ratios to the baseline."""
    sides = {d: side_report(cfg, results.get(d)) for d, cfg in point["configs"].items()}
    out = {k: v for k, v in point.items() if k != "configs"}
    out.update(sides)
    base = sides.get("baseline", {})
    out["ratios"] = {}
    for d in ("damf", "damf_base2"):
        s = sides.get(d)
        if not s or not s.get("reachable") or not base.get("reachable"):
            continue
        cyc = _ratio(s["cycles_per_head"], base["cycles_per_head"])
        out["ratios"][d] = {
            "cycles": cyc, "cycles_within_10_percent": cyc is not None and abs(cyc - 1) <= 0.10,
            **{k: _ratio(s.get(k), base.get(k)) for k in
               ("time_per_head_us", "logic_transistors", "memory_bits", "area_x_time", "area_with_memory_x_time",
                "time_per_head_gate_delays", "area_x_gate_delays", "area_x_cycles")},
        }
    return out
