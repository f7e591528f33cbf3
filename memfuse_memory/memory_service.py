"""MemoryService: the persistent side of the pipeline.

It writes flushed HybridBuffer entries to the vector store (retried with backoff behind a
circuit breaker) and only then marks their rounds stored in the message store, so a crash at
any point leaves the round pending and it is simply re-indexed (chunk ids are deterministic, so
the vector write is an idempotent upsert). It also answers the storage side of queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from memfuse_memory.buffer.hybrid_buffer import HybridEntry
from memfuse_memory.config import RetryConfig
from memfuse_memory.errors import StorageError, StorageUnavailableError
from memfuse_memory.models import QueryRequest
from memfuse_memory.resilience import CircuitBreaker, call_with_retry
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.vector_store import VectorHit, VectorItem, VectorStore


class MemoryService:
    """Persists buffered chunks and queries the durable stores."""

    def __init__(self, store: MessageStoreProtocol, vectors: VectorStore, retry: RetryConfig) -> None:
        self.store = store
        self.vectors = vectors
        self.retry = retry
        self.vector_breaker = CircuitBreaker(
            "vector store", retry.breaker_failure_threshold, retry.breaker_reset_seconds
        )
        self.chunks_stored_since_start = 0
        self.failed_writes = 0

    def persist(self, entries: Sequence[HybridEntry]) -> list[str]:
        """Write the entries' vectors, then mark their rounds stored; return the round ids.

        Rounds deleted meanwhile (by another process sharing the stores) lose the vectors just
        written for them, so a delete is never undone by a flush.
        """
        by_user: dict[str, list[VectorItem]] = defaultdict(list)
        for entry in entries:
            for chunk in entry.chunks:
                by_user[entry.round.scope.user_id].append(VectorItem(chunk, entry.vectors[chunk.id]))
        try:
            for user_id, items in by_user.items():
                call_with_retry(
                    lambda u=user_id, i=items: self.vectors.upsert(u, i), breaker=self.vector_breaker, config=self.retry
                )
        except Exception:
            self.failed_writes += 1
            raise
        round_ids = [entry.round.id for entry in entries]
        gone = set(self.store.mark_stored(round_ids))
        for user_id in {entry.round.scope.user_id for entry in entries if entry.round.id in gone}:
            self.delete_vectors(
                user_id, None, [e.round.id for e in entries if e.round.id in gone and e.round.scope.user_id == user_id]
            )
        self.chunks_stored_since_start += sum(len(items) for items in by_user.values())
        return round_ids

    def query_vectors(self, vector: np.ndarray, request: QueryRequest, limit: int) -> list[VectorHit]:
        """Nearest stored chunks in the request's scope (one attempt: a query never waits on backoff)."""
        where = request.scope
        return call_with_retry(
            lambda: self.vectors.query(vector, where, limit), breaker=self.vector_breaker, config=self.retry, attempts=1
        )

    def query_keywords(self, request: QueryRequest, limit: int) -> dict[str, float]:
        """BM25 over every acknowledged message in scope (buffered or stored).

        Any failure of the keyword index surfaces as a StorageError, so a query degrades to the
        other rankings instead of failing with a backend's own exception.
        """
        try:
            return self.store.keyword_search(request, limit)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageUnavailableError(f"keyword search failed: {exc}") from exc

    def delete_vectors(self, user_id: str, session_id: str | None, round_ids: Sequence[str] = ()) -> None:
        """Remove vectors, retried with backoff: of some rounds, of a session, or of a whole user."""
        if round_ids:
            operation = lambda: self.vectors.delete_rounds(user_id, round_ids)  # noqa: E731
        elif session_id is None:
            operation = lambda: self.vectors.delete_user(user_id)  # noqa: E731
        else:
            operation = lambda: self.vectors.delete_session(user_id, session_id)  # noqa: E731
        call_with_retry(operation, breaker=self.vector_breaker, config=self.retry)

    def stats(self, *, with_counts: bool = True) -> dict[str, object]:
        """Write counters and the breaker; the store's counts too unless told not to (they read it)."""
        return {
            **(self.store.counts() if with_counts else {}),
            "chunks_stored_since_start": self.chunks_stored_since_start,
            "failed_writes": self.failed_writes,
            "vector_store_breaker": self.vector_breaker.stats(),
        }
