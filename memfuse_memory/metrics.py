"""Latency recorders: the last N durations of an operation and their percentiles, for get_stats()."""

from __future__ import annotations

import threading
import time
from collections import deque


class LatencyRecorder:
    """Keeps the most recent ``size`` durations (in ms) of one operation."""

    def __init__(self, size: int = 1000) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def since(self, started: float) -> None:
        """Record the time elapsed since ``started`` (a ``time.perf_counter()`` value)."""
        self.add((time.perf_counter() - started) * 1000)

    def add(self, milliseconds: float) -> None:
        with self._lock:
            self._samples.append(milliseconds)
            self.count += 1

    def summary(self) -> dict[str, float | int | None]:
        """p50, p95 and p99 in ms over the kept samples, and how many operations ever ran."""
        with self._lock:
            ordered = sorted(self._samples)
            count = self.count

        def pct(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3) if ordered else None

        return {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "count": count}
