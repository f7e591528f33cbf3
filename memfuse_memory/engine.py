"""The engine: the thread-safe, synchronous core behind both the async BufferService and the
blocking facade (one implementation of every behaviour, two calling conventions).

Write path: validate -> WriteBuffer (durable SQLite commit, RoundBuffer, HybridBuffer) -> the
index worker embeds and flushes to the MemoryService in the background.
Read path: QueryBuffer cache -> keyword (FTS5 BM25 over every acknowledged message) and vector
(HybridBuffer in memory + Chroma) rankings -> fusion -> hydrate from the message store ->
filter, dedupe, sort -> cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from memfuse_memory.buffer.chunking import make_strategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.errors import (
    EmbeddingError,
    InvalidInputError,
    InvalidMessageError,
    InvalidQueryError,
    MemFuseError,
    ServiceClosedError,
    StorageError,
)
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.models import QueryRequest, Round, Scope, check_id, iso, validate_query, validate_round
from memfuse_memory.ranking.fusion import fuse
from memfuse_memory.storage import dirlock, message_store
from memfuse_memory.storage.kv_store import KVStore
from memfuse_memory.storage.kv_vectors import ItemIndex
from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.storage.vector_store import ChromaVectorStore, VectorStore
from memfuse_memory.tokens import TokenCounter
from memfuse_memory.worker import IndexWorker

log = logging.getLogger(__name__)

DEFAULT_SESSION = "default"


def _ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "success", "code": 200, "data": data}


class Engine:
    """Owns the stores, buffers and worker of one data directory."""

    def __init__(
        self,
        config: MemFuseConfig,
        *,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
    ) -> None:
        self.config = config
        self._embedder = embedder
        self._vector_store = vector_store
        self._state = "new"
        self._state_lock = threading.Lock()
        self._storage_lock = threading.Lock()
        self._lock_key: Path | None = None
        self.started_at: float | None = None
        self.recovered_rounds = 0
        buffer = config.buffer
        self.counter = TokenCounter(buffer.round_buffer.token_model)
        self.strategy = make_strategy(buffer.hybrid_buffer.chunk_strategy, buffer.hybrid_buffer.chunk_max_words)
        self.round_buffer = RoundBuffer(buffer.round_buffer.max_tokens, buffer.round_buffer.max_size)
        self.hybrid_buffer = HybridBuffer(buffer.hybrid_buffer.max_size)
        self.query_buffer = QueryBuffer(buffer.query.cache_size, buffer.query.max_size)
        self.store: MessageStore | None = None
        self.memory: MemoryService | None = None
        self.write_buffer: WriteBuffer | None = None
        self.worker: IndexWorker | None = None
        self.kv: KVStore | None = None  # the key-value table (LangGraph store items), same file
        self.kv_index: ItemIndex | None = None  # item vectors, apart from message vectors

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def start(self) -> None:
        """Open the stores, load the model, re-index what a crash left pending, start the worker."""
        with self._state_lock:
            if self._state == "running":
                return
            if self._state == "closed":
                raise ServiceClosedError("this service is closed; create a new one")
            storage = self.config.storage
            data_dir = Path(storage.data_dir)
            if storage.vector_store.mode == "embedded" and self._vector_store is None:
                self._lock_key = dirlock.acquire(data_dir)
            try:
                self._open(data_dir)
            except BaseException:
                self._release()
                raise
            self._state = "running"
            self.started_at = time.time()

    def _open(self, data_dir: Path) -> None:
        storage = self.config.storage
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = MessageStore(
            data_dir / message_store.FILE_NAME,
            synchronous=storage.sqlite_synchronous,
            busy_timeout_ms=storage.busy_timeout_ms,
        )
        if self._embedder is None:
            from memfuse_memory.embedding.loader import load_embedder

            self._embedder = load_embedder(self.config)
        if self._vector_store is None:
            self._vector_store = ChromaVectorStore(storage.vector_store, data_dir, store_id=self.store.store_id)
        self.kv = KVStore(
            data_dir / message_store.FILE_NAME,
            synchronous=storage.sqlite_synchronous,
            busy_timeout_ms=storage.busy_timeout_ms,
        )
        item_index = getattr(self._vector_store, "item_index", None)
        self.kv_index = item_index() if item_index is not None else None
        self.memory = MemoryService(self.store, self._vector_store, self.config.retry)
        self.write_buffer = WriteBuffer(self.store, self.round_buffer, self.hybrid_buffer, self.strategy, self.counter)
        for round_ in self.store.pending_rounds():
            self.write_buffer.recover(round_)
            self.recovered_rounds += 1
        self.worker = IndexWorker(
            self.write_buffer,
            self._embedder,
            self.memory,
            batch_size=self.config.embedding.batch_size,
            retry=self.config.retry,
            idle_seconds=self.config.buffer.hybrid_buffer.idle_flush_seconds,
            storage_lock=self._storage_lock,
            on_change=self.query_buffer.invalidate,
        )
        self.worker.start()

    def _release(self) -> None:
        if self.store is not None:
            self.store.close()
        if self.kv is not None:
            self.kv.close()
        if self._lock_key is not None:
            dirlock.release(self._lock_key)
            self._lock_key = None

    def close(self, *, flush: bool = True, timeout: float | None = 60.0) -> None:
        """Flush (unless told not to), stop the worker and close the stores. Idempotent.

        A flush that fails leaves the data pending in the message store; the next start
        re-indexes it, so closing never loses an acknowledged message.
        """
        with self._state_lock:
            if self._state != "running":
                self._state = "closed"
                return
            self._state = "closing"
        try:
            if flush:
                try:
                    self._flush(timeout)
                except MemFuseError as exc:
                    log.warning("close: flush incomplete, the rest is re-indexed at next start: %s", exc)
        finally:
            if self.worker is not None:
                self.worker.stop()
            if self._vector_store is not None:
                self._vector_store.close()
            self._release()
            self.query_buffer.invalidate()
            with self._state_lock:
                self._state = "closed"

    @property
    def embedder(self) -> Embedder:
        """The embedding model of the running engine (the key-value store embeds items with it)."""
        self._running()
        assert self._embedder is not None
        return self._embedder

    def _running(self) -> None:
        if self._state == "running":
            return
        if self._state == "new":
            raise ServiceClosedError("the service is not started: use 'async with service:' or 'await service.start()'")
        raise ServiceClosedError("the service is closed; create a new one")

    def _scope(self, user_id: Any, session_id: Any, agent_id: Any) -> Scope:
        limits = self.config.limits
        session = DEFAULT_SESSION if session_id is None else check_id(session_id, "session_id", limits)
        agent = None if agent_id is None else check_id(agent_id, "agent_id", limits)
        return Scope(user_id=check_id(user_id, "user_id", limits), session_id=session, agent_id=agent)

    # -- writes -------------------------------------------------------------------------------

    def add(
        self,
        messages: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        continue_round: bool = False,
    ) -> dict[str, Any]:
        """Store one round durably and buffer it; see :meth:`BufferService.add`.

        ``continue_round`` appends the messages to the session's newest round instead, when that
        round is still in the RoundBuffer (a reply joining the question stored alone before it).
        """
        if continue_round:
            self._running()
            scope = self._scope(user_id, session_id, agent_id)
            round_ = validate_round(messages, scope, self.config.limits)
            assert self.write_buffer is not None
            joined = self.write_buffer.append_to_last(round_)
            if joined is not None:
                self.query_buffer.invalidate({scope.user_id})
                ids = [m.id for m in round_.messages]
                data = {"message_ids": ids, "round_ids": [joined.id], "round_id": joined.id, "continued": True}
                return _ok(
                    {**data, "session_id": scope.session_id, "user_id": scope.user_id, "agent_id": scope.agent_id}
                )
        reply = self.add_batch([messages], session_id, user_id=user_id, agent_id=agent_id)
        reply["data"]["round_id"] = reply["data"]["round_ids"][0]
        reply["data"]["continued"] = False
        return reply

    def add_batch(
        self,
        message_batch_list: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        round_ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Store several rounds, all or nothing; see :meth:`BufferService.add_batch`.

        ``round_ids`` (one per round) keep the round grouping of an import; new ids otherwise.
        """
        self._running()
        scope = self._scope(user_id, session_id, agent_id)
        if not isinstance(message_batch_list, list | tuple) or not message_batch_list:
            raise InvalidMessageError("message_batch_list must be a non-empty list of message lists")
        if round_ids is not None:
            if isinstance(round_ids, str) or len(round_ids) != len(message_batch_list):
                raise InvalidMessageError("round_ids must be a list with one id per round")
            if len(set(round_ids)) != len(round_ids):
                raise InvalidMessageError("a round id appears twice in one batch")
            for rid in round_ids:
                check_id(rid, "round id", self.config.limits, InvalidMessageError)
        rounds = [
            validate_round(messages, scope, self.config.limits, round_id=None if round_ids is None else round_ids[n])
            for n, messages in enumerate(message_batch_list)
        ]
        ids = [m.id for r in rounds for m in r.messages]
        if len(set(ids)) != len(ids):
            raise InvalidMessageError("a message id appears twice in one batch")
        assert self.write_buffer is not None and self.worker is not None
        self.write_buffer.add_rounds(rounds)
        self.query_buffer.invalidate({scope.user_id})
        if not self.config.buffer.enabled:
            self._flush(None, rounds)
        return _ok(
            {
                "message_ids": ids,
                "round_ids": [r.id for r in rounds],
                "session_id": scope.session_id,
                "user_id": scope.user_id,
                "agent_id": scope.agent_id,
            }
        )

    def flush_all(self, timeout: float | None = None) -> dict[str, Any]:
        """Return once everything added so far is embedded and in the vector store."""
        self._running()
        return _ok(self._flush(timeout))

    def _flush(self, timeout: float | None, rounds: Sequence[Round] | None = None) -> dict[str, Any]:
        assert self.write_buffer is not None and self.worker is not None
        started = time.perf_counter()
        target = self.write_buffer.transfer_all("flush")
        if rounds is not None:
            target &= {r.id for r in rounds}
        self.query_buffer.invalidate()
        self.worker.wait_stored(target, timeout)
        return {"flushed_rounds": len(target), "seconds": round(time.perf_counter() - started, 4)}

    def delete_session(self, session_id: str, *, user_id: str = "default") -> dict[str, Any]:
        """Remove a session from every store, buffer and cache."""
        self._running()
        scope = self._scope(user_id, session_id, None)
        assert self.memory is not None and self.write_buffer is not None
        with self._storage_lock:
            self.memory.delete_vectors(scope.user_id, scope.session_id)
            with self.write_buffer.lock:
                count = self.memory.messages.delete_session(scope.user_id, scope.session_id)
                self.write_buffer.drop(lambda s: s.user_id == scope.user_id and s.session_id == scope.session_id)
        self.query_buffer.invalidate({scope.user_id})
        return _ok({"deleted_messages": count, "session_id": scope.session_id, "user_id": scope.user_id})

    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Remove every session of a user from every store, buffer and cache."""
        self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        assert self.memory is not None and self.write_buffer is not None
        with self._storage_lock:
            self.memory.delete_vectors(user, None)
            with self.write_buffer.lock:
                count = self.memory.messages.delete_user(user)
                self.write_buffer.drop(lambda s: s.user_id == user)
            if self.kv is not None:
                self.kv.delete_user(user)
        self.query_buffer.invalidate({user})
        return _ok({"deleted_messages": count, "user_id": user})

    def delete_messages(self, message_ids: Any, *, user_id: str = "default") -> dict[str, Any]:
        """Remove single messages of a user from every store, buffer and cache, in one transaction.

        Rounds left with other messages are re-indexed without the deleted ones.
        """
        self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        if isinstance(message_ids, str) or not isinstance(message_ids, list | tuple | set) or not message_ids:
            raise InvalidInputError("message_ids must be a non-empty list of message ids")
        ids = [check_id(mid, "message id", self.config.limits, InvalidInputError) for mid in message_ids]
        assert self.memory is not None and self.write_buffer is not None and self.store is not None
        with self._storage_lock:
            touched = self.store.rounds_of_messages(user, ids)
            if touched:
                self.memory.delete_vectors(user, None, touched)
            with self.write_buffer.lock:
                count, _emptied, partial = self.store.delete_messages(user, ids)
                self.write_buffer.discard_rounds(set(touched))
            for round_ in self.store.rounds_by_id(partial):
                self.write_buffer.recover(round_)
        self.query_buffer.invalidate({user})
        return _ok({"deleted_messages": count, "user_id": user})

    def update_messages(self, message_ids: Any, new_messages: Any, *, user_id: str = "default") -> dict[str, Any]:
        """Replace stored messages of a user in place, in one transaction: role, content, name and
        metadata change; ids, times, sessions and rounds stay. Their rounds are re-indexed."""
        self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        if isinstance(message_ids, str) or not isinstance(message_ids, list | tuple) or not message_ids:
            raise InvalidInputError("message_ids must be a non-empty list of message ids")
        ids = [check_id(mid, "message id", self.config.limits, InvalidInputError) for mid in message_ids]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("a message id appears twice in message_ids")
        if not isinstance(new_messages, list | tuple) or len(new_messages) != len(ids):
            raise InvalidMessageError("new_messages must be a list with one message per message id")
        checked = validate_round(new_messages, Scope(user_id=user, session_id=DEFAULT_SESSION), self.config.limits)
        updates = [replace(message, id=mid) for message, mid in zip(checked.messages, ids, strict=True)]
        assert self.memory is not None and self.write_buffer is not None and self.store is not None
        with self._storage_lock:
            touched = self.store.rounds_of_messages(user, ids)
            with self.write_buffer.lock:
                self.store.update_messages(user, updates)
                self.write_buffer.discard_rounds(set(touched))
            self.memory.delete_vectors(user, None, touched)
            for round_ in self.store.rounds_by_id(touched):
                self.write_buffer.recover(round_)
        self.query_buffer.invalidate({user})
        return _ok({"message_ids": ids, "updated_messages": len(ids), "user_id": user})

    def export_messages(self, *, user_id: str | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored message (of a user, of a session), in the order added, as reply dicts."""
        self._running()
        if user_id is not None:
            check_id(user_id, "user_id", self.config.limits)
        if session_id is not None:
            check_id(session_id, "session_id", self.config.limits)
        assert self.store is not None
        return [m.to_dict() for m in self.store.export(user_id=user_id, session_id=session_id)]

    def list_users(self) -> list[str]:
        """Every user with stored messages, in order of first write."""
        self._running()
        assert self.store is not None
        return self.store.users()

    def list_sessions(self, *, user_id: str = "default") -> dict[str, Any]:
        """A user's sessions, oldest first, with message counts and first/last message times."""
        self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        assert self.store is not None
        sessions = [
            {**row, "first_at": iso(row["first_at"]), "last_at": iso(row["last_at"])}
            for row in self.store.sessions(user)
        ]
        return _ok({"sessions": sessions, "total": len(sessions)})

    # -- reads --------------------------------------------------------------------------------

    def prepare_query(
        self,
        query: Any,
        top_k: Any = 10,
        *,
        user_id: Any = "default",
        session_id: Any = None,
        agent_id: Any = None,
        sort_by: Any = None,
        order: Any = None,
        metadata_filter: Any = None,
        since: Any = None,
        until: Any = None,
    ) -> QueryRequest:
        """Validate query arguments into a request (also the cache key)."""
        self._running()
        defaults = self.config.buffer.query
        return validate_query(
            query,
            top_k,
            user_id=user_id,
            session_id=session_id,
            agent_id=agent_id,
            sort_by=defaults.default_sort_by if sort_by is None else sort_by,
            order=defaults.default_order if order is None else order,
            metadata_filter=metadata_filter,
            since=since,
            until=until,
            limits=self.config.limits,
        )

    def _user_version(self, user_id: str) -> int | None:
        """The user's version in the shared message store; None (do not cache) if unreadable."""
        assert self.store is not None
        try:
            return self.store.user_version(user_id)
        except StorageError as exc:
            log.warning("query cache bypassed, the user's version is unreadable: %s", exc)
            return None

    def cached_query(self, request: QueryRequest, version: int | None = None) -> dict[str, Any] | None:
        """The cached reply of a request, or None; memory plus one indexed SQLite read (the user's
        version, so writes of other processes are seen), safe on an event loop."""
        started = time.perf_counter()
        if version is None:
            version = self._user_version(request.user_id)
        results = None if version is None else self.query_buffer.get(request, version)
        if results is None:
            return None
        self.query_buffer.latency.since(started)
        return _ok({"results": results, "total": len(results), "cached": True, "degraded": False, "errors": []})

    def run_query(self, request: QueryRequest, *, use_cache: bool = True) -> dict[str, Any]:
        """Answer a validated request from every source (cache first)."""
        self._running()
        version = self._user_version(request.user_id)
        if use_cache and version is not None:
            cached = self.cached_query(request, version)
            if cached is not None:
                return cached
        started = time.perf_counter()
        generation = None if version is None else self.query_buffer.generation(request.user_id, version)
        results, errors = self._search(request)
        if not errors and generation is not None:
            self.query_buffer.put(request, results, generation)
        self.query_buffer.latency.since(started)
        return _ok(
            {"results": results, "total": len(results), "cached": False, "degraded": bool(errors), "errors": errors}
        )

    def query(self, query: Any, top_k: Any = 10, **kwargs: Any) -> dict[str, Any]:
        """Validate and answer a query; see :meth:`BufferService.query`."""
        return self.run_query(self.prepare_query(query, top_k, **kwargs))

    def _search(self, request: QueryRequest) -> tuple[list[dict[str, Any]], list[str]]:
        assert self.memory is not None and self.write_buffer is not None and self._embedder is not None
        settings = self.config.buffer.query
        pool = settings.candidate_pool * (4 if request.metadata_filter else 1)
        errors: list[str] = []
        try:
            keyword = self.memory.query_keywords(request, pool)
        except StorageError as exc:
            errors.append(f"keyword store: {exc}")
            keyword = {}
        vector: dict[str, float] = {}
        try:
            query_vector = self._embedder.embed([request.text])[0]
        except EmbeddingError as exc:
            errors.append(f"embedding: {exc}")
        else:

            def accept(scope: Scope) -> bool:
                return scope.user_id == request.user_id and (
                    request.session_id in (None, scope.session_id) and request.agent_id in (None, scope.agent_id)
                )

            with self.write_buffer.lock:
                buffered = self.hybrid_buffer.search(query_vector, accept, pool)
            for chunk, similarity in buffered:
                for mid in chunk.message_ids:
                    vector[mid] = max(similarity, vector.get(mid, -1.0))
            try:
                for hit in self.memory.query_vectors(query_vector, request, pool):
                    for mid in hit.message_ids:
                        vector[mid] = max(hit.similarity, vector.get(mid, -1.0))
            except StorageError as exc:
                errors.append(f"vector store: {exc}")
            vector = dict(sorted(vector.items(), key=lambda item: -item[1])[:pool])
        hits = fuse(
            keyword,
            vector,
            method=settings.fusion,
            keyword_weight=settings.keyword_weight,
            vector_weight=settings.vector_weight,
        )
        messages = self.memory.messages.messages_by_id([hit.message_id for hit in hits])
        return self.query_buffer.assemble(request, hits, messages, self.write_buffer.location), errors

    def get_messages_by_session(
        self,
        session_id: str,
        *,
        user_id: str = "default",
        buffer_only: bool | None = None,
        limit: int | None = None,
        order: str = "asc",
    ) -> dict[str, Any]:
        """A session's messages in the order they were added; ``limit`` keeps the latest ones."""
        self._running()
        scope = self._scope(user_id, session_id, None)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise InvalidQueryError(f"limit must be a positive integer or None, got {limit!r}")
        if order not in ("asc", "desc"):
            raise InvalidQueryError(f"order must be 'asc' or 'desc', got {order!r}")
        if buffer_only is not None and not isinstance(buffer_only, bool):
            raise InvalidInputError(f"buffer_only must be a bool or None, got {buffer_only!r}")
        assert self.store is not None
        messages = self.store.session_messages(
            scope.user_id, scope.session_id, pending_only=bool(buffer_only), limit=limit, order=order
        )
        return _ok({"messages": [m.to_dict() for m in messages], "total": len(messages)})

    # -- introspection ------------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        """The seed's metrics for every component, plus storage and worker health."""
        self._running()
        assert self.write_buffer is not None and self.memory is not None and self.worker is not None
        write = self.write_buffer.stats()
        storage = self.memory.stats()
        worker = self.worker.stats()
        vector_state = storage["vector_store_breaker"]["state"]  # type: ignore[index]
        embed_state = worker["embedding_breaker"]["state"]  # type: ignore[index]
        health = {
            "round_buffer": "ok",
            "hybrid_buffer": "ok",
            "index_worker": "ok" if worker["alive"] else "stopped",
            "vector_store": "ok" if vector_state == "closed" else f"degraded (breaker {vector_state})",
            "embedding": "ok" if embed_state == "closed" else f"degraded (breaker {embed_state})",
            "message_store": "ok",
        }
        return {
            "service": {
                "state": self._state,
                "data_dir": str(self.config.storage.data_dir),
                "uptime_seconds": round(time.time() - (self.started_at or time.time()), 3),
                "recovered_rounds": self.recovered_rounds,
                "buffer_enabled": self.config.buffer.enabled,
            },
            "write_buffer": {
                "total_writes": write["total_writes"],
                "total_messages": write["total_messages"],
                "total_transfers": write["total_transfers"],
                "transferred_rounds": write["transferred_rounds"],
                "transfer_latency_ms": write["transfer_latency_ms"],
                "component_health": health,
            },
            "round_buffer": write["round_buffer"],
            "hybrid_buffer": write["hybrid_buffer"],
            "query_buffer": self.query_buffer.stats(),
            "storage": storage,
            "index_worker": worker,
        }
