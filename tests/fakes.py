"""Test doubles: a deterministic bag-of-words embedder and an in-memory vector store."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence

import numpy as np

from memfuse_memory.buffer.chunking import chunk_focus
from memfuse_memory.config import LimitsConfig
from memfuse_memory.errors import EmbeddingError
from memfuse_memory.models import QueryRequest, to_micros
from memfuse_memory.scope import ScopeFilter
from memfuse_memory.storage.kv_vectors import ItemHit, ItemQuery, ItemVector, similarity, vector_ids
from memfuse_memory.storage.vector_store import VectorHit, VectorItem
from memfuse_memory.validation import validate_query

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashes lower-cased words into a fixed number of buckets; texts sharing words are similar."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension
        self.calls = 0
        self.texts = 0
        self.fail_next = 0
        self.lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self.lock:
            self.calls += 1
            if self.fail_next:
                self.fail_next -= 1
                raise EmbeddingError("fake embedder told to fail")
            self.texts += len(texts)
        rows = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                rows[i, bucket % self._dimension] += 1.0
            norm = np.linalg.norm(rows[i])
            rows[i] = rows[i] / norm if norm else rows[i]
            if not norm:
                rows[i, 0] = 1.0
        return rows


class MemoryVectorStore:
    """A VectorStore kept in a dict, partitioned by user like the Chroma one; can be told to fail."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, VectorItem]] = {}
        self.down = False
        self.upserts = 0
        self.lock = threading.Lock()
        self.items_index = MemoryItemIndex()

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("vector store is down")

    def item_index(self) -> MemoryItemIndex:
        return self.items_index

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None:
        self._check()
        with self.lock:
            self.upserts += 1
            bucket = self.items.setdefault(user_id, {})
            for item in items:
                bucket[item.chunk.id] = item

    def query(self, vector: np.ndarray, where: ScopeFilter, limit: int) -> list[VectorHit]:
        self._check()
        with self.lock:
            candidates = list(self.items.get(where.user_id, {}).values())
        hits = []
        for item in candidates:
            if not where.accepts(item.chunk.scope) or not where.accepts_time(to_micros(item.chunk.created_at)):
                continue
            _, focus = chunk_focus(item.chunk.id)  # as from Chroma: a round's messages are the store's to tell
            hits.append(VectorHit(item.chunk.id, () if focus is None else (focus,), float(item.vector @ vector)))
        return sorted(hits, key=lambda hit: -hit.similarity)[:limit]

    def delete_session(self, user_id: str, session_id: str) -> None:
        self._check()
        with self.lock:
            bucket = self.items.get(user_id, {})
            for key in [k for k, item in bucket.items() if item.chunk.scope.session_id == session_id]:
                del bucket[key]

    def delete_rounds(self, user_id: str, round_ids: Sequence[str]) -> None:
        self._check()
        with self.lock:
            bucket = self.items.get(user_id, {})
            for key in [k for k, item in bucket.items() if item.chunk.round_id in set(round_ids)]:
                del bucket[key]

    def delete_user(self, user_id: str) -> None:
        self._check()
        with self.lock:
            self.items.pop(user_id, None)
        self.items_index.vectors.pop(user_id, None)

    def close(self) -> None:
        pass

    def count(self, user_id: str | None = None) -> int:
        with self.lock:
            if user_id is not None:
                return len(self.items.get(user_id, {}))
            return sum(len(bucket) for bucket in self.items.values())

    def rounds(self, user_id: str | None = None) -> int:
        """Rounds with at least one vector (a strategy may give a round several), summed over users."""
        with self.lock:
            buckets = [self.items.get(user_id, {})] if user_id is not None else list(self.items.values())
            return sum(len({chunk_focus(cid)[0] for cid in bucket}) for bucket in buckets)


def query_request(text: str, user: str = "alice", top_k: int = 5) -> QueryRequest:
    """A validated user-scoped query with the default sort, for tests below the engine."""
    return validate_query(
        text,
        top_k,
        user_id=user,
        session_id=None,
        agent_id=None,
        sort_by="score",
        order="desc",
        metadata_filter=None,
        since=None,
        until=None,
        limits=LimitsConfig(),
    )


class MemoryItemIndex:
    """Key-value item vectors kept in a dict per user (exact cosine), like the Chroma item index."""

    def __init__(self) -> None:
        self.vectors: dict[str, dict[str, ItemVector]] = {}
        self.lock = threading.Lock()

    def write(self, user_id: str, vectors: Sequence[ItemVector], stale: Sequence[str]) -> None:
        with self.lock:
            bucket = self.vectors.setdefault(user_id, {})
            for vid in stale:
                bucket.pop(vid, None)
            for vector in vectors:
                bucket[vector_ids(vector.agent_id, vector.namespace, vector.key, vector.field, vector.field + 1)[0]] = (
                    vector
                )

    def query(self, user_id: str, request: ItemQuery) -> list[ItemHit]:
        prefix = request.prefix
        with self.lock:
            candidates = [
                v
                for v in self.vectors.get(user_id, {}).values()
                if v.agent_id == request.agent_id and v.namespace[: len(prefix)] == prefix
            ]
        hits = [
            ItemHit(v.agent_id, v.namespace, v.key, v.stamp, similarity(request.distance, request.vector, v.vector))
            for v in candidates
        ]
        return sorted(hits, key=lambda hit: -hit.similarity)[: request.limit]
