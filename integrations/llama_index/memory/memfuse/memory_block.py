"""MemFuseMemoryBlock: long-term memory for LlamaIndex's ``Memory.from_defaults(memory_blocks=[...])``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory.memory import BaseMemoryBlock
from pydantic import Field, PrivateAttr

from llama_index.memory.memfuse.connection import ConfigLike, Connection, ServiceLike, open_adapter
from llama_index.memory.memfuse.messages import latest_user_text, message_text, split_rounds, to_engine_message
from memfuse_memory import recall
from memfuse_memory.adapters import DEFAULT_SESSION
from memfuse_memory.errors import InvalidMessageError

# LlamaIndex's Memory tags the messages it flushes to blocks with this additional_kwargs key.
SESSION_KWARG = "session_id"


class MemFuseMemoryBlock(BaseMemoryBlock[str]):
    """A memory block that stores what ``Memory`` flushes from its short-term queue in memfuse-memory
    and recalls the user's most relevant earlier messages for the current conversation.

    Each flushed message is stored under the session that ``Memory`` tags it with, so one block
    can serve many sessions; recall searches every session of ``user_id``.

    Example:
        .. code-block:: python

            from llama_index.core.memory import Memory
            from llama_index.memory.memfuse import MemFuseMemoryBlock

            memory = Memory.from_defaults(
                session_id="s1",
                token_limit=4000,
                memory_blocks=[MemFuseMemoryBlock(user_id="alice", data_dir="memfuse_data")],
            )
    """

    name: str = Field(default="memfuse_memories", description="The name of the block (its tag in <memory>).")
    user_id: str = Field(default="default", description="Owner of the memories; recall never crosses users.")
    agent_id: str | None = Field(default=None, description="Agent stored with each message written by this block.")
    session_id: str | None = Field(
        default=None, description="Session for messages that arrive without one (Memory tags its own)."
    )
    similarity_top_k: int = Field(
        default=5, ge=1, le=recall.MAX_QUERY_RESULTS, description="Most memories returned per retrieval."
    )
    min_score: float = Field(default=0.0, description="Results scoring below this (fused score, 0..1) are left out.")
    recall_scope: Literal["user", "agent"] = Field(
        default="user", description="Recall from every session of the user, or only from this agent's messages."
    )
    data_dir: str | None = Field(
        default=None, description="Data directory of the shared engine when no service is given."
    )

    _connection: Connection = PrivateAttr()

    def __init__(
        self,
        *,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        **data: Any,
    ) -> None:
        """Build a block on ``service``, or on the shared engine of ``config`` / ``data_dir``."""
        self._connection = open_adapter(self, super().__init__, service, config, data)

    @property
    def engine(self) -> ServiceLike:
        """The memfuse engine behind this adapter (wrap it in BufferService for flush_all, stats...)."""
        return self._connection.engine

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """The memories most relevant to the newest user message, one per line ("" when none)."""
        current = list(messages or [])
        text = latest_user_text(current)
        if text is None:
            return ""
        reply = await self._connection.aio.query(
            text,
            recall.query_size(self.similarity_top_k, len(current)),
            user_id=self.user_id,
            agent_id=self.agent_id if self.recall_scope == "agent" else None,
        )
        chosen = recall.choose(
            reply["data"]["results"],
            exclude_texts={message_text(m).strip() for m in current},
            top_k=self.similarity_top_k,
            min_score=self.min_score,
        )
        return "\n".join(recall.format_line(result) for result in chosen)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Store flushed messages durably, per session, a user message and its replies per round;
        every round is validated before the first is written (all of them or nothing)."""
        batches: list[tuple[str, list[list[dict[str, Any]]]]] = []
        for session_id, group in self._by_session(messages):
            rounds = [[to_engine_message(m) for m in round_] for round_ in split_rounds(group)]
            self._connection.check_scope(user_id=self.user_id, session_id=session_id)
            for round_ in rounds:
                self._connection.check_round(
                    round_, user_id=self.user_id, session_id=session_id, agent_id=self.agent_id
                )
            batches.append((session_id, rounds))
        for session_id, rounds in batches:
            await self._connection.aio.add_batch(rounds, session_id, user_id=self.user_id, agent_id=self.agent_id)

    def _by_session(self, messages: Sequence[ChatMessage]) -> list[tuple[str, list[ChatMessage]]]:
        groups: list[tuple[str, list[ChatMessage]]] = []
        for message in messages:
            if not isinstance(message, ChatMessage):
                raise InvalidMessageError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
            kwargs = dict(message.additional_kwargs)
            tagged = kwargs.pop(SESSION_KWARG, None)
            session = tagged if isinstance(tagged, str) and tagged else (self.session_id or DEFAULT_SESSION)
            clean = message.model_copy(update={"additional_kwargs": kwargs})
            if groups and groups[-1][0] == session:
                groups[-1][1].append(clean)
            else:
                groups.append((session, [clean]))
        return groups

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the least relevant memories (the last lines) until ``tokens_to_truncate`` are saved."""
        lines = content.splitlines()
        saved = 0
        while lines and saved < tokens_to_truncate:
            saved += self._connection.count_text(lines.pop()) + 1
        return "\n".join(lines) or None
