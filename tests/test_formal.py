"""Formal checks (``damf.formal``: SymbiYosys with ABC bmc3 and smtbmc yices) and mutants that must fail them.

The whole set (``make formal``, every block and check: docs/formal.md) takes longer than a
test run should, so ``make test`` runs a representative subset: the structural ready check
of every block, and stability, counting, order rules and one tagged data check (with its
cover) of the small blocks (:data:`FAST`); the other data checks and the heads' deep
counting run in ``make formal`` only.  The mutants: the score unit without its
key-before-query rule, a block whose output payload changes while stalled, and one whose
ready depends on its own valid.
"""

import inspect
import textwrap

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring

from damf.blocks import BLOCKS
from damf.formal import checks_of, config_of, run_check
from damf.hdl import score as score_module
from damf.hdl.score import Score

FAST = {
    "inner-product": ("stable", "count", "order"),
    "systolic-qk": ("stable", "count", "data"),
    "score": ("stable", "count", "order"),
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_ready_never_from_own_valid(name, tmp_path):
    result = run_check(name, "ready", out=tmp_path)
    assert result.status == "PASS", result.line()


@pytest.mark.parametrize("name,check", [(n, c) for n, cs in FAST.items() for c in cs])
def test_fast_checks_pass(name, check, tmp_path):
    assert check in checks_of(name)
    result = run_check(name, check, out=tmp_path)
    assert result.status == "PASS", result.line()


# ---- mutants --------------------------------------------------------------------------------

def _mutant(cls, old, new):
    """``cls`` with one line of its ``elaborate`` replaced (test only)."""
    source = textwrap.dedent(inspect.getsource(cls.elaborate))
    assert source.count(old) == 1, old
    namespace = dict(vars(inspect.getmodule(cls)))
    exec(compile(source.replace(old, new), f"<mutant of {cls.__name__}>", "exec"), namespace)
    return type(f"Mutant{cls.__name__}", (cls,), {"elaborate": namespace["elaborate"]})


class _Wrapped(wiring.Component):
    """A block behind a wrapper that corrupts one stream (``how``: ``"stall"`` flips bit 0 of
    ``o.payload`` while it waits; ``"ready"`` makes ``i.ready`` depend on ``i.valid``)."""

    def __init__(self, inner, how):
        self._inner, self._how = inner, how
        super().__init__(dict(inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        for name in inner.signature.members:
            outer_port, inner_port = getattr(self, name), getattr(inner, name)
            if inner.signature.members[name].flow == wiring.In:
                m.d.comb += [inner_port.valid.eq(outer_port.valid), inner_port.payload.eq(outer_port.payload),
                             outer_port.ready.eq(inner_port.ready)]
            else:
                m.d.comb += [outer_port.valid.eq(inner_port.valid), outer_port.payload.eq(inner_port.payload),
                             inner_port.ready.eq(outer_port.ready)]
        if self._how == "stall":
            flip = Signal()
            m.d.sync += flip.eq(self.o.valid & ~self.o.ready)
            m.d.comb += self.o.payload.as_value()[0].eq(inner.o.payload.as_value()[0] ^ flip)
        else:
            m.d.comb += self.i.ready.eq(inner.i.ready & ~(self.i.valid & inner.o.valid))
        return m


def test_score_without_key_before_query_fails(tmp_path):
    broken = _mutant(Score, "self.i.ready.eq(pick(full, next_bank) & (~busy | (issue & issue_last)))",
                     "self.i.ready.eq(~busy | (issue & issue_last))")
    result = run_check("score", "order", out=tmp_path, dut=broken(config_of("score")))
    assert result.status == "FAIL", result.line()
    assert "before its bank's keys were loaded" in result.detail


def test_score_mutant_helper_is_faithful(tmp_path):
    same = _mutant(Score, "rd.en.eq(adv),", "rd.en.eq(adv),")
    assert run_check("score", "ready", out=tmp_path, dut=same(config_of("score"))).status == "PASS"
    assert score_module.Score is Score


@pytest.mark.parametrize("name", ["systolic-qk", "score"])
def test_payload_changing_while_stalled_fails(name, tmp_path):
    dut = _Wrapped(BLOCKS[name].build(config_of(name)), "stall")
    result = run_check(name, "stable", out=tmp_path, dut=dut)
    assert result.status == "FAIL", result.line()
    assert "o.payload changed while stalled" in result.detail


def test_ready_from_valid_fails(tmp_path):
    dut = _Wrapped(BLOCKS["systolic-qk"].build(config_of("systolic-qk")), "ready")
    result = run_check("systolic-qk", "ready", out=tmp_path, dut=dut)
    assert result.status == "FAIL", result.line()
    assert "i.ready depends combinationally on i.valid" in result.detail
