"""The query path: cache first, then every source in the query's scope (keywords over every
acknowledged message, vectors of the HybridBuffer and of storage), fused, hydrated from the
message store (role and time of every candidate for ranking, the text of the top ones for the
reply), filtered, deduplicated and sorted, then cached.

Every acknowledged message is found by keyword from the moment ``add`` returns: the keyword index
reads what was committed since its last search before it ranks (``storage.keyword_index``). The
index worker embeds each round as soon as it can, in the RoundBuffer too;
a query embeds, in the same model call as its own text, the few buffered chunks in its scope
that still have no vector (at most ``embed_pending_limit``) and keeps those vectors, so a message
just acknowledged ranks by meaning as it will once stored. When the keyword index cannot answer,
the query degrades to the vector rankings. The keyword search runs on a small pool beside the
query embedding and the vector searches: SQLite, numpy and ONNX Runtime release the GIL while they work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import QueryConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.errors import EmbeddingError, StorageError
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.models import Hit, MessageFacts, QueryRequest, StoredMessage
from memfuse_memory.ranking.fusion import fuse
from memfuse_memory.ranking.role_prior import favour_user_turns
from memfuse_memory.ranking.time_boost import boost
from memfuse_memory.ranking.time_expressions import resolve
from memfuse_memory.storage.base import MessageStoreProtocol

log = logging.getLogger(__name__)
T = TypeVar("T")

BESIDE_THREADS = 2  # keyword searches running beside query embeddings at once; more queries run theirs inline
_beside: ThreadPoolExecutor | None = None
_beside_lock = threading.Lock()
_beside_free = threading.Semaphore(BESIDE_THREADS)


def beside(task: Callable[[], T]) -> Callable[[], T]:
    """Start ``task`` on the process's small pool and return how to wait for its result; when every
    pool thread is busy (many concurrent queries), ``task`` runs inline when its result is wanted,
    so no query ever queues behind another's keyword search."""
    global _beside
    if not _beside_free.acquire(blocking=False):
        return task
    with _beside_lock:
        if _beside is None:
            _beside = ThreadPoolExecutor(max_workers=BESIDE_THREADS, thread_name_prefix="memfuse-keywords")
    future = _beside.submit(task)
    future.add_done_callback(lambda _: _beside_free.release())
    return future.result


def reply(data: dict[str, Any]) -> dict[str, Any]:
    """The seed's reply envelope."""
    return {"status": "success", "code": 200, "data": data}


class RankedReader:
    """The full messages of ranked candidates, read in rank order a chunk at a time as the reply is
    assembled: ranking needs only each candidate's role and time, a reply the text of its top k."""

    def __init__(
        self, store: MessageStoreProtocol, user_id: str, ranked_ids: list[str], top_k: int, errors: list[str]
    ) -> None:
        self._store, self._user_id, self._ids, self._errors = store, user_id, ranked_ids, errors
        self._chunk = max(2 * top_k, 20)  # room for a few candidates the filters leave out
        self._position = {mid: at for at, mid in enumerate(ranked_ids)}
        self._loaded: dict[str, StoredMessage] = {}
        self._read_to = 0

    def get(self, message_id: str) -> StoredMessage | None:
        """The message, reading the chunks up to it first; None if deleted or unreadable."""
        at = self._position.get(message_id)
        while at is not None and self._read_to <= at:
            part = self._ids[self._read_to : self._read_to + self._chunk]
            self._read_to += len(part)
            try:
                self._loaded.update(self._store.messages_by_id(self._user_id, part))
            except StorageError as exc:  # what was read stays in the (degraded) answer
                self._errors.append(f"message store: {exc}")
                self._read_to = len(self._ids)
        return self._loaded.get(message_id)


