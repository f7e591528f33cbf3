"""The SQLite store's keyword feed: a user's messages after a ``seq``, and their rewrite count.

SQLite commits one writer at a time and assigns ``seq`` inside the write, so ``seq`` order is
commit order. Triggers count each user's deletes and edits in ``user_rewrites``, and drop the
user's ``keyword_snapshots`` row in the same transaction.
"""

from __future__ import annotations

import sqlite3

from memfuse_memory.errors import StorageError
from memfuse_memory.ranking.bm25 import IndexedMessage
from memfuse_memory.storage.keyword_index import IndexedKeywords, KeywordFeed, KeywordSnapshot
from memfuse_memory.storage.sqlite.connection import SqliteConnection


class SqliteKeywords(SqliteConnection, IndexedKeywords):
    """BM25 within a query's scope, over an in-memory index fed from the ``messages`` table."""

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed:
        try:
            with self._using() as conn:
                rewrites = self._rewrites(conn, user_id)
                rows = conn.execute(
                    "SELECT seq, id, session_id, agent_id, created_us, content FROM messages "
                    "WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (user_id, after_seq, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc
        return KeywordFeed(rewrites, [IndexedMessage(*row) for row in rows])

    def _rewrites(self, conn: sqlite3.Connection, user_id: str) -> int:
        try:
            row = conn.execute("SELECT rewrites FROM user_rewrites WHERE user_id = ?", (user_id,)).fetchone()
        except sqlite3.OperationalError:
            if not self.read_only:
                raise
            return 0  # a file last opened for writing by an older version, read here without migrating
        return int(row[0]) if row else 0

    def keyword_snapshot(self, user_id: str) -> KeywordSnapshot | None:
        try:
            with self._using() as conn:
                row = conn.execute(
                    "SELECT last_seq, rewrites, data FROM keyword_snapshots WHERE user_id = ?", (user_id,)
                ).fetchone()
        except sqlite3.OperationalError:
            if not self.read_only:
                raise
            return None  # a file from before snapshots, read without migrating
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc
        return None if row is None else KeywordSnapshot(int(row[0]), int(row[1]), bytes(row[2]))

    def save_keyword_snapshot(self, user_id: str, snapshot: KeywordSnapshot) -> bool:
        """Keep the snapshot if the user's rewrite count is still the one it was built at (and it is
        newer than the one kept); True when written. Read-only stores keep none."""
        if self.read_only:
            return False
        try:
            with self._write() as conn:
                cursor = conn.execute(
                    "INSERT INTO keyword_snapshots (user_id, last_seq, rewrites, data) SELECT ?, ?, ?, ? "
                    "WHERE coalesce((SELECT rewrites FROM user_rewrites WHERE user_id = ?), 0) = ? "
                    "ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq, "
                    "rewrites = excluded.rewrites, data = excluded.data WHERE excluded.last_seq > last_seq",
                    (user_id, snapshot.last_seq, snapshot.rewrites, snapshot.data, user_id, snapshot.rewrites),
                )
                return cursor.rowcount > 0
        except sqlite3.Error as exc:
            raise StorageError(f"cannot save the keyword index snapshot: {exc}") from exc

    def close(self) -> None:
        self.close_keyword_indexes()
        super().close()
