"""The Engine: lifecycle (start, close) and the public operations, each validated here and
carried out by the write path (``writes``), the query path (``search``) or ``stats``.

Its public methods are the one signature source of both facades: ``BufferService`` and
``BlockingBufferService`` are generated from them (:mod:`memfuse_memory.facade`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from typing import Any

from memfuse_memory.buffer.chunking import make_strategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.engine.components import Buffers, Components
from memfuse_memory.engine.lifecycle import Lifecycle, counted
from memfuse_memory.engine.search import reply
from memfuse_memory.engine.stats import engine_stats
from memfuse_memory.errors import InvalidInputError, ServiceClosedError
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.models import QueryRequest, iso
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.kv_store import KVStore
from memfuse_memory.storage.kv_vectors import ItemIndex
from memfuse_memory.storage.vector_store import VectorStore
from memfuse_memory.tokens import TokenCounter
from memfuse_memory.validation import (
    check_id,
    check_timeout,
    scope_of,
    validate_batch,
    validate_message_ids,
    validate_query,
    validate_round,
    validate_session_read,
    validate_updates,
)
from memfuse_memory.worker import IndexWorker

log = logging.getLogger(__name__)


class Engine:
    """Owns the stores, buffers and worker of one data directory; thread-safe and synchronous."""

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
        buffer = config.buffer
        self.counter = TokenCounter(buffer.round_buffer.token_model)
        self._buffers = Buffers(
            round_buffer=RoundBuffer(buffer.round_buffer.max_tokens, buffer.round_buffer.max_size),
            hybrid_buffer=HybridBuffer(buffer.hybrid_buffer.max_size),
            query_buffer=QueryBuffer(buffer.query.cache_size, buffer.query.max_size),
            counter=self.counter,
            strategy=make_strategy(buffer.hybrid_buffer.chunk_strategy, buffer.hybrid_buffer.chunk_max_words),
        )
        self._life = Lifecycle(config, self._buffers)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """new, running, closing or closed."""
        return self._life.state

    @property
    def started_at(self) -> float | None:
        """When ``start`` opened the components (epoch seconds), None before."""
        return self._life.started_at

    def start(self) -> None:
        """Open the stores, load the model, re-index what a crash left pending, start the worker."""
        self._life.start(self._embedder, self._vector_store)

    def close(self, *, flush: bool = True, timeout: float | None = 60.0) -> None:
        """Flush (unless told not to), stop the worker and close the stores. Idempotent.

        New calls are refused at once; calls in flight get ``CLOSE_GRACE_SECONDS`` to finish,
        then the message store interrupts their statements and closes once none runs. A flush
        that fails leaves the data pending in the message store; the next start re-indexes it,
        so closing never loses an acknowledged message.
        """
        self._life.close(flush, check_timeout(timeout))

    def _running(self) -> Components:
        return self._life.running()

    @property
    def components(self) -> Components:
        """The started parts (also after close, for inspection); ServiceClosedError before start."""
        if self._life.parts is None:
            raise ServiceClosedError("the service is not started")
        return self._life.parts

    @property
    def store(self) -> MessageStoreProtocol:
        """The message store (the durable source of truth)."""
        return self.components.store

    @property
    def recovered_rounds(self) -> int:
        """Rounds found pending at start (acknowledged, not yet stored) and buffered again."""
        return self.components.recovered_rounds

    @property
    def embedder(self) -> Embedder:
        """The embedding model of the running engine (the key-value store embeds items with it)."""
        return self._running().embedder

    @property
    def kv(self) -> KVStore | None:
        """The key-value table (LangGraph store items) once the engine has started, else None."""
        parts = self._life.parts
        return None if parts is None else parts.kv

    @property
    def kv_index(self) -> ItemIndex | None:
        """Item vectors, apart from message vectors (None when the vector store keeps none)."""
        parts = self._life.parts
        return None if parts is None else parts.kv_index

    @property
    def memory(self) -> MemoryService:
        return self.components.memory

    @property
    def worker(self) -> IndexWorker:
        return self.components.worker

    @property
    def write_buffer(self) -> WriteBuffer:
        return self.components.write_buffer

    # -- writes -------------------------------------------------------------------------------

    @counted
    def add(
        self,
        messages: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        continue_round: bool = False,
    ) -> dict[str, Any]:
        """Store one round (a list of messages) durably; return its message ids in input order.

        A message is a dict or model with ``role`` (system|user|assistant|tool), ``content`` and
        optional ``id``, ``name``, ``created_at``, ``metadata``. ``session_id`` None means
        ``"default"``. When this returns, the round is committed to the message store.
        ``continue_round=True`` appends to the session's newest round while it is still in the
        RoundBuffer (a reply joining its question), and starts a new round otherwise.
        """
        if continue_round:
            parts = self._running()
            scope = scope_of(user_id, session_id, agent_id, self.config.limits)
            round_ = validate_round(messages, scope, self.config.limits)
            joined = parts.writes.continue_round(round_)
            if joined is not None:
                ids = [m.id for m in round_.messages]
                data = {"message_ids": ids, "round_ids": [joined.id], "round_id": joined.id, "continued": True}
                return reply(
                    {**data, "session_id": scope.session_id, "user_id": scope.user_id, "agent_id": scope.agent_id}
                )
        result = self.add_batch([messages], session_id, user_id=user_id, agent_id=agent_id)
        result["data"]["round_id"] = result["data"]["round_ids"][0]
        result["data"]["continued"] = False
        return result

    @counted
    def add_batch(
        self,
        message_batch_list: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        round_ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Store several rounds of one session in one transaction (all or nothing); ``round_ids``
        (one per round) keep an import's round grouping."""
        parts = self._running()
        scope = scope_of(user_id, session_id, agent_id, self.config.limits)
        rounds = validate_batch(message_batch_list, scope, self.config.limits, round_ids)
        parts.writes.add(rounds)
        return reply(
            {
                "message_ids": [m.id for r in rounds for m in r.messages],
                "round_ids": [r.id for r in rounds],
                "session_id": scope.session_id,
                "user_id": scope.user_id,
                "agent_id": scope.agent_id,
            }
        )

    @counted
    def flush_all(self, timeout: float | None = None) -> dict[str, Any]:
        """Return once everything added so far is embedded and stored (``timeout`` seconds at most;
        None waits as long as it takes)."""
        parts = self._running()
        return reply(parts.writes.flush(check_timeout(timeout)))

    @counted
    def delete_session(self, session_id: str, *, user_id: str = "default") -> dict[str, Any]:
        """Remove a session from every store, buffer and cache."""
        parts = self._running()
        scope = scope_of(user_id, session_id, None, self.config.limits)
        count = parts.writes.delete_session(scope)
        return reply({"deleted_messages": count, "session_id": scope.session_id, "user_id": scope.user_id})

    @counted
    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Remove every session of a user from every store, buffer and cache."""
        parts = self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        return reply({"deleted_messages": parts.writes.delete_user(user), "user_id": user})

    @counted
    def delete_messages(self, message_ids: list[str], *, user_id: str = "default") -> dict[str, Any]:
        """Remove single messages of a user from every store, buffer and cache (one transaction);
        rounds left with other messages are re-indexed without the deleted ones."""
        parts = self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        ids = validate_message_ids(message_ids, self.config.limits)
        return reply({"deleted_messages": parts.writes.delete_messages(user, ids), "user_id": user})

    @counted
    def update_messages(self, message_ids: list[str], new_messages: Any, *, user_id: str = "default") -> dict[str, Any]:
        """Replace a user's stored messages in place, in one transaction: role, content, name and
        metadata change; ids, times, sessions and rounds stay. Their rounds are re-indexed."""
        parts = self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        updates = validate_updates(message_ids, new_messages, user, self.config.limits)
        parts.writes.update_messages(user, updates)
        ids = [m.id for m in updates]
        return reply({"message_ids": ids, "updated_messages": len(ids), "user_id": user})

    # -- reads --------------------------------------------------------------------------------

    @counted
    def export_messages(
        self, *, user_id: str = "default", session_id: str | None = None, all_users: bool = False
    ) -> dict[str, Any]:
        """A user's stored messages (of one session, if given) in the order added, lossless.

        Every user's messages only when asked for explicitly (``all_users=True``, no ``user_id``).
        """
        parts = self._running()
        if not isinstance(all_users, bool):
            raise InvalidInputError(f"all_users must be a bool, not {type(all_users).__name__}")
        if all_users and user_id != "default":
            raise InvalidInputError("pass either user_id or all_users=True, not both")
        user = None if all_users else check_id(user_id, "user_id", self.config.limits)
        if session_id is not None:
            check_id(session_id, "session_id", self.config.limits)
        messages = [m.to_dict() for m in parts.store.export(user_id=user, session_id=session_id)]
        return reply({"messages": messages, "total": len(messages)})

    @counted
    def list_users(self) -> list[str]:
        """Every user with stored messages, in order of first write."""
        return self._running().store.users()

    @counted
    def list_sessions(self, *, user_id: str = "default") -> dict[str, Any]:
        """A user's sessions, oldest first, with message counts and first/last message times."""
        parts = self._running()
        user = check_id(user_id, "user_id", self.config.limits)
        sessions = [
            {**row, "first_at": iso(row["first_at"]), "last_at": iso(row["last_at"])}
            for row in parts.store.sessions(user)
        ]
        return reply({"sessions": sessions, "total": len(sessions)})

    @counted
    def get_messages_by_session(
        self,
        session_id: str,
        *,
        user_id: str = "default",
        buffer_only: bool | None = None,
        limit: int | None = None,
        order: str = "asc",
    ) -> dict[str, Any]:
        """A session's messages in the order added; ``limit`` keeps the latest ones, ``buffer_only``
        those not yet stored."""
        parts = self._running()
        scope = scope_of(user_id, session_id, None, self.config.limits)
        validate_session_read(limit, order, buffer_only)
        messages = parts.store.session_messages(
            scope.user_id, scope.session_id, pending_only=bool(buffer_only), limit=limit, order=order
        )
        return reply({"messages": [m.to_dict() for m in messages], "total": len(messages)})

    def query(
        self,
        query: str,
        top_k: int = 10,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        agent_id: str | None = None,
        sort_by: str | None = None,
        order: str | None = None,
        metadata_filter: dict[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        min_score: float | None = None,
        reference_time: Any = None,
    ) -> dict[str, Any]:
        """Find the messages of a user most relevant to ``query`` (at most ``query.max_size``).

        Every source is searched: keywords over all acknowledged messages, vectors of every
        buffered and stored chunk; rankings are fused, one result per message, with a score in
        [0, 1] relative to this query's candidates (1: the best by keyword and by meaning);
        ``min_score`` drops the weaker ones. Internal sessions (an adapter's own records, ids starting with ``~``) are
        left out unless named.
        Time words in ``query`` ("last Saturday", "in May 2023", "most recent") are read against
        ``reference_time`` (default now) and softly favour messages of that time; never a filter.
        """
        options = {name: value for name, value in locals().items() if name != "self"}
        return self.run_query(self._request(options))  # every argument is named here: no binding needed

    @counted
    def prepare_query(self, *args: Any, **kwargs: Any) -> QueryRequest:
        """Validate the arguments of :meth:`query` into a request (also the cache key)."""
        try:
            bound = _QUERY.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"query(): {exc}") from exc
        bound.apply_defaults()
        options = dict(bound.arguments)
        del options["self"]
        return self._request(options)

    def _request(self, options: dict[str, Any]) -> QueryRequest:
        """Every argument of :meth:`query`, by name, validated into a request."""
        self._running()
        return validate_query(
            options.pop("query"),
            options.pop("top_k"),
            limits=self.config.limits,
            defaults=self.config.buffer.query,
            **options,
        )

    @counted
    def cached_query(self, request: QueryRequest) -> dict[str, Any] | None:
        """The cached reply of a request, or None; safe on an event loop (no lock held across I/O)."""
        return self._running().queries.cached(request)

    @counted
    def run_query(self, request: QueryRequest, *, use_cache: bool = True) -> dict[str, Any]:
        """Answer a validated request from every source (cache first)."""
        return self._running().queries.answer(request, use_cache=use_cache)

    # -- introspection ------------------------------------------------------------------------

    @counted
    def get_stats(self) -> dict[str, Any]:
        """Counters and health of every component."""
        parts = self._running()
        return engine_stats(self.config, self.state, self.started_at or time.time(), parts, self._buffers)

    def get_write_buffer(self) -> WriteBuffer:
        """The WriteBuffer (exists once started)."""
        return self.components.write_buffer

    def get_round_buffer(self) -> RoundBuffer:
        """The RoundBuffer, for inspection (the WriteBuffer changes it)."""
        return self._buffers.round_buffer

    def get_hybrid_buffer(self) -> HybridBuffer:
        """The HybridBuffer, for inspection (the WriteBuffer changes it)."""
        return self._buffers.hybrid_buffer

    def get_query_buffer(self) -> QueryBuffer:
        """The QueryBuffer (cache and its stats)."""
        return self._buffers.query_buffer


_QUERY = inspect.signature(Engine.query)
