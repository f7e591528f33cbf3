"""Ids are unique per user: two users with the same round and message ids never share a buffer
entry, a stored flag, a lookup or a duplicate check (and one user still cannot reuse an id)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from memfuse_memory.buffer.chunking import MessageChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.errors import DuplicateMessageError
from memfuse_memory.storage.sqlite import MessageStore
from memfuse_memory.tokens import TokenCounter
from tests.builders import key, round_of
from tests.unit.test_index_worker import Rig


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    opened = MessageStore(tmp_path / "m.sqlite3")
    yield opened
    opened.close()


def test_two_users_store_the_same_round_and_message_ids(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "alice's note", user="alice")])
    store.append_rounds([round_of("r1", "bob's note", user="bob")])  # the same ids: no oracle, no squatting
    assert store.counts() == {"messages": 2, "rounds": 2, "pending_rounds": 2}
    assert store.pending_round_ids() == {key("r1", "alice"), key("r1", "bob")}
    assert [m.content for m in store.messages_by_id("alice", ["r1-0"]).values()] == ["alice's note"]
    assert [m.content for m in store.messages_by_id("bob", ["r1-0"]).values()] == ["bob's note"]
    rounds = store.pending_rounds()
    assert [(r.scope.user_id, [m.content for m in r.messages]) for r in rounds] == [
        ("alice", ["alice's note"]),
        ("bob", ["bob's note"]),
    ], "rounds of two users sharing an id are never merged"
    assert store.mark_stored([key("r1", "alice")]) == []
    assert store.pending_round_ids() == {key("r1", "bob")}, "marking alice's round leaves bob's pending"
    (bob,) = store.rounds_by_id([key("r1", "bob")])
    assert bob.scope.user_id == "bob" and bob.messages[0].content == "bob's note"
    assert store.existing_ids("bob", ["r1-0", "r2-0"]) == {"r1-0"}
    assert store.existing_ids("carol", ["r1-0"]) == set()


def test_a_duplicate_within_one_user_is_refused_and_writes_nothing(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "first", user="alice")])
    store.append_rounds([round_of("other", "bob", user="bob")])
    again = round_of("r2", "second", user="alice")
    clash = round_of("r3", "x", user="alice")
    clash.messages[0] = replace(clash.messages[0], id="r1-0")
    with pytest.raises(DuplicateMessageError, match="r1-0") as raised:
        store.append_rounds([again, clash])
    assert "other" not in str(raised.value), "another user's ids are never listed"
    with pytest.raises(DuplicateMessageError, match="round id"):
        store.append_rounds([replace(round_of("fresh", "fresh ids, old round", user="alice"), id="r1")])
    assert store.counts()["messages"] == 2, "nothing of a refused write is stored"


def test_updates_and_deletes_reach_only_the_callers_message(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "alice one", "alice two", user="alice")])
    store.append_rounds([round_of("r1", "bob one", "bob two", user="bob")])
    store.mark_stored([key("r1", "alice"), key("r1", "bob")])
    edited = store.messages_by_id("alice", ["r1-0"])["r1-0"]
    assert store.update_messages("alice", [replace(edited, content="alice edited")]) == ["r1"]
    assert store.pending_round_ids() == {key("r1", "alice")}, "only alice's round is re-indexed"
    assert store.delete_messages("bob", ["r1-1"]) == (1, [], ["r1"])
    assert [m.content for m in store.export(user_id="alice")] == ["alice edited", "alice two"]
    assert [m.content for m in store.export(user_id="bob")] == ["bob one"]
    assert store.delete_messages("bob", ["r1-0"]) == (1, ["r1"], [])
    assert store.rounds_by_id([key("r1", "bob")]) == [] and len(store.rounds_by_id([key("r1", "alice")])) == 1


def test_buffers_keep_two_users_rounds_with_one_id_apart() -> None:
    wb = WriteBuffer(RoundBuffer(10_000, 5), HybridBuffer(5), MessageChunkStrategy(), TokenCounter("gpt-4o-mini"))
    wb.add_rounds([round_of("r1", "alice's", user="alice"), round_of("r1", "bob's", user="bob")])
    assert wb.location(key("r1", "alice")) == wb.location(key("r1", "bob")) == "round_buffer"
    assert wb.stats()["round_buffer"]["round_count"] == 2
    assert wb.transfer_all() == {key("r1", "alice"), key("r1", "bob")}
    chunks = wb.next_embedding_batch(10)
    assert sorted(c.scope.user_id for c in chunks) == ["alice", "bob"]
    wb.install_vectors(chunks, np.eye(len(chunks), 8, dtype=np.float32))
    assert len(wb.due(True)) == 2, "both rounds are embedded, neither overwrote the other"
    wb.discard_rounds({key("r1", "bob")})
    assert wb.location(key("r1", "bob")) == "storage" and wb.location(key("r1", "alice")) == "hybrid_buffer"
    (left,) = wb.due(True)
    assert left.round.scope.user_id == "alice" and wb.holds_any([key("r1", "alice")])
    wb.confirm_stored([left])
    assert not wb.holds_any([key("r1", "alice"), key("r1", "bob")])


def test_the_worker_stores_both_users_rounds_with_one_id(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "m.sqlite3")
    rig.worker.start()
    try:
        rig.add(round_of("r1", "alice's note", user="alice"), round_of("r1", "bob's note", user="bob"))
        rig.worker.wait_stored(rig.buffer.transfer_all(), timeout=30)
        stored = [user for user in ("alice", "bob") if rig.vectors.count(user) == 1]
        print(f"[ids-per-user] buffers+worker users=2 same_round_id=1 indexed={len(stored)} lost={2 - len(stored)}")
        assert stored == ["alice", "bob"] and rig.store.pending_round_ids() == set()
        assert rig.buffer.location(key("r1", "alice")) == rig.buffer.location(key("r1", "bob")) == "storage"
    finally:
        rig.worker.stop()
        rig.store.close()
