"""Connections to the SQLite file: one per thread, WAL, ``BEGIN IMMEDIATE`` write transactions
(checkpointed off the committing thread, see ``checkpoint``), and the store id that names this
store's vector collections.

Every statement runs inside :meth:`SqliteConnection._using`, which counts the calls in flight:
``close`` refuses new calls, waits for (then interrupts) the running ones, and closes the
connections only when none is in use (closing a connection under a running statement crashes
the process).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from memfuse_memory.errors import StorageError
from memfuse_memory.storage.sqlite.checkpoint import SAFETY_PAGES, Checkpointer
from memfuse_memory.storage.sqlite.migrations import prepare

CLOSE_GRACE_SECONDS = 1.0  # how long close waits for running statements before interrupting them

_WRITE_LOCKS: dict[Path, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(path: Path) -> threading.RLock:
    """The lock this process's writers of ``path`` queue on before ``BEGIN IMMEDIATE``.

    Without it a writer that finds another thread's transaction open gets SQLITE_BUSY and sleeps
    in SQLite's busy handler (1, 2, 5, 10 ms ...) however soon that transaction ends, so an add
    behind the index worker's commit could wait milliseconds for a sub-millisecond transaction.
    Queued here it starts the moment the other commits; the busy timeout is left to writers in
    other processes.
    """
    key = path.resolve()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


class SqliteConnection:
    """Thread-safe access to the SQLite file: one connection per thread, WAL, short transactions."""

    def __init__(
        self, path: Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000, read_only: bool = False
    ) -> None:
        """Open (and create, unless ``read_only``) the store; read-only opens work beside a live writer."""
        self.path = path
        self.read_only = read_only
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = write_lock(path)
        self._checkpointer = Checkpointer(path, busy_timeout_ms)
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._closed = False
        self.store_id = ""
        try:
            if read_only:
                if not path.is_file():
                    raise StorageError(f"no message store at {path}")
                with self._using():
                    pass
                self.store_id = self._read_store_id() or ""
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._using() as conn:
                prepare(conn)
            self.store_id = self._ensure_store_id()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the message store at {path}: {exc}") from exc

    def _read_store_id(self) -> str | None:
        try:
            with self._using() as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    def _ensure_store_id(self) -> str:
        """This store's id, created once (whichever process opens the file first wins).

        A store that already held rounds before it had an id keeps the empty id, so its
        existing vector collections keep their names.
        """
        found = self._read_store_id()
        if found is not None:
            return found
        with self._write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            if row is not None:
                return str(row[0])
            legacy = conn.execute("SELECT EXISTS (SELECT 1 FROM rounds)").fetchone()[0]
            value = "" if legacy else secrets.token_hex(8)
            conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?)", (value,))
            return value

    def backend_stats(self) -> dict[str, Any]:
        """Which store this is: the backend and its file."""
        return {"backend": "sqlite", "path": str(self.path), "synchronous": self._synchronous}

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, counted as in use until the block ends (see ``close``)."""
        with self._lock:
            if self._closed:
                raise StorageError("the message store is closed")
            self._active += 1
        try:
            yield self._connection()
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._idle.notify_all()

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection; use it only inside :meth:`_using`."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StorageError("the message store is closed")
            target = self.path.resolve().as_uri() + "?mode=ro" if self.read_only else str(self.path)
            conn = sqlite3.connect(
                target,
                uri=self.read_only,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout_ms / 1000,
            )
            if not self.read_only:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")  # checkpoints: storage.sqlite.checkpoint
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed when the block ends; this process's
        writers of the file take turns on :func:`write_lock` first."""
        with self._using() as conn, self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._checkpointer.committed()

    def close(self) -> None:
        """Refuse new calls, let the running ones finish (interrupting them after
        ``CLOSE_GRACE_SECONDS``), then close every connection. Idempotent."""
        self._checkpointer.close()
        with self._lock:
            self._closed = True
            if not self._idle.wait_for(lambda: self._active == 0, timeout=CLOSE_GRACE_SECONDS):
                while self._active:
                    for conn in self._connections:
                        conn.interrupt()
                    self._idle.wait(0.05)
            for conn in self._connections:
                with suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._using() as conn:
                return conn.execute(sql, list(args)).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc
