"""The cocotb tests every block's testbench shares, written once: a testbench makes its own at
module level, naming only what is particular to its block.

* :func:`random_vectors_test` -- ``random_vectors/stalls=none|idle|backpressure|both``: the
  block's edge and random inputs under each of the four mixes of source idling and sink
  backpressure (:data:`~damf.sim.streams.STALLS`);
* :func:`vectors_file_test` -- ``vectors_file``: replay the vector file ``DAMF_VECTORS`` and
  write what the RTL produced to ``DAMF_RESULTS`` (``damf sim --vectors``, and ``make test``
  for the committed files); skipped unless ``DAMF_VECTORS`` is set.

cocotb finds a test by scanning the testbench module's names and names it by its function's
``__qualname__`` and ``__module__``, so each factory gives the function it decorates the name
of the test and the module of the testbench that called it: the tests are registered there,
under the same names as if the testbench had written them out.
"""

import json
import os
import sys

import cocotb

from ..blocks import load_vectors
from .streams import STALLS, stall_probabilities

__all__ = ["random_vectors_test", "vectors_file_test"]


def _named(func, name, module, doc):
    """``func`` as the test ``name`` of testbench ``module`` (set before cocotb reads them)."""
    func.__name__ = func.__qualname__ = name
    func.__module__ = module
    func.__doc__ = doc
    return func


def _caller():
    """The name of the module that called the factory (two frames up): the testbench."""
    return sys._getframe(2).f_globals["__name__"]


def random_vectors_test(run, *, timeout, doc, idle=0.3, backpressure=0.3, options=None, name="random_vectors"):
    """The test ``NAME/stalls=CASE`` for each case of :data:`~damf.sim.streams.STALLS`: ``await
    run(dut, idle_probability, backpressure_probability, **options(CASE))``, the probabilities
    those of :func:`~damf.sim.streams.stall_probabilities` with the block's defaults ``idle`` and
    ``backpressure``.  ``timeout`` is the testbench's ``cocotb_timeout()``; ``doc`` the test's
    description; ``options`` (None: none) more keyword arguments of ``run`` per case."""
    async def test(dut, stalls):
        await run(dut, *stall_probabilities(stalls, idle=idle, backpressure=backpressure),
                  **(options(stalls) if options else {}))

    _named(test, name, _caller(), doc)
    return cocotb.test(**timeout)(cocotb.parametrize(stalls=STALLS)(test))


def vectors_file_test(tb_class, replay, *, timeout,
                      doc="Replay a vector file; write what the RTL produced to ``DAMF_RESULTS``."):
    """The test ``vectors_file``: ``tb_class(dut)``, reset, read ``DAMF_VECTORS`` (a vector file
    of the block of ``tb_class.config_cls``), ``await replay(tb, inputs)`` -- the block's part:
    drive the inputs, wait for every result, return ``{output: rows}`` as the vector file's
    ``expected`` holds them -- and write that to ``DAMF_RESULTS`` as JSON.  Skipped unless
    ``DAMF_VECTORS`` is set."""
    async def test(dut):
        tb = tb_class(dut)
        await tb.reset()
        _, inputs, _ = load_vectors(os.environ["DAMF_VECTORS"], block=tb_class.config_cls.block)
        results = await replay(tb, inputs)
        with open(os.environ["DAMF_RESULTS"], "w") as f:
            json.dump(results, f)

    _named(test, "vectors_file", _caller(), doc)
    return cocotb.test(skip="DAMF_VECTORS" not in os.environ, **timeout)(test)
