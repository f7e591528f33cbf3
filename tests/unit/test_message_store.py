"""MessageStore (SQLite): durable rounds, the stored flag, deletes, versions and keyword search."""

from __future__ import annotations

from pathlib import Path

import pytest

from memfuse_memory.errors import DuplicateMessageError
from memfuse_memory.scope import INTERNAL_PREFIX
from memfuse_memory.storage import MessageStoreProtocol
from memfuse_memory.storage.sqlite import MessageStore
from tests.builders import key, round_of
from tests.fakes import query_request


@pytest.fixture
def store(tmp_path: Path) -> MessageStore:
    opened = MessageStore(tmp_path / "m.sqlite3")
    yield opened
    opened.close()


def test_it_implements_the_protocol_the_engine_depends_on(store: MessageStore) -> None:
    assert isinstance(store, MessageStoreProtocol)
    assert len(store.store_id) == 16


def test_rounds_are_pending_until_marked_stored(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "hello", "hi"), round_of("r2", "bye")])
    assert store.pending_round_ids() == {key("r1"), key("r2")}
    assert [r.id for r in store.pending_rounds()] == ["r1", "r2"]
    assert store.mark_stored([key("r1"), key("gone")]) == [key("gone")], "a round deleted meanwhile is reported"
    assert store.pending_round_ids() == {key("r2")}
    assert store.counts() == {"messages": 3, "rounds": 2, "pending_rounds": 1}


def test_appending_to_a_stored_round_makes_it_pending_again(store: MessageStore) -> None:
    (first,) = rounds = [round_of("r1", "question")]
    store.append_rounds(rounds)
    store.mark_stored([key("r1")])
    more = round_of("r1", "x", "the answer").messages[1:]
    store.append_messages(first, more)
    (pending,) = store.pending_rounds()
    assert [m.content for m in pending.messages] == ["question", "the answer"]


def test_duplicates_are_rejected_whole(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "hello")])
    with pytest.raises(DuplicateMessageError, match="r1-0"):
        store.append_rounds([round_of("r9", "new"), round_of("r1", "again")])
    assert store.counts()["rounds"] == 1


def test_deletes_report_counts_and_bump_the_users_version(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "a", "b"), round_of("r2", "c", session="t"), round_of("r3", "d", user="v")])
    version = store.user_version("u")
    assert store.delete_messages("u", ["r1-0"]) == (1, [], ["r1"])
    assert store.user_version("u") > version and store.user_version("v") == 1
    assert store.delete_session("u", "t") == 1
    assert store.delete_user("u") == 1
    assert store.users() == ["v"]


def test_keyword_search_keeps_to_the_scope_and_leaves_internal_sessions_out(store: MessageStore) -> None:
    store.append_rounds(
        [
            round_of("r1", "the violet kayak"),
            round_of("r2", "a violet kayak too", user="v"),
            round_of("r3", "violet kayak catalog", session=f"{INTERNAL_PREFIX}catalog"),
        ]
    )
    found = store.keyword_search(query_request("violet kayak", user="u"), 10)
    assert list(found) == ["r1-0"] and found["r1-0"] > 0


def test_reads_in_order(store: MessageStore) -> None:
    store.append_rounds([round_of("r1", "one", "two"), round_of("r2", "three")])
    assert [m.content for m in store.session_messages("u", "s", pending_only=False, limit=2, order="asc")] == [
        "two",
        "three",
    ]
    assert [m.content for m in store.export(user_id="u")] == ["one", "two", "three"]
    assert set(store.messages_by_id("u", ["r1-1", "nope"])) == {"r1-1"}
    facts = store.message_facts("u", ["r1-0", "r1-1", "nope"])
    whole = store.messages_by_id("u", ["r1-0", "r1-1"])
    assert facts == {mid: (m.role, m.created_at) for mid, m in whole.items()}, "role and time, missing ids left out"
    assert [f.role for f in facts.values()] == ["user", "assistant"] and store.message_facts("other", ["r1-0"]) == {}
    members = store.round_message_ids("u", ["r2", "r1", "nope"])
    assert members == {"r1": ("r1-0", "r1-1"), "r2": ("r2-0",)} and store.round_message_ids("other", ["r1"]) == {}
    assert sorted(store.rounds_of_messages("u", ["r1-1", "r2-0"])) == ["r1", "r2"]
    assert [row["session_id"] for row in store.sessions("u")] == ["s"]
