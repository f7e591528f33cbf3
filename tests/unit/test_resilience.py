"""Circuit breaker and retry with backoff."""

from __future__ import annotations

import pytest

from memfuse_memory.config import RetryConfig
from memfuse_memory.errors import EmbeddingError, StorageUnavailableError
from memfuse_memory.resilience import CircuitBreaker, call_with_retry


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker("store", threshold=2, reset_seconds=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 11.0
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state == "open"
    now[0] = 22.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.opened_count == 2


def test_retry_backs_off_then_raises_typed_from_cause() -> None:
    config = RetryConfig(max_attempts=3, initial_backoff_seconds=0.1, max_backoff_seconds=0.15)
    sleeps: list[float] = []
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("boom")
        return "ok"

    breaker = CircuitBreaker("x", threshold=10, reset_seconds=1)
    assert call_with_retry(flaky, breaker=breaker, config=config, sleep=sleeps.append) == "ok"
    assert sleeps == [0.1, 0.15]

    def broken() -> None:
        raise OSError("down")

    with pytest.raises(EmbeddingError) as caught:
        call_with_retry(broken, breaker=breaker, config=config, error=EmbeddingError, sleep=lambda s: None)
    assert isinstance(caught.value.__cause__, OSError)
    open_breaker = CircuitBreaker("y", threshold=1, reset_seconds=100)
    open_breaker.record_failure()
    with pytest.raises(StorageUnavailableError, match="circuit breaker open"):
        call_with_retry(lambda: None, breaker=open_breaker, config=config)
