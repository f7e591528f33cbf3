"""HybridBuffer: FIFO of embedded rounds, pending chunks, in-memory search and removal."""

from __future__ import annotations

import numpy as np

from memfuse_memory.buffer.chunking import MessageChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from tests.builders import key, round_of


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
    assert buffer.drop(lambda scope: True) == [key("r1")]
    buffer.set_vectors(chunks, np.ones((1, 2), dtype=np.float32))
    assert buffer.chunk_count == 0
