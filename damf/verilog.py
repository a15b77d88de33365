"""Verilog generation of a registered block: deterministic text, explicit module names."""

from amaranth.back import verilog
from amaranth.hdl import Value

from .blocks import DEFAULT_PREFIX, check_prefix, get_block, module_name
from .errors import ConfigError
from .hdl.axis import AxisWrapper

# the module names (damf.blocks) are used with the Verilog: one import for both
__all__ = ["DEFAULT_PREFIX", "MAX_VALUE_BITS", "check_prefix", "generate", "module_name", "to_verilog"]

#: the widest value Amaranth 0.5's netlist represents (``amaranth.hdl._nir``: bits < 2**16)
MAX_VALUE_BITS = (1 << 16) - 1


def to_verilog(cfg, *, prefix=DEFAULT_PREFIX, axis=False):
    """Deterministic Verilog text for ``cfg`` (no source locations, explicit module names).

    The top module is :func:`module_name`; Amaranth names every submodule ``top.sub``, so every
    module of the file starts with ``prefix``.  ``axis``: the top is the AXI4-Stream wrapper of
    ``hdl/axis.py`` around the block (docs/integration.md)."""
    return generate(cfg, prefix=prefix, axis=axis)[0]


def generate(cfg, *, prefix=DEFAULT_PREFIX, axis=False):
    """``(verilog, ports)``: :func:`to_verilog`'s text and ``{port: width}`` of its top module."""
    block = get_block(cfg.block)
    check_prefix(prefix)
    component = block.build(cfg)
    for path, _, value in component.signature.flatten(component):
        width = len(Value.cast(value))
        if width > MAX_VALUE_BITS:
            name = "__".join(str(p) for p in path)
            raise ConfigError(f"{cfg.block}: port {name} would be {width:,} bits wide; Amaranth's netlist "
                              f"takes at most {MAX_VALUE_BITS:,} bits per value (fewer lanes or parallel)")
    if axis:
        component = AxisWrapper(component, block_name=module_name(block.name, prefix))
    ports = {"__".join(str(p) for p in path): len(Value.cast(value))
             for path, _, value in component.signature.flatten(component)}
    text = verilog.convert(component, name=module_name(block.name, prefix, axis=axis), emit_src=False)
    return text, ports
