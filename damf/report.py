"""What the Markdown reports and progress logs of the tools share (``damf synth``'s synthesis
and comparison reports, ``damf eval``, ``damf finetune``): number formats and an elapsed-time
log."""

import sys
import time

__all__ = ["number", "fixed", "Log"]


def number(value, digits=0):
    """A table cell: ``-`` for None, a float with ``digits`` decimals, an int, both with
    thousands separators."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def fixed(x, n=3):
    """``x`` with ``n`` decimals."""
    return f"{x:.{n}f}"


class Log:
    """Progress lines ``[NAME  12.3 s] message`` on ``stream`` (default stderr), timed from
    the log's creation."""

    def __init__(self, name, stream=None):
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.monotonic()

    def __call__(self, msg):
        print(f"[{self.name} {time.monotonic() - self.t0:6.1f} s] {msg}", file=self.stream, flush=True)
