"""BufferService lifecycle, the event loop, failures and recovery, deletes and round joining,
with the fake embedder and vector store over a real SQLite file."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.errors import (
    DataDirError,
    DuplicateMessageError,
    EmbeddingError,
    InvalidInputError,
    InvalidMessageError,
    ServiceClosedError,
    StorageUnavailableError,
)
from tests.engine.test_service import contents, turn
from tests.fakes import FakeEmbedder, MemoryVectorStore

Factory = Callable[..., BlockingBufferService]


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
        found = [r["content"] for r in async_reply["data"]["results"]]
        assert sorted(found[:2]) == ["async tulips bloom", "blocking tulips wilt"]
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
        assert vectors.rounds("u") == 5
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
    assert vectors.rounds("u") == 0
    assert memory.get_stats()["storage"]["pending_rounds"] == 1
    memory.flush_all()
    assert vectors.rounds("u") == 1
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
    assert vectors.rounds("u") == 2
    assert memory.get_stats()["storage"]["pending_rounds"] == 0
    assert not memory.query("outage", user_id="u")["data"]["degraded"]


def test_restart_reindexes_what_was_not_stored(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    first = make_memory()
    ids = [first.add(turn(f"restart {n}", "ok"), session_id="s", user_id="u")["data"]["message_ids"] for n in range(3)]
    first.engine.close(flush=False)
    assert vectors.rounds("u") == 0
    second = make_memory()
    assert second.get_stats()["service"]["recovered_rounds"] == 3
    history = second.get_messages_by_session("s", user_id="u")["data"]["messages"]
    assert [m["id"] for m in history] == [i for pair in ids for i in pair]
    second.flush_all()
    assert vectors.rounds("u") == 3


def test_idle_sessions_are_flushed_by_the_timer(make_memory: Factory, vectors: MemoryVectorStore) -> None:
    memory = make_memory(buffer__hybrid_buffer__idle_flush_seconds=0.2)
    memory.add(turn("idle words", "ok"), session_id="s", user_id="u")
    done = threading.Event()

    def stored() -> bool:
        return vectors.rounds("u") == 1 and memory.get_stats()["storage"]["pending_rounds"] == 0

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
    assert vectors.rounds("u") == 1
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
    assert vectors.rounds("u") == 2
    reply = memory.delete_messages([kept[1], *other, "no-such-id"], user_id="u")
    assert reply["data"]["deleted_messages"] == 3
    history = memory.get_messages_by_session("s", user_id="u")["data"]["messages"]
    assert [m["id"] for m in history] == [kept[0]]
    assert memory.query("mango", user_id="u")["data"]["results"] == []
    assert memory.delete_messages([kept[0]], user_id="v")["data"]["deleted_messages"] == 0  # not v's message
    memory.flush_all()
    assert vectors.rounds("u") == 1  # the partial round was re-embedded without the deleted message
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
    exported = source.export_messages(user_id="u")["data"]["messages"]
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
    assert target.export_messages(user_id="u")["data"]["messages"] == exported
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
    texts = sorted(item.chunk.text for item in vectors.items["u"].values())
    # the reply is embedded with the question it answers (the default `user` chunk strategy)
    assert texts == ["user: which tea do I like?", "user: which tea do I like?\nassistant: You like jasmine tea."]
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
    texts = sorted(item.chunk.text for item in vectors.items["u"].values())
    assert texts == ["user: q", "user: q\nassistant: a", "user: q\nassistant: more"]


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
    while vectors.rounds("u") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    pending = memory.get_stats()["hybrid_buffer"]["pending_embeddings"]
    assert vectors.rounds("u") > 0, "nothing was flushed while the burst was still being embedded"
    assert pending > 0, "the burst was embedded completely; the test did not hold it back"
    for _ in range(100):
        gate.release()
    memory.flush_all(timeout=10)
    assert vectors.rounds("u") == 12 and memory.get_stats()["storage"]["pending_rounds"] == 0


def test_a_data_dir_that_is_a_file_or_cannot_be_created_is_a_named_error(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target in (blocker, blocker / "below"):
        service = BlockingBufferService.from_config(
            data_dir=target, embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
        )
        with pytest.raises(DataDirError, match=str(blocker)):
            service.start()
    assert blocker.read_text() == "x"
