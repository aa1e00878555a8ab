"""Seconds per step and counts, summed over a vision worker's items: what the vision benchmarks read."""

from __future__ import annotations

import time
from collections import defaultdict


class Steps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def tick(self, step: str, t0: float) -> float:
        """Add the time since `t0` to `step`; returns now (the next step's start)."""
        t = time.perf_counter()
        self.timings[step] += t - t0
        return t
