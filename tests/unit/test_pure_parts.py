"""Pure pieces: chunk strategies, the HybridBuffer, rank fusion, keywords, breaker and retry."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.buffer.chunking import ContextualChunkStrategy, MessageChunkStrategy, make_strategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.config import RetryConfig
from memfuse_memory.errors import ConfigError, EmbeddingError, StorageUnavailableError
from memfuse_memory.models import Round, Scope, StoredMessage
from memfuse_memory.ranking.fusion import fuse
from memfuse_memory.ranking.keywords import fts_query, query_terms
from memfuse_memory.resilience import CircuitBreaker, call_with_retry


def round_of(rid: str, *contents: str, session: str = "s", user: str = "u") -> Round:
    scope = Scope(user_id=user, session_id=session)
    now = datetime.now(UTC)
    messages = [
        StoredMessage(
            id=f"{rid}-{i}",
            role="user" if i % 2 == 0 else "assistant",
            content=text,
            name=None,
            created_at=now,
            metadata={},
            scope=scope,
            round_id=rid,
        )
        for i, text in enumerate(contents)
    ]
    return Round(id=rid, scope=scope, messages=messages)


def test_message_strategy_gives_one_chunk_per_round() -> None:
    chunks = MessageChunkStrategy().chunk([round_of("r1", "hi there", "hello"), round_of("r2", "bye")])
    assert [c.id for c in chunks] == ["r1:0", "r2:0"]
    assert chunks[0].text == "user: hi there\nassistant: hello"
    assert chunks[0].message_ids == ("r1-0", "r1-1")


def test_contextual_strategy_splits_long_and_gives_short_ones_context() -> None:
    long_text = " ".join(f"w{i}" for i in range(50))
    chunks = ContextualChunkStrategy(max_words=20).chunk(
        [round_of("r1", "my cat is Miso", "nice cat"), round_of("r2", long_text)]
    )
    by_message: dict[str, list[str]] = {}
    for chunk in chunks:
        assert len(chunk.message_ids) == 1
        by_message.setdefault(chunk.message_ids[0], []).append(chunk.text)
    assert by_message["r1-1"] == ["user: my cat is Miso\nassistant: nice cat"]
    windows = by_message["r2-0"]
    assert len(windows) == 3
    assert all(len(text.split()) <= 21 for text in windows)
    covered = {word for text in windows for word in text.split()[1:]}
    assert covered == set(long_text.split())


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ConfigError, match="sentences"):
        make_strategy("sentences", 10)


def test_hybrid_buffer_fifo_pending_search_and_remove() -> None:
    buffer = HybridBuffer(max_size=1)
    rounds = [round_of("r1", "a"), round_of("r2", "b", session="t")]
    chunks = MessageChunkStrategy().chunk(rounds)
    buffer.add(rounds, chunks)
    assert buffer.due(False) == []  # nothing embedded yet: never flushed without vectors
    pending = buffer.pending_chunks(10)
    assert [c.id for c in pending] == ["r1:0", "r2:0"]
    buffer.set_vectors(pending, np.eye(2, dtype=np.float32))
    assert [e.round.id for e in buffer.due(False)] == ["r1"]
    assert [e.round.id for e in buffer.due(True)] == ["r1", "r2"]
    hits = buffer.search(np.array([0, 1], dtype=np.float32), lambda scope: True, 5)
    assert [(c.id, round(s, 3)) for c, s in hits] == [("r2:0", 1.0), ("r1:0", 0.0)]
    only_t = buffer.search(np.array([1, 0], dtype=np.float32), lambda scope: scope.session_id == "t", 5)
    assert [c.id for c, _ in only_t] == ["r2:0"]
    buffer.remove(buffer.due(False))
    assert buffer.round_count == 1 and buffer.flush_operations == 1


def test_vectors_for_a_dropped_round_are_ignored() -> None:
    buffer = HybridBuffer(max_size=5)
    rounds = [round_of("r1", "a")]
    chunks = MessageChunkStrategy().chunk(rounds)
    buffer.add(rounds, chunks)
    assert buffer.drop(lambda scope: True) == ["r1"]
    buffer.set_vectors(chunks, np.ones((1, 2), dtype=np.float32))
    assert buffer.chunk_count == 0


def test_minmax_fusion_normalises_each_ranking() -> None:
    hits = fuse({"a": 12.0, "b": 3.0}, {"b": 0.9, "c": 0.2}, method="minmax", keyword_weight=0.5, vector_weight=0.5)
    scores = {hit.message_id: round(hit.score, 3) for hit in hits}
    assert scores == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert {hit.message_id: hit.retrieved_by for hit in hits}["b"] == ["keyword", "vector"]


def test_rrf_fusion_uses_ranks_only() -> None:
    hits = fuse({"a": 1000.0, "b": 999.0}, {"b": 0.1}, method="rrf", keyword_weight=1, vector_weight=1)
    assert [hit.message_id for hit in hits] == ["b", "a"]


@given(
    st.dictionaries(st.text(min_size=1, max_size=3), st.floats(-50, 50), max_size=20),
    st.dictionaries(st.text(min_size=1, max_size=3), st.floats(-1, 1), max_size=20),
    st.sampled_from(["minmax", "rrf"]),
)
def test_fusion_property_one_hit_per_message_sorted(keyword: dict, vector: dict, method: str) -> None:
    hits = fuse(keyword, vector, method=method, keyword_weight=0.5, vector_weight=0.5)  # type: ignore[arg-type]
    assert sorted(hit.message_id for hit in hits) == sorted(set(keyword) | set(vector))
    assert all(a.score >= b.score for a, b in pairwise(hits))
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)


def test_keyword_query_is_safe_fts() -> None:
    assert query_terms("What is the NAME of my cat?") == ["name", "cat"]
    assert fts_query('cats "AND" NEAR(') == '"cats" OR "near"'
    assert fts_query("the of and") is None


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
