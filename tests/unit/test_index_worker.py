"""IndexWorker: embeds what the WriteBuffer holds, stores it, and tells flushers how it went."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
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
from tests.builders import key, round_of
from tests.fakes import FakeEmbedder, MemoryVectorStore

RETRY = RetryConfig(
    max_attempts=1, initial_backoff_seconds=0.01, max_backoff_seconds=0.01, breaker_failure_threshold=100
)


class GatedEmbedder(FakeEmbedder):
    """Records each batch; the first call tells ``entered`` and waits for ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.entered.set()
        self.gate.wait()
        return super().embed(texts)


class Rig:
    def __init__(self, path: Path, embedder: FakeEmbedder | None = None, round_size: int = 1, nice: int = 0) -> None:
        self.store = MessageStore(path)
        self.vectors = MemoryVectorStore()
        self.embedder = embedder or FakeEmbedder()
        self.buffer = WriteBuffer(
            RoundBuffer(10_000, round_size), HybridBuffer(1), MessageChunkStrategy(), TokenCounter("gpt-4o-mini")
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
            nice=nice,
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
    assert rig.vectors.count("u") == 2 and rig.buffer.location(key("r2")) == "storage"
    assert {"u"} in rig.changed, "the query cache is told about embeddings and flushes"
    assert rig.worker.stats()["embedded_chunks"] == 2 and rig.worker.alive


def test_an_embedding_failure_reaches_the_flusher_and_the_data_stays_pending(rig: Rig) -> None:
    rig.embedder.fail_next = 1
    rig.add(round_of("r1", "note"))
    with pytest.raises(EmbeddingError, match="stays pending"):
        rig.worker.wait_stored(rig.buffer.transfer_all(), timeout=30)
    assert rig.store.pending_round_ids() == {key("r1")}
    rig.worker.wait_stored({key("r1")}, timeout=30)  # retried after the backoff
    assert rig.store.pending_round_ids() == set()


def test_wait_caught_up_returns_once_embedded_and_within_max_size(rig: Rig) -> None:
    rig.add(round_of("r1", "a"), round_of("r2", "b"), round_of("r3", "c"))
    rig.worker.wait_caught_up(timeout=30)
    assert not rig.buffer.has_work()
    assert rig.buffer.stats()["hybrid_buffer"]["round_count"] <= 1


def test_a_new_round_is_embedded_at_once_without_a_transfer(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "m.sqlite3", round_size=5)
    rig.worker.start()
    try:
        rig.add(round_of("r1", "my kitten is called Miso"))
        rig.worker.wait_caught_up(timeout=30)
        assert rig.buffer.location(key("r1")) == "round_buffer", "no transfer happened"
        found = rig.buffer.search_vectors(rig.embedder.embed(["kitten Miso"])[0], lambda scope: True, 5)
        assert [chunk.round_id for chunk, _ in found] == ["r1"]
        assert rig.worker.stats()["embedded_chunks"] == 1 and rig.vectors.count() == 0
    finally:
        rig.worker.stop()
        rig.store.close()


class PriorityEmbedder(FakeEmbedder):
    """Records the nice value of each thread that embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.nice_seen: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.nice_seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().embed(texts)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are a Linux feature")
@pytest.mark.parametrize("nice", [0, 7])
def test_the_worker_embeds_at_its_lowered_priority_and_leaves_the_process_alone(tmp_path: Path, nice: int) -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    embedder = PriorityEmbedder()
    rig = Rig(tmp_path / "m.sqlite3", embedder, nice=nice)
    rig.worker.start()
    try:
        rig.add(round_of("r1", "my kitten is called Miso"))
        rig.worker.wait_caught_up(timeout=30)
        assert embedder.nice_seen and set(embedder.nice_seen) == {min(19, base + nice)}
        assert rig.worker.stats()["nice"] == min(19, base + nice)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base, "only the worker thread"
    finally:
        rig.worker.stop()
        rig.store.close()


def test_rounds_added_while_the_model_is_busy_are_embedded_in_one_batch(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    rig = Rig(tmp_path / "m.sqlite3", embedder, round_size=10)
    rig.worker.start()
    try:
        rig.add(round_of("r1", "one"))
        assert embedder.entered.wait(30), "the worker starts embedding the first round alone"
        rig.add(round_of("r2", "two"))
        rig.add(round_of("r3", "three"))
        embedder.gate.set()
        rig.worker.wait_caught_up(timeout=30)
        assert embedder.batches == [["user: one"], ["user: two", "user: three"]]
    finally:
        embedder.gate.set()
        rig.worker.stop()
        rig.store.close()


def test_orphans_are_adopted_only_when_seen_twice() -> None:
    adopt, suspects = orphans(pending={"a", "b", "c"}, mine={"a"}, suspects=set())
    assert adopt == set() and suspects == {"b", "c"}
    adopt, suspects = orphans(pending={"b", "c", "d"}, mine=set(), suspects=suspects)
    assert adopt == {"b", "c"} and suspects == {"d"}
