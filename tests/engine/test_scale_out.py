"""Sharing one memory between engines: store ids in collection names, per-user versions that keep
every engine's query cache fresh, deletes racing another engine's flush, server start-up errors.

Two engines on one data directory in one process stand for two processes: each has its own
buffers, query cache and SQLite connections; they share the message store file and the (fake)
vector store, as replicas share SQLite and a Chroma server.
"""

from __future__ import annotations

import itertools
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.config import VectorStoreConfig
from memfuse_memory.errors import StorageError
from memfuse_memory.models import IdKey, QueryRequest
from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.storage.vector_store import ChromaVectorStore, collection_name
from memfuse_memory.worker import orphans
from tests.fakes import MemoryVectorStore, query_request

Make = Callable[..., BlockingBufferService]


def say(memory: BlockingBufferService, text: str, *, user: str = "alice", session: str = "s") -> str:
    return memory.add([{"role": "user", "content": text}], session_id=session, user_id=user)["data"]["message_ids"][0]


def found(reply: dict) -> list[str]:
    return [r["content"] for r in reply["data"]["results"]]


def request_for(text: str, user: str = "alice") -> QueryRequest:
    return query_request(text, user)


# -- store id and collection names ------------------------------------------------------------


def test_store_id_is_created_once_and_shared_by_every_opener(tmp_path: Path) -> None:
    first = MessageStore(tmp_path / "a.sqlite3")
    second = MessageStore(tmp_path / "a.sqlite3")
    other = MessageStore(tmp_path / "b.sqlite3")
    try:
        assert len(first.store_id) == 16 and int(first.store_id, 16) >= 0
        assert second.store_id == first.store_id
        assert other.store_id != first.store_id
    finally:
        for store in (first, second, other):
            store.close()
    reopened = MessageStore(tmp_path / "a.sqlite3")
    read_only = MessageStore(tmp_path / "a.sqlite3", read_only=True)
    assert reopened.store_id == read_only.store_id == first.store_id
    reopened.close()
    read_only.close()


def test_a_store_with_rounds_from_before_store_ids_keeps_its_collection_names(
    tmp_path: Path, make_memory: Make
) -> None:
    memory = make_memory(data_dir=tmp_path / "old")
    say(memory, "written before stores had ids")
    memory.close()
    with sqlite3.connect(tmp_path / "old" / "messages.sqlite3") as conn:
        conn.execute("DROP TABLE meta")
    store = MessageStore(tmp_path / "old" / "messages.sqlite3")
    assert store.store_id == ""
    store.close()
    assert collection_name("", "alice") == "mfu-" + collection_name("x", "alice").split("-")[-1]


def test_collection_names_separate_stores_and_users_and_stay_valid() -> None:
    names = {collection_name(store, user) for store in ("0123456789abcdef", "fedcba9876543210") for user in "ab"}
    assert len(names) == 4
    name = collection_name("0123456789abcdef", "user/with spaces and ünïcode")
    assert name.startswith("mfu-0123456789abcdef-") and len(name) <= 63
    assert all(ch.isalnum() or ch == "-" for ch in name)


# -- per-user versions ------------------------------------------------------------------------


def test_user_version_moves_with_every_add_store_and_delete_of_that_user_only(make_memory: Make) -> None:
    memory = make_memory()
    store = memory.engine.store
    assert store is not None and store.user_version("alice") == 0
    seen = [store.user_version("alice")]
    first = say(memory, "one")
    seen.append(store.user_version("alice"))
    say(memory, "two", session="t")
    seen.append(store.user_version("alice"))
    bob_before = store.user_version("bob")
    memory.flush_all()
    seen.append(store.user_version("alice"))
    memory.delete_messages([first], user_id="alice")
    seen.append(store.user_version("alice"))
    memory.delete_session("t", user_id="alice")
    seen.append(store.user_version("alice"))
    assert all(a < b for a, b in itertools.pairwise(seen)), seen
    assert store.user_version("bob") == bob_before == 0


def test_query_buffer_serves_an_entry_only_at_the_version_it_was_computed_at() -> None:
    cache = QueryBuffer(cache_size=10, max_size=10)
    request = request_for("cats")
    cache.put(request, [{"id": "m1"}], cache.generation("alice", 7))
    assert cache.get(request, 7) == [{"id": "m1"}]
    assert cache.get(request, 8) is None
    assert cache.get(request, 7) is None, "an outdated entry is dropped, not kept for later"
    assert cache.stats()["cache_entries"] == 0 and cache.cache_misses == 2


def test_query_buffer_refuses_an_answer_computed_across_a_local_change() -> None:
    cache = QueryBuffer(cache_size=10, max_size=10)
    request = request_for("cats")
    token = cache.generation("alice", 3)
    cache.invalidate({"alice"})
    cache.put(request, [{"id": "m1"}], token)
    assert cache.get(request, 3) is None


def test_a_cached_answer_is_not_served_after_another_engines_write(make_memory: Make) -> None:
    one, two = make_memory(), make_memory()
    say(one, "my parrot is called Kiwi")
    assert found(one.query("parrot", user_id="alice")) == ["my parrot is called Kiwi"]
    assert one.query("parrot", user_id="alice")["data"]["cached"] is True
    say(two, "the parrot also likes grapes", session="other")
    again = one.query("parrot", user_id="alice")
    assert again["data"]["cached"] is False
    assert sorted(found(again)) == ["my parrot is called Kiwi", "the parrot also likes grapes"]


