"""A vector write refused for good (not an outage) is isolated: the refused round is reported in
``get_stats``, every other round of the batch is stored, and indexing never stalls behind it.
Ids holding ':' no longer make two chunks share an id (which Chroma refuses in one batch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import WriteRejectedError
from memfuse_memory.storage.vector_store import VectorItem
from tests.fakes import FakeEmbedder, MemoryVectorStore


class RefusingVectorStore(MemoryVectorStore):
    """Refuses, for good, any batch holding a chunk whose text says 'poison' (as Chroma refuses bad data)."""

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None:
        if any("poison" in item.chunk.text for item in items):
            raise WriteRejectedError("refused: poison")
        super().upsert(user_id, items)


def test_a_refused_round_is_isolated_and_the_rest_is_stored(tmp_path: Path) -> None:
    vectors = RefusingVectorStore()
    overrides = {"buffer__hybrid_buffer__max_size": 50, "buffer__round_buffer__max_size": 50}
    with BlockingBufferService.from_config(
        data_dir=tmp_path, embedder=FakeEmbedder(), vector_store=vectors, **overrides
    ) as memory:
        rounds = [[{"role": "user", "content": f"healthy message {n}"}] for n in range(9)]
        rounds.insert(4, [{"role": "user", "content": "a poison message"}])
        added = memory.add_batch(rounds, "s", round_ids=[f"r{n}" for n in range(10)])["data"]
        memory.flush_all(timeout=10)
        storage = memory.get_stats()["storage"]
        stored = {item.chunk.round_id for item in vectors.items["default"].values()}
        print(
            f"[rejected-writes] rounds={len(added['round_ids'])} stored={len(stored)} "
            f"rejected={storage['rejected_rounds']} lost=0"
        )
        assert storage["rejected_rounds"] == 1
        assert [r["round_id"] for r in storage["rejected"]] == ["r4"]
        assert stored == {f"r{n}" for n in range(10)} - {"r4"}
        assert memory.get_messages_by_session("s")["data"]["total"] == 10  # still there, found by keyword
        memory.add([{"role": "user", "content": "after the refusal"}], "s")
        memory.flush_all(timeout=10)  # indexing goes on
        assert len(vectors.items["default"]) == 10


def test_colliding_looking_ids_in_one_chroma_batch_are_all_stored(tmp_path: Path) -> None:
    overrides = {"buffer__hybrid_buffer__chunk_strategy": "contextual"}
    with BlockingBufferService.from_config(data_dir=tmp_path, embedder=FakeEmbedder(), **overrides) as memory:
        memory.add_batch(
            [[{"id": "b:c", "role": "user", "content": "the red kite"}], [{"id": "c", "role": "user", "content": "x"}]],
            "s",
            round_ids=["a", "a:b"],
        )
        memory.flush_all(timeout=10)
        stats = memory.get_stats()["storage"]
        print(
            f"[chunk-ids] chroma_batch_rounds=2 rejected={stats['rejected_rounds']} "
            f"chunks={stats['chunks_stored_since_start']}"
        )
        assert stats["chunks_stored_since_start"] == 2
        assert stats["rejected_rounds"] == 0
