"""MemoryService: the persistent side of the pipeline.

It writes flushed HybridBuffer entries to the vector store (retried with backoff behind a
circuit breaker) and only then marks their rounds stored in the message store, so a crash at
any point leaves the round pending and it is simply re-indexed (chunk ids are deterministic, so
the vector write is an idempotent upsert). It also answers the storage side of queries.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from memfuse_memory.buffer.chunking import chunk_focus
from memfuse_memory.buffer.hybrid_buffer import HybridEntry
from memfuse_memory.config import RetryConfig
from memfuse_memory.errors import StorageError, StorageUnavailableError, WriteRejectedError
from memfuse_memory.models import IdKey, QueryRequest
from memfuse_memory.resilience import CircuitBreaker, call_with_retry
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.vector_store import VectorHit, VectorItem, VectorStore

log = logging.getLogger(__name__)
REJECTED_KEPT = 50  # the latest refused rounds shown by get_stats


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
        self.rejected_rounds = 0  # rounds the vector store refused for good (isolated, not retried)
        self.rejected: deque[dict[str, str]] = deque(maxlen=REJECTED_KEPT)

    def persist(self, entries: Sequence[HybridEntry]) -> list[IdKey]:
        """Write the entries' vectors, then mark their rounds stored; return the keys of the rounds stored.

        A user's batch that the vector store refuses for good is split until the refused rounds
        are isolated: those are recorded in ``rejected`` (``get_stats``) and left unmarked (found
        by keyword; tried again at the next start), the rest is stored. Rounds deleted meanwhile
        (by another process sharing the stores) lose the vectors just written for them, so a
        delete is never undone by a flush.
        """
        by_user: dict[str, list[HybridEntry]] = defaultdict(list)
        for entry in entries:
            by_user[entry.round.scope.user_id].append(entry)
        refused: set[IdKey] = set()
        try:
            for user_id, group in by_user.items():
                refused.update(self._write_isolating(user_id, group))
        except Exception:
            self.failed_writes += 1
            raise
        written = [entry for entry in entries if entry.round.key not in refused]
        round_keys = [entry.round.key for entry in written]
        gone: dict[str, list[str]] = defaultdict(list)
        for user_id, round_id in self.store.mark_stored(round_keys):
            gone[user_id].append(round_id)
        for user_id, round_ids in gone.items():
            self.delete_vectors(user_id, None, round_ids)
        self.chunks_stored_since_start += sum(len(entry.chunks) for entry in written)
        self._refresh_keywords(by_user)
        return round_keys

    def _refresh_keywords(self, user_ids: Iterable[str]) -> None:
        """Index the flushed users' new messages for keywords now, off the query path (a failure
        here only leaves that work to the next search)."""
        try:
            self.store.refresh_keywords(user_ids)
        except Exception as exc:  # the rounds are stored; the keyword index catches up at its next search
            log.warning("keyword index refresh after a flush failed: %s", exc)

    def _write_isolating(self, user_id: str, entries: Sequence[HybridEntry]) -> set[IdKey]:
        """Upsert a user's entries; on a refusal for good, halve until the refused rounds stand
        alone. Returns the ids of the rounds refused (an outage still raises, for a retry)."""
        items = [VectorItem(chunk, entry.vectors[chunk.id]) for entry in entries for chunk in entry.chunks]
        try:
            call_with_retry(lambda: self.vectors.upsert(user_id, items), breaker=self.vector_breaker, config=self.retry)
        except WriteRejectedError as exc:
            if len(entries) == 1:
                self._reject(entries[0], exc)
                return {entries[0].round.key}
            half = len(entries) // 2
            return self._write_isolating(user_id, entries[:half]) | self._write_isolating(user_id, entries[half:])
        return set()

    def _reject(self, entry: HybridEntry, exc: WriteRejectedError) -> None:
        scope = entry.round.scope
        log.error("vector store refused round %r of user %r for good: %s", entry.round.id, scope.user_id, exc)
        self.rejected_rounds += 1
        self.rejected.append(
            {"round_id": entry.round.id, "user_id": scope.user_id, "session_id": scope.session_id, "error": str(exc)}
        )

    def query_vectors(self, vector: np.ndarray, request: QueryRequest, limit: int) -> list[VectorHit]:
        """Nearest stored chunks in the request's scope, each with its messages: a whole round's are
        read from the message store, the vector store returns ids only (one attempt: a query never
        waits on backoff)."""
        where = request.scope
        hits = call_with_retry(
            lambda: self.vectors.query(vector, where, limit), breaker=self.vector_breaker, config=self.retry, attempts=1
        )
        whole = [chunk_focus(hit.chunk_id)[0] for hit in hits if not hit.message_ids]
        if not whole:
            return hits
        members = self.store.round_message_ids(request.user_id, whole)
        return [
            hit if hit.message_ids else replace(hit, message_ids=members.get(chunk_focus(hit.chunk_id)[0], ()))
            for hit in hits
        ]

    def query_keywords(self, request: QueryRequest, limit: int, frame_weight: float = 1.0) -> dict[str, float]:
        """BM25 over every acknowledged message in scope (buffered or stored).

        Any failure of the keyword index surfaces as a StorageError, so a query degrades to the
        other rankings instead of failing with a backend's own exception.
        """
        try:
            return self.store.keyword_search(request, limit, frame_weight)
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
        """Write counters and the breaker, the message store's backend (its pool on PostgreSQL), the
        keyword index held in this process; the store's counts too unless told not to (they read it)."""
        return {
            **(self.store.counts() if with_counts else {}),
            "message_store": self.store.backend_stats(),
            "keyword_index": self.store.keyword_stats(),
            "chunks_stored_since_start": self.chunks_stored_since_start,
            "failed_writes": self.failed_writes,
            "rejected_rounds": self.rejected_rounds,
            "rejected": list(self.rejected),
            "vector_store_breaker": self.vector_breaker.stats(),
        }
