"""The registry in one SQLite file (WAL) in the data directory, beside the message store.

The records every request looks up by id (its session, its user, its agent, its key) are kept in memory:
a write through this registry empties that cache, and so does a write by any other connection to the
same file (another ``serve`` process over the data directory), seen through SQLite's ``PRAGMA
data_version`` before every cached read. A revoked key or a deleted session is refused by every process
on its next request; no request opens the file or reads a table for a record it has already seen.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from memfuse_memory.errors import StorageError
from memfuse_memory.server.errors import ConflictError
from memfuse_memory.server.registry import AgentRecord, ApiKeyRecord, SessionRecord, UserRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    UNIQUE (owner, name)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX IF NOT EXISTS sessions_name ON sessions (name);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, name TEXT, permissions TEXT,
    created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS message_edits (
    user_id TEXT NOT NULL, message_id TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
"""

_SHARED_AGENTS = """
ALTER TABLE agents RENAME TO agents_global;
CREATE TABLE agents (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    UNIQUE (owner, name)
);
INSERT INTO agents (id, name, description, created_at, updated_at)
    SELECT id, name, description, created_at, updated_at FROM agents_global;
DROP TABLE agents_global;
"""
"""A registry of the first release: its agents had globally unique names; they become shared agents."""

T = TypeVar("T")

CACHE_MAX_RECORDS = 100_000
"""More cached records than this and the cache starts over (it only ever holds records that exist)."""


