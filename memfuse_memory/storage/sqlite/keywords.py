"""Keyword search of the SQLite message store: FTS5 BM25 over every acknowledged message."""

from __future__ import annotations

import sqlite3

from memfuse_memory.errors import StorageError
from memfuse_memory.models import QueryRequest
from memfuse_memory.ranking.keywords import informative, match_expression, query_terms
from memfuse_memory.storage.sqlite.connection import SqliteConnection
from memfuse_memory.storage.sqlite.schema import user_token
from memfuse_memory.storage.term_stats import term_stats

COMMON_TERM_MIN_DOCS = 500  # below this many hits a common word costs little, so it is kept


class SqliteKeywords(SqliteConnection):
    """BM25 within a query's scope, user-scoped inside the FTS index."""

    def term_stats(self, words: list[str]) -> tuple[dict[str, list[str]], dict[str, int], int]:
        """The index's stems of ``words``, their document frequencies (where common) and the total."""
        try:
            return term_stats(self._connection(), words, COMMON_TERM_MIN_DOCS)
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc

    def keyword_search(self, request: QueryRequest, limit: int) -> dict[str, float]:
        """BM25 over message contents within the request's scope: message id -> score (higher is better)."""
        words = query_terms(request.text)
        if not words:
            return {}
        stems, doc_freq, total = self.term_stats(words)
        match = match_expression(informative(words, stems, doc_freq, total, COMMON_TERM_MIN_DOCS))
        if match is None:
            return {}
        where, args = request.scope.sql("m")
        # BM25 is the cost (~17 us a matching document at 100k): score once, in a materialized
        # pass over the FTS index, then scope and sort; ranking through the join evaluated it twice.
        expression = f'user_token : "{user_token(request.user_id)}" AND content : ({match})'
        sql = (
            "WITH f AS MATERIALIZED (SELECT rowid AS seq, bm25(messages_fts, 1.0, 0.0) AS score FROM messages_fts "
            "WHERE messages_fts MATCH ?) "
            f"SELECT m.id, f.score FROM f JOIN messages m ON m.seq = f.seq WHERE {where} ORDER BY f.score LIMIT ?"
        )
        return {mid: -float(score) for mid, score in self._read(sql, [expression, *args, limit])}
