"""Component health in ``get_stats`` is read from each component's real state, not constants."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import StorageUnavailableError
from tests.fakes import MemoryVectorStore

Make = Callable[..., BlockingBufferService]


def health(service: BlockingBufferService) -> dict[str, str]:
    return service.get_stats()["write_buffer"]["component_health"]


def test_a_healthy_engine_reports_ok_everywhere(memory: BlockingBufferService) -> None:
    memory.add([{"role": "user", "content": "hello"}], "s")
    assert set(health(memory).values()) == {"ok"}


def test_a_stopped_worker_stalls_both_buffers(memory: BlockingBufferService) -> None:
    memory.engine.worker.stop()
    reported = health(memory)
    assert reported["index_worker"] == "stopped"
    assert reported["round_buffer"].startswith("stalled") and reported["hybrid_buffer"].startswith("stalled")


def test_an_unreachable_message_store_is_reported(memory: BlockingBufferService) -> None:
    memory.engine.store.close()
    assert health(memory)["message_store"].startswith("unreachable")


def test_an_open_vector_breaker_and_a_backlog_are_reported(make_memory: Make, vectors: MemoryVectorStore) -> None:
    memory = make_memory(
        buffer__round_buffer__max_size=1,
        buffer__hybrid_buffer__max_size=1,
        retry__max_attempts=1,
        retry__breaker_failure_threshold=1,
        retry__breaker_reset_seconds=3600,
    )
    vectors.down = True
    for n in range(4):
        memory.add([{"role": "user", "content": f"note {n}"}], "s")
    with pytest.raises(StorageUnavailableError):
        memory.flush_all(timeout=30)
    reported = health(memory)
    assert reported["vector_store"] == "degraded (breaker open)"
    assert reported["hybrid_buffer"].startswith("backlog")
    vectors.down = False  # let the closing flush store everything