def now() -> str:
    """The current UTC time as replies show it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _new_id() -> str:
    return str(uuid.uuid4())


class SQLiteRegistry:
    """Users, agents, sessions, hashed keys and message edit times; one connection behind a lock."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the server registry {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, tuple[Any, ...]], Any] = {}
        self._data_version = self._version()

    def _migrate(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(agents)")}
            if "owner" not in columns:
                for statement in filter(str.strip, _SHARED_AGENTS.split(";")):
                    self._conn.execute(statement)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _version(self) -> int:
        """SQLite's count of commits by other connections (any process) to this file, as this one sees it."""
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._cache.clear()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"{what}: already exists") from exc
            except sqlite3.Error as exc:
                raise StorageError(f"server registry: cannot {what}: {exc}") from exc

    def _fetch(self, sql: str, args: Sequence[Any], make: Callable[..., T]) -> list[T]:
        """Rows made into records; the caller holds the lock."""
        try:
            return [make(*row) for row in self._conn.execute(sql, tuple(args)).fetchall()]
        except sqlite3.Error as exc:
            raise StorageError(f"server registry: cannot read: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[Any], make: Callable[..., T]) -> list[T]:
        with self._lock:
            return self._fetch(sql, args, make)

    def _one(self, sql: str, args: Sequence[Any], make: Callable[..., T]) -> T | None:
        rows = self._rows(sql, args, make)
        return rows[0] if rows else None

    def _cached(self, sql: str, args: tuple[Any, ...], make: Callable[..., T]) -> T | None:
        """``_one`` answered from memory while nothing wrote to the file since; found records only."""
        key = (sql, args)
        with self._lock:
            try:
                version = self._version()
            except sqlite3.Error as exc:
                raise StorageError(f"server registry: cannot read: {exc}") from exc
            if version != self._data_version:
                self._cache.clear()
                self._data_version = version
            if key in self._cache:
                found: T = self._cache[key]
                return found
            rows = self._fetch(sql, args, make)
            if not rows:
                return None
            if len(self._cache) >= CACHE_MAX_RECORDS:
                self._cache.clear()
            self._cache[key] = rows[0]
            return rows[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- users and agents --

    def _create_named(self, table: str, make: Callable[..., T], name: str, description: str | None) -> T:
        record_id, stamp = _new_id(), now()
        with self._tx(f"create {table[:-1]} named {name!r}") as conn:
            conn.execute(
                f"INSERT INTO {table} (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (record_id, name, description, stamp, stamp),
            )
        return make(record_id, name, description, stamp, stamp)

    def _update_named(
        self, table: str, make: Callable[..., T], record_id: str, name: str | None, description: str | None
    ) -> T | None:
        with self._tx(f"rename {table[:-1]} to {name!r}") as conn:
            conn.execute(
                f"UPDATE {table} SET name = COALESCE(?, name), description = COALESCE(?, description), "
                "updated_at = ? WHERE id = ?",
                (name, description, now(), record_id),
            )
        return self._one(f"SELECT * FROM {table} WHERE id = ?", (record_id,), make)

    def _delete(self, table: str, record_id: str) -> bool:
        with self._tx(f"delete from {table}") as conn:
            return conn.execute(f"DELETE FROM {table} WHERE id = ?", (record_id,)).rowcount > 0

    def create_user(self, name: str, description: str | None) -> UserRecord:
        return self._create_named("users", UserRecord, name, description)

    def user(self, user_id: str) -> UserRecord | None:
        return self._cached("SELECT * FROM users WHERE id = ?", (user_id,), UserRecord)

    def user_by_name(self, name: str) -> UserRecord | None:
        return self._one("SELECT * FROM users WHERE name = ?", (name,), UserRecord)

    def users(self) -> list[UserRecord]:
        return self._rows("SELECT * FROM users ORDER BY created_at, id", (), UserRecord)

    def update_user(self, user_id: str, name: str | None, description: str | None) -> UserRecord | None:
        return self._update_named("users", UserRecord, user_id, name, description)

    def delete_user(self, user_id: str) -> bool:
        """The user, its sessions and keys (cascade) and its own agents."""
        with self._tx("delete a user") as conn:
            conn.execute("DELETE FROM agents WHERE owner = ?", (user_id,))
            return conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0

    _AGENT = "SELECT id, name, description, created_at, updated_at, NULLIF(owner, '') FROM agents"

    def create_agent(self, name: str, description: str | None, user_id: str | None) -> AgentRecord:
        record_id, stamp = _new_id(), now()
        with self._tx(f"create agent named {name!r}") as conn:
            conn.execute(
                "INSERT INTO agents (id, name, description, created_at, updated_at, owner) VALUES (?, ?, ?, ?, ?, ?)",
                (record_id, name, description, stamp, stamp, user_id or ""),
            )
        return AgentRecord(record_id, name, description, stamp, stamp, user_id)

    def agent(self, agent_id: str) -> AgentRecord | None:
        return self._cached(f"{self._AGENT} WHERE id = ?", (agent_id,), AgentRecord)

    def agent_by_name(self, name: str, user_id: str | None) -> AgentRecord | None:
        if user_id is None:
            return self._one(f"{self._AGENT} WHERE name = ? ORDER BY owner != '', created_at", (name,), AgentRecord)
        sql = f"{self._AGENT} WHERE name = ? AND owner IN (?, '') ORDER BY owner = ''"
        return self._one(sql, (name, user_id), AgentRecord)

    def agents(self, user_id: str | None) -> list[AgentRecord]:
        sql = f"{self._AGENT} WHERE ? IS NULL OR owner IN (?, '') ORDER BY created_at, id"
        return self._rows(sql, (user_id, user_id), AgentRecord)

    def update_agent(self, agent_id: str, name: str | None, description: str | None) -> AgentRecord | None:
        with self._tx(f"rename agent to {name!r}") as conn:
            conn.execute(
                "UPDATE agents SET name = COALESCE(?, name), description = COALESCE(?, description), "
                "updated_at = ? WHERE id = ?",
                (name, description, now(), agent_id),
            )
        return self.agent(agent_id)

    def delete_agent(self, agent_id: str) -> bool:
        return self._delete("agents", agent_id)

    # -- sessions --

    _SESSION = "SELECT id, name, user_id, agent_id, created_at, updated_at FROM sessions"

    def create_session(self, user_id: str, agent_id: str, name: str) -> SessionRecord:
        record_id, stamp = _new_id(), now()
        with self._tx(f"create session named {name!r}") as conn:
            conn.execute(
                "INSERT INTO sessions (id, name, user_id, agent_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (record_id, name, user_id, agent_id, stamp, stamp),
            )
        return SessionRecord(record_id, name, user_id, agent_id, stamp, stamp)

    def session(self, session_id: str) -> SessionRecord | None:
        return self._cached(f"{self._SESSION} WHERE id = ?", (session_id,), SessionRecord)

    def session_by_name(self, name: str, user_id: str | None) -> SessionRecord | None:
        if user_id is None:
            return self._one(f"{self._SESSION} WHERE name = ? ORDER BY created_at", (name,), SessionRecord)
        return self._one(f"{self._SESSION} WHERE name = ? AND user_id = ?", (name, user_id), SessionRecord)

    def sessions(self, user_id: str | None = None, agent_id: str | None = None) -> list[SessionRecord]:
        sql = f"{self._SESSION} WHERE (? IS NULL OR user_id = ?) AND (? IS NULL OR agent_id = ?) ORDER BY created_at"
        return self._rows(sql, (user_id, user_id, agent_id, agent_id), SessionRecord)

    def rename_session(self, session_id: str, name: str) -> SessionRecord | None:
        with self._tx(f"rename session to {name!r}") as conn:
            conn.execute("UPDATE sessions SET name = ?, updated_at = ? WHERE id = ?", (name, now(), session_id))
        return self.session(session_id)

    def delete_session(self, session_id: str) -> bool:
        return self._delete("sessions", session_id)

    # -- API keys --

    @staticmethod
    def _key(
        key_id: str,
        user_id: str,
        prefix: str,
        name: str | None,
        permissions: str | None,
        created_at: str,
        expires_at: str | None,
        revoked_at: str | None,
    ) -> ApiKeyRecord:
        perms = None if permissions is None else json.loads(permissions)
        return ApiKeyRecord(key_id, user_id, name, prefix, perms, created_at, expires_at, revoked_at)

    _KEY = "SELECT id, user_id, prefix, name, permissions, created_at, expires_at, revoked_at FROM api_keys"

    def create_key(
        self,
        user_id: str,
        key_hash: str,
        prefix: str,
        name: str | None,
        permissions: dict[str, Any] | None,
        expires_at: str | None,
    ) -> ApiKeyRecord:
        key_id, stamp = _new_id(), now()
        perms = None if permissions is None else json.dumps(permissions)
        with self._tx("create an API key") as conn:
            conn.execute(
                "INSERT INTO api_keys (id, user_id, key_hash, prefix, name, permissions, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, user_id, key_hash, prefix, name, perms, stamp, expires_at),
            )
        return ApiKeyRecord(key_id, user_id, name, prefix, permissions, stamp, expires_at, None)

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        return self._cached(f"{self._KEY} WHERE key_hash = ?", (key_hash,), self._key)

    def keys(self, user_id: str) -> list[ApiKeyRecord]:
        return self._rows(f"{self._KEY} WHERE user_id = ? ORDER BY created_at", (user_id,), self._key)

    def revoke_key(self, user_id: str, key_id: str) -> bool:
        with self._tx("revoke an API key") as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?",
                (now(), key_id, user_id),
            )
            return cursor.rowcount > 0

    # -- message edit times --

    def touch_messages(self, user_id: str, message_ids: Sequence[str]) -> None:
        """Record that these messages of the user were edited now (ids are unique per user only)."""
        stamp = now()
        with self._tx("record message edits") as conn:
            conn.executemany(
                "INSERT INTO message_edits (user_id, message_id, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, message_id) DO UPDATE SET updated_at = excluded.updated_at",
                [(user_id, mid, stamp) for mid in message_ids],
            )

    def updated_times(self, user_id: str, message_ids: Sequence[str]) -> dict[str, str]:
        """When these messages of the user were last edited (ids never edited are left out)."""
        found: dict[str, str] = {}
        ids = list(message_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT message_id, updated_at FROM message_edits WHERE user_id = ? AND message_id IN ({marks})"
            found.update(self._rows(sql, [user_id, *part], lambda mid, at: (mid, at)))
        return found
