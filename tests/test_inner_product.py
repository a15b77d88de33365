"""Fast Amaranth-simulator tests of the inner-product unit (the cocotb ones are in sim/)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from damf.config import InnerProductConfig
from damf.golden.inner_product import inner_product
from damf.golden.vectors import edge_tokens, random_tokens, random_weights
from damf.hdl.inner_product import (LANES_PER_SUM, InnerProduct, lane_groups, pack_tokens, pack_weight_words,
                                    unpack_output)


def simulate(cfg, tokens, u, v, *, seed=0, stall=0.3):
    """Drive tokens (and a weight load) with random gaps and backpressure; return (p, q) lists."""
    dut = InnerProduct(cfg)
    rng = random.Random(seed)
    results = []

    async def bench(ctx):
        if cfg.weights == "runtime":
            for word in pack_weight_words(cfg, u, v, pad=lambda: rng.randint(-8, 7)):
                ctx.set(dut.w.payload.as_value(), word)
                ctx.set(dut.w.valid, 1)
                await ctx.tick().until(dut.w.ready)
            ctx.set(dut.w.valid, 0)
        beats = pack_tokens(cfg, tokens, pad=lambda: rng.randint(-4, 3))
        cycles = 0
        while len(results) < len(tokens):
            offer = bool(beats) and rng.random() >= stall
            if offer:
                ctx.set(dut.i.payload.as_value(), beats[0])
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.o.ready, rng.random() >= stall)
            _, _, i_ready, o_valid, o_ready, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.as_value())
            if offer and i_ready:
                beats.pop(0)
            if o_valid and o_ready:
                results.append(unpack_output(cfg, payload))
            cycles += 1
            assert cycles < 100 * (len(tokens) + 1) * cfg.beats, "unit stalled"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("cfg", [
    InnerProductConfig(d_model=5, lanes=2, rank=2, x_width=4, w_width=4),
    InnerProductConfig(d_model=1, lanes=1, rank=1, x_width=3, w_width=2),
    InnerProductConfig(d_model=6, lanes=3, rank=1, weights="fixed", weight_seed=4),
    # more lanes than LANES_PER_SUM: group sums added by the accumulator; partial last beat
    InnerProductConfig(d_model=40, lanes=17, rank=2, x_width=5, w_width=4),
    InnerProductConfig(d_model=32, lanes=16, rank=1, weights="fixed", weight_seed=2),
], ids=repr)
def test_matches_golden(cfg):
    rng = np.random.default_rng(7)
    if cfg.weights == "fixed":
        u, v = cfg.fixed_vectors()
    else:
        u, v = (m.tolist() for m in random_weights(cfg, rng))
    tokens = edge_tokens(cfg) + random_tokens(cfg, rng, 40).tolist()
    p, q = inner_product(cfg, tokens, u, v)
    assert simulate(cfg, tokens, u, v) == list(zip(p.tolist(), q.tolist()))


def test_lane_groups():
    assert LANES_PER_SUM == 8
    assert lane_groups(1) == [[0]]
    assert lane_groups(8) == [list(range(8))]
    assert lane_groups(16) == [list(range(8)), list(range(8, 16))]
    assert [len(g) for g in lane_groups(17)] == [5, 6, 6]


def test_latency_unchanged_by_lane_groups():
    """A token of one beat: ``o.valid`` exactly ``latency`` cycles after its handshake, with one
    lane group and with three (fixed weights: a runtime unit takes no token before its first
    weight load, which ``test_matches_golden`` covers)."""
    for cfg in (InnerProductConfig(d_model=4, lanes=4, rank=1, weights="fixed"),
                InnerProductConfig(d_model=17, lanes=17, rank=1, weights="fixed")):
        dut = InnerProduct(cfg)
        seen = []

        async def bench(ctx, dut=dut, seen=seen):
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.i.valid, 1)
            for _ in range(20):                      # the handshake's cycle is cycle 0
                await ctx.tick()
                if ctx.get(dut.i.ready):
                    break
            else:
                raise AssertionError("i.ready never rose")
            ctx.set(dut.i.valid, 0)
            for n in range(1, 10):
                if ctx.get(dut.o.valid):
                    seen.append(n)
                    break
                await ctx.tick()

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        assert seen == [cfg.latency]


def members(cfg):
    dut = InnerProduct(cfg)
    dut._MustUse__silence = True  # built only to inspect its ports
    return dut.signature.members


def test_ports_follow_the_weight_mode():
    assert "w" in members(InnerProductConfig())
    assert "w" not in members(InnerProductConfig(weights="fixed"))
    with pytest.raises(TypeError, match=r"^Config must be an InnerProductConfig, not 3$"):
        InnerProduct(3)
