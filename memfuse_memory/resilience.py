"""Retry with exponential backoff and a circuit breaker, for storage and embedding calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from memfuse_memory.config import RetryConfig
from memfuse_memory.errors import MemFuseError, StorageUnavailableError, WriteRejectedError

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed until ``threshold`` consecutive failures; then open for ``reset_seconds``; then one
    trial call (half-open) decides whether it closes again or re-opens."""

    def __init__(
        self, name: str, threshold: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.opened_count = 0

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one trial call at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_trial = self._trial_running
            self._trial_running = False
            if was_trial or (self._opened_at is None and self._failures >= self.threshold):
                self._opened_at = self._clock()
                self.opened_count += 1

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {"state": self._state(), "consecutive_failures": self._failures, "opened_count": self.opened_count}


def backoff_delay(config: RetryConfig, attempt: int) -> float:
    """Delay before retry number ``attempt`` (1-based): doubling from the initial, capped."""
    return min(config.max_backoff_seconds, config.initial_backoff_seconds * (2 ** (attempt - 1)))


def call_with_retry(
    operation: Callable[[], T],
    *,
    breaker: CircuitBreaker,
    config: RetryConfig,
    error: type[MemFuseError] = StorageUnavailableError,
    attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation`` with retries and backoff behind ``breaker``; raise ``error`` from the last failure."""
    tries = attempts or config.max_attempts
    last: Exception | None = None
    for attempt in range(1, tries + 1):
        if not breaker.allow():
            raise error(f"{breaker.name} is unavailable (circuit breaker open)") from last
        try:
            result = operation()
        except WriteRejectedError:  # the store answered, and refused for good: no retry, no breaker trip
            breaker.record_success()
            raise
        except Exception as exc:  # any backend failure is retried, then surfaced typed
            breaker.record_failure()
            last = exc
            if attempt < tries:
                sleep(backoff_delay(config, attempt))
            continue
        breaker.record_success()
        return result
    raise error(f"{breaker.name} failed after {tries} attempt(s): {last}") from last
