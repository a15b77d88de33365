"""Practical limits of the commands: what a run would cost, estimated before it starts.

A command whose estimate exceeds its budget is refused with one line that gives the estimate
and the largest value allowed (``ConfigError``, exit status 2); one within budget but slow
runs with progress lines (:class:`Heartbeat`).  The figures are calibrated on the 2-core
machine the project is developed on (docs/limits.md); they are estimates, stated as "about".
"""

import sys
import threading
import time

from .blocks import get_block
from .errors import ConfigError

__all__ = ["GENERATE_BUDGET_S", "MEMORY_BUDGET_BYTES", "ACCURACY_BUDGET_S", "MAX_FINETUNE_STEPS", "MAX_LOGIT_GAIN", "generate_terms",
           "generate_seconds", "check_generate", "vector_values_per_count", "check_golden_count",
           "check_accuracy", "Heartbeat", "human_bytes", "human_seconds"]

#: ``damf generate`` (and everything that elaborates a block) is refused above this estimate.
GENERATE_BUDGET_S = 5 * 60
#: Memory a command may plan to use (vector files, accuracy runs).
MEMORY_BUDGET_BYTES = 4 << 30
#: ``damf accuracy`` is refused above this estimated run time.
ACCURACY_BUDGET_S = 60 * 60
#: ``damf finetune --steps``: at about 0.3-1 s a step (12 heads' SVDs and the layer's forward
#: and backward pass on the training sentences), 10,000 steps are already hours per layer.
MAX_FINETUNE_STEPS = 10_000
#: ``damf accuracy --logit-gain``: far sharper than any trained head (a gain of 1000 puts almost
#: all of every row's weight on its largest score) and inside base2's constant range.
MAX_LOGIT_GAIN = 1000

# bytes of memory per integer of a vector document while it is generated and written
# (a Python int in a list, its JSON text, and NumPy temporaries)
_BYTES_PER_VALUE = 64


def human_bytes(n):
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def human_seconds(s):
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if s >= 2 * size:
            # a decimal below ten units, so "5.2 minutes" is not "at most 5 minutes"
            return f"{s / size:.1f} {unit}" if s < 10 * size else f"{s / size:.0f} {unit}"
    return f"{s:.0f} s"


# ---- generate --------------------------------------------------------------------------------

def generate_terms(cfg):
    """``{part: seconds}``: the estimated time to elaborate and write ``cfg``'s Verilog, a fixed
    second and the terms of the block's size model (its registry entry's ``generate_terms``,
    ``damf/block_sizes.py``)."""
    return {"fixed": 1.0, **get_block(cfg.block).generate_terms(cfg)}


def generate_seconds(cfg):
    return sum(generate_terms(cfg).values())


def check_generate(cfg):
    """Refuse a configuration whose Verilog would take longer than :data:`GENERATE_BUDGET_S`;
    else return the estimate in seconds."""
    terms = generate_terms(cfg)
    seconds = sum(terms.values())
    if seconds > GENERATE_BUDGET_S:
        part = max(terms, key=terms.get)
        raise ConfigError(
            f"{cfg.block} with this configuration would take about {human_seconds(seconds)} to generate "
            f"(mostly its {part}); at most about {human_seconds(GENERATE_BUDGET_S)} is allowed")
    return seconds


# ---- golden ------------------------------------------------------------------------------------

def vector_values_per_count(cfg):
    """Integers a vector file holds per unit of ``--count`` (its registry entry's ``vector_values``)."""
    return get_block(cfg.block).vector_values(cfg)


def check_golden_count(cfgs, count):
    """Refuse a ``--count`` whose vector files would not fit :data:`MEMORY_BUDGET_BYTES`."""
    per = max(vector_values_per_count(c) for c in cfgs) * _BYTES_PER_VALUE
    need = count * per
    if need > MEMORY_BUDGET_BYTES:
        raise ConfigError(f"--count {count} would need about {human_bytes(need)} of memory; "
                          f"at most {MEMORY_BUDGET_BYTES // per} are allowed here")


# ---- accuracy ----------------------------------------------------------------------------------

def accuracy_bytes(length, d_model):
    """Memory of one ``damf accuracy`` seed: a dozen ``L x L`` float arrays, the layer's
    four ``d_model x d_model`` weights and ``L x d_model`` activations."""
    return 8 * (12 * length * length + 4 * d_model * d_model + 4 * length * d_model)


def accuracy_seconds(length, d_model, modes):
    """Run time of one seed: measured 7 s at L = 1024, all three modes, d_model 768."""
    return 0.1 + (6.5e-6 * length * length + 2e-9 * d_model ** 3 / 8) * modes / 3


def check_accuracy(*, length, d_model, seeds, modes):
    need = accuracy_bytes(length, d_model)
    if need > MEMORY_BUDGET_BYTES:
        raise ConfigError(f"an accuracy run at L = {length}, d_model = {d_model} would need about "
                          f"{human_bytes(need)} of memory; at most {human_bytes(MEMORY_BUDGET_BYTES)} are allowed "
                          f"(L up to about 4096 at d_model 768)")
    per_seed = accuracy_seconds(length, d_model, modes)
    if seeds * per_seed > ACCURACY_BUDGET_S:
        raise ConfigError(f"--seeds {seeds} would take about {human_seconds(seeds * per_seed)} at L = {length}; "
                          f"at most {max(1, int(ACCURACY_BUDGET_S // per_seed))} are allowed "
                          f"(about {human_seconds(ACCURACY_BUDGET_S)})")
    return per_seed


# ---- progress ----------------------------------------------------------------------------------

class Heartbeat:
    """A context that prints ``label ... (N s)`` to stderr every ``every`` seconds while the
    work inside runs, so no command sits silent; prints nothing for work shorter than that.
    ``label`` may be a function, called for each line (a count of what is done, say)."""

    def __init__(self, label, *, every=10.0, estimate=None, stream=None):
        self.label, self.every, self.estimate = label, every, estimate
        self.stream = stream or sys.stderr
        self._stop = threading.Event()

    def _run(self):
        start = time.monotonic()
        while not self._stop.wait(self.every):
            elapsed = time.monotonic() - start
            left = "" if self.estimate is None else f", about {human_seconds(max(self.estimate - elapsed, 0))} left"
            label = self.label() if callable(self.label) else self.label
            print(f"{label} ... ({elapsed:.0f} s{left})", file=self.stream, flush=True)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False
