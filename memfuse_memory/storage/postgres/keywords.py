"""The PostgreSQL store's keyword feed: a user's messages after a ``seq``, and their rewrite count.

Every message insert locks the user's version row first, so per user ``seq`` order is commit
order: a feed that has seen ``seq`` n never misses a message below it committed later. The
rewrite count and the messages come from one statement, one snapshot. A keyword index snapshot
is saved only while the user's version row, locked for share, holds the rewrite count it was
built at; a delete or an edit bumps that count and drops the snapshot in one transaction.
"""

from __future__ import annotations

import psycopg

from memfuse_memory.ranking.bm25 import IndexedMessage
from memfuse_memory.storage.keyword_index import IndexedKeywords, KeywordFeed, KeywordSnapshot
from memfuse_memory.storage.postgres.connection import PgConnection, storage_error

# The first row carries the rewrite count (seq -1), the others are messages.
FEED = """
SELECT -1, NULL, NULL, NULL, NULL, NULL, coalesce((SELECT rewrites FROM {s}.user_versions WHERE user_id = %s), 0)
UNION ALL (
    SELECT seq, id, session_id, agent_id, created_us, content, NULL FROM {s}.messages
    WHERE user_id = %s AND seq > %s ORDER BY seq LIMIT %s
)
"""

SAVE_SNAPSHOT = """
WITH v AS (SELECT rewrites FROM {s}.user_versions WHERE user_id = %(user)s FOR SHARE)
INSERT INTO {s}.keyword_snapshots (user_id, last_seq, rewrites, data)
SELECT %(user)s, %(seq)s, %(rewrites)s, %(data)s FROM v WHERE v.rewrites = %(rewrites)s
ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq, rewrites = excluded.rewrites,
    data = excluded.data
WHERE {s}.keyword_snapshots.last_seq < excluded.last_seq OR {s}.keyword_snapshots.rewrites <> excluded.rewrites
"""


class PgKeywords(PgConnection, IndexedKeywords):
    """BM25 within a query's scope, over an in-memory index fed from the shared ``messages`` table."""

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed:
        rows = self._read(FEED, (user_id, user_id, after_seq, limit))
        rewrites = next(int(row[6]) for row in rows if row[0] == -1)
        messages = sorted((IndexedMessage(*row[:6]) for row in rows if row[0] != -1), key=lambda m: m.seq)
        return KeywordFeed(rewrites, messages)

    def keyword_snapshot(self, user_id: str) -> KeywordSnapshot | None:
        rows = self._read("SELECT last_seq, rewrites, data FROM {s}.keyword_snapshots WHERE user_id = %s", (user_id,))
        return None if not rows else KeywordSnapshot(int(rows[0][0]), int(rows[0][1]), bytes(rows[0][2]))

    def save_keyword_snapshot(self, user_id: str, snapshot: KeywordSnapshot) -> bool:
        """Keep the snapshot if the user's rewrite count is still the one it was built at; True when written."""
        args = {"user": user_id, "seq": snapshot.last_seq, "rewrites": snapshot.rewrites, "data": snapshot.data}
        try:
            with self._connection() as conn:
                return conn.execute(self.sql(SAVE_SNAPSHOT), args).rowcount > 0
        except psycopg.Error as exc:
            raise storage_error("cannot save the keyword index snapshot", exc) from exc

    def close(self) -> None:
        self.close_keyword_indexes()
        super().close()
