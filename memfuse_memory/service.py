"""BufferService: the async API of the seed, over the shared :class:`~memfuse_memory.engine.Engine`.

Blocking work (SQLite commits, the query embedding, Chroma) runs in worker threads, never on
the event loop; a cached query is answered on the loop without a thread hop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import MemFuseConfig, load_config
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.engine import Engine
from memfuse_memory.errors import ServiceClosedError
from memfuse_memory.storage.vector_store import VectorStore

if TYPE_CHECKING:
    from memfuse_memory.blocking import BlockingBufferService


class BufferService:
    """Conversation memory: write rounds, query them back, from asyncio code.

    Example:
        .. code-block:: python

            async with BufferService.from_config(data_dir="memfuse_data") as memory:
                await memory.add([{"role": "user", "content": "I adopted a cat named Miso"},
                                  {"role": "assistant", "content": "Congratulations!"}],
                                 session_id="s1", user_id="alice")
                hits = await memory.query("what is my cat called?", user_id="alice")
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def from_config(
        cls,
        config: str | Path | MemFuseConfig | dict[str, Any] | None = None,
        *,
        data_dir: str | Path | None = None,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        **overrides: Any,
    ) -> BufferService:
        """Build a service from a YAML path, a config object, a dict or the defaults (not started yet).

        ``overrides`` are merged over the config as nested dicts or ``section__key`` names;
        ``embedder`` and ``vector_store`` replace the configured ones (tests, custom backends).
        """
        engine = Engine(
            load_config(config, data_dir=data_dir, **overrides), embedder=embedder, vector_store=vector_store
        )
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def config(self) -> MemFuseConfig:
        return self._engine.config

    def blocking(self) -> BlockingBufferService:
        """A blocking facade over this same engine (shares buffers, stores and cache)."""
        from memfuse_memory.blocking import BlockingBufferService

        return BlockingBufferService(self._engine)

    async def start(self) -> BufferService:
        """Open the stores, load the model and start the background worker."""
        await asyncio.to_thread(self._engine.start)
        return self

    async def close(self) -> None:
        """Flush everything, stop the worker, close the stores. Idempotent."""
        await asyncio.to_thread(self._engine.close)

    async def __aenter__(self) -> BufferService:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def add(
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
        return await asyncio.to_thread(
            self._engine.add, messages, session_id, user_id=user_id, agent_id=agent_id, continue_round=continue_round
        )

    async def add_batch(
        self,
        message_batch_list: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        round_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Store several rounds of one session in one transaction (all or nothing); ``round_ids`` keep
        an import's round grouping."""
        return await asyncio.to_thread(
            self._engine.add_batch,
            message_batch_list,
            session_id,
            user_id=user_id,
            agent_id=agent_id,
            round_ids=round_ids,
        )

    async def query(
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
    ) -> dict[str, Any]:
        """Find the messages of a user most relevant to ``query`` (at most ``query.max_size``).

        Every source is searched: keywords over all acknowledged messages, vectors of the
        HybridBuffer and of storage; rankings are fused, one result per message.
        """
        request = self._engine.prepare_query(
            query,
            top_k,
            user_id=user_id,
            session_id=session_id,
            agent_id=agent_id,
            sort_by=sort_by,
            order=order,
            metadata_filter=metadata_filter,
            since=since,
            until=until,
        )
        cached = self._engine.cached_query(request)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self._engine.run_query, request, use_cache=False)

    async def get_messages_by_session(
        self,
        session_id: str,
        *,
        user_id: str = "default",
        buffer_only: bool | None = None,
        limit: int | None = None,
        order: str = "asc",
    ) -> dict[str, Any]:
        """A session's messages in the order added; ``buffer_only`` keeps those not yet stored."""
        return await asyncio.to_thread(
            self._engine.get_messages_by_session,
            session_id,
            user_id=user_id,
            buffer_only=buffer_only,
            limit=limit,
            order=order,
        )

    async def delete_session(self, session_id: str, *, user_id: str = "default") -> dict[str, Any]:
        """Remove a session from every store, buffer and cache."""
        return await asyncio.to_thread(self._engine.delete_session, session_id, user_id=user_id)

    async def delete_user(self, user_id: str) -> dict[str, Any]:
        """Remove every session of a user from every store, buffer and cache."""
        return await asyncio.to_thread(self._engine.delete_user, user_id)

    async def delete_messages(self, message_ids: list[str], *, user_id: str = "default") -> dict[str, Any]:
        """Remove single messages of a user from every store, buffer and cache (one transaction)."""
        return await asyncio.to_thread(self._engine.delete_messages, message_ids, user_id=user_id)

    async def update_messages(
        self, message_ids: list[str], new_messages: Any, *, user_id: str = "default"
    ) -> dict[str, Any]:
        """Replace a user's stored messages in place (one transaction; ids, times and rounds stay)."""
        return await asyncio.to_thread(self._engine.update_messages, message_ids, new_messages, user_id=user_id)

    async def export_messages(
        self, *, user_id: str | None = None, session_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every stored message (of a user, of a session) in the order added, lossless."""
        return await asyncio.to_thread(self._engine.export_messages, user_id=user_id, session_id=session_id)

    async def list_users(self) -> list[str]:
        """Every user with stored messages."""
        return await asyncio.to_thread(self._engine.list_users)

    async def list_sessions(self, *, user_id: str = "default") -> dict[str, Any]:
        """A user's sessions, oldest first, with message counts and first/last message times."""
        return await asyncio.to_thread(self._engine.list_sessions, user_id=user_id)

    async def flush_all(self, timeout: float | None = None) -> dict[str, Any]:
        """Return once everything added so far is embedded and stored."""
        return await asyncio.to_thread(self._engine.flush_all, timeout)

    def get_stats(self) -> dict[str, Any]:
        """Counters and health of every component."""
        return self._engine.get_stats()

    def _component(self, value: Any) -> Any:
        if value is None:
            raise ServiceClosedError("the service is not started")
        return value

    def get_write_buffer(self) -> WriteBuffer:
        return self._component(self._engine.write_buffer)

    def get_round_buffer(self) -> RoundBuffer:
        return self._engine.round_buffer

    def get_hybrid_buffer(self) -> HybridBuffer:
        return self._engine.hybrid_buffer

    def get_query_buffer(self) -> QueryBuffer:
        return self._engine.query_buffer
