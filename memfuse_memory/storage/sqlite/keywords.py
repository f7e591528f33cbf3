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
SCOPE_BATCH = 64  # ranked matches whose scope is checked per read of the messages table


class SqliteKeywords(SqliteConnection):
    """BM25 within a query's scope, user-scoped inside the FTS index."""

    def term_stats(self, words: list[str]) -> tuple[dict[str, list[str]], dict[str, int], int]:
        """The index's stems of ``words``, their document frequencies (where common) and the total."""
        try:
            with self._using() as conn:
                return term_stats(conn, words, COMMON_TERM_MIN_DOCS)
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
        expression = f'user_token : "{user_token(request.user_id)}" AND content : ({match})'
        try:
            with self._using():  # counted as in flight, so close never closes the connection under it
                return self._ranked(expression, request, limit)
        except sqlite3.Error as exc:
            raise StorageError(f"message store read failed: {exc}") from exc

    def _ranked(self, expression: str, request: QueryRequest, limit: int) -> dict[str, float]:
        """Walk the FTS index's BM25 order and check the scope batch by batch until ``limit`` pass.

        Joining every match with the messages table before sorting read one table row per
        matching document (tens of thousands at 100k stored); the scope is only needed for
        the best ones, and this gives the same top ``limit``.
        """
        conn = self._connection()
        where, args = request.scope.sql("m")
        ranked = conn.execute(
            "SELECT rowid, bm25(messages_fts, 1.0, 0.0) FROM messages_fts WHERE messages_fts MATCH ? "
            "ORDER BY bm25(messages_fts, 1.0, 0.0)",
            (expression,),
        )
        found: dict[str, float] = {}
        try:
            while len(found) < limit:
                batch = ranked.fetchmany(max(limit, SCOPE_BATCH))
                if not batch:
                    break
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT m.seq, m.id FROM messages m WHERE m.seq IN ({marks}) AND {where}",
                    [seq for seq, _ in batch] + args,
                ).fetchall()
                accepted = dict(rows)
                for seq, score in batch:
                    if seq in accepted:
                        found[accepted[seq]] = -float(score)
                        if len(found) == limit:
                            break
        finally:
            ranked.close()
        return found
