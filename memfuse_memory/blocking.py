"""BlockingBufferService: the same operations as BufferService for synchronous callers.

It calls the shared engine directly on the caller's thread, so it works anywhere, including
inside a running event loop (a notebook cell) where ``asyncio.run`` would fail.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from memfuse_memory.config import MemFuseConfig, load_config
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.engine import Engine
from memfuse_memory.storage.vector_store import VectorStore


class BlockingBufferService:
    """Blocking twin of :class:`~memfuse_memory.service.BufferService` (one engine, two APIs)."""

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
    ) -> BlockingBufferService:
        """Build and start a service (see ``BufferService.from_config``)."""
        engine = Engine(
            load_config(config, data_dir=data_dir, **overrides), embedder=embedder, vector_store=vector_store
        )
        engine.start()
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def config(self) -> MemFuseConfig:
        return self._engine.config

    def start(self) -> BlockingBufferService:
        self._engine.start()
        return self

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> BlockingBufferService:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def add(
        self,
        messages: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        continue_round: bool = False,
    ) -> dict[str, Any]:
        return self._engine.add(messages, session_id, user_id=user_id, agent_id=agent_id, continue_round=continue_round)

    def add_batch(
        self,
        message_batch_list: Any,
        session_id: str | None = None,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        round_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        return self._engine.add_batch(
            message_batch_list, session_id, user_id=user_id, agent_id=agent_id, round_ids=round_ids
        )

    def query(self, query: str, top_k: int = 10, **kwargs: Any) -> dict[str, Any]:
        return self._engine.query(query, top_k, **kwargs)

    def get_messages_by_session(self, session_id: str, **kwargs: Any) -> dict[str, Any]:
        return self._engine.get_messages_by_session(session_id, **kwargs)

    def delete_session(self, session_id: str, *, user_id: str = "default") -> dict[str, Any]:
        return self._engine.delete_session(session_id, user_id=user_id)

    def delete_user(self, user_id: str) -> dict[str, Any]:
        return self._engine.delete_user(user_id)

    def delete_messages(self, message_ids: list[str], *, user_id: str = "default") -> dict[str, Any]:
        return self._engine.delete_messages(message_ids, user_id=user_id)

    def update_messages(self, message_ids: list[str], new_messages: Any, *, user_id: str = "default") -> dict[str, Any]:
        return self._engine.update_messages(message_ids, new_messages, user_id=user_id)

    def export_messages(self, *, user_id: str | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        return self._engine.export_messages(user_id=user_id, session_id=session_id)

    def list_users(self) -> list[str]:
        return self._engine.list_users()

    def list_sessions(self, *, user_id: str = "default") -> dict[str, Any]:
        return self._engine.list_sessions(user_id=user_id)

    def flush_all(self, timeout: float | None = None) -> dict[str, Any]:
        return self._engine.flush_all(timeout)

    def get_stats(self) -> dict[str, Any]:
        return self._engine.get_stats()
