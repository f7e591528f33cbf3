"""QueryPath: a query ranks buffered messages by meaning, embedding the few still without a vector."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory.buffer.chunking import MessageChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import QueryConfig, RetryConfig
from memfuse_memory.engine.search import QueryPath, RankedReader
from memfuse_memory.errors import StorageError
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.storage.sqlite import MessageStore
from memfuse_memory.tokens import TokenCounter
from tests.builders import round_of
from tests.fakes import FakeEmbedder, MemoryVectorStore, query_request


class QueryRig:
    def __init__(self, path: Path, limit: int) -> None:
        self.store = MessageStore(path)
        self.embedder = FakeEmbedder()
        self.buffer = WriteBuffer(
            RoundBuffer(10_000, 5), HybridBuffer(5), MessageChunkStrategy(), TokenCounter("gpt-4o-mini")
        )
        memory = MemoryService(self.store, MemoryVectorStore(), RetryConfig())
        settings = QueryConfig(embed_pending_limit=limit)
        self.queries = QueryPath(settings, self.store, memory, self.embedder, self.buffer, QueryBuffer(0, 15))

    def add(self, rid: str, text: str, user: str = "alice") -> None:
        self.add_round(rid, text, user=user)

    def add_round(self, rid: str, *texts: str, user: str = "alice") -> None:
        round_ = round_of(rid, *texts, user=user)
        self.store.append_rounds([round_])
        self.buffer.add_rounds([round_])


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., QueryRig]]:
    opened: list[QueryRig] = []

    def build(limit: int = 32) -> QueryRig:
        opened.append(QueryRig(tmp_path / f"m{len(opened)}.sqlite3", limit))
        return opened[-1]

    yield build
    for made in opened:
        made.store.close()


def test_a_buffered_message_is_ranked_by_meaning_and_embedded_only_once(make: Callable[..., QueryRig]) -> None:
    path = make()
    path.add("r1", "my kitten Miso sleeps all day")
    path.add("r2", "other user kitten", user="bob")
    results, errors = path.queries.search(query_request("kitten", user="alice"))
    assert errors == [] and [r["round_id"] for r in results] == ["r1"]
    assert results[0]["retrieval"]["methods"] == ["keyword", "vector"] and results[0]["source"] == "round_buffer"
    assert path.embedder.texts == 2, "the query and alice's one buffered chunk, not bob's"
    path.queries.search(query_request("kitten", user="alice"))
    assert path.embedder.texts == 3, "the second query embeds only its own text"


def test_the_pending_limit_bounds_what_one_query_embeds(make: Callable[..., QueryRig]) -> None:
    path = make(limit=1)
    for n in range(3):
        path.add(f"r{n}", f"note {n}")
    path.queries.search(query_request("note"))
    assert path.embedder.texts == 2
    none = make(limit=0)
    none.add("r1", "note")
    results, _ = none.queries.search(query_request("note"))
    assert none.embedder.texts == 1 and results[0]["retrieval"]["methods"] == ["keyword"]


def test_the_keyword_search_runs_beside_the_query_embedding(make: Callable[..., QueryRig]) -> None:
    path = make()
    path.add("r1", "my kitten Miso sleeps all day")
    threads: dict[str, str] = {}
    search, embed = path.store.keyword_search, path.embedder.embed

    def keyword_search(*args: Any, **kwargs: Any) -> dict[str, float]:
        threads["keywords"] = threading.current_thread().name
        return search(*args, **kwargs)

    def embedding(texts: Any) -> Any:
        threads["embedding"] = threading.current_thread().name
        return embed(texts)

    path.store.keyword_search = keyword_search  # type: ignore[method-assign]
    path.embedder.embed = embedding  # type: ignore[method-assign]
    results, errors = path.queries.search(query_request("kitten", user="alice"))
    assert errors == [] and [r["round_id"] for r in results] == ["r1"]
    assert results[0]["retrieval"]["methods"] == ["keyword", "vector"]
    assert threads["keywords"].startswith("memfuse-keywords") and threads["embedding"] != threads["keywords"]


def test_the_user_turn_ranks_above_a_reply_unless_the_query_asks_what_the_assistant_said(
    make: Callable[..., QueryRig],
) -> None:
    path = make()
    path.add_round("r1", "I bought a gravel bike", "Gravel bike, great! Gravel bike tips: check the gravel bike tyres.")
    about_user, _ = path.queries.search(query_request("gravel bike", user="alice"))
    assert [hit["id"] for hit in about_user] == ["r1-0", "r1-1"]
    about_reply, _ = path.queries.search(query_request("what gravel bike tips did you give?", user="alice"))
    assert about_reply[0]["id"] == "r1-1"


def test_ranking_reads_role_and_time_of_every_candidate_and_the_text_of_the_top_ones_only(
    make: Callable[..., QueryRig],
) -> None:
    path = make(limit=100)  # every buffered chunk embedded by the first query: both rank the same vectors
    for n in range(60):
        path.add(f"r{n}", f"kayak trip number {n}" + " kayak" * (n % 7))
    reads: dict[str, list[int]] = {"facts": [], "texts": []}
    facts, texts = path.store.message_facts, path.store.messages_by_id

    def message_facts(user_id: str, ids: Any) -> Any:
        reads["facts"].append(len(ids))
        return facts(user_id, ids)

    def messages_by_id(user_id: str, ids: Any) -> Any:
        reads["texts"].append(len(ids))
        return texts(user_id, ids)

    path.store.message_facts = message_facts  # type: ignore[method-assign]
    path.store.messages_by_id = messages_by_id  # type: ignore[method-assign]
    top, errors = path.queries.search(query_request("kayak", top_k=3))
    assert errors == [] and reads == {"facts": [60], "texts": [20]}, "one chunk of max(2 x top_k, 20) texts"
    every, _ = path.queries.search(query_request("kayak", top_k=50))
    assert [r["id"] for r in top] == [r["id"] for r in every[:3]], "the top 3 are the first 3 of the whole ranking"
    assert reads["texts"][1:] == [60], "50 wanted: one chunk of 100 ids covers all 60 candidates"


def test_the_reader_reads_chunks_in_rank_order_and_a_failed_read_degrades_the_rest(
    make: Callable[..., QueryRig],
) -> None:
    path = make()
    for n in range(50):
        path.add(f"r{n}", f"canoe {n}")
    ranked = [f"r{n}-0" for n in reversed(range(50))]
    calls: list[list[str]] = []
    texts = path.store.messages_by_id

    def flaky(user_id: str, ids: Any) -> Any:
        calls.append(list(ids))
        if len(calls) == 3:
            raise StorageError("disk I/O error")
        return texts(user_id, ids)

    path.store.messages_by_id = flaky  # type: ignore[method-assign]
    errors: list[str] = []
    reader = RankedReader(path.store, "alice", ranked, 5, errors)
    assert reader.get("r49-0").content == "canoe 49" and calls == [ranked[:20]]
    assert reader.get("r10-0").content == "canoe 10" and calls[1:] == [ranked[20:40]]
    assert reader.get("r41-0").content == "canoe 41" and len(calls) == 2, "already read"
    assert reader.get("r9-0") is None and errors == ["message store: disk I/O error"]
    assert reader.get("r0-0") is None and len(calls) == 3, "no retry within the query"
    assert reader.get("nope") is None and reader.get("r30-0").content == "canoe 30"
