"""QueryBuffer: the LRU query cache with scope invalidation, and the pure result assembly
(filter, dedupe, sort, truncate) that turns fused hits into the reply's results.

A cached answer is never stale: every write, transfer, embedding, flush or delete in a user's
scope drops that user's entries and bumps the user's generation, and an answer computed while
the generation moved is not cached. Writes of other processes sharing the message store are seen
through the user's version there (bumped in the same transaction as the write): each entry
keeps the version it was computed at and is served only while that is still the version.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from memfuse_memory.metrics import LatencyRecorder
from memfuse_memory.models import Hit, IdKey, QueryRequest, StoredMessage, iso, matches_filter, to_micros


class Generation(NamedTuple):
    """What an answer was computed from: this process's epoch and user generation, and the
    user's version in the shared message store."""

    epoch: int
    local: int
    version: int


class _Entry(NamedTuple):
    version: int
    results: bytes  # the answer pickled: loading it is a deep copy at C speed, ~10x faster than copy.deepcopy


class QueryBuffer:
    """LRU cache of query answers keyed by the whole :class:`QueryRequest`."""

    def __init__(self, cache_size: int, max_size: int) -> None:
        self.cache_size = cache_size
        self.max_size = max_size
        self._cache: OrderedDict[QueryRequest, _Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        self.invalidations = 0
        self.latency = LatencyRecorder()

    def generation(self, user_id: str, version: int = 0) -> Generation:
        """A token that changes whenever the user's data may have changed; ``version`` is the
        user's version in the message store, read before the answer is computed."""
        with self._lock:
            return Generation(self._epoch, self._generations.get(user_id, 0), version)

    def get(self, request: QueryRequest, version: int = 0) -> list[dict[str, Any]] | None:
        """A copy of the cached answer, or None (counted as a miss).

        ``version`` is the user's current version in the message store; an entry computed at
        another version is outdated by some process's write and is dropped.
        """
        with self._lock:
            cached = self._cache.get(request)
            if cached is not None and cached.version != version:
                del self._cache[request]
                cached = None
            if cached is None:
                self.cache_misses += 1
                return None
            self._cache.move_to_end(request)
            self.cache_hits += 1
        return pickle.loads(cached.results)  # our own bytes, made by put() in this process

    def put(self, request: QueryRequest, results: list[dict[str, Any]], generation: Generation) -> None:
        """Cache an answer unless this process changed the user's data since ``generation`` was read."""
        if self.cache_size == 0:
            return
        frozen = pickle.dumps(results, pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if (self._epoch, self._generations.get(request.user_id, 0)) != generation[:2]:
                return
            self._cache[request] = _Entry(generation.version, frozen)
            self._cache.move_to_end(request)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def invalidate(self, user_ids: set[str] | None = None) -> None:
        """Drop the cached answers of these users (all users when None)."""
        with self._lock:
            if user_ids is None:
                self._cache.clear()
                self._epoch += 1
                self.invalidations += 1
                return
            for user in user_ids:
                self._generations[user] = self._generations.get(user, 0) + 1
            for key in [key for key in self._cache if key.user_id in user_ids]:
                del self._cache[key]
            self.invalidations += 1

    def assemble(
        self,
        request: QueryRequest,
        hits: Sequence[Hit],
        lookup: Callable[[str], StoredMessage | None],
        locate: Callable[[IdKey], str],
    ) -> list[dict[str, Any]]:
        """Turn ranked hits into results: each message looked up in rank order until ``top_k`` are
        chosen, scope re-checked (internal sessions left out unless named), filters applied, one
        per message, sorted."""
        wanted = request.filter_dict
        scope = request.scope
        limit = min(request.top_k, self.max_size)
        chosen: list[tuple[Hit, StoredMessage]] = []
        for hit in hits:
            if hit.score < request.min_score:
                continue
            message = lookup(hit.message_id)
            if message is None or not scope.accepts(message.scope):
                continue
            if not scope.accepts_time(to_micros(message.created_at)):
                continue
            if wanted and not matches_filter(message.metadata, wanted):
                continue
            chosen.append((hit, message))
            if len(chosen) == limit:
                break
        if request.sort_by == "timestamp":
            chosen.sort(key=lambda pair: (pair[1].created_at, pair[1].seq), reverse=request.order == "desc")
        elif request.order == "asc":
            chosen.reverse()
        return [_result(hit, message, locate(message.round_key)) for hit, message in chosen]

    def stats(self) -> dict[str, object]:
        with self._lock:
            total = self.cache_hits + self.cache_misses
            return {
                "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses,
                "cache_hit_rate": round(self.cache_hits / total, 4) if total else None,
                "cache_entries": len(self._cache),
                "invalidations": self.invalidations,
                "query_latency_ms": self.latency.summary(),
            }


def _result(hit: Hit, message: StoredMessage, source: str) -> dict[str, Any]:
    return {
        "id": message.id,
        "content": message.content,
        "score": round(hit.score, 6),
        "role": message.role,
        "name": message.name,
        "created_at": iso(message.created_at),
        "session_id": message.scope.session_id,
        "user_id": message.scope.user_id,
        "agent_id": message.scope.agent_id,
        "round_id": message.round_id,
        "message_ids": [message.id],
        "metadata": message.metadata,
        "source": source,
        "retrieval": {
            "methods": list(hit.retrieved_by),
            "keyword_score": hit.keyword,
            "vector_similarity": hit.vector,
        },
    }
