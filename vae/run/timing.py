"""Where a run's seconds went: metrics.json's `seconds`, one entry per phase, each written as soon as it ends.

    start        from train.py's first line (or the sweep job's start) to the first training step's setup
    fit          Trainer.fit: every epoch with its dev pass, checkpoints, history and figures in TensorBoard
    test         the test pass of the best checkpoint
    evaluation   the importance-weighted evaluation (eval.*)
    generation   the generated pictures' measures (eval.generation.*)
    figures      figures/ drawn at the end (plots.at_end)

`python -m vae.bench --whole` sets them beside a plain script's (benchmarks/whole.py).
"""

import os
import time
from pathlib import Path


def process_age() -> float:
    """Seconds since this process started (Linux: /proc; elsewhere 0, the import of this module then counts)."""
    try:  # field 22 of /proc/self/stat: the start in clock ticks after boot; /proc/uptime: now, in seconds
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


STARTED = time.perf_counter() - process_age()  # the process's start on perf_counter's clock


class Phases:
    """Laps of one run; `seconds` is the dict metrics.json holds (rounded to 10 ms)."""

    def __init__(self, started: float | None = None):
        """`started`: when the run began on perf_counter's clock (None: now, e.g. a sweep's later job)."""
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter() if started is None else started

    def lap(self, name: str) -> None:
        """Ends the phase `name` now: its seconds are those since the last lap."""
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now
