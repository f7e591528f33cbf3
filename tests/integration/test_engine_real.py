"""The whole pipeline with the real MiniLM, Chroma (embedded or server), tiktoken and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import chromadb

from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.config import VectorStoreConfig
from memfuse_memory.storage.vector_store import collection_name
from memfuse_memory.tokens import get_encoding

FACTS = [
    ("I adopted a little kitten last spring and named her Miso.", "What a sweet name for a kitten!"),
    ("My sister lives in Lisbon and works as an architect.", "Lisbon is a beautiful city."),
    ("I am allergic to peanuts, so I avoid satay.", "Good to know, I will keep that in mind."),
    ("Next month I start training for the Berlin marathon.", "Good luck with the training!"),
    ("I drive an old blue Volvo station wagon.", "Classic car."),
    ("My favourite dessert is pistachio ice cream.", "Delicious choice."),
]


def add_facts(memory: BlockingBufferService, user: str = "alice") -> list[str]:
    ids: list[str] = []
    for n, (said, answered) in enumerate(FACTS):
        reply = memory.add(
            [{"role": "user", "content": said, "metadata": {"n": n}}, {"role": "assistant", "content": answered}],
            session_id=f"s{n % 2}",
            user_id=user,
        )
        ids.extend(reply["data"]["message_ids"])
    return ids


def test_semantic_recall_without_shared_words_in_buffer_and_storage(tmp_path: Path) -> None:
    with BlockingBufferService.from_config(data_dir=tmp_path, buffer__round_buffer__max_size=1) as memory:
        add_facts(memory)
        memory.engine.worker.wait_caught_up(None)
        buffered = memory.query("which pet do I own?", top_k=3, user_id="alice")["data"]["results"]
        assert any("Miso" in r["content"] for r in buffered)
        assert {r["source"] for r in buffered} <= {"hybrid_buffer", "storage", "round_buffer"}
        memory.flush_all()
        stored = memory.query("food I must never eat", top_k=3, user_id="alice")["data"]["results"]
        assert "peanuts" in stored[0]["content"]
        assert stored[0]["source"] == "storage" and "vector" in stored[0]["retrieval"]["methods"]
        assert stored[0]["metadata"] == {"n": 2}


def test_round_buffer_counts_tokens_with_tiktoken(tmp_path: Path) -> None:
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        text = "Tokens are counted with the gpt-4o-mini encoding, not by words."
        memory.add([{"role": "user", "content": text}], session_id="t")
        expected = len(get_encoding("gpt-4o-mini").encode_ordinary(text)) + 3
        assert memory.get_stats()["round_buffer"]["current_tokens"] == expected


def chroma_client(config: VectorStoreConfig, data_dir: Path) -> chromadb.ClientAPI:
    settings = chromadb.Settings(anonymized_telemetry=False)
    if config.mode == "server":
        return chromadb.HttpClient(host=config.host, port=config.port, settings=settings)
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)


def test_reopen_keeps_history_and_vectors_and_delete_user_drops_collection(tmp_path: Path) -> None:
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        ids = add_facts(memory)
        add_facts(memory, user="bob")
        store_id, vector_config = memory.engine.store.store_id, memory.engine.config.storage.vector_store
    assert len(store_id) == 16
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        history = [
            m["id"]
            for session in ("s0", "s1")
            for m in memory.get_messages_by_session(session, user_id="alice")["data"]["messages"]
        ]
        assert sorted(history) == sorted(ids)
        assert memory.get_stats()["storage"]["pending_rounds"] == 0
        hit = memory.query("where does my sibling live", top_k=3, user_id="alice")["data"]["results"]
        assert any("Lisbon" in r["content"] for r in hit)
        memory.delete_user("bob")
        assert memory.query("Lisbon", user_id="bob")["data"]["results"] == []
    names = {c.name for c in chroma_client(vector_config, tmp_path).list_collections()}
    assert collection_name(store_id, "alice") in names and collection_name(store_id, "bob") not in names


async def test_async_api_and_contextual_strategy_end_to_end(tmp_path: Path) -> None:
    long_turn = "I keep a travel diary. " + " ".join(f"Day {d} we walked around the old town." for d in range(60))
    long_turn += " On the last day we finally saw the northern lights over the fjord."
    service = BufferService.from_config(data_dir=tmp_path, buffer__hybrid_buffer__chunk_strategy="contextual")
    async with service:
        await service.add(
            [{"role": "user", "content": long_turn}, {"role": "assistant", "content": "Wonderful."}], "trip"
        )
        await service.flush_all()
        results = (await service.query("aurora borealis sighting", top_k=3))["data"]["results"]
        assert results and results[0]["content"] == long_turn
        assert service.get_stats()["storage"]["chunks_stored_since_start"] > 2  # the long turn was split into windows


def test_delete_messages_removes_vectors_from_chroma(tmp_path: Path) -> None:
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        ids = add_facts(memory)
        memory.flush_all()
        peanut_round = ids[4:6]
        memory.delete_messages(peanut_round, user_id="alice")
        results = memory.query("food allergy", top_k=5, user_id="alice")["data"]["results"]
        assert all("peanut" not in r["content"] for r in results)
        held = memory.engine.components.vectors.count("alice")  # type: ignore[attr-defined]
        assert held == 2 * (len(FACTS) - 1)  # each round left: its user turn's vector and its reply's


def test_chroma_upserts_more_than_its_max_batch(tmp_path: Path, vector_store_config: VectorStoreConfig) -> None:
    """A flush after a long outage can hold more chunks than Chroma takes in one call."""
    import numpy as np

    from memfuse_memory.buffer.chunking import chunk_id
    from memfuse_memory.models import Chunk, Scope
    from memfuse_memory.scope import ScopeFilter
    from memfuse_memory.storage.vector_store import ChromaVectorStore, VectorItem

    store = ChromaVectorStore(vector_store_config, tmp_path, store_id=uuid.uuid4().hex[:16])
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scope = Scope("bulk", "s")
    stamp = datetime.now(UTC)
    items = [
        VectorItem(Chunk(chunk_id(f"r{n}", f"m{n}", 0), f"r{n}", scope, "x", (f"m{n}",), stamp), vectors[n])
        for n in range(6000)
    ]
    store.upsert("bulk", items)
    hits = store.query(vectors[4321], ScopeFilter("bulk"), 3)
    assert hits[0].message_ids == ("m4321",)
    assert store.count("bulk") == 6000


def test_two_users_with_the_same_ids_are_indexed_found_and_changed_apart(tmp_path: Path) -> None:
    """Ids are unique per user on the real stack (MiniLM, Chroma, the pass's message store): the
    same message and round ids for two users, each found by meaning, each changing only its own."""
    said = {"alice": "I keep a sourdough starter alive in the fridge.", "bob": "My bicycle has a flat rear tyre."}
    with BlockingBufferService.from_config(data_dir=tmp_path) as memory:
        for user, text in said.items():
            memory.add_batch(
                [[{"id": "m1", "role": "user", "content": text}], [{"id": "m2", "role": "user", "content": "noted"}]],
                "s",
                user_id=user,
                round_ids=["r1", "r2"],
            )
        memory.flush_all()
        vectors = memory.engine.components.vectors  # type: ignore[attr-defined]
        assert vectors.count("alice") == vectors.count("bob") == 2
        for user, question in (("alice", "baking bread at home"), ("bob", "repairing a bike")):
            (best,) = memory.query(question, top_k=1, user_id=user)["data"]["results"]
            assert (best["id"], best["round_id"], best["content"]) == ("m1", "r1", said[user])
        memory.update_messages(["m1"], [{"role": "user", "content": "I sold my bicycle last week."}], user_id="alice")
        memory.delete_messages(["m2"], user_id="bob")
        memory.flush_all()
        assert vectors.count("alice") == 2 and vectors.count("bob") == 1
        (best,) = memory.query("repairing a bike", top_k=1, user_id="bob")["data"]["results"]
        assert best["content"] == said["bob"], "alice's edit never reached bob's message"
        alice = {m["id"]: m["content"] for m in memory.export_messages(user_id="alice")["data"]["messages"]}
        assert alice == {"m1": "I sold my bicycle last week.", "m2": "noted"}
