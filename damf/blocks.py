"""The registry of block generators: name -> configuration, RTL and golden model."""

from dataclasses import dataclass

from amaranth.back import verilog

from .config import ConfigError, InnerProductConfig
from .config import SystolicQKConfig

__all__ = ["Block", "BLOCKS", "get_block", "to_verilog"]


@dataclass(frozen=True)
class Block:
    name: str
    summary: str
    config_cls: type
    build: object          # config -> wiring.Component
    module: str            # Verilog module name (explicit, so output is deterministic)
    variants: tuple = ({},)  # overrides linted beside each preset (structurally different RTL)


def _inner_product(cfg):
    from .hdl.inner_product import InnerProduct
    return InnerProduct(cfg)


def _systolic_qk(cfg):
    from .hdl.systolic_qk import SystolicQK
    return SystolicQK(cfg)


BLOCKS = {
    "inner-product": Block(
        name="inner-product",
        summary="singular-vector inner-product unit: streams X_m, outputs p_m = X_m.u_k and q_m = X_m.v_k",
        config_cls=InnerProductConfig,
        build=_inner_product,
        module="damf_inner_product",
        variants=({}, {"weights": "fixed"}),
    ),
    "systolic-qk": Block(
        name="systolic-qk",
        summary="output-stationary systolic array: streams tiles of Q and K, outputs rows of S = Q.K^T",
        config_cls=SystolicQKConfig,
        build=_systolic_qk,
        module="damf_systolic_qk",
        # padding rows and columns, and i.ready held between tiles (d_head < max(rows, cols))
        variants=({}, {"rows": 3, "cols": 5, "d_head": 2}),
    ),
}


def get_block(name):
    try:
        return BLOCKS[name]
    except KeyError:
        raise ConfigError(f"unknown block '{name}'; expected one of: {', '.join(BLOCKS)}") from None


def to_verilog(cfg):
    """Deterministic Verilog text for ``cfg`` (no source locations, explicit module name)."""
    block = get_block(cfg.block)
    component = block.build(cfg)
    return verilog.convert(component, name=block.module, emit_src=False)
