"""The SQLite store's keyword feed: a user's messages after a ``seq``, and their rewrite count.

SQLite commits one writer at a time and assigns ``seq`` inside the write, so ``seq`` order is
commit order. Triggers count each user's deletes and edits in ``user_rewrites``.
"""

from __future__ import annotations

import sqlite3

from memfuse_memory.errors import StorageError
from memfuse_memory.ranking.bm25 import IndexedMessage
from memfuse_memory.storage.keyword_index import IndexedKeywords, KeywordFeed
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
