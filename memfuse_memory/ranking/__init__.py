"""Ranking (pure, no I/O): query keywords, index terms, BM25 over one user's messages, rank fusion."""

from memfuse_memory.ranking.fusion import fuse
from memfuse_memory.ranking.keywords import query_terms

__all__ = ["fuse", "query_terms"]
