"""BufferService behaviour with the fake embedder and vector store over a real SQLite file."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.errors import (
    DuplicateMessageError,
    EmbeddingError,
    InvalidInputError,
    InvalidMessageError,
    InvalidQueryError,
    InvalidScopeError,
    MemFuseError,
    ServiceClosedError,
    StorageUnavailableError,
)
from tests.fakes import FakeEmbedder, MemoryVectorStore

Factory = Callable[..., BlockingBufferService]


def turn(user: str, assistant: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": user, **extra}, {"role": "assistant", "content": assistant}]


def contents(reply: dict[str, Any], key: str = "results") -> list[str]:
    return [item["content"] for item in reply["data"][key]]


def test_add_returns_ids_in_input_order_and_history_keeps_order(memory: BlockingBufferService) -> None:
    reply = memory.add(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi", "id": "mine"},
            {"role": "assistant", "content": "hello", "name": "bot", "metadata": {"a": [1, {"b": None}]}},
        ],
        session_id="s1",
        user_id="alice",
    )
    assert reply["status"] == "success" and reply["code"] == 200
    ids = reply["data"]["message_ids"]
    assert len(ids) == 3 and ids[1] == "mine"
    memory.add(turn("second", "reply"), session_id="s1", user_id="alice")
    history = memory.get_messages_by_session("s1", user_id="alice")["data"]["messages"]
    assert [m["content"] for m in history] == ["be brief", "hi", "hello", "second", "reply"]
    assert [m["id"] for m in history[:3]] == ids
    assert history[2]["name"] == "bot" and history[2]["metadata"] == {"a": [1, {"b": None}]}
    latest = memory.get_messages_by_session("s1", user_id="alice", limit=2, order="desc")["data"]["messages"]
    assert [m["content"] for m in latest] == ["reply", "second"]


def test_read_your_writes_in_every_stage(memory: BlockingBufferService) -> None:
    memory.add(turn("my parrot is called Kiwi", "lovely"), session_id="s", user_id="u")
    first = memory.query("parrot Kiwi", user_id="u")["data"]["results"]
    assert first[0]["content"] == "my parrot is called Kiwi"
    assert first[0]["source"] == "round_buffer"
    memory.flush_all()
    stored = memory.query("parrot Kiwi", user_id="u")["data"]["results"]
    assert stored[0]["content"] == "my parrot is called Kiwi"
    assert stored[0]["source"] == "storage"
    assert set(stored[0]["retrieval"]["methods"]) == {"keyword", "vector"}


def test_transfer_to_hybrid_buffer_is_searchable_by_vector(make_memory: Factory) -> None:
    memory = make_memory(buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=100)
    memory.add(turn("zebra stripes", "yes"), session_id="s", user_id="u")
    memory.add(turn("other thing", "ok"), session_id="s", user_id="u")
    stats = memory.get_stats()
    assert stats["round_buffer"]["transfer_triggers"] == {"size": 1}
    assert stats["hybrid_buffer"]["round_count"] == 1
    memory.engine.worker.wait_caught_up(None)  # embeddings installed, nothing flushed
    results = memory.query("zebra stripes", user_id="u")["data"]["results"]
    assert results[0]["source"] == "hybrid_buffer"
    assert "vector" in results[0]["retrieval"]["methods"]


def test_flush_all_stores_everything_and_buffer_only_empties(
    memory: BlockingBufferService, vectors: MemoryVectorStore
) -> None:
    for n in range(7):
        memory.add(turn(f"question {n}", f"answer {n}"), session_id="s", user_id="u")
    assert len(memory.get_messages_by_session("s", user_id="u", buffer_only=True)["data"]["messages"]) == 14
    reply = memory.flush_all()
    assert reply["status"] == "success"
    assert vectors.count("u") == 7
    assert memory.get_messages_by_session("s", user_id="u", buffer_only=True)["data"]["messages"] == []
    assert len(memory.get_messages_by_session("s", user_id="u")["data"]["messages"]) == 14
    stats = memory.get_stats()
    assert stats["storage"]["pending_rounds"] == 0
    assert stats["hybrid_buffer"]["round_count"] == 0 and stats["round_buffer"]["round_count"] == 0
    assert stats["write_buffer"]["total_writes"] == 7


def test_hybrid_fifo_flushes_oldest_beyond_max_size(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    memory = make_memory(buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=2)
    for n in range(6):
        memory.add(turn(f"q{n}", f"a{n}"), session_id="s", user_id="u")
    memory.engine.worker.wait_caught_up(None)
    stats = memory.get_stats()
    assert stats["hybrid_buffer"]["round_count"] <= 2
    assert vectors.count("u") >= 3


def test_user_isolation_and_session_scope(memory: BlockingBufferService) -> None:
    memory.add(turn("alice secret: blue falcon", "noted"), session_id="s1", user_id="alice")
    memory.add(turn("bob secret: red falcon", "noted"), session_id="s1", user_id="bob")
    memory.add(turn("alice other: green falcon", "ok"), session_id="s2", user_id="alice")
    for _ in range(2):
        results = memory.query("falcon secret", user_id="alice")["data"]["results"]
        assert results and all(r["user_id"] == "alice" for r in results)
        assert not any("bob" in r["content"] for r in results)
        memory.flush_all()
    scoped = memory.query("falcon", user_id="alice", session_id="s2")["data"]["results"]
    assert {r["session_id"] for r in scoped} == {"s2"}


def test_cache_hits_and_is_invalidated_by_writes_and_deletes(memory: BlockingBufferService) -> None:
    memory.add(turn("the capital of France is Paris", "right"), session_id="s", user_id="u")
    first = memory.query("capital France", user_id="u")
    second = memory.query("capital France", user_id="u")
    assert not first["data"]["cached"] and second["data"]["cached"]
    assert second["data"]["results"] == first["data"]["results"]
    second["data"]["results"][0]["content"] = "mutated by caller"
    assert memory.query("capital France", user_id="u")["data"]["results"][0]["content"].startswith("the capital")
    memory.add(turn("the capital of France has the Louvre", "yes"), session_id="s", user_id="u")
    fresh = memory.query("capital France", user_id="u")
    assert not fresh["data"]["cached"]
    assert "the capital of France has the Louvre" in contents(fresh)
    memory.delete_session("s", user_id="u")
    assert memory.query("capital France", user_id="u")["data"]["results"] == []
    stats = memory.get_stats()["query_buffer"]
    assert stats["cache_hits"] >= 2 and stats["cache_misses"] >= 3


def test_sort_by_timestamp_filters_and_time_range(memory: BlockingBufferService) -> None:
    for n, stamp in enumerate(["2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"]):
        memory.add(
            [
                {
                    "role": "user",
                    "content": f"garden note {n}",
                    "created_at": stamp,
                    "metadata": {"topic": "garden", "n": n},
                }
            ],
            session_id="s",
            user_id="u",
        )
    memory.add(
        [{"role": "user", "content": "garden other", "metadata": {"topic": "misc"}}], session_id="s", user_id="u"
    )
    asc = memory.query(
        "garden note", user_id="u", sort_by="timestamp", order="asc", metadata_filter={"topic": "garden"}
    )
    assert contents(asc) == ["garden note 0", "garden note 1", "garden note 2"]
    desc = memory.query(
        "garden note", user_id="u", sort_by="timestamp", order="desc", metadata_filter={"topic": "garden"}
    )
    assert contents(desc) == ["garden note 2", "garden note 1", "garden note 0"]
    ranged = memory.query("garden", user_id="u", since="2024-03-01", until="2024-12-31T23:59:59Z")
    assert contents(ranged) == ["garden note 1"]
    memory.flush_all()
    ranged = memory.query("garden", user_id="u", since="2024-03-01", until="2024-12-31T23:59:59Z")
    assert contents(ranged) == ["garden note 1"]
    assert all(
        r["metadata"]["topic"] == "garden"
        for r in memory.query("garden", user_id="u", metadata_filter={"topic": "garden"})["data"]["results"]
    )


def test_results_never_exceed_query_max_size(make_memory: Factory) -> None:
    memory = make_memory(buffer__query__max_size=3)
    memory.add_batch([turn(f"apple pie {n}", "yum") for n in range(10)], session_id="s", user_id="u")
    assert len(memory.query("apple pie", top_k=50, user_id="u")["data"]["results"]) == 3
    assert len(memory.query("apple pie", top_k=2, user_id="u")["data"]["results"]) == 2


def test_delete_user_removes_everything(memory: BlockingBufferService, vectors: MemoryVectorStore) -> None:
    memory.add(turn("delete me please", "ok"), session_id="a", user_id="gone")
    memory.flush_all()
    memory.add(turn("delete me too", "ok"), session_id="b", user_id="gone")
    memory.add(turn("keep me", "ok"), session_id="a", user_id="kept")
    reply = memory.delete_user("gone")
    assert reply["data"]["deleted_messages"] == 4
    assert vectors.count("gone") == 0
    assert memory.query("delete me", user_id="gone")["data"]["results"] == []
    assert memory.get_messages_by_session("b", user_id="gone")["data"]["messages"] == []
    memory.flush_all()
    assert vectors.count("gone") == 0 and vectors.count("kept") == 1


def count_messages(memory: BlockingBufferService) -> int:
    return memory.get_stats()["storage"]["messages"]


@pytest.mark.parametrize(
    ("messages", "kwargs", "error", "match"),
    [
        ([], {}, InvalidMessageError, "empty"),
        ("hello", {}, InvalidMessageError, "list"),
        ([{"content": "no role"}], {}, InvalidMessageError, r"messages\[0\]\.role"),
        ([{"role": "wizard", "content": "x"}], {}, InvalidMessageError, "role"),
        ([{"role": "user", "content": 42}], {}, InvalidMessageError, "content"),
        ([{"role": "user", "content": "x" * 100_001}], {}, InvalidMessageError, "longer than"),
        ([{"role": "user", "content": "nul\x00byte"}], {}, InvalidMessageError, "NUL"),
        ([{"role": "user", "content": "bad \ud800 surrogate"}], {}, InvalidMessageError, "Unicode"),
        (
            [{"role": "user", "content": "x", "metadata": {"f": float("nan")}}],
            {},
            InvalidMessageError,
            "metadata|NaN|JSON",
        ),
        ([{"role": "user", "content": "x", "metadata": {"o": object()}}], {}, InvalidMessageError, "serializable"),
        ([{"role": "user", "content": "x", "created_at": "yesterday"}], {}, InvalidMessageError, "ISO 8601"),
        ([{"role": "user", "content": "x", "bogus": 1}], {}, InvalidMessageError, "bogus"),
        (
            [{"role": "user", "content": "a", "id": "same"}, {"role": "user", "content": "b", "id": "same"}],
            {},
            InvalidMessageError,
            "twice",
        ),
        ([{"role": "user", "content": "ok"}, "not a dict"], {}, InvalidMessageError, r"messages\[1\]"),
        ([{"role": "user", "content": "x"}], {"session_id": "../etc"}, InvalidScopeError, "path separators"),
        ([{"role": "user", "content": "x"}], {"session_id": "a\nb"}, InvalidScopeError, "control"),
        ([{"role": "user", "content": "x"}], {"session_id": ""}, InvalidScopeError, "non-empty"),
        ([{"role": "user", "content": "x"}], {"user_id": "u" * 300}, InvalidScopeError, "longer"),
        ([{"role": "user", "content": "x"}], {"user_id": 7}, InvalidScopeError, "string"),
    ],
)
def test_bad_input_is_typed_and_writes_nothing(
    memory: BlockingBufferService, messages: Any, kwargs: dict, error: type, match: str
) -> None:
    memory.add(turn("before", "it"), session_id="s")
    before = count_messages(memory)
    with pytest.raises(error, match=match) as caught:
        memory.add(messages, **{"session_id": "s", **kwargs})
    assert isinstance(caught.value, MemFuseError)
    assert count_messages(memory) == before


def test_batch_is_all_or_nothing_and_duplicates_are_rejected(memory: BlockingBufferService) -> None:
    memory.add([{"role": "user", "content": "x", "id": "taken"}], session_id="s")
    with pytest.raises(InvalidMessageError, match=r"messages\[0\]\.role"):
        memory.add_batch([turn("fine", "fine"), [{"role": "nobody", "content": "x"}]], session_id="s")
    with pytest.raises(DuplicateMessageError, match="taken"):
        memory.add_batch([turn("fine", "fine"), [{"role": "user", "content": "x", "id": "taken"}]], session_id="s")
    assert count_messages(memory) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("",), {}, "non-empty"),
        (("q", 0), {}, "top_k"),
        (("q", -3), {}, "top_k"),
        (("q", True), {}, "top_k"),
        (("q",), {"sort_by": "length"}, "sort_by"),
        (("q",), {"order": "up"}, "order"),
        (("q",), {"since": "2025-01-01", "until": "2024-01-01"}, "since"),
        (("q",), {"since": "soon"}, "ISO"),
        (("q",), {"metadata_filter": ["a"]}, "metadata_filter"),
    ],
)
def test_bad_queries_are_typed(memory: BlockingBufferService, args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidQueryError, match=match):
        memory.query(*args, **kwargs)


def test_close_is_idempotent_and_calls_after_close_fail(make_memory: Factory) -> None:
    memory = make_memory()
    memory.add(turn("a", "b"), session_id="s")
    memory.close()
    memory.close()
    for call in (
        lambda: memory.add(turn("a", "b")),
        lambda: memory.query("a"),
        lambda: memory.get_messages_by_session("s"),
        lambda: memory.flush_all(),
        lambda: memory.delete_user("default"),
        lambda: memory.get_stats(),
    ):
        with pytest.raises(ServiceClosedError):
            call()


async def test_async_service_requires_start_and_matches_blocking(
    tmp_path: Any, embedder: FakeEmbedder, vectors: MemoryVectorStore
) -> None:
    service = BufferService.from_config(data_dir=tmp_path / "x", embedder=embedder, vector_store=vectors)
    with pytest.raises(ServiceClosedError, match="not started"):
        await service.add(turn("a", "b"))
    async with service:
        blocking = service.blocking()
        await service.add(turn("async tulips bloom", "nice"), session_id="p", user_id="u")
        blocking.add(turn("blocking tulips wilt", "sad"), session_id="p", user_id="u")
        async_reply = await service.query("tulips", user_id="u")
        sync_reply = blocking.query("tulips", user_id="u")
        assert async_reply["data"]["results"] == sync_reply["data"]["results"]
        assert len(async_reply["data"]["results"]) == 2
        async_history = await service.get_messages_by_session("p", user_id="u")
        assert async_history == blocking.get_messages_by_session("p", user_id="u")
        await service.flush_all()
        assert blocking.get_stats()["storage"]["pending_rounds"] == 0
    with pytest.raises(ServiceClosedError):
        await service.query("tulips", user_id="u")


async def test_blocking_facade_works_inside_a_running_loop(memory: BlockingBufferService) -> None:
    assert asyncio.get_running_loop() is not None
    memory.add(turn("inside the loop", "fine"), session_id="nb")
    assert contents(memory.query("inside loop"))[0] == "inside the loop"


class GatedEmbedder(FakeEmbedder):
    """Blocks every embedding call until the gate opens; records the threads it ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.threads: set[int] = set()

    def embed(self, texts: Any) -> Any:
        self.threads.add(threading.get_ident())
        if len(texts) > 1 or not texts[0].startswith("query:"):
            assert self.gate.wait(30), "gate never opened"
        return super().embed(texts)


