"""Stream driver and monitor for Amaranth ``stream.Signature`` ports (cocotb 2.x).

An Amaranth stream ``i`` appears in Verilog as ``i__payload``, ``i__valid`` and ``i__ready``.
A transfer happens at a rising clock edge where ``valid`` and ``ready`` are both high.
Both helpers sample the handshake in the ReadOnly phase just before the edge, so they work the
same on Icarus and Verilator.

``idle`` / ``backpressure`` are iterators of booleans, one per cycle: ``True`` means "insert a
gap" (driver) or "hold ready low" (monitor).  :func:`random_pattern` makes seeded ones.
"""

import collections
import itertools
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

__all__ = ["random_pattern", "cocotb_timeout", "STALLS", "stall_probabilities", "StreamDriver", "StreamMonitor",
           "BlockTB"]


def cocotb_timeout(default_ms=5):
    """``@cocotb.test`` keyword arguments bounding a test's simulated time, so a stalled block
    fails instead of hanging: ``DAMF_TIMEOUT_MS`` milliseconds, else ``default_ms``."""
    return {"timeout_time": float(os.environ.get("DAMF_TIMEOUT_MS", str(default_ms))), "timeout_unit": "ms"}


#: The four mixes of source idling and sink backpressure every block's random test runs
#: under (``@cocotb.parametrize(stalls=STALLS)``): neither, input gaps only, output
#: backpressure only, both.
STALL_CASES = ("none", "idle", "backpressure", "both")
#: named ``random_vectors/stalls=CASE`` (cocotb names a longer string by its index)
STALLS = [cocotb.Param(value=case, name=case) for case in STALL_CASES]


def stall_probabilities(stalls, *, idle=0.3, backpressure=0.3):
    """``(idle, backpressure)`` probabilities of the :data:`STALLS` case ``stalls``: the
    block's defaults ``idle`` / ``backpressure``, overridden by ``DAMF_IDLE`` /
    ``DAMF_BACKPRESSURE``, where the case has them, else 0."""
    if stalls not in STALL_CASES:
        raise ValueError(f"stalls must be one of {', '.join(STALL_CASES)}, not {stalls!r}")
    idle = float(os.environ.get("DAMF_IDLE", idle))
    backpressure = float(os.environ.get("DAMF_BACKPRESSURE", backpressure))
    return (idle if stalls in ("idle", "both") else 0.0, backpressure if stalls in ("backpressure", "both") else 0.0)


def random_pattern(rng, probability):
    """Endless booleans, each ``True`` with ``probability`` (``0`` gives never)."""
    if probability <= 0:
        return itertools.repeat(False)
    return iter(lambda: rng.random() < probability, None)


class StreamDriver:
    """Offers queued payloads on ``<name>__payload/valid``, honouring ``<name>__ready``."""

    def __init__(self, dut, name, clk, idle=None):
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.clk = clk
        self.idle = idle if idle is not None else itertools.repeat(False)
        self.queue = collections.deque()
        self.sent = 0
        self.empty = Event()
        self.empty.set()
        self.accept_cycles = []  # cycle numbers of accepted transfers (see `cycle`)
        self.cycle = 0
        self.valid.value = 0

    def send(self, payload):
        self.queue.append(int(payload))
        self.empty.clear()

    async def wait_empty(self):
        """Return once every queued payload has been accepted."""
        await self.empty.wait()

    async def run(self):
        current = None
        while True:
            if current is None and self.queue and not next(self.idle):
                current = self.queue.popleft()
            if current is None:
                self.valid.value = 0
            else:
                self.valid.value = 1
                self.payload.value = current
            await ReadOnly()
            fired = current is not None and bool(self.ready.value)
            await RisingEdge(self.clk)
            self.cycle += 1
            if fired:
                current = None
                self.sent += 1
                self.accept_cycles.append(self.cycle)
                if not self.queue:
                    self.empty.set()


class StreamMonitor:
    """Drives ``<name>__ready`` (with backpressure) and records accepted payloads."""

    def __init__(self, dut, name, clk, backpressure=None):
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.clk = clk
        self.backpressure = backpressure if backpressure is not None else itertools.repeat(False)
        self.received = []
        self.cycles = []  # cycle numbers of the transfers
        self.cycle = 0
        self._waiters = []
        self.ready.value = 0

    async def wait_for(self, count):
        """Return once ``count`` payloads have been received in total."""
        while len(self.received) < count:
            event = Event()
            self._waiters.append(event)
            await event.wait()

    async def run(self):
        while True:
            self.ready.value = 0 if next(self.backpressure) else 1
            await ReadOnly()
            fired = bool(self.valid.value) and bool(self.ready.value)
            payload = int(self.payload.value) if fired else None
            await RisingEdge(self.clk)
            self.cycle += 1
            if fired:
                self.received.append(payload)
                self.cycles.append(self.cycle)
                waiters, self._waiters = self._waiters, []
                for event in waiters:
                    event.set()


class BlockTB:
    """What every block's testbench shares (subclasses set :attr:`config_cls`).

    * ``cfg``: the block's configuration, read from ``DAMF_CONFIG`` (the ``BLOCK.json`` next
      to the Verilog);
    * ``seed`` (``DAMF_SEED``, default 1), logged so that a failure can be rerun, with
      ``rng`` (``random.Random``) and ``nprng`` (NumPy) seeded from it;
    * a 10 ns clock on ``clk``;
    * one :class:`StreamDriver` per input stream, with random idle cycles of probability
      ``idle``, as attributes named by :attr:`inputs` (``{attribute: port}``, made in that
      order; :meth:`add_driver` adds more);
    * ``out``, a :class:`StreamMonitor` of ``o`` with random backpressure;
    * ``expected``, the list the testbench fills from the golden model.
    """

    config_cls = None
    inputs = {"i": "i"}

    def __init__(self, dut, *, idle=0.0, backpressure=0.0, seed=None):
        self.dut = dut
        self.cfg = self.config_cls.from_file(os.environ["DAMF_CONFIG"])
        self.seed = int(os.environ.get("DAMF_SEED", "1")) if seed is None else seed
        self.rng = random.Random(self.seed)
        self.nprng = np.random.default_rng(self.seed)
        dut._log.info("seed %d (rerun with DAMF_SEED=%d), %r, idle %.2f, backpressure %.2f",
                      self.seed, self.seed, self.cfg, idle, backpressure)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.parts = []
        for attr, port in self.inputs.items():
            self.add_driver(attr, port, idle)
        self.out = StreamMonitor(dut, "o", dut.clk, random_pattern(self.rng, backpressure))
        self.parts.append(self.out)
        self.expected = []

    def add_driver(self, attr, port, idle=0.0):
        """A driver of input stream ``port`` as ``self.<attr>``, started by :meth:`reset`."""
        driver = StreamDriver(self.dut, port, self.dut.clk, random_pattern(self.rng, idle))
        setattr(self, attr, driver)
        self.parts.append(driver)
        return driver

    async def reset(self):
        """Two cycles of reset, then start every driver and the monitor."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        for part in self.parts:
            cocotb.start_soon(part.run())

    async def wait_results(self, count, budget, what="results"):
        """Wait until ``o`` has delivered ``count`` payloads, at most ``budget`` cycles; a
        stall fails with how many arrived and the seed."""
        try:
            await with_timeout(self.out.wait_for(count), budget * 10, "ns")
        except SimTimeoutError:
            raise AssertionError(f"{len(self.out.received)} of {count} {what} after {budget} cycles: "
                                 f"the unit stalled (seed {self.seed})") from None
