"""A toy block with everything a block brings, in one file: a configuration, an Amaranth
component, a golden model with its vector-file functions, and a cocotb testbench.

``tests/test_registry.py`` registers it in ``damf.blocks.BLOCKS`` at run time and checks that
every command finds it there; nothing else in the project names it.  The block negates a
stream of signed integers, one per cycle, with one register stage: ``y = -x``.
"""

import json
import os
from dataclasses import dataclass, field
from functools import cache

import cocotb
from amaranth import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from damf.config import BlockConfig
from damf.golden import vectors
from damf.golden.quant import int_range
from damf.golden.vector_checks import VectorSpec, check_keys, check_matrix
from damf.hdl.payload import pack, unpack
from damf.sim.streams import BlockTB, cocotb_timeout

NAME = "toy-negate"


@dataclass(frozen=True, repr=False)
class ToyConfig(BlockConfig):
    """``toy-negate``: ``y = -x`` for signed ``width``-bit ``x``."""

    block = NAME

    width: int = field(default=8, metadata={"min": 2, "max": 32, "doc": "bits of a signed input x"})

    @property
    def out_width(self):
        """Bits of ``y``: ``-(-2^(width-1))`` needs one more."""
        return self.width + 1

    latency = 1
    """Cycles from an input's handshake to ``o.valid``."""

    def derived(self):
        return {"out_width": self.out_width, "latency": self.latency}


@cache
def input_layout(cfg):
    return data.StructLayout({"x": signed(cfg.width)})


@cache
def output_layout(cfg):
    return data.StructLayout({"y": signed(cfg.out_width)})


class ToyNegate(wiring.Component):
    """``o.y = -i.x``, one per cycle, one register stage; ``o`` holds while stalled."""

    def __init__(self, cfg):
        self._cfg = cfg
        super().__init__({"i": In(stream.Signature(input_layout(cfg))),
                          "o": Out(stream.Signature(output_layout(cfg)))})

    def elaborate(self, platform):
        m = Module()
        take = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(take)
        with m.If(take):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.y.eq(-self.i.payload.x)]
        return m


# ---- golden model and vector files ----------------------------------------------------------

def negate(cfg, x):
    """The golden model: ``-x`` of every input."""
    return [-v for v in x]


def _generate(cfg, rng, count):
    lo, hi = int_range(cfg.width)
    return {"x": [[lo], [hi], [0], [-1], [1]] + [[int(v)] for v in rng.integers(lo, hi, count, endpoint=True)]}


def _expected(cfg, inputs):
    return {"y": [[v] for v in negate(cfg, [row[0] for row in inputs["x"]])]}


def _check(cfg, inputs, expected, where):
    check_keys(inputs, ["x"], f"{where}: inputs")
    n = check_matrix(inputs["x"], None, 1, cfg.width, f"{where}: inputs.x")
    if expected is not None:
        check_keys(expected, ["y"], f"{where}: expected")
        check_matrix(expected["y"], n, 1, cfg.out_width, f"{where}: expected.y")


VECTORS = VectorSpec(model=negate, generate=_generate, expected=_expected, check=_check)


# ---- cocotb testbench -------------------------------------------------------------------------

class TB(BlockTB):
    config_cls = ToyConfig


@cocotb.test(skip="DAMF_VECTORS" not in os.environ, **cocotb_timeout())
async def vectors_file(dut):
    """Replay a vector file; write what the RTL produced to ``DAMF_RESULTS``.  (The registry
    of this process does not hold the toy, so the file is read with ``golden.vectors.read``.)"""
    tb = TB(dut)
    await tb.reset()
    doc, _ = vectors.read(os.environ["DAMF_VECTORS"], block=NAME)
    for (x,) in doc["inputs"]["x"]:
        tb.i.send(pack(input_layout(tb.cfg), {"x": x}))
    await tb.wait_results(len(doc["inputs"]["x"]), 4 * len(doc["inputs"]["x"]) + 20)
    got = [[unpack(output_layout(tb.cfg), word)["y"]] for word in tb.out.received]
    with open(os.environ["DAMF_RESULTS"], "w") as f:
        json.dump({"y": got}, f)
