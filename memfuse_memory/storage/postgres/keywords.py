"""Keyword search inside PostgreSQL: English full-text search over a GIN-indexed ``tsvector``.

The query's words (stop words removed, as for SQLite) are OR-ed into a ``tsquery``; matches are
ranked by ``ts_rank`` normalised by the log of document length (flag 1), within the query's scope.
(``ts_rank_cd``, cover density, cost 15x more here: 33 ms against 2 ms over 1,000 matching messages.)
"""

from __future__ import annotations

from typing import Any

from memfuse_memory.models import QueryRequest
from memfuse_memory.ranking.keywords import query_terms
from memfuse_memory.storage.postgres.connection import PgConnection


def keyword_sql(request: QueryRequest, limit: int) -> tuple[str, list[Any]] | None:
    """The ranked full-text query of a request (``{s}`` stands for the schema), or None for no words."""
    words = query_terms(request.text)
    if not words:
        return None
    where, args = request.scope.sql("m", "%s")
    sql = (
        "SELECT m.id, ts_rank(m.tsv, q, 1) AS score FROM {s}.messages m, "
        "to_tsquery('english', %s) q "
        f"WHERE m.tsv @@ q AND {where} ORDER BY score DESC, m.seq DESC LIMIT %s"
    )
    expression = " | ".join("'" + word.replace("'", "''").replace("\\", "") + "'" for word in words)
    return sql, [expression, *args, limit]


class PgKeywords(PgConnection):
    """Full-text search shared by every engine on the database."""

    def keyword_search(self, request: QueryRequest, limit: int) -> dict[str, float]:
        """Ranked matches within the request's scope: message id -> score (higher is better)."""
        built = keyword_sql(request, limit)
        if built is None:
            return {}
        sql, args = built
        return {mid: float(score) for mid, score in self._read(sql, args)}
