"""cocotb testbench of the AXI4-Stream wrapper (``damf generate BLOCK --axis``, ``hdl/axis.py``)
around ``damf-head`` and ``inner-product``, driven by cocotbext-axi and checked bit for bit
against the golden models.

The AXI byte layout is built here from the golden values and the block's payload layouts
(packed by ``hdl.payload``), as docs/integration.md documents it -- not from the wrapper's
code: ``tdata`` is the payload without ``last`` (lanes packed from bit 0, element 0 lowest,
two's complement), zero-padded to whole bytes, little-endian bytes (AXI4-Stream byte 0 =
``tdata[7:0]``); ``tlast`` is ``last``.
Input pad bits are sent as random noise (the wrapper ignores them); output pad bits must be 0.

Environment (set by ``sim/test_axis.py``): ``DAMF_CONFIG`` (``BLOCK.json``), ``DAMF_SEED``,
``DAMF_COUNT`` (random heads / tokens), ``DAMF_TIMEOUT_MS``.
"""

import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from amaranth.lib import data
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from ..blocks import get_block
from ..golden import vectors as golden_vectors
from ..golden.damf_head_block import damf_head_block, heads, weight_vectors
from ..golden.inner_product import inner_product
from ..hdl.damf_head import unpack_output, v_words, x_beats
from ..hdl.inner_product import pack_tokens, pack_weight_words
from ..hdl.inner_product import unpack_output as ip_unpack_output
from .common_tests import random_vectors_test
from .streams import cocotb_timeout, random_pattern

TIMEOUT = cocotb_timeout(40)


