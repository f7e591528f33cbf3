"""MemFuseMemory: a LlamaIndex ``BaseMemory`` for chat engines and agents, backed by memfuse-memory."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms.llm import LLM
from llama_index.core.memory.types import BaseMemory
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError

from llama_index.memory.memfuse import budget
from llama_index.memory.memfuse.connection import ConfigLike, Connection, ServiceLike, open_adapter
from llama_index.memory.memfuse.messages import (
    from_engine_message,
    input_text,
    latest_user_text,
    split_rounds,
    to_engine_message,
)
from memfuse_memory import recall
from memfuse_memory.errors import InvalidInputError, InvalidMessageError

DEFAULT_TOKEN_LIMIT = 3000
# What the I/O-free planning of ``get`` asks its driver to fetch: ("history", limit) or ("query", (text, top_k)).
Fetch = tuple[str, Any]
# Share of a chat model's context window used when ``token_limit`` is derived from ``llm``.
DEFAULT_TOKEN_LIMIT_RATIO = 0.75


class MemFuseMemory(BaseMemory):
    """Conversation memory for LlamaIndex: the recent turns of a session plus relevant recall.

    ``put`` and ``put_messages`` store messages durably in memfuse-memory before they return, so
    nothing acknowledged waits in this object; a user message and the replies that follow it form
    one round (a reply ``put`` alone joins its question's round while that round is still in the
    RoundBuffer). ``get`` returns the newest whole turns of
    the session that fit ``token_limit`` minus ``initial_token_count``, preceded by one system
    message with the memories of this user most relevant to ``input`` (or to the latest user
    message), from earlier rounds or other sessions, leaving out what the recent window holds.

    Example:
        .. code-block:: python

            from llama_index.core.chat_engine import SimpleChatEngine
            from llama_index.memory.memfuse import MemFuseMemory

            memory = MemFuseMemory.from_defaults(session_id="s1", user_id="alice", token_limit=2000)
            engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
            engine.chat("I adopted a cat named Miso")
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    session_id: str = Field(default="default", description="The conversation this memory reads and writes.")
    user_id: str = Field(default="default", description="Owner of the memories; recall never crosses users.")
    agent_id: str | None = Field(default=None, description="Agent that writes the messages (stored with each).")
    token_limit: int = Field(
        default=DEFAULT_TOKEN_LIMIT,
        gt=0,
        description="Most tokens `get` returns, recent turns and recalled memories together (tiktoken).",
    )
    recall_top_k: int = Field(
        default=5, ge=0, le=recall.MAX_QUERY_RESULTS, description="Most memories recalled per `get`; 0 disables recall."
    )
    recall_token_ratio: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Share of the budget older turns leave free for recalled memories (the newest turn may use all).",
    )
    recall_min_score: float = Field(
        default=0.0, description="Recalled results scoring below this (fused score, 0..1) are left out."
    )
    recall_scope: Literal["user", "agent"] = Field(
        default="user",
        description="Recall from every session of the user, or only from messages written with this agent_id.",
    )
    recall_header: str = Field(
        default=recall.DEFAULT_RECALL_HEADER, description="First line of the system message holding the memories."
    )
    data_dir: str | None = Field(
        default=None,
        description="Data directory of the shared engine when no service is given (None: the configured one).",
    )

    _connection: Connection = PrivateAttr()

    def __init__(
        self,
        *,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        **data: Any,
    ) -> None:
        """Build a memory on ``service``, or on the shared engine of ``config`` / ``data_dir``."""
        self._connection = open_adapter(self, super().__init__, service, config, data)

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a field (``memory.session_id = "s2"``) is validated like the constructor."""
        if name in ("user_id", "session_id", "agent_id") and (value is not None or name != "agent_id"):
            self._connection.check_scope(**{"user_id": "default", name: value})
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise InvalidInputError(f"invalid value for MemFuseMemory.{name}: {exc}") from exc

    @classmethod
    def class_name(cls) -> str:
        return "MemFuseMemory"

    @classmethod
    def from_defaults(  # type: ignore[override]
        cls,
        session_id: str = "default",
        user_id: str = "default",
        *,
        agent_id: str | None = None,
        token_limit: int | None = None,
        llm: LLM | None = None,
        chat_history: Sequence[ChatMessage] | None = None,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> MemFuseMemory:
        """Create a memory; ``token_limit`` defaults to 75% of ``llm``'s context window, else 3000.

        ``chat_history``, when not empty, replaces the session's stored history (like LlamaIndex's
        own memories do). ``kwargs`` set the other fields (``recall_top_k``, ``recall_token_ratio``...).
        """
        if token_limit is None:
            token_limit = (
                int(llm.metadata.context_window * DEFAULT_TOKEN_LIMIT_RATIO) if llm is not None else DEFAULT_TOKEN_LIMIT
            )
        memory = cls(
            service=service,
            config=config,
            session_id=session_id,
            user_id=user_id,
            agent_id=agent_id,
            token_limit=token_limit,
            data_dir=None if data_dir is None else str(data_dir),
            **kwargs,
        )
        if chat_history:
            memory.set(list(chat_history))
        return memory

    @classmethod
    def from_config(cls, config: ConfigLike, **kwargs: Any) -> MemFuseMemory:
        """Create a memory on the shared engine of a config (YAML path, dict or MemFuseConfig)."""
        return cls.from_defaults(config=config, **kwargs)

    # -- helpers ------------------------------------------------------------------------------

    @property
    def engine(self) -> ServiceLike:
        """The memfuse engine behind this adapter (wrap it in BufferService for flush_all, stats...)."""
        return self._connection.engine

    @property
    def tokenizer_fn(self) -> Callable[[str], list[int]]:
        """The engine's tokenizer; chat engines use it to count their prefix messages."""
        return self._connection.tokenize

    def _scope(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "agent_id": self.agent_id}

    def _recall_scope(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "agent_id": self.agent_id if self.recall_scope == "agent" else None}

    def _budget(self, initial_token_count: Any) -> int:
        if isinstance(initial_token_count, bool) or not isinstance(initial_token_count, int) or initial_token_count < 0:
            raise InvalidInputError(f"initial_token_count must be a non-negative integer, got {initial_token_count!r}")
        if initial_token_count > self.token_limit:
            raise budget.TokenBudgetError(
                f"initial_token_count {initial_token_count} exceeds token_limit {self.token_limit}"
            )
        return self.token_limit - initial_token_count

    def _older_budget(self, total: int) -> int:
        reserve = int(total * self.recall_token_ratio) if self.recall_top_k else 0
        return total - reserve

    def _read(self, reply: Mapping[str, Any], limit: int, total: int) -> list[budget.Entry] | None:
        stored = reply["data"]["messages"]
        complete = len(stored) < limit
        entries = budget.to_entries(stored, self._connection.count_message, complete=complete)
        return entries if budget.enough(entries, total, complete=complete) else None

    def _window(self, entries: Sequence[budget.Entry], total: int) -> list[budget.Entry]:
        return budget.select_window(budget.split_turns(entries), total, self._older_budget(total))

    def _recall_request(
        self, input: Any, entries: Sequence[budget.Entry], window: Sequence[budget.Entry], total: int
    ) -> tuple[str, int] | None:
        """The query text and result count for recall, or None when recall cannot add anything."""
        left = total - sum(entry.tokens for entry in window)
        if not self.recall_top_k or left <= self._connection.count_message(self.recall_header):
            return None
        text = input_text(input) or latest_user_text(entry.message for entry in entries)
        if text is None:
            return None
        return text, recall.query_size(self.recall_top_k, len(window))

    def _assemble(
        self, window: Sequence[budget.Entry], results: Sequence[Mapping[str, Any]], total: int
    ) -> list[ChatMessage]:
        messages = [entry.message for entry in window]
        if not results:
            return messages
        chosen = recall.choose(
            results,
            exclude_ids={entry.id for entry in window},
            exclude_texts={str(entry.message.content or "").strip() for entry in window},
            top_k=self.recall_top_k,
            min_score=self.recall_min_score,
        )
        left = total - sum(entry.tokens for entry in window)
        text = recall.render(self.recall_header, chosen, left, self._connection.count_message)
        return messages if text is None else [ChatMessage(role="system", content=text), *messages]

    def _rounds(self, messages: Any) -> list[list[dict[str, Any]]]:
        """The rounds to store, every one validated first: a write of several calls (a reply
        joining the round before it, then a batch) writes all of them or nothing."""
        if isinstance(messages, ChatMessage) or not isinstance(messages, Sequence):
            raise InvalidMessageError(f"messages must be a list of ChatMessage, not {type(messages).__name__}")
        rounds = [[to_engine_message(m) for m in round_] for round_ in split_rounds(messages)]
        for round_ in rounds:
            self._connection.check_round(
                round_, user_id=self.user_id, session_id=self.session_id, agent_id=self.agent_id
            )
        return rounds

    # -- sync API -----------------------------------------------------------------------------

    def _plan_get(
        self, input: str | ChatMessage | None, initial_token_count: int
    ) -> Generator[Fetch, Any, list[ChatMessage]]:
        """The logic of :meth:`get` without I/O: it yields what to fetch and receives the replies,
        so the sync and async methods drive one implementation."""
        total = self._budget(initial_token_count)
        limit = budget.FIRST_FETCH
        while True:
            reply = yield ("history", limit)
            entries = self._read(reply, limit, total)
            if entries is not None:
                break
            limit *= 4
        window = self._window(entries, total)
        request = self._recall_request(input, entries, window, total)
        results: list[dict[str, Any]] = []
        if request is not None:
            reply = yield ("query", request)
            results = reply["data"]["results"]
        return self._assemble(window, results, total)

    def _history_args(self, limit: int) -> dict[str, Any]:
        return {"user_id": self.user_id, "limit": limit, "order": "desc"}

    def get(
        self, input: str | ChatMessage | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """The newest whole turns within the token budget, after one system message of recalled memories."""
        plan = self._plan_get(input, initial_token_count)
        reply: Any = None
        try:
            while True:
                kind, arg = plan.send(reply)
                if kind == "history":
                    reply = self._connection.sync.get_messages_by_session(self.session_id, **self._history_args(arg))
                else:
                    reply = self._connection.sync.query(arg[0], arg[1], **self._recall_scope())
        except StopIteration as done:
            return done.value

    def get_all(self) -> list[ChatMessage]:
        """Every stored message of the session, oldest first."""
        reply = self._connection.sync.get_messages_by_session(self.session_id, user_id=self.user_id)
        return [from_engine_message(m) for m in reply["data"]["messages"]]

    def put(self, message: ChatMessage) -> None:
        """Store one message at once (durably); a reply joins the round of the message before it."""
        record = to_engine_message(message)
        self._connection.sync.add([record], self.session_id, **self._scope(), continue_round=_is_reply(record))

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Store messages; each user message and the replies after it form a round (replies at the
        start join the round of the question stored before them)."""
        rounds = self._rounds(messages)
        if rounds and _is_reply(rounds[0][0]):
            self._connection.sync.add(rounds.pop(0), self.session_id, **self._scope(), continue_round=True)
        if rounds:
            self._connection.sync.add_batch(rounds, self.session_id, **self._scope())

    def set(self, messages: list[ChatMessage]) -> None:
        """Replace the session's history with ``messages``."""
        rounds = self._rounds(messages)
        self._connection.sync.delete_session(self.session_id, user_id=self.user_id)
        if rounds:
            self._connection.sync.add_batch(rounds, self.session_id, **self._scope())

    def reset(self) -> None:
        """Delete the session's messages from every store (other sessions' memories stay)."""
        self._connection.sync.delete_session(self.session_id, user_id=self.user_id)

    # -- async API ----------------------------------------------------------------------------

    async def aget(
        self, input: str | ChatMessage | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """Async :meth:`get`; the engine work runs off the event loop."""
        plan = self._plan_get(input, initial_token_count)
        reply: Any = None
        try:
            while True:
                kind, arg = plan.send(reply)
                if kind == "history":
                    reply = await self._connection.aio.get_messages_by_session(
                        self.session_id, **self._history_args(arg)
                    )
                else:
                    reply = await self._connection.aio.query(arg[0], arg[1], **self._recall_scope())
        except StopIteration as done:
            return done.value

    async def aget_all(self) -> list[ChatMessage]:
        """Async :meth:`get_all`."""
        reply = await self._connection.aio.get_messages_by_session(self.session_id, user_id=self.user_id)
        return [from_engine_message(m) for m in reply["data"]["messages"]]

    async def aput(self, message: ChatMessage) -> None:
        """Async :meth:`put`."""
        record = to_engine_message(message)
        await self._connection.aio.add([record], self.session_id, **self._scope(), continue_round=_is_reply(record))

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`put_messages`."""
        rounds = self._rounds(messages)
        if rounds and _is_reply(rounds[0][0]):
            await self._connection.aio.add(rounds.pop(0), self.session_id, **self._scope(), continue_round=True)
        if rounds:
            await self._connection.aio.add_batch(rounds, self.session_id, **self._scope())

    async def aset(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`set`."""
        rounds = self._rounds(messages)
        await self._connection.aio.delete_session(self.session_id, user_id=self.user_id)
        if rounds:
            await self._connection.aio.add_batch(rounds, self.session_id, **self._scope())

    async def areset(self) -> None:
        """Async :meth:`reset`."""
        await self._connection.aio.delete_session(self.session_id, user_id=self.user_id)


def _is_reply(record: Mapping[str, Any]) -> bool:
    """Assistant and tool messages continue the round of the user message they answer."""
    return record["role"] in ("assistant", "tool")
