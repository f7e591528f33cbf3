"""A Chroma server that stops answering (a hung process, a dead link that drops packets) in the
middle of a session: requests time out after ``request_timeout_seconds`` and fail like a refused
connection, so adds go on, queries answer degraded instead of hanging, and every round written
during the stall reaches the real server once it answers again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import StorageUnavailableError
from tests.faults import BreakerRecorder, StallingProxy, drain
from tests.integration.conftest import ChromaServer

TIMEOUT = 1.0


@pytest.fixture
def proxy(chroma_server: ChromaServer) -> Iterator[StallingProxy]:
    stalling = StallingProxy(chroma_server.host, chroma_server.port)
    yield stalling
    stalling.close()


def turn(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": f"Noted: {text}"}]


def indexed_message_ids(memory: BlockingBufferService, user: str) -> list[str]:
    """Message ids of every chunk the Chroma server holds for the user, one per chunk focus."""
    return memory.engine.components.vectors.message_ids(user)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.timeout(300)
def test_a_stalled_server_degrades_queries_and_loses_nothing(tmp_path: Path, proxy: StallingProxy) -> None:
    memory = BlockingBufferService.from_config(
        data_dir=tmp_path,
        storage__vector_store__mode="server",
        storage__vector_store__port=proxy.port,
        storage__vector_store__request_timeout_seconds=TIMEOUT,
        buffer__round_buffer__max_size=1,
        buffer__hybrid_buffer__max_size=1,
        retry__max_attempts=1,
        retry__breaker_failure_threshold=2,
        retry__breaker_reset_seconds=0.5,
    )
    with memory:
        recorder = BreakerRecorder(memory.engine.memory.vector_breaker)
        acknowledged = []
        for text in ("my sister Ada plays the cello", "we adopted a grey cat named Pixel"):
            acknowledged += memory.add(turn(text), session_id="s", user_id="u")["data"]["message_ids"]
        memory.flush_all(timeout=60)
        before = memory.query("what instrument does Ada play", user_id="u")["data"]
        assert not before["degraded"] and before["results"][0]["content"] == "my sister Ada plays the cello"

        proxy.stall()
        stalled = memory.query("which pet did we adopt", user_id="u")["data"]
        assert stalled["degraded"] and any("vector store" in error for error in stalled["errors"])
        assert not stalled["cached"]
        during = ["the boat trip to Hydra is in May", "Pixel hates the vacuum cleaner"]
        for text in during:
            acknowledged += memory.add(turn(text), session_id="s", user_id="u")["data"]["message_ids"]
        keyword_only = memory.query("Hydra boat trip", user_id="u")["data"]
        assert "the boat trip to Hydra is in May" in [r["content"] for r in keyword_only["results"]]
        with pytest.raises(StorageUnavailableError):
            memory.flush_all(timeout=60)
        assert memory.get_stats()["storage"]["pending_rounds"] >= 1
        assert ("closed", "open") in recorder.transitions

        proxy.resume()
        attempts = drain(memory, 60.0)
        assert memory.get_stats()["storage"]["pending_rounds"] == 0
        assert recorder.transitions[-1] == ("half_open", "closed")
        indexed = indexed_message_ids(memory, "u")
        assert sorted(set(indexed)) == sorted(acknowledged) and len(indexed) == len(acknowledged)
        after = memory.query("when is the trip to the island", user_id="u")["data"]
        assert not after["degraded"] and after["results"][0]["content"] == "the boat trip to Hydra is in May"
        assert "vector" in after["results"][0]["retrieval"]["methods"]
    print(
        f"\n[faults/server-stall] request_timeout={TIMEOUT}s degraded_queries=2 adds_during_stall={len(during)} "
        f"breaker_transitions={recorder.transitions} flush_attempts_after_resume={attempts} "
        f"indexed={len(indexed)} acknowledged={len(acknowledged)} lost={len(set(acknowledged) - set(indexed))} "
        f"duplicated={len(indexed) - len(set(indexed))}"
    )
