"""BufferService behaviour with the fake embedder and vector store over a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import (
    DuplicateMessageError,
    InvalidMessageError,
    InvalidQueryError,
    InvalidScopeError,
    MemFuseError,
    ServiceClosedError,
)
from tests.fakes import MemoryVectorStore

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
    assert vectors.rounds("u") == 7
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
    assert vectors.rounds("u") >= 3


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
    memory.flush_all()  # the worker's embedding would otherwise refresh the answer between the two queries
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
    assert vectors.rounds("gone") == 0
    assert memory.query("delete me", user_id="gone")["data"]["results"] == []
    assert memory.get_messages_by_session("b", user_id="gone")["data"]["messages"] == []
    memory.flush_all()
    assert vectors.rounds("gone") == 0 and vectors.rounds("kept") == 1


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
        (("q",), {"min_score": 1.5}, "min_score"),
        (("q",), {"min_score": -0.1}, "min_score"),
        (("q",), {"min_score": True}, "min_score"),
        (("q",), {"min_score": "high"}, "min_score"),
    ],
)
def test_bad_queries_are_typed(memory: BlockingBufferService, args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidQueryError, match=match):
        memory.query(*args, **kwargs)


def test_min_score_cuts_off_weak_hits(memory: BlockingBufferService) -> None:
    memory.add(turn("my kitten Miso sleeps on the sofa", "cute"), session_id="s")
    memory.add(turn("the train to Porto was late", "annoying"), session_id="s")
    memory.add(turn("Miso the kitten loves tuna", "yum"), session_id="s")
    every = memory.query("kitten Miso", top_k=10)["data"]["results"]
    assert len(every) >= 2 and all(0.0 <= r["score"] <= 1.0 for r in every)
    strong = memory.query("kitten Miso", top_k=10, min_score=0.5)["data"]["results"]
    assert strong and all(r["score"] >= 0.5 for r in strong)
    assert [r["id"] for r in strong] == [r["id"] for r in every if r["score"] >= 0.5]
    assert memory.query("kitten Miso", top_k=10, min_score=1.0)["data"]["results"] == [
        r for r in every if r["score"] >= 1.0
    ]


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


def test_a_flush_indexes_keywords_before_any_search(memory: BlockingBufferService) -> None:
    for n in range(6):
        memory.add(turn(f"note {n} about my violet kayak", "noted"), session_id="s", user_id="u")
    memory.flush_all()
    keyword = memory.get_stats()["storage"]["keyword_index"]
    assert keyword["messages"] == 12 and keyword["users"] == 1, "the index worker brought it up to date"
    assert contents(memory.query("violet kayak", user_id="u"))[0].startswith("note ")
