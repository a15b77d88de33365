"""A multi-stream bench for the fast Amaranth-simulator tests in ``tests/`` (not cocotb).

:func:`run_streams` feeds any number of input streams of a component with random valid gaps,
holds the ready of its output streams low at random, and records every transfer with its
cycle number, so a test is: build payload lists, run, compare with the golden model.
"""

import random

from amaranth.sim import Simulator

__all__ = ["run_streams"]


def run_streams(dut, inputs, outputs, *, expect, seed=0, idle=0.3, backpressure=0.3, max_cycles=None,
                hold=None):
    """Run ``dut`` until ``expect[name]`` payloads arrived on each output stream.

    ``inputs``: ``{name: [payload int, ...]}``; ``outputs``: names of output streams.
    ``hold(name, counts)`` may return True to keep stream ``name`` from offering its next
    payload (for protocols that order streams); ``counts`` maps every stream to its transfers.  Returns ``{name: [(cycle, payload), ...]}`` for
    inputs (accept cycles) and outputs (transfer cycles).
    """
    rng = random.Random(seed)
    queues = {name: list(items) for name, items in inputs.items()}
    log = {name: [] for name in list(inputs) + list(outputs)}
    limit = max_cycles or 50 * (sum(map(len, inputs.values())) + sum(expect.values()) + 50)

    async def bench(ctx):
        current = {name: None for name in inputs}
        cycle = 0
        while any(len(log[o]) < expect[o] for o in outputs):
            for name in inputs:
                port = getattr(dut, name)
                if current[name] is None and queues[name] and rng.random() >= idle \
                        and not (hold and hold(name, {n: len(v) for n, v in log.items()})):
                    current[name] = queues[name].pop(0)
                if current[name] is not None:
                    ctx.set(port.payload.as_value(), current[name])
                ctx.set(port.valid, current[name] is not None)
            for name in outputs:
                ctx.set(getattr(dut, name).ready, rng.random() >= backpressure)
            sigs = []
            for name in inputs:
                sigs += [getattr(dut, name).ready]
            for name in outputs:
                port = getattr(dut, name)
                sigs += [port.valid, port.ready, port.payload.as_value()]
            _, _, *values = await ctx.tick().sample(*sigs)
            cycle += 1
            it = iter(values)
            for name in inputs:
                if next(it) and current[name] is not None:
                    log[name].append((cycle, current[name]))
                    current[name] = None
            for name in outputs:
                valid, ready, payload = next(it), next(it), next(it)
                if valid and ready:
                    log[name].append((cycle, payload))
            assert cycle < limit, f"stalled: {[(o, len(log[o]), expect[o]) for o in outputs]} (seed {seed})"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return log
