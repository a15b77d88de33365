"""Configuration of the singular-vector inner-product unit (``inner-product``)."""

import random
from dataclasses import dataclass, field

from .base import MAX_DERIVED_WIDTH, BlockConfig, ConfigError, check_vectors, product_range, signed_range_width

__all__ = ["InnerProductConfig"]


@dataclass(frozen=True, repr=False)
class InnerProductConfig(BlockConfig):
    """Configuration of the singular-vector inner-product unit (``inner-product``).

    The unit computes ``p_k = X_m . u_k`` and ``q_k = X_m . v_k`` for ``k < rank``.
    """

    block = "inner-product"

    d_model:  int = field(default=16, metadata={"min": 1, "max": 1 << 16,
                            "doc": "elements per token vector X_m"})
    lanes:    int = field(default=4, metadata={"min": 1, "max": 256,
                            "doc": "elements of X_m accepted per beat"})
    rank:     int = field(default=1, metadata={"min": 1, "max": 64,
                            "doc": "number of singular-vector pairs (u_k, v_k)"})
    x_width:  int = field(default=8, metadata={"min": 2, "max": 32,
                            "doc": "bits of each signed element of X"})
    w_width:  int = field(default=8, metadata={"min": 2, "max": 32,
                            "doc": "bits of each signed element of u and v"})
    weights:  str = field(default="runtime", metadata={"choices": ("runtime", "fixed"),
                            "doc": "runtime: u, v loaded through the w stream; "
                                   "fixed: u, v are constants of the generated Verilog"})
    weight_seed: int = field(default=1, metadata={"min": 0,
                               "doc": "seed of the random u, v used when weights=fixed and u, v are not given"})
    u: tuple | None = field(default=None, metadata={
        "doc": "weights=fixed: rank x d_model signed integers (JSON list of lists); default: random from weight_seed"})
    v: tuple | None = field(default=None, metadata={
        "doc": "weights=fixed: rank x d_model signed integers (JSON list of lists); default: random from weight_seed"})

    def _validate(self):
        if self.lanes > self.d_model:
            raise ConfigError(f"lanes must be at most d_model = {self.d_model}, not {self.lanes}")
        if self.rank > self.d_model:     # u and v are rank singular vectors of a d_model x d_model matrix
            raise ConfigError(f"rank must be at most d_model = {self.d_model}, not {self.rank}")
        if self.out_width > MAX_DERIVED_WIDTH:
            raise ConfigError(
                f"x_width + w_width + log2(d_model) must give at most {MAX_DERIVED_WIDTH} output bits, "
                f"not {self.out_width} (x_width={self.x_width}, w_width={self.w_width}, d_model={self.d_model})")
        for name in ("u", "v"):
            vectors = getattr(self, name)
            if vectors is None:
                continue
            if self.weights != "fixed":
                raise ConfigError(f"{name} may only be given with weights=fixed, not weights={self.weights}")
            check_vectors(name, vectors, rows=self.rank, cols=self.d_model, width=self.w_width)

    # ---- derived --------------------------------------------------------------------------

    @property
    def beats(self):
        """Beats per token: ``ceil(d_model / lanes)``."""
        return -(-self.d_model // self.lanes)

    @property
    def last_lanes(self):
        """Valid lanes in the last beat of a token (the others are ignored)."""
        return self.d_model - (self.beats - 1) * self.lanes

    def sum_range(self, terms):
        lo, hi = product_range(self.x_width, self.w_width)
        return terms * lo, terms * hi

    @property
    def product_width(self):
        return signed_range_width(*product_range(self.x_width, self.w_width))

    @property
    def lane_sum_width(self):
        return signed_range_width(*self.sum_range(self.lanes))

    @property
    def out_width(self):
        """Exact width of p and q: holds every sum of d_model products, no overflow."""
        return signed_range_width(*self.sum_range(self.d_model))

    @property
    def word_width(self):
        """Bits of one weight word (one beat of the w stream)."""
        return 2 * self.rank * self.lanes * self.w_width

    latency = 4
    """Cycles from the handshake of a token's last beat to ``o.valid``, without backpressure."""

    def fixed_vectors(self):
        """``(u, v)`` as rank x d_model tuples, for weights=fixed."""
        if self.weights != "fixed":
            raise ConfigError("fixed_vectors() needs weights=fixed")
        rng = random.Random(self.weight_seed)
        lo, hi = -(1 << (self.w_width - 1)), (1 << (self.w_width - 1)) - 1

        def draw():
            return tuple(tuple(rng.randint(lo, hi) for _ in range(self.d_model)) for _ in range(self.rank))
        u = self.u if self.u is not None else draw()
        v = self.v if self.v is not None else draw()
        return u, v

    def to_dict(self):
        out = super().to_dict()
        if self.weights == "fixed":
            # The JSON next to the Verilog carries the constants baked into it.
            u, v = self.fixed_vectors()
            out["u"] = [list(r) for r in u]
            out["v"] = [list(r) for r in v]
        return out

    def derived(self):
        return {
            "beats": self.beats,
            "last_lanes": self.last_lanes,
            "product_width": self.product_width,
            "lane_sum_width": self.lane_sum_width,
            "out_width": self.out_width,
            "word_width": self.word_width,
            "latency": self.latency,
            "cycles_per_token": self.beats,
            "ports": {
                "i__payload": self.lanes * self.x_width,
                "o__payload": 2 * self.rank * self.out_width,
                **({"w__payload": self.word_width} if self.weights == "runtime" else {}),
            },
        }