def test_another_engines_delete_and_flush_reach_the_cache_and_other_users_stay_cached(make_memory: Make) -> None:
    one, two = make_memory(), make_memory()
    say(two, "the parrot sings at dawn", session="gone")
    say(two, "a parrot for bob", user="bob")
    assert found(one.query("parrot", user_id="alice")) == ["the parrot sings at dawn"]
    assert found(one.query("parrot", user_id="bob")) == ["a parrot for bob"]
    two.delete_session("gone", user_id="alice")
    assert found(one.query("parrot", user_id="alice")) == []
    assert one.query("parrot", user_id="bob")["data"]["cached"] is True
    say(two, "parrot number two", user="bob")
    cached_before = one.query("parrot", user_id="bob")["data"]["cached"]
    assert cached_before is False
    two.flush_all()
    after_flush = one.query("parrot", user_id="bob")
    assert after_flush["data"]["cached"] is False, "vectors stored by another engine change the answer"
    assert "vector" in after_flush["data"]["results"][0]["retrieval"]["methods"]


# -- deletes racing another engine's buffers --------------------------------------------------


def test_a_flush_does_not_bring_back_vectors_of_rounds_another_engine_deleted(
    make_memory: Make, vectors: MemoryVectorStore
) -> None:
    holder, deleter = make_memory(), make_memory()
    say(holder, "secret plans for the weekend", session="private")
    say(holder, "keep this one", session="kept")
    deleter.delete_session("private", user_id="alice")
    holder.flush_all()
    stored = [item.chunk for item in vectors.items["alice"].values()]
    assert [chunk.scope.session_id for chunk in stored] == ["kept"]
    assert holder.engine.store is not None
    assert holder.engine.store.mark_stored([IdKey("alice", "no-such-round")]) == [IdKey("alice", "no-such-round")]


def test_pending_rounds_picked_up_by_a_second_engine_are_stored_once(
    make_memory: Make, vectors: MemoryVectorStore
) -> None:
    first = make_memory()
    ids = [say(first, f"note {n} about tea") for n in range(3)]
    second = make_memory()
    assert second.engine.recovered_rounds == 3, "the other engine's pending rounds are picked up at start"
    first.flush_all()
    second.flush_all()
    assert vectors.rounds("alice") == 3
    assert sorted(m["id"] for m in second.export_messages(user_id="alice")["data"]["messages"]) == sorted(ids)
    assert first.get_stats()["storage"]["pending_rounds"] == 0


def test_a_running_engine_adopts_rounds_a_stopped_engine_left_pending(
    make_memory: Make, vectors: MemoryVectorStore
) -> None:
    survivor = make_memory(buffer__hybrid_buffer__idle_flush_seconds=0.1)
    stopped = make_memory()
    ids = [say(stopped, f"note {n} about the cello") for n in range(3)]
    stopped.engine.close(flush=False)
    assert survivor.get_stats()["storage"]["pending_rounds"] == 3
    deadline = time.monotonic() + 10
    while survivor.get_stats()["storage"]["pending_rounds"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivor.get_stats()["storage"]["pending_rounds"] == 0
    assert survivor.get_stats()["index_worker"]["adopted_rounds"] == 3
    assert vectors.rounds("alice") == 3
    assert [r["id"] for r in survivor.query("cello", top_k=5, user_id="alice")["data"]["results"]] != []
    assert sorted(m["id"] for m in survivor.export_messages(user_id="alice")["data"]["messages"]) == sorted(ids)


def test_orphans_are_adopted_only_after_two_checks_outside_this_process() -> None:
    adopt, suspects = orphans({"a", "b", "c"}, {"c"}, set())
    assert adopt == set() and suspects == {"a", "b"}
    adopt, suspects = orphans({"a", "b", "d"}, set(), suspects)
    assert adopt == {"a", "b"} and suspects == {"d"}
    adopt, suspects = orphans({"d"}, {"d"}, suspects)
    assert adopt == set() and suspects == set()


# -- server mode start-up ---------------------------------------------------------------------


def test_an_unreachable_chroma_server_is_a_storage_error_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StorageError, match=f"127.0.0.1:{port}") as caught:
        ChromaVectorStore(VectorStoreConfig(mode="server", port=port), tmp_path, store_id="0123456789abcdef")
    assert isinstance(caught.value.__cause__, OSError)


def test_a_chroma_server_that_accepts_but_never_answers_fails_start_up_instead_of_hanging(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts connections; nobody answers
        port = silent.getsockname()[1]
        with pytest.raises(StorageError, match=f"cannot reach the Chroma server at 127.0.0.1:{port}.*timed out"):
            ChromaVectorStore(
                VectorStoreConfig(mode="server", port=port, request_timeout_seconds=0.3),
                tmp_path,
                store_id="0123456789abcdef",
            )


def test_a_service_in_server_mode_fails_to_start_with_that_error(tmp_path: Path, embedder: object) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StorageError, match=f"cannot reach the Chroma server at 127.0.0.1:{port}"):
        BlockingBufferService.from_config(
            data_dir=tmp_path, embedder=embedder, storage__vector_store__mode="server", storage__vector_store__port=port
        ).start()
