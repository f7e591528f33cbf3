"""The key-value table on the message store's SQLite file: its DDL and the SQLite dialect.

The tables (idempotent DDL): items, the per-namespace item counts that list namespaces (kept by
triggers), and a small meta table (migration markers). The dialect runs ``KVStore``'s SQL on
connections of its own, opened by the message store's code: WAL, a busy timeout, short
``BEGIN IMMEDIATE`` writes, one connection per thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memfuse_memory.errors import InvalidQueryError, StorageError
from memfuse_memory.storage.kv_dialect import KVCursor
from memfuse_memory.storage.kv_query import SQLITE_FILTERS
from memfuse_memory.storage.sqlite.store import MessageStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv_items (
    user_id     TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL DEFAULT '',
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL,
    expires_us  INTEGER,
    ttl_minutes REAL,
    vectors     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, agent_id, namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_items_expiry ON kv_items (expires_us) WHERE expires_us IS NOT NULL;
CREATE INDEX IF NOT EXISTS kv_items_recent ON kv_items (user_id, agent_id, updated_us);
CREATE TABLE IF NOT EXISTS kv_namespaces (
    user_id   TEXT    NOT NULL,
    agent_id  TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    items     INTEGER NOT NULL,
    PRIMARY KEY (user_id, agent_id, namespace)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS kv_items_count_insert AFTER INSERT ON kv_items BEGIN
    INSERT INTO kv_namespaces (user_id, agent_id, namespace, items)
    VALUES (new.user_id, new.agent_id, new.namespace, 1)
    ON CONFLICT (user_id, agent_id, namespace) DO UPDATE SET items = items + 1;
END;
CREATE TRIGGER IF NOT EXISTS kv_items_count_delete AFTER DELETE ON kv_items BEGIN
    UPDATE kv_namespaces SET items = items - 1
    WHERE user_id = old.user_id AND agent_id = old.agent_id AND namespace = old.namespace;
    DELETE FROM kv_namespaces
    WHERE user_id = old.user_id AND agent_id = old.agent_id AND namespace = old.namespace AND items <= 0;
END;
CREATE TABLE IF NOT EXISTS kv_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _sql(text: str) -> str:
    return text.replace("{s}.", "")


class _Transaction:
    """``KVStore``'s statements on one SQLite connection inside ``BEGIN IMMEDIATE``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> KVCursor:
        return self._conn.execute(_sql(sql), args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(_sql(sql), rows)


class SqliteKV:
    """The key-value tables in the SQLite file at ``path`` (thread-safe; one connection per thread)."""

    filters = SQLITE_FILTERS
    value_in = "?"
    value_out = "value"

    def __init__(self, path: Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000) -> None:
        self.location = str(path)
        # the message store's connection handling (WAL, busy timeout, BEGIN IMMEDIATE), on connections
        # of our own: this instance only lends its per-thread connections, it writes no messages
        self._db = MessageStore(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        self.store_id = self._db.store_id
        try:
            with self._db._using() as conn:
                conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open the key-value store at {path}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[_Transaction]:
        try:
            with self._db._write() as conn:
                yield _Transaction(conn)
        except UnicodeEncodeError as exc:
            raise InvalidQueryError(f"not valid Unicode text in a key-value store write: {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"key-value store write failed: {exc}") from exc

    def read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._db._using() as conn:
                return conn.execute(_sql(sql), args).fetchall()
        except UnicodeEncodeError as exc:  # a filter value or label that is not valid Unicode text
            raise InvalidQueryError(f"not valid Unicode text in a key-value store read: {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"key-value store read failed: {exc}") from exc

    def close(self) -> None:
        self._db.close()