async def test_add_never_waits_for_embedding_nor_runs_it_on_the_loop(tmp_path: Any, vectors: MemoryVectorStore) -> None:
    embedder = GatedEmbedder()
    service = BufferService.from_config(
        data_dir=tmp_path / "g", embedder=embedder, vector_store=vectors, buffer__round_buffer__max_size=1
    )
    async with service:
        for n in range(5):
            await service.add(turn(f"gated {n}", "ok"), session_id="s", user_id="u")
        stats = service.get_stats()
        assert stats["write_buffer"]["total_writes"] == 5
        assert stats["hybrid_buffer"]["pending_embeddings"] >= 1  # the worker is stuck, add was not
        history = await service.get_messages_by_session("s", user_id="u")
        assert len(history["data"]["messages"]) == 10
        embedder.gate.set()
        await service.flush_all()
        assert vectors.count("u") == 5
    assert threading.main_thread().ident not in embedder.threads


def test_embedding_failure_is_retried_never_faked(
    make_memory: Factory, embedder: FakeEmbedder, vectors: MemoryVectorStore
) -> None:
    memory = make_memory(
        retry__max_attempts=2, retry__initial_backoff_seconds=0.01, retry__breaker_failure_threshold=100
    )
    embedder.fail_next = 2
    memory.add(turn("robust text", "ok"), session_id="s", user_id="u")
    with pytest.raises(EmbeddingError, match="pending"):
        memory.flush_all()
    assert vectors.count("u") == 0
    assert memory.get_stats()["storage"]["pending_rounds"] == 1
    memory.flush_all()
    assert vectors.count("u") == 1
    assert memory.get_stats()["index_worker"]["failures"] >= 1


