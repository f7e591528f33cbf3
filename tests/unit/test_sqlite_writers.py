"""Writers of one SQLite file in one process take turns on a lock (never SQLite's sleeping busy
handler), and WAL checkpoints run on the store's own thread, not inside a commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from memfuse_memory.storage.sqlite import MessageStore
from memfuse_memory.storage.sqlite import checkpoint as checkpoint_module
from memfuse_memory.storage.sqlite.connection import write_lock
from memfuse_memory.storage.sqlite.kv import SqliteKV
from tests.builders import round_of


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "memfuse-wal-checkpoint"]


def test_a_writer_waits_for_another_threads_transaction_instead_of_failing_busy(tmp_path: Path) -> None:
    # busy timeout 0: a writer that met SQLITE_BUSY would fail at once with "database is locked"
    store = MessageStore(tmp_path / "m.sqlite3", busy_timeout_ms=0)
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        with store._write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('held', 'x')")
            inside.set()
            release.wait(5)

    def append() -> None:
        try:
            store.append_rounds([round_of("r1", "written while another thread held a transaction")])
        except BaseException as exc:
            errors.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    writer = threading.Thread(target=append)
    writer.start()
    writer.join(0.2)
    assert writer.is_alive(), "the second writer waits for the first"
    release.set()
    holder.join(5)
    writer.join(5)
    try:
        assert errors == []
        assert [m.id for m in store.export(user_id="u")] == ["r1-0"]
    finally:
        store.close()


def test_the_message_store_and_the_kv_table_of_one_file_share_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    store = MessageStore(path)
    kv = SqliteKV(path)
    try:
        assert store._write_lock is kv._db._write_lock is write_lock(path)
        assert write_lock(tmp_path / "other.sqlite3") is not store._write_lock
    finally:
        kv._db.close()
        store.close()


def test_commits_leave_checkpoints_to_the_stores_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint_module, "EVERY_COMMITS", 4)
    before = len(_checkpoint_threads())
    store = MessageStore(tmp_path / "m.sqlite3")
    try:
        with store._using() as conn:
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (checkpoint_module.SAFETY_PAGES,)
        for n in range(12):
            store.append_rounds([round_of(f"r{n}", f"message {n}")])
        deadline = time.monotonic() + 10
        while store._checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store._checkpointer.checkpoints >= 1 and store._checkpointer.failures == 0
        assert len(_checkpoint_threads()) == before + 1
        # the checkpoint copied the committed pages into the database file: a reader of the file
        # alone (WAL set aside) sees them
        copy = tmp_path / "copy.sqlite3"
        copy.write_bytes((tmp_path / "m.sqlite3").read_bytes())
        with sqlite3.connect(copy) as reader:
            assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] >= 4
    finally:
        store.close()
    assert len(_checkpoint_threads()) == before, "close stops the thread"
    reopened = MessageStore(tmp_path / "m.sqlite3")
    try:
        assert len(reopened.export(user_id="u")) == 12
    finally:
        reopened.close()