def tdata_bytes(bits):
    """Bytes of a ``tdata`` carrying ``bits`` payload bits (whole bytes, at least one)."""
    return max(1, -(-bits // 8))


class AxisTB:
    """Clock on ``aclk``, ``aresetn``, one cocotbext-axi source per input, a sink on ``m_axis_o``."""

    def __init__(self, dut, cfg, *, idle, backpressure, inputs):
        self.dut, self.cfg = dut, cfg
        self.seed = int(os.environ.get("DAMF_SEED", "1"))
        self.rng = random.Random(self.seed)
        self.nprng = np.random.default_rng(self.seed)
        dut._log.info("seed %d (rerun with DAMF_SEED=%d), %r, idle %.2f, backpressure %.2f",
                      self.seed, self.seed, self.cfg, idle, backpressure)
        cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
        self.src = {}
        for name in inputs:
            src = AxiStreamSource(AxiStreamBus.from_prefix(dut, f"s_axis_{name}"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
            src.set_pause_generator(random_pattern(self.rng, idle))
            src.log.setLevel(logging.WARNING)  # not a line per frame
            self.src[name] = src
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_o"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        self.sink.set_pause_generator(random_pattern(self.rng, backpressure))
        self.sink.log.setLevel(logging.WARNING)

    async def reset(self):
        """``aresetn`` low for two cycles (active low, synchronous)."""
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 2)
        self.dut.aresetn.value = 1
        await RisingEdge(self.dut.aclk)

    def frame(self, name, words, data_bits):
        """One AXI frame of ``words`` (``data_bits`` each) on ``s_axis_name``, random pad bits
        above them; ``tlast`` on its last beat (cocotbext-axi)."""
        n = tdata_bytes(data_bits)
        pad = 8 * n - data_bits
        beats = [(w | (self.rng.getrandbits(pad) << data_bits if pad else 0)).to_bytes(n, "little")
                 for w in words]
        self.src[name].send_nowait(AxiStreamFrame(b"".join(beats)))

    async def receive(self, count, data_bits, budget):
        """``count`` output beats as ``(data, tlast)``; the pad bits above ``data_bits`` must be 0.
        A stall (nothing for ``budget`` cycles) fails with how many arrived."""
        n, out = tdata_bytes(data_bits), []
        while len(out) < count:
            try:
                frame = await with_timeout(self.sink.recv(), budget * 10, "ns")
            except SimTimeoutError:
                raise AssertionError(f"{len(out)} of {count} results, then nothing for {budget} cycles: "
                                     f"stalled (seed {self.seed})") from None
            data = bytes(frame.tdata)
            assert len(data) % n == 0, f"a frame of {len(data)} bytes, not whole {n}-byte beats"
            beats = [int.from_bytes(data[i:i + n], "little") for i in range(0, len(data), n)]
            for j, beat in enumerate(beats):
                assert beat >> data_bits == 0, \
                    f"beat {len(out)}: pad bits {beat >> data_bits:#x} above bit {data_bits} not 0 (seed {self.seed})"
                out.append((beat, j == len(beats) - 1))
        return out


def load_config():
    """The configuration in ``DAMF_CONFIG`` (a ``BLOCK.json``), of the block it names."""
    with open(os.environ["DAMF_CONFIG"]) as f:
        block = json.load(f)["block"]
    return get_block(block).config_cls.from_file(os.environ["DAMF_CONFIG"])


def payload_has_last(cfg, name):
    """Does stream ``name`` of ``cfg``'s block carry a ``last`` field (then tlast is it)?"""
    component = get_block(cfg.block).build(cfg)
    component._MustUse__silence = True  # only its signature is read
    shape = component.signature.members[name].signature.members["payload"].shape
    return isinstance(shape, data.StructLayout) and "last" in {n for n, _ in shape}


# ---- damf-head --------------------------------------------------------------------------------

async def run_damf_head(dut, idle, backpressure):
    cfg = load_config()
    inputs = ["x", "v"] + (["y"] if cfg.cross else []) + (["w"] if cfg.weights == "runtime" else [])
    tb = AxisTB(dut, cfg, idle=idle, backpressure=backpressure, inputs=inputs)
    await tb.reset()
    x_bits, v_bits = cfg.lanes * cfg.x_width, cfg.d_head * cfg.v_width
    z_bits = cfg.d_head * cfg.out_width
    u, vw = weight_vectors(cfg, tb.nprng)
    if "w" in tb.src:
        # a weight load: beats words, no `last` field (tlast ignored), before the heads
        ip = cfg.inner_product
        tb.frame("w", pack_weight_words(ip, u, vw), 2 * ip.rank * ip.lanes * ip.w_width)
        await tb.src["w"].wait()
    expected, head_last = [], []
    for X, V in heads(cfg, tb.nprng, int(os.environ.get("DAMF_COUNT", "12"))):
        xw, vv = x_beats(cfg, X), v_words(cfg, V)
        # a head is one frame on x and one on v: `last` (the payload's top bit) only on its end
        assert [w >> x_bits for w in xw] == [0] * (len(xw) - 1) + [1]
        assert [w >> v_bits for w in vv] == [0] * (len(vv) - 1) + [1]
        tb.frame("x", [w & ((1 << x_bits) - 1) for w in xw], x_bits)
        if cfg.cross:
            tb.frame("y", [w & ((1 << x_bits) - 1) for w in xw], x_bits)
        tb.frame("v", [w & ((1 << v_bits) - 1) for w in vv], v_bits)
        rows = damf_head_block(cfg, X, V, u, vw, Y=X if cfg.cross else None).tolist()
        expected += rows
        head_last += [False] * (len(rows) - 1) + [True]
    got = await tb.receive(len(expected), z_bits, 40 * (cfg.seq_len * cfg.inner_product.beats + 20))
    o_last = payload_has_last(cfg, "o")
    for r, ((beat, tlast), want, end) in enumerate(zip(got, expected, head_last)):
        assert unpack_output(cfg, beat) == want, \
            f"Z row {r}: {unpack_output(cfg, beat)}, expected {want} (seed {tb.seed})"
        want_last = end if o_last else True
        assert tlast == want_last, f"Z row {r}: tlast {int(tlast)}, expected {int(want_last)} (seed {tb.seed})"
    await ClockCycles(dut.aclk, 20)
    assert tb.sink.empty(), f"more than {len(expected)} rows (seed {tb.seed})"
    dut._log.info("%d Z rows over AXI4-Stream match the golden model (tlast %s)", len(got),
                  "on each head's last row" if o_last else "on every row")


# ---- inner-product ----------------------------------------------------------------------------

async def run_inner_product(dut, idle, backpressure):
    cfg = load_config()
    tb = AxisTB(dut, cfg, idle=idle, backpressure=backpressure,
                inputs=["i"] + (["w"] if cfg.weights == "runtime" else []))
    await tb.reset()
    x_bits, w_bits = cfg.lanes * cfg.x_width, 2 * cfg.rank * cfg.lanes * cfg.w_width
    if cfg.weights == "runtime":
        u, v = (m.tolist() for m in golden_vectors.random_weights(cfg, tb.nprng))
        tb.frame("w", pack_weight_words(cfg, u, v), w_bits)
        await tb.src["w"].wait()
    else:
        u, v = cfg.fixed_vectors()
    tokens = golden_vectors.edge_tokens(cfg) + \
        golden_vectors.random_tokens(cfg, tb.nprng, int(os.environ.get("DAMF_COUNT", "200"))).tolist()
    beats = pack_tokens(cfg, tokens)
    # i has no `last` field: tlast is ignored, so the beats go in frames of random lengths
    while beats:
        n = tb.rng.randint(1, 2 * cfg.beats + 1)
        tb.frame("i", beats[:n], x_bits)
        beats = beats[n:]
    p, q = inner_product(cfg, tokens, u, v)
    got = await tb.receive(len(tokens), 2 * cfg.rank * cfg.out_width, 40 * (cfg.beats + cfg.latency) + 1000)
    for t, ((beat, tlast), ep, eq) in enumerate(zip(got, p.tolist(), q.tolist())):
        gp, gq = ip_unpack_output(cfg, beat)
        assert (gp, gq) == (ep, eq), f"token {t}: p={gp} q={gq}, expected p={ep} q={eq} (seed {tb.seed})"
        assert tlast, f"token {t}: tlast 0 on a one-beat result (seed {tb.seed})"
    await ClockCycles(dut.aclk, 20)
    assert tb.sink.empty(), f"more than {len(tokens)} results (seed {tb.seed})"
    dut._log.info("%d results over AXI4-Stream match the golden model", len(got))


async def run(dut, idle, backpressure):
    block = load_config().block
    await {"damf-head": run_damf_head, "inner-product": run_inner_product}[block](dut, idle, backpressure)


random_vectors = random_vectors_test(
    run, timeout=TIMEOUT,
    doc="Under each mix of random pauses on every source (cocotbext-axi pause generators) and on the sink "
        "(tready low): none, sources only, sink only, both.")
