"""WAL checkpoints on a thread of their own, so that no commit pays for one.

SQLite checkpoints the WAL inside whichever commit takes it past ``wal_autocheckpoint`` pages:
that commit copies the WAL into the database file and syncs it, 5-7 ms on a small disk, about
once in a hundred adds (it was the add p99). Here writers commit with the automatic checkpoint
raised to :data:`SAFETY_PAGES` (a bound for when this thread falls behind), and a thread of the
store runs a PASSIVE checkpoint (it never waits for readers or writers) once
:data:`EVERY_COMMITS` commits have gone by, or :data:`INTERVAL_SECONDS` after the last one.
A crash loses nothing: committed frames stay in the WAL until a checkpoint copies them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

SAFETY_PAGES = 16_000
"""``wal_autocheckpoint`` of the writers' connections: a commit checkpoints only past this (64 MB)."""
EVERY_COMMITS = 32
"""Commits after which the thread checkpoints at once."""
INTERVAL_SECONDS = 1.0
"""After a quieter spell, how soon the thread checkpoints what was committed."""

log = logging.getLogger(__name__)


class Checkpointer:
    """The WAL checkpoints of one store's writes, on a thread started by the first commit."""

    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._cond = threading.Condition()
        self._pending = 0  # commits since the last checkpoint
        self._closing = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.failures = 0

    def committed(self) -> None:
        """Count a commit (called by the committing thread, after COMMIT)."""
        with self._cond:
            if self._closing:
                return
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memfuse-wal-checkpoint", daemon=True)
                self._thread.start()
            elif self._pending >= EVERY_COMMITS:
                self._cond.notify()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running); idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout_ms / 1000)
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._closing or self._pending >= EVERY_COMMITS, INTERVAL_SECONDS)
                    if self._closing:
                        return
                    if not self._pending:
                        continue
                    self._pending = 0
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # another process checkpointing, or a full disk: the WAL just waits
            self.failures += 1
            log.debug("WAL checkpoint of %s skipped: %s", self._path, exc)
