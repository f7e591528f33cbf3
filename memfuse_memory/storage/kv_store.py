"""The key-value table: items addressed by (user, agent, namespace, key), beside the messages.

It lives in the message store's SQLite file (so one backup, one data directory, and a PostgreSQL
backend can hold the same table) but has its own connections, opened by the message store's code:
WAL, a busy timeout, short ``BEGIN IMMEDIATE`` writes, one connection per thread. Every get,
put and delete is one statement on the primary key, so they cost the same at 20 items or 20,000;
a put returns after its commit. ``kv_namespaces`` counts the items of each namespace (kept by
triggers in the same transaction), so listing namespaces reads an index, not the items.

Times are integer microseconds since the epoch; ``expires_us`` is NULL for an item without a TTL.
An expired item is invisible to every read at once and deleted by ``sweep``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memfuse_memory.errors import InvalidQueryError, StorageError
from memfuse_memory.storage.kv_query import compile_filter, decode_namespace, encode_namespace, prefix_condition
from memfuse_memory.storage.kv_schema import SCHEMA as _SCHEMA
from memfuse_memory.storage.message_store import MessageStore

_COLUMNS = "user_id, agent_id, namespace, key, value, created_us, updated_us, expires_us, ttl_minutes, vectors"
_LIVE = "(expires_us IS NULL OR expires_us > ?)"
_MICROS_PER_MINUTE = 60_000_000


@dataclass(frozen=True, slots=True)
class KVRow:
    """One stored item: its address, JSON value text and times (microseconds)."""

    user_id: str
    agent_id: str
    namespace: tuple[str, ...]
    key: str
    value: str
    created_us: int
    updated_us: int
    expires_us: int | None = None
    ttl_minutes: float | None = None
    vectors: int = 0


@dataclass(frozen=True, slots=True)
class KVWrite:
    """A put (``value`` set) or a delete (``value`` None) of one item."""

    user_id: str
    agent_id: str
    namespace: tuple[str, ...]
    key: str
    value: str | None
    ttl_minutes: float | None = None
    vectors: int = 0


def _row(values: Sequence[Any]) -> KVRow:
    user, agent, namespace, key, value, created, updated, expires, ttl, vectors = values
    return KVRow(user, agent, decode_namespace(namespace), key, value, created, updated, expires, ttl, vectors)


def _expiry(now_us: int, ttl_minutes: float | None) -> int | None:
    return None if ttl_minutes is None else now_us + int(ttl_minutes * _MICROS_PER_MINUTE)


class KVStore:
    """Thread-safe access to the key-value tables of the store file; one connection per thread."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000) -> None:
        self.path = path
        # the message store's connection handling (WAL, busy timeout, BEGIN IMMEDIATE), on connections
        # of our own: this instance only lends its per-thread connections, it writes no messages
        self._db = MessageStore(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        self._write_lock = threading.Lock()  # writers of this process queue here, not in SQLite's busy loop
        try:
            with self._db._using() as conn:
                conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the key-value store at {path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._write_lock, self._db._write() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StorageError(f"key-value store write failed: {exc}") from exc

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._db._using() as conn:
                return conn.execute(sql, args).fetchall()
        except UnicodeEncodeError as exc:  # a filter value or label that is not valid Unicode text
            raise InvalidQueryError(f"not valid Unicode text in a key-value store read: {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"key-value store read failed: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    # -- single items ---------------------------------------------------------------------------

    def get(
        self, user_id: str, agent_id: str, namespace: Sequence[str], key: str, *, now_us: int, refresh: bool
    ) -> KVRow | None:
        """The live item at an address; ``refresh`` restarts its TTL (one statement either way)."""
        address = (user_id, agent_id, encode_namespace(namespace), key)
        if refresh:
            with self._write() as conn:
                found = conn.execute(
                    f"UPDATE kv_items SET expires_us = ? + CAST(ttl_minutes * {_MICROS_PER_MINUTE} AS INTEGER) "
                    "WHERE user_id = ? AND agent_id = ? AND namespace = ? AND key = ? "
                    f"AND ttl_minutes IS NOT NULL AND expires_us > ? RETURNING {_COLUMNS}",
                    (now_us, *address, now_us),
                ).fetchone()
            if found is not None:
                return _row(found)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM kv_items WHERE user_id = ? AND agent_id = ? AND namespace = ? AND key = ? "
            f"AND {_LIVE}",
            (*address, now_us),
        )
        return _row(rows[0]) if rows else None

    def apply(
        self, writes: Sequence[KVWrite], *, now_us: int, track_vectors: bool = True
    ) -> dict[tuple[str, str, str, str], int]:
        """Commit puts and deletes in one transaction; returns the vector counts the writes replaced.

        Each write is one statement on the primary key (a put also reads the replaced vector count
        when ``track_vectors``). A replaced item keeps its ``created_us``; an expired item that is
        put again starts afresh.
        """
        replaced: dict[tuple[str, str, str, str], int] = {}
        if not writes:
            return replaced
        with self._write() as conn:
            for write in writes:
                address = (write.user_id, write.agent_id, encode_namespace(write.namespace), write.key)
                if write.value is None:
                    old = conn.execute(
                        "DELETE FROM kv_items WHERE user_id = ? AND agent_id = ? AND namespace = ? AND key = ? "
                        "RETURNING vectors",
                        address,
                    ).fetchone()
                elif track_vectors:
                    old = conn.execute(
                        "SELECT vectors FROM kv_items WHERE user_id = ? AND agent_id = ? AND namespace = ? AND key = ?",
                        address,
                    ).fetchone()
                else:
                    old = None
                if write.value is not None:
                    conn.execute(
                        f"INSERT INTO kv_items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (user_id, agent_id, namespace, key) DO UPDATE SET "
                        "value = excluded.value, updated_us = excluded.updated_us, "
                        "expires_us = excluded.expires_us, ttl_minutes = excluded.ttl_minutes, "
                        "vectors = excluded.vectors, "
                        f"created_us = CASE WHEN {_LIVE} THEN created_us ELSE excluded.created_us END",
                        (
                            *address,
                            write.value,
                            now_us,
                            now_us,
                            _expiry(now_us, write.ttl_minutes),
                            write.ttl_minutes,
                            write.vectors,
                            now_us,
                        ),
                    )
                if old is not None and old[0]:
                    replaced[address] = int(old[0])
        return replaced

    # -- many items -----------------------------------------------------------------------------

    def search(
        self,
        users: Sequence[str] | None,
        agent_id: str,
        prefix: Sequence[str],
        wanted: Mapping[str, Any] | None,
        *,
        limit: int,
        offset: int,
        now_us: int,
        refresh: bool,
        indexed: bool | None = None,
    ) -> list[KVRow]:
        """Live items under ``prefix`` that match the filter, newest update first, paged in SQL.

        ``users`` None spans every user of the agent space; ``indexed`` keeps only items with
        (True) or without (False) vectors.
        """
        where, params = self._where(users, agent_id, prefix, wanted, now_us)
        if indexed is not None:
            where += " AND vectors > 0" if indexed else " AND vectors = 0"
        rows = self._read(
            f"SELECT {_COLUMNS} FROM kv_items WHERE {where} ORDER BY updated_us DESC, namespace, key LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        found = [_row(row) for row in rows]
        if refresh:
            found = self.refresh(found, now_us=now_us)
        return found

    def lookup(
        self,
        addresses: Sequence[tuple[str, str, tuple[str, ...], str]],
        wanted: Mapping[str, Any] | None,
        *,
        now_us: int,
    ) -> dict[tuple[str, str, tuple[str, ...], str], KVRow]:
        """The live items at these addresses that match the filter (for ranked vector hits)."""
        found: dict[tuple[str, str, tuple[str, ...], str], KVRow] = {}
        condition, params = compile_filter(wanted)
        for start in range(0, len(addresses), 200):
            chunk = addresses[start : start + 200]
            keys = " OR ".join("(user_id = ? AND agent_id = ? AND namespace = ? AND key = ?)" for _ in chunk)
            args = [part for user, agent, ns, key in chunk for part in (user, agent, encode_namespace(ns), key)]
            rows = self._read(
                f"SELECT {_COLUMNS} FROM kv_items WHERE ({keys}) AND {_LIVE} AND {condition}",
                (*args, now_us, *params),
            )
            for row in map(_row, rows):
                found[(row.user_id, row.agent_id, row.namespace, row.key)] = row
        return found

    def refresh(self, rows: Sequence[KVRow], *, now_us: int) -> list[KVRow]:
        """Restart the TTL of the given live items (those that have one)."""
        timed = [row for row in rows if row.ttl_minutes is not None]
        if not timed:
            return list(rows)
        with self._write() as conn:
            conn.executemany(
                "UPDATE kv_items SET expires_us = ? WHERE user_id = ? AND agent_id = ? AND namespace = ? "
                "AND key = ? AND expires_us > ?",
                [
                    (
                        _expiry(now_us, row.ttl_minutes),
                        row.user_id,
                        row.agent_id,
                        encode_namespace(row.namespace),
                        row.key,
                        now_us,
                    )
                    for row in timed
                ],
            )
        return [
            row if row.ttl_minutes is None else _replace_expiry(row, _expiry(now_us, row.ttl_minutes)) for row in rows
        ]

    def namespaces(
        self, users: Sequence[str] | None, agent_id: str, prefix: Sequence[str], *, now_us: int
    ) -> list[tuple[str, ...]]:
        """Namespaces holding at least one live item under ``prefix`` (from the namespace index)."""
        scope, params = self._scope(users, agent_id, "n.")
        under, more = prefix_condition(prefix, "n.namespace")
        rows = self._read(
            f"SELECT DISTINCT n.namespace FROM kv_namespaces n WHERE {scope} AND {under} AND EXISTS ("
            "SELECT 1 FROM kv_items i WHERE i.user_id = n.user_id AND i.agent_id = n.agent_id "
            f"AND i.namespace = n.namespace AND (i.expires_us IS NULL OR i.expires_us > ?)) ORDER BY n.namespace",
            (*params, *more, now_us),
        )
        return [decode_namespace(row[0]) for row in rows]

    def users(self, agent_id: str) -> list[str]:
        """Users holding items in an agent space."""
        rows = self._read("SELECT DISTINCT user_id FROM kv_namespaces WHERE agent_id = ?", (agent_id,))
        return [row[0] for row in rows]

    def clear_vectors(self, addresses: Sequence[tuple[str, str, tuple[str, ...], str]], *, updated_us: int) -> None:
        """Record that the items written at ``updated_us`` have no vectors (their indexing failed)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE kv_items SET vectors = 0 WHERE user_id = ? AND agent_id = ? AND namespace = ? AND key = ? "
                "AND updated_us = ?",
                [(user, agent, encode_namespace(ns), key, updated_us) for user, agent, ns, key in addresses],
            )

    def sweep(self, *, now_us: int, limit: int = 1000) -> list[KVRow]:
        """Delete up to ``limit`` expired items; returns them (so their vectors can go too)."""
        with self._write() as conn:
            return self._sweep(conn, now_us, limit)

    @staticmethod
    def _sweep(conn: sqlite3.Connection, now_us: int, limit: int) -> list[KVRow]:
        expired = conn.execute(
            f"SELECT {_COLUMNS} FROM kv_items WHERE expires_us <= ? LIMIT ?", (now_us, limit)
        ).fetchall()
        rows = [_row(values) for values in expired]
        conn.executemany(
            "DELETE FROM kv_items WHERE user_id = ? AND agent_id = ? AND namespace = ? AND key = ?",
            [(r.user_id, r.agent_id, encode_namespace(r.namespace), r.key) for r in rows],
        )
        return rows

    def delete_user(self, user_id: str) -> int:
        """Delete every item of a user (every agent space); returns how many."""
        with self._write() as conn:
            return conn.execute("DELETE FROM kv_items WHERE user_id = ?", (user_id,)).rowcount

    def meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM kv_meta WHERE key = ?", (key,))
        return None if not rows else str(rows[0][0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO kv_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def import_rows(self, rows: Sequence[KVRow]) -> None:
        """Insert items with their own times (a migration); an existing address keeps its item."""
        with self._write() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO kv_items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.user_id,
                        r.agent_id,
                        encode_namespace(r.namespace),
                        r.key,
                        r.value,
                        r.created_us,
                        r.updated_us,
                        r.expires_us,
                        r.ttl_minutes,
                        r.vectors,
                    )
                    for r in rows
                ],
            )

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _scope(users: Sequence[str] | None, agent_id: str, alias: str = "") -> tuple[str, list[Any]]:
        if users is None:
            return f"{alias}agent_id = ?", [agent_id]
        marks = ", ".join("?" for _ in users) or "NULL"
        return f"{alias}agent_id = ? AND {alias}user_id IN ({marks})", [agent_id, *users]

    def _where(
        self,
        users: Sequence[str] | None,
        agent_id: str,
        prefix: Sequence[str],
        wanted: Mapping[str, Any] | None,
        now_us: int,
    ) -> tuple[str, list[Any]]:
        scope, params = self._scope(users, agent_id)
        under, more = prefix_condition(prefix)
        condition, values = compile_filter(wanted)
        return f"{scope} AND {under} AND {_LIVE} AND {condition}", [*params, *more, now_us, *values]


def _replace_expiry(row: KVRow, expires_us: int | None) -> KVRow:
    return KVRow(
        row.user_id,
        row.agent_id,
        row.namespace,
        row.key,
        row.value,
        row.created_us,
        row.updated_us,
        expires_us,
        row.ttl_minutes,
        row.vectors,
    )
