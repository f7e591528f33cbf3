"""IndexWorker: embeds what the WriteBuffer holds, stores it, and tells flushers how it went."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from memfuse_memory.buffer.chunking import MessageChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import RetryConfig
from memfuse_memory.errors import EmbeddingError
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.models import Round
from memfuse_memory.storage.sqlite import MessageStore
from memfuse_memory.tokens import TokenCounter
from memfuse_memory.worker import IndexWorker, orphans
from tests.builders import round_of
from tests.fakes import FakeEmbedder, MemoryVectorStore

RETRY = RetryConfig(
    max_attempts=1, initial_backoff_seconds=0.01, max_backoff_seconds=0.01, breaker_failure_threshold=100
)


class Rig:
    def __init__(self, path: Path) -> None:
        self.store = MessageStore(path)
        self.vectors = MemoryVectorStore()
        self.embedder = FakeEmbedder()
        self.buffer = WriteBuffer(
            RoundBuffer(10_000, 1), HybridBuffer(1), MessageChunkStrategy(), TokenCounter("gpt-4o-mini")
        )
        self.changed: list[set[str]] = []
        self.worker = IndexWorker(
            self.buffer,
            self.embedder,
            MemoryService(self.store, self.vectors, RETRY),
            batch_size=8,
            retry=RETRY,
            idle_seconds=60,
            storage_lock=threading.Lock(),
            on_change=self.changed.append,
        )

    def add(self, *rounds: Round) -> None:
        self.store.append_rounds(list(rounds))
        self.buffer.add_rounds(list(rounds))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path / "m.sqlite3")
    made.worker.start()
    yield made
    made.worker.stop()
    made.store.close()


def test_a_flush_waits_until_every_round_is_stored(rig: Rig) -> None:
    rig.add(round_of("r1", "first note"), round_of("r2", "second note"))
    rig.worker.wait_stored(rig.buffer.transfer_all(), timeout=30)
    assert rig.store.pending_round_ids() == set()
    assert rig.vectors.count("u") == 2 and rig.buffer.location("r2") == "storage"
    assert {"u"} in rig.changed, "the query cache is told about embeddings and flushes"
    assert rig.worker.stats()["embedded_chunks"] == 2 and rig.worker.alive


def test_an_embedding_failure_reaches_the_flusher_and_the_data_stays_pending(rig: Rig) -> None:
    rig.embedder.fail_next = 1
    rig.add(round_of("r1", "note"))
    with pytest.raises(EmbeddingError, match="stays pending"):
        rig.worker.wait_stored(rig.buffer.transfer_all(), timeout=30)
    assert rig.store.pending_round_ids() == {"r1"}
    rig.worker.wait_stored({"r1"}, timeout=30)  # retried after the backoff
    assert rig.store.pending_round_ids() == set()


def test_wait_caught_up_returns_once_embedded_and_within_max_size(rig: Rig) -> None:
    rig.add(round_of("r1", "a"), round_of("r2", "b"), round_of("r3", "c"))
    rig.worker.wait_caught_up(timeout=30)
    assert not rig.buffer.has_work()
    assert rig.buffer.stats()["hybrid_buffer"]["round_count"] <= 1


def test_orphans_are_adopted_only_when_seen_twice() -> None:
    adopt, suspects = orphans(pending={"a", "b", "c"}, mine={"a"}, suspects=set())
    assert adopt == set() and suspects == {"b", "c"}
    adopt, suspects = orphans(pending={"b", "c", "d"}, mine=set(), suspects=suspects)
    assert adopt == {"b", "c"} and suspects == {"d"}
