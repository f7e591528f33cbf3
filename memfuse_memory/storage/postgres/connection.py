"""The pool of connections to PostgreSQL, write transactions, the owner lock and error mapping.

A connection lost (server restarted, network cut) is dropped by the pool, which reconnects in
the background; an operation that finds no server within ``connect_timeout_seconds`` fails with
:class:`~memfuse_memory.errors.StorageUnavailableError`, so ``add`` fails fast during an outage
and nothing is acknowledged that was not committed.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from memfuse_memory.config import MessageStoreConfig
from memfuse_memory.errors import StorageError, StorageUnavailableError
from memfuse_memory.storage.postgres.dsn import quote_ident, redact_dsn
from memfuse_memory.storage.postgres.schema import MIGRATION_LOCK, MIGRATIONS

# psycopg_pool counters summed over the pools an outage replaced (see ``_revive``)
_POOL_COUNTERS = ("requests_num", "requests_errors", "connections_errors", "connections_lost")


def storage_error(action: str, exc: BaseException) -> StorageError:
    """The typed error of a failed operation, its text free of any password."""
    text = redact_dsn(str(exc))
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return StorageUnavailableError(f"{action}: the PostgreSQL message store is unreachable: {text}")
    return StorageError(f"{action}: {text}")


class PgConnection:
    """A connection pool on one schema, plus the session that holds this engine's owner lock."""

    def __init__(self, settings: MessageStoreConfig) -> None:
        """Connect, create or migrate the schema, read the store id and take the owner lock."""
        if not settings.dsn:
            raise StorageError("storage.message_store.dsn is required for the postgres backend")
        self._dsn = settings.dsn
        self._timeout = settings.connect_timeout_seconds
        self.schema = settings.schema_name
        self.s = quote_ident(settings.schema_name)
        self.owner = secrets.randbits(62) + 1
        self._owner_conn: psycopg.Connection[Any] | None = None
        self._owner_lock = threading.Lock()
        self._closed = False
        self.store_id = ""
        self._sizes = (settings.pool_min_size, settings.pool_max_size)
        self._synchronous = settings.synchronous_commit
        self._options = f"-c synchronous_commit={settings.synchronous_commit}"
        self._carried: dict[str, int] = {}
        self._replaced = 0
        self._revive_lock = threading.Lock()
        self._pool = self._new_pool()
        try:
            self._pool.open(wait=True, timeout=self._timeout)
            self._migrate()
            self.store_id = self._ensure_store_id()
            self._ensure_owner()
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise storage_error(f"cannot open the message store at {redact_dsn(self._dsn)}", exc) from exc

    def _new_pool(self) -> ConnectionPool[Any]:
        return ConnectionPool(
            self._dsn,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            timeout=self._timeout,
            kwargs={"connect_timeout": max(1, int(self._timeout)), "autocommit": True, "options": self._options},
            open=False,
            name="memfuse-messages",
        )

    def _revive(self, pool: ConnectionPool[Any]) -> bool:
        """After a pool timeout: if the server answers again, replace the pool (whose reconnect
        backoff may still be waiting) and say so; False while the server is still away."""
        with self._revive_lock:
            if self._pool is not pool:
                return True
            try:
                psycopg.connect(self._dsn, connect_timeout=max(1, int(self._timeout))).close()
            except psycopg.Error:
                return False
            fresh = self._new_pool()
            fresh.open(wait=False)
            self._pool = fresh
        retired = pool.get_stats()
        for key in _POOL_COUNTERS:
            self._carried[key] = self._carried.get(key, 0) + retired.get(key, 0)
        self._replaced += 1
        pool.close(timeout=0)
        return True

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); after an outage the first caller revives the pool."""
        if self._closed:
            raise StorageError("the message store is closed")
        pool = self._pool
        try:
            conn = pool.getconn()
        except PoolTimeout:
            if not self._revive(pool):
                raise
            pool = self._pool
            conn = pool.getconn()
        try:
            yield conn
        finally:
            pool.putconn(conn)

    def sql(self, text: str) -> str:
        """``text`` with ``{s}`` replaced by this store's schema."""
        return text.replace("{s}", self.s)

    def _migrate(self) -> None:
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.s}")
            conn.execute(self.sql("CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)"))
            row = conn.execute(self.sql("SELECT max(version) FROM {s}.schema_version")).fetchone()
            current = int(row[0] or 0) if row else 0
            for version, ddl in enumerate(MIGRATIONS[current:], start=current + 1):
                conn.execute(self.sql(ddl))
                conn.execute(self.sql("INSERT INTO {s}.schema_version (version) VALUES (%s)"), (version,))

    def _ensure_store_id(self) -> str:
        with self._write() as conn:
            conn.execute(
                self.sql("INSERT INTO {s}.meta (key, value) VALUES ('store_id', %s) ON CONFLICT (key) DO NOTHING"),
                (secrets.token_hex(8),),
            )
            row = conn.execute(self.sql("SELECT value FROM {s}.meta WHERE key = 'store_id'")).fetchone()
        return str(row[0]) if row else ""

    def _ensure_owner(self) -> bool:
        """Hold this engine's owner lock on a live session; True when that session had been lost
        (a server restart or a network cut frees every session's locks) and the lock was taken again.

        The session is probed with one round trip: a connection cut by a restart looks open until used.
        """
        with self._owner_lock:
            conn = self._owner_conn
            if conn is not None and not conn.closed and not conn.broken:
                try:
                    conn.execute("SELECT 1")
                    return False
                except psycopg.Error:
                    pass
            lost = conn is not None
            if conn is not None:
                with suppress(psycopg.Error):
                    conn.close()
            self._owner_conn = None
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout)))
            conn.execute("SELECT pg_advisory_lock(%s)", (self.owner,))
            self._owner_conn = conn
            return lost

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction, committed when the block ends (the commit is the acknowledgement)."""
        with self._connection() as conn, conn.transaction():
            yield conn

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query (``{s}`` is this schema); a connection lost meanwhile is retried once."""
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    return conn.execute(self.sql(sql), list(args)).fetchall()
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise storage_error("message store read failed", exc) from exc
            except (PoolTimeout, psycopg.Error) as exc:
                raise storage_error("message store read failed", exc) from exc
        raise AssertionError("unreachable")

    def backend_stats(self) -> dict[str, Any]:
        """The server (without its password), the schema and the connection pool: connections open,
        in use and idle, requests waiting for one, and the errors since start (carried over when an
        outage replaced the pool). Local counters only: no round trip."""
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        lifetime = {key: stats.get(key, 0) + self._carried.get(key, 0) for key in _POOL_COUNTERS}
        return {
            "backend": "postgres",
            "dsn": redact_dsn(self._dsn),
            "schema": self.schema,
            "synchronous_commit": self._synchronous,
            "pool": {
                "min_size": self._sizes[0],
                "max_size": self._sizes[1],
                "size": size,
                "in_use": size - idle,
                "idle": idle,
                "waiting": stats.get("requests_waiting", 0),
                "requests": lifetime["requests_num"],
                "request_errors": lifetime["requests_errors"],
                "connection_errors": lifetime["connections_errors"],
                "connections_lost": lifetime["connections_lost"],
                "replaced_after_outage": self._replaced,
            },
        }

    def close(self) -> None:
        """Close the pool and release the owner lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        with self._owner_lock:
            if self._owner_conn is not None:
                with suppress(psycopg.Error):
                    self._owner_conn.close()
                self._owner_conn = None
