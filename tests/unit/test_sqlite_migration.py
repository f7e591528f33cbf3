"""The SQLite store of schema version 1 (ids unique across users), written with that version's
DDL, is migrated on open: every message, keyword search and pending round intact, in one
transaction (a failure leaves the file as it was), once (reopening changes nothing)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from memfuse_memory.errors import StorageError
from memfuse_memory.models import to_micros
from memfuse_memory.storage.sqlite import MessageStore, migrations
from memfuse_memory.storage.sqlite.schema import SCHEMA_VERSION, message_row, user_token
from tests.builders import key, round_of
from tests.fakes import query_request

SCHEMA_V1 = (Path(__file__).parent / "legacy_sqlite_v1.sql").read_text(encoding="utf-8")
CONTENTS = {
    ("alice", "a1"): ["the violet kayak is in the shed", "noted"],
    ("bob", "b1"): ["bob rides a green tandem", "fine"],
    ("alice", "a2"): ["alice pending: the copper kettle"],
}
STORED = {"a1", "b1"}


def write_v1_store(path: Path) -> None:
    """A store as version 1 left it: its DDL, its inserts (the triggers fill the FTS index), a
    round marked stored and one pending, and the newest message deleted (so seq has a gap)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA_V1)
    conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', 'v1store')")
    for (user, rid), texts in CONTENTS.items():
        round_ = round_of(rid, *texts, user=user)
        scope = round_.scope
        cursor = conn.execute(
            "INSERT INTO rounds (id, user_id, agent_id, session_id, created_us, stored) VALUES (?, ?, ?, ?, ?, ?)",
            (rid, user, None, scope.session_id, to_micros(round_.created_at), int(rid in STORED)),
        )
        conn.executemany(
            "INSERT INTO messages (id, round_seq, user_id, user_token, agent_id, session_id, role, content,"
            " name, created_us, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [message_row(m, int(cursor.lastrowid or 0), scope, user_token(user)) for m in round_.messages],
        )
    conn.execute("INSERT INTO rounds (id, user_id, session_id, created_us) VALUES ('gone', 'bob', 's', 0)")
    gone = conn.execute("SELECT seq FROM rounds WHERE id = 'gone'").fetchone()[0]
    conn.execute(
        "INSERT INTO messages (id, round_seq, user_id, user_token, session_id, role, content, created_us, metadata)"
        " VALUES ('gone-0', ?, 'bob', ?, 's', 'user', 'deleted later', 0, '{}')",
        (gone, user_token("bob")),
    )
    conn.execute("DELETE FROM messages WHERE id = 'gone-0'")
    conn.execute("DELETE FROM rounds WHERE id = 'gone'")
    conn.close()


def snapshot(path: Path) -> tuple[object, ...]:
    """What a reader sees in the file: schema objects, rows and AUTOINCREMENT marks."""
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("SELECT sql FROM sqlite_master WHERE name IN ('rounds', 'messages') ORDER BY name").fetchall(),
            conn.execute("SELECT * FROM rounds ORDER BY seq").fetchall(),
            conn.execute("SELECT * FROM messages ORDER BY seq").fetchall(),
            conn.execute("SELECT type, name FROM sqlite_master ORDER BY type, name").fetchall(),
            conn.execute("SELECT * FROM sqlite_sequence ORDER BY name").fetchall(),
            conn.execute("SELECT * FROM meta ORDER BY key").fetchall(),
        )
    finally:
        conn.close()


@pytest.fixture
def v1_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "messages.sqlite3"
    write_v1_store(path)
    yield path


def test_a_v1_store_opens_with_everything_intact_and_ids_per_user(v1_path: Path) -> None:
    before = snapshot(v1_path)
    reader = MessageStore(v1_path, read_only=True)  # an export beside a v1 writer: reads, migrates nothing
    try:
        assert reader.existing_ids("bob", ["b1-0", "a1-0"]) == {"b1-0"} and len(reader.export()) == 5
    finally:
        reader.close()
    assert snapshot(v1_path) == before
    store = MessageStore(v1_path)
    try:
        assert store.store_id == "v1store", "the vector collections keep their names"
        exported = [(m.seq, m.id, m.scope.user_id, m.content) for m in store.export()]
        kept = sum(row in exported for row in [(r[0], r[1], r[3], r[8]) for r in before[2]])
        print(f"[ids-per-user] sqlite v1->v2 migration messages={len(before[2])} kept={kept}")
        assert exported == [(row[0], row[1], row[3], row[8]) for row in before[2]], "seq, ids and contents kept"
        assert [(m.scope.user_id, m.content) for m in store.export()] == [
            (user, text) for (user, _), texts in CONTENTS.items() for text in texts
        ]
        assert list(store.keyword_search(query_request("violet kayak", user="alice"), 5)) == ["a1-0"]
        assert list(store.keyword_search(query_request("green tandem", user="bob"), 5)) == ["b1-0"]
        assert store.keyword_search(query_request("violet kayak", user="bob"), 5) == {}
        assert store.pending_round_ids() == {key("a2", "alice")}
        assert [m.content for r in store.pending_rounds() for m in r.messages] == CONTENTS[("alice", "a2")]
        conn = sqlite3.connect(v1_path)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'").fetchall() == []
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        conn.close()
        old_max = max(row[0] for row in before[2]) + 1  # the deleted message's seq
        store.append_rounds([round_of("a1", "bob reuses alice's ids: the violet kayak", user="bob")])
        (reused,) = store.messages_by_id("bob", ["a1-0"]).values()
        assert reused.seq > old_max, "a seq once handed out is never handed out again"
        assert list(store.keyword_search(query_request("violet kayak", user="bob"), 5)) == ["a1-0"]
        assert store.messages_by_id("alice", ["a1-0"])["a1-0"].content == CONTENTS[("alice", "a1")][0]
        assert store.delete_messages("bob", ["a1-0"])[0] == 1
        assert list(store.keyword_search(query_request("violet kayak", user="alice"), 5)) == ["a1-0"]
    finally:
        store.close()
    migrated = snapshot(v1_path)
    MessageStore(v1_path).close()
    assert snapshot(v1_path) == migrated, "opening a migrated store again changes nothing"


def test_a_failed_migration_leaves_the_v1_file_as_it_was(v1_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(v1_path)

    def crash(conn: sqlite3.Connection, sequences: list[tuple[str, int]]) -> None:
        raise sqlite3.OperationalError("disk I/O error (simulated, after the tables were rebuilt)")

    monkeypatch.setattr(migrations, "restore_sequences", crash)
    with pytest.raises(StorageError, match="simulated"):
        MessageStore(v1_path)
    assert snapshot(v1_path) == before, "nothing of a failed migration is kept"
    monkeypatch.undo()
    store = MessageStore(v1_path)
    try:
        assert len(store.export()) == 5 and store.pending_round_ids() == {key("a2", "alice")}
    finally:
        store.close()