class QueryPath:
    """Answers validated query requests from the cache or from every source."""

    def __init__(
        self,
        settings: QueryConfig,
        store: MessageStoreProtocol,
        memory: MemoryService,
        embedder: Embedder,
        write_buffer: WriteBuffer,
        query_buffer: QueryBuffer,
    ) -> None:
        self._settings = settings
        self._store = store
        self._memory = memory
        self._embedder = embedder
        self._write_buffer = write_buffer
        self._query_buffer = query_buffer

    def _version(self, user_id: str) -> int | None:
        """The user's version in the shared message store; None (do not cache) if unreadable."""
        try:
            return self._store.user_version(user_id)
        except StorageError as exc:
            log.warning("query cache bypassed, the user's version is unreadable: %s", exc)
            return None

    def cached(self, request: QueryRequest, version: int | None = None) -> dict[str, Any] | None:
        """The cached reply of a request, or None: memory plus one indexed read of the user's
        version (so other processes' writes are seen); takes no lock held across I/O."""
        started = time.perf_counter()
        if version is None:
            version = self._version(request.user_id)
        results = None if version is None else self._query_buffer.get(request, version)
        if results is None:
            return None
        self._query_buffer.latency.since(started)
        return reply({"results": results, "total": len(results), "cached": True, "degraded": False, "errors": []})

    def answer(self, request: QueryRequest, *, use_cache: bool = True) -> dict[str, Any]:
        """Answer a request from every source (cache first unless told not to)."""
        version = self._version(request.user_id)
        if use_cache and version is not None:
            cached = self.cached(request, version)
            if cached is not None:
                return cached
        started = time.perf_counter()
        generation = None if version is None else self._query_buffer.generation(request.user_id, version)
        results, errors = self.search(request)
        if not errors and generation is not None:
            self._query_buffer.put(request, results, generation)
        self._query_buffer.latency.since(started)
        return reply(
            {"results": results, "total": len(results), "cached": False, "degraded": bool(errors), "errors": errors}
        )

    def search(self, request: QueryRequest) -> tuple[list[dict[str, Any]], list[str]]:
        """Rank, fuse, hydrate and assemble; the errors name the sources that could not answer."""
        pool = self._settings.candidate_pool * (4 if request.metadata_filter else 1)
        errors: list[str] = []
        vector_errors: list[str] = []
        keywords = beside(lambda: self._keywords(request, pool, errors))
        vector = self._vectors(request, pool, vector_errors)
        keyword = keywords()
        errors += vector_errors
        hits = fuse(
            keyword,
            vector,
            method=self._settings.fusion,
            keyword_weight=self._settings.keyword_weight,
            vector_weight=self._settings.vector_weight,
        )
        try:
            facts = self._store.message_facts(request.user_id, [hit.message_id for hit in hits])
        except StorageError as exc:  # the hits cannot be read back: an empty, degraded answer
            errors.append(f"message store: {exc}")
            facts = {}
        hits = self._time_boost(request, hits, facts)
        roles = {mid: fact.role for mid, fact in facts.items()}
        ranked = [
            hit
            for hit in favour_user_turns(hits, roles, self._settings.assistant_weight, request.text)
            if hit.message_id in facts
        ]
        reader = RankedReader(self._store, request.user_id, [hit.message_id for hit in ranked], request.top_k, errors)
        return self._query_buffer.assemble(request, ranked, reader.get, self._write_buffer.location), errors

    def _time_boost(self, request: QueryRequest, hits: list[Hit], facts: dict[str, MessageFacts]) -> list[Hit]:
        """Favour the candidates whose time fits the query's time words (reorders, never removes)."""
        weight = self._settings.time_boost_weight
        hint = resolve(request.text, request.reference) if weight > 0 else None
        if hint is None or hint.empty:
            return hits
        return boost(hits, {mid: fact.created_at for mid, fact in facts.items()}, hint, weight)

    def _keywords(self, request: QueryRequest, pool: int, errors: list[str]) -> dict[str, float]:
        try:
            return self._memory.query_keywords(request, pool, self._settings.frame_word_weight)
        except StorageError as exc:
            errors.append(f"keyword store: {exc}")
            return {}

    def _vectors(self, request: QueryRequest, pool: int, errors: list[str]) -> dict[str, float]:
        accept = request.scope.accepts
        pending = self._write_buffer.unembedded(accept, self._settings.embed_pending_limit)
        try:
            vectors = self._embedder.embed([request.text, *(chunk.text for chunk in pending)])
        except EmbeddingError as exc:
            errors.append(f"embedding: {exc}")
            return {}
        query_vector = vectors[0]
        if pending:
            self._write_buffer.install_vectors(pending, vectors[1:])
        vector: dict[str, float] = {}
        for chunk, similarity in self._write_buffer.search_vectors(query_vector, accept, pool):
            for mid in chunk.message_ids:
                vector[mid] = max(similarity, vector.get(mid, -1.0))
        try:
            for hit in self._memory.query_vectors(query_vector, request, pool):
                for mid in hit.message_ids:
                    vector[mid] = max(hit.similarity, vector.get(mid, -1.0))
        except StorageError as exc:
            errors.append(f"vector store: {exc}")
        return dict(sorted(vector.items(), key=lambda item: -item[1])[:pool])
