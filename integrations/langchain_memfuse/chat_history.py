"""``MemFuseChatMessageHistory``: a LangChain chat history backed by one memfuse session."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from langchain_memfuse._engine import ConfigLike, ServiceLike, connect
from langchain_memfuse.messages import from_record, to_records
from memfuse_memory.errors import InvalidScopeError


class MemFuseChatMessageHistory(BaseChatMessageHistory):
    """The messages of one session of one user, stored durably by the memfuse engine.

    Each ``add_messages`` call is one round through the WriteBuffer (committed to SQLite
    before it returns, embedded in the background); ``messages`` reads the session back in
    order with exact LangChain types and fields. Sync and async methods are both native.

    Example:
        .. code-block:: python

            from langchain_memfuse import MemFuseChatMessageHistory

            history = MemFuseChatMessageHistory("s1", user_id="alice", data_dir="memfuse_data")
            history.add_user_message("I adopted a cat named Miso")
            history.add_ai_message("Congratulations!")
            print(history.messages)

    Args:
        session_id: The conversation to read and write (required).
        user_id: Owner of the session; queries for one user never see another's messages.
        agent_id: Optional agent the new messages are attributed to.
        service: An existing ``BufferService``, ``BlockingBufferService`` or engine to share.
        config: A YAML path, config object or dict, when no ``service`` is given.
        data_dir: Data directory of the shared engine, when no ``service`` is given.
    """

    def __init__(
        self,
        session_id: str,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidScopeError(f"session_id is required: a non-empty string, got {session_id!r}")
        self.session_id = session_id
        self.user_id = user_id
        self.agent_id = agent_id
        self._services = connect(service, config, data_dir)
        self._services.check_scope(user_id=user_id, session_id=session_id, agent_id=agent_id)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the session, oldest first."""
        reply = self._services.sync.get_messages_by_session(self.session_id, user_id=self.user_id)
        return [from_record(row) for row in reply["data"]["messages"]]

    async def aget_messages(self) -> list[BaseMessage]:
        """Every message of the session, oldest first, without blocking the event loop."""
        reply = await self._services.aio.get_messages_by_session(self.session_id, user_id=self.user_id)
        return [from_record(row) for row in reply["data"]["messages"]]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store ``messages`` as one round (all or nothing); an empty sequence is a no-op."""
        records = to_records(messages, self._services.limits)
        if records:
            self._services.sync.add(records, self.session_id, user_id=self.user_id, agent_id=self.agent_id)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store ``messages`` as one round (all or nothing), without blocking the event loop."""
        records = to_records(messages, self._services.limits)
        if records:
            await self._services.aio.add(records, self.session_id, user_id=self.user_id, agent_id=self.agent_id)

    def clear(self) -> None:
        """Delete the session from every store, buffer and cache."""
        self._services.sync.delete_session(self.session_id, user_id=self.user_id)

    async def aclear(self) -> None:
        """Delete the session everywhere, without blocking the event loop."""
        await self._services.aio.delete_session(self.session_id, user_id=self.user_id)

    def __repr__(self) -> str:
        return f"MemFuseChatMessageHistory(session_id={self.session_id!r}, user_id={self.user_id!r})"