def test_storage_outage_keeps_accepting_and_recovers(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    memory = make_memory(
        retry__max_attempts=2,
        retry__initial_backoff_seconds=0.01,
        retry__breaker_failure_threshold=2,
        retry__breaker_reset_seconds=0.05,
    )
    vectors.down = True
    memory.add(turn("during outage one", "ok"), session_id="s", user_id="u")
    with pytest.raises(StorageUnavailableError):
        memory.flush_all()
    memory.add(turn("during outage two", "ok"), session_id="s", user_id="u")
    stats = memory.get_stats()
    assert stats["storage"]["pending_rounds"] == 2
    assert stats["storage"]["vector_store_breaker"]["opened_count"] >= 1
    degraded = memory.query("outage", user_id="u")["data"]
    assert degraded["degraded"] and {r["content"] for r in degraded["results"]} >= {
        "during outage one",
        "during outage two",
    }
    vectors.down = False
    breaker = memory.engine.memory.vector_breaker
    waited = threading.Event()
    while breaker.state == "open":  # the breaker's reset timer is under test: bounded wait for half-open
        assert not waited.wait(0.02) and breaker.reset_seconds < 1
    memory.flush_all()
    assert breaker.state == "closed"
    assert vectors.count("u") == 2
    assert memory.get_stats()["storage"]["pending_rounds"] == 0
    assert not memory.query("outage", user_id="u")["data"]["degraded"]


def test_restart_reindexes_what_was_not_stored(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    first = make_memory()
    ids = [first.add(turn(f"restart {n}", "ok"), session_id="s", user_id="u")["data"]["message_ids"] for n in range(3)]
    first.engine.close(flush=False)
    assert vectors.count("u") == 0
    second = make_memory()
    assert second.get_stats()["service"]["recovered_rounds"] == 3
    history = second.get_messages_by_session("s", user_id="u")["data"]["messages"]
    assert [m["id"] for m in history] == [i for pair in ids for i in pair]
    second.flush_all()
    assert vectors.count("u") == 3


def test_idle_sessions_are_flushed_by_the_timer(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    memory = make_memory(buffer__hybrid_buffer__idle_flush_seconds=0.2)
    memory.add(turn("idle words", "ok"), session_id="s", user_id="u")
    done = threading.Event()

    def stored() -> bool:
        return vectors.count("u") == 1 and memory.get_stats()["storage"]["pending_rounds"] == 0

    for _ in range(100):  # the idle timer is the behaviour under test: poll it, bounded
        if stored():
            done.set()
            break
        done.wait(0.1)
    assert done.is_set()
    assert memory.get_stats()["round_buffer"]["transfer_triggers"].get("idle") == 1


def test_buffer_disabled_writes_through(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    memory = make_memory(buffer__enabled=False)
    memory.add(turn("write through", "ok"), session_id="s", user_id="u")
    assert vectors.count("u") == 1
    assert memory.get_stats()["storage"]["pending_rounds"] == 0


def test_stats_cover_the_seed_metrics(memory: BlockingBufferService) -> None:
    memory.add(turn("a", "b"), session_id="s")
    memory.query("a")
    stats = memory.get_stats()
    assert {"total_writes", "total_transfers", "component_health"} <= set(stats["write_buffer"])
    assert {"current_tokens", "round_count", "transfer_triggers"} <= set(stats["round_buffer"])
    assert {"chunk_count", "round_count", "flush_operations"} <= set(stats["hybrid_buffer"])
    assert {"cache_hits", "cache_misses", "query_latency_ms"} <= set(stats["query_buffer"])
    assert stats["round_buffer"]["current_tokens"] > 0
    assert stats["query_buffer"]["query_latency_ms"]["count"] == 1
    assert set(stats["write_buffer"]["component_health"].values()) == {"ok"}


def test_delete_messages_is_exact_and_reindexes_partial_rounds(
    memory: BlockingBufferService, vectors: MemoryVectorStore
) -> None:
    kept = memory.add(turn("keep this kiwi line", "drop this mango line"), session_id="s", user_id="u")["data"][
        "message_ids"
    ]
    other = memory.add(turn("whole round goes", "entirely"), session_id="s", user_id="u")["data"]["message_ids"]
    memory.add(turn("someone else's mango", "theirs"), session_id="s", user_id="v")
    memory.flush_all()
    assert vectors.count("u") == 2
    reply = memory.delete_messages([kept[1], *other, "no-such-id"], user_id="u")
    assert reply["data"]["deleted_messages"] == 3
    history = memory.get_messages_by_session("s", user_id="u")["data"]["messages"]
    assert [m["id"] for m in history] == [kept[0]]
    assert memory.query("mango", user_id="u")["data"]["results"] == []
    assert memory.delete_messages([kept[0]], user_id="v")["data"]["deleted_messages"] == 0  # not v's message
    memory.flush_all()
    assert vectors.count("u") == 1  # the partial round was re-embedded without the deleted message
    (item,) = vectors.items["u"].values()
    assert "mango" not in item.chunk.text and "kiwi" in item.chunk.text
    assert memory.query("mango", user_id="v")["data"]["results"]
    with pytest.raises(InvalidInputError):
        memory.delete_messages("abc", user_id="u")


def test_list_sessions_counts_in_order(memory: BlockingBufferService) -> None:
    memory.add(turn("a", "b"), session_id="first", user_id="u")
    memory.add(turn("c", "d"), session_id="second", user_id="u")
    memory.add(turn("e", "f"), session_id="first", user_id="u")
    sessions = memory.list_sessions(user_id="u")["data"]["sessions"]
    assert [(s["session_id"], s["messages"]) for s in sessions] == [("first", 4), ("second", 2)]
    assert memory.list_sessions(user_id="nobody")["data"]["sessions"] == []


def test_export_and_round_ids_round_trip(make_memory: Factory, tmp_path: Any) -> None:
    source = make_memory()
    source.add(turn("first", "one", metadata={"k": [1]}), session_id="a", user_id="u")
    source.add_batch([turn("second", "two"), turn("third", "three")], session_id="b", user_id="u")
    source.add(turn("other user", "x"), session_id="a", user_id="w")
    exported = source.export_messages(user_id="u")
    assert [m["content"] for m in exported] == ["first", "one", "second", "two", "third", "three"]
    assert source.list_users() == ["u", "w"]
    target = make_memory(data_dir=tmp_path / "copy")
    for session in ("a", "b"):
        rows = [m for m in exported if m["session_id"] == session]
        rounds: dict[str, list[dict[str, Any]]] = {}
        for m in rows:
            rounds.setdefault(m["round_id"], []).append(
                {k: m[k] for k in ("id", "role", "content", "name", "created_at", "metadata")}
            )
        target.add_batch(list(rounds.values()), session, user_id="u", round_ids=list(rounds))
    assert target.export_messages(user_id="u") == exported
    with pytest.raises(DuplicateMessageError):
        target.add_batch([turn("again", "x")], "a", user_id="u", round_ids=[exported[0]["round_id"]])
    with pytest.raises(InvalidMessageError, match="one id per round"):
        target.add_batch([turn("x", "y")], "a", user_id="u", round_ids=["r1", "r2"])


def test_continue_round_joins_a_reply_to_its_question(
    memory: BlockingBufferService, vectors: MemoryVectorStore
) -> None:
    question = memory.add([{"role": "user", "content": "which tea do I like?"}], session_id="s", user_id="u")
    reply = memory.add(
        [{"role": "assistant", "content": "You like jasmine tea."}], session_id="s", user_id="u", continue_round=True
    )
    assert reply["data"]["continued"] and reply["data"]["round_id"] == question["data"]["round_id"]
    history = memory.get_messages_by_session("s", user_id="u")["data"]["messages"]
    assert [(m["content"], m["round_id"]) for m in history] == [
        ("which tea do I like?", question["data"]["round_id"]),
        ("You like jasmine tea.", question["data"]["round_id"]),
    ]
    assert memory.get_stats()["round_buffer"]["round_count"] == 1
    memory.flush_all()
    (item,) = vectors.items["u"].values()
    assert item.chunk.text == "user: which tea do I like?\nassistant: You like jasmine tea."
    fresh = memory.add(
        [{"role": "assistant", "content": "anything else?"}], session_id="s", user_id="u", continue_round=True
    )
    assert not fresh["data"]["continued"]  # the round was stored already: a new round starts
    assert memory.get_stats()["storage"]["rounds"] == 2


def test_continue_round_survives_restart(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    first = make_memory()
    first.add([{"role": "user", "content": "q"}], session_id="s", user_id="u")
    first.add([{"role": "assistant", "content": "a"}], session_id="s", user_id="u", continue_round=True)
    first.engine.close(flush=False)
    second = make_memory()
    history = second.get_messages_by_session("s", user_id="u")["data"]["messages"]
    assert [m["content"] for m in history] == ["q", "a"] and history[0]["round_id"] == history[1]["round_id"]
    second.add([{"role": "assistant", "content": "more"}], session_id="s", user_id="u", continue_round=True)
    second.flush_all()
    (item,) = vectors.items["u"].values()
    assert item.chunk.text == "user: q\nassistant: a\nassistant: more"


def test_rounds_flush_between_embedding_batches_of_a_burst(
    make_memory: Factory, embedder: FakeEmbedder, vectors: MemoryVectorStore
) -> None:
    """A burst that outruns the embedder still reaches the vector store batch by batch, so the
    HybridBuffer stays near max_size instead of holding every embedded round until the burst ends."""
    gate = threading.Semaphore(0)
    embed = embedder.embed

    def gated(texts: Any) -> Any:
        assert gate.acquire(timeout=10), "the test never released this batch"
        return embed(texts)

    embedder.embed = gated  # type: ignore[method-assign]
    memory = make_memory(buffer__round_buffer__max_size=1, buffer__hybrid_buffer__max_size=1, embedding__batch_size=2)
    memory.add_batch([turn(f"burst note {n}", f"ok {n}") for n in range(12)], session_id="s", user_id="u")
    for _ in range(4):
        gate.release()
    deadline = time.monotonic() + 10
    while vectors.count("u") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    pending = memory.get_stats()["hybrid_buffer"]["pending_embeddings"]
    assert vectors.count("u") > 0, "nothing was flushed while the burst was still being embedded"
    assert pending > 0, "the burst was embedded completely; the test did not hold it back"
    for _ in range(100):
        gate.release()
    memory.flush_all(timeout=10)
    assert vectors.count("u") == 12 and memory.get_stats()["storage"]["pending_rounds"] == 0
