"""The PostgreSQL store's keyword feed: a user's messages after a ``seq``, and their rewrite count.

Every message insert locks the user's version row first, so per user ``seq`` order is commit
order: a feed that has seen ``seq`` n never misses a message below it committed later. The
rewrite count and the messages come from one statement, one snapshot.
"""

from __future__ import annotations

from memfuse_memory.ranking.bm25 import IndexedMessage
from memfuse_memory.storage.keyword_index import IndexedKeywords, KeywordFeed
from memfuse_memory.storage.postgres.connection import PgConnection

# The first row carries the rewrite count (seq -1), the others are messages.
FEED = """
SELECT -1, NULL, NULL, NULL, NULL, NULL, coalesce((SELECT rewrites FROM {s}.user_versions WHERE user_id = %s), 0)
UNION ALL (
    SELECT seq, id, session_id, agent_id, created_us, content, NULL FROM {s}.messages
    WHERE user_id = %s AND seq > %s ORDER BY seq LIMIT %s
)
"""


class PgKeywords(PgConnection, IndexedKeywords):
    """BM25 within a query's scope, over an in-memory index fed from the shared ``messages`` table."""

    def keyword_feed(self, user_id: str, after_seq: int, limit: int) -> KeywordFeed:
        rows = self._read(FEED, (user_id, user_id, after_seq, limit))
        rewrites = next(int(row[6]) for row in rows if row[0] == -1)
        messages = sorted((IndexedMessage(*row[:6]) for row in rows if row[0] != -1), key=lambda m: m.seq)
        return KeywordFeed(rewrites, messages)
