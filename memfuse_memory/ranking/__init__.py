"""Ranking: keyword query building and rank fusion (pure, no I/O)."""

from memfuse_memory.ranking.fusion import fuse
from memfuse_memory.ranking.keywords import fts_query, query_terms

__all__ = ["fts_query", "fuse", "query_terms"]
