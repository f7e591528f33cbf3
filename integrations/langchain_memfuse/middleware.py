"""``MemFuseMemoryMiddleware``: long-term memory for LangChain 1.x agents built with ``create_agent``.

Before each model call it recalls the user's memories for the newest human message and gives
them to the model as one system message within a token budget; after the agent finishes a turn
it stores the turn as one round, durably. The sync hooks use the blocking facade and the async
hooks the async one; both drive the same step generators, so there is one implementation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from langchain.agents.middleware.types import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import BaseMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langchain_memfuse import agent_turns
from langchain_memfuse._engine import ConfigLike, Connection, ServiceLike, connect
from langchain_memfuse.messages import to_record
from memfuse_memory import recall
from memfuse_memory.adapters import check_id
from memfuse_memory.errors import DuplicateMessageError, InvalidInputError, InvalidScopeError
from memfuse_memory.validation import validate_query

TimeBound = Any  # datetime, ISO-8601 text or epoch seconds, as the engine's query accepts
# The engine's session when none is named (what ``add`` uses for session_id=None).
FALLBACK_SESSION = "default"
# One engine call: (facade method name, keyword arguments); the reply (or the error) is sent back.
Step = tuple[str, dict[str, Any]]


class MemoryMiddlewareSettings(BaseModel):
    """What the middleware recalls, how it shows it to the model, and what it records."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    user_id: str | None = Field(None, description="Owner of the memories, unless the runtime context names one.")
    context_user_key: str | None = Field(
        "user_id", description="Attribute or key of the agent's runtime context holding the user id (None: ignore)."
    )
    session_id: str | None = Field(
        None, description="Session when the run config has no thread_id (or always, when use_thread_id is False)."
    )
    use_thread_id: bool = Field(True, description="The checkpointer's thread_id is the session.")
    agent_id: str | None = Field(None, description="Agent the recorded messages are attributed to.")
    recall_scope: Literal["user", "session"] = Field(
        "user", description="Recall from all of the user's sessions, or from this session only."
    )
    top_k: int = Field(5, ge=0, le=recall.MAX_QUERY_RESULTS, description="Most memories per model call; 0: none.")
    token_budget: int = Field(600, gt=0, description="Most tokens the memory message may take (engine tokenizer).")
    min_score: float = Field(0.0, description="Recalled results scoring below this (fused score, 0..1) are left out.")
    since: TimeBound = Field(None, description="Only memories created at or after this time.")
    until: TimeBound = Field(None, description="Only memories created at or before this time.")
    metadata_filter: dict[str, Any] | None = Field(None, description="Equality on top-level message metadata keys.")
    placement: agent_turns.Placement = Field(
        "message", description="One system message before the conversation, or appended to the system prompt."
    )
    header: str = Field(recall.DEFAULT_RECALL_HEADER, min_length=1, description="First line of the memory text.")
    record: bool = Field(True, description="Store each finished turn (human message and final reply).")
    record_tool_messages: bool = Field(False, description="Store the turn's tool calls and tool results too.")
    history_token_budget: int | None = Field(
        None, gt=0, description="Trim older whole turns of the thread from the model request beyond this many tokens."
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose memory a run reads and writes."""

    user_id: str
    session_id: str


class MemFuseMemoryMiddleware(AgentMiddleware):
    """Give a ``create_agent`` agent memory across threads: recall before each model call, record each turn.

    The session is the checkpointer's ``thread_id`` (else ``session_id``); the user is the runtime
    context's ``user_id`` (else ``user_id``). Memories never cross users. The injected message
    carries the recalled message ids in ``additional_kwargs["memfuse_recall"]``; it lives only in
    the model request, so the thread's state never holds it and it is never injected twice.
    A replayed or retried turn stores nothing twice: message ids are derived from LangChain's.

    Example:
        .. code-block:: python

            from langchain.agents import create_agent
            from langgraph.checkpoint.memory import InMemorySaver
            from langchain_memfuse import MemFuseMemoryMiddleware

            memory = MemFuseMemoryMiddleware(user_id="alice", data_dir="memfuse_data", token_budget=400)
            agent = create_agent(model, tools=[], middleware=[memory], checkpointer=InMemorySaver())
            agent.invoke({"messages": [("user", "my cat is Miso")]}, {"configurable": {"thread_id": "t1"}})
    """

    def __init__(
        self,
        *,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
        **settings: Any,
    ) -> None:
        """Build the middleware on ``service``, or on the shared engine of ``config``/``data_dir``.

        Raises:
            InvalidInputError: an unknown or invalid setting (a ``MemFuseError``).
            InvalidScopeError: a malformed id, or no user at all (neither ``user_id`` nor ``context_user_key``).
            InvalidQueryError: a malformed time range or metadata filter.
            ConfigError: both ``service`` and ``config``/``data_dir``, or a bad config.
        """
        super().__init__()
        try:
            self.settings = MemoryMiddlewareSettings(**settings)
        except ValidationError as exc:
            raise InvalidInputError(f"invalid MemFuseMemoryMiddleware settings: {exc}") from exc
        if self.settings.user_id is None and self.settings.context_user_key is None:
            raise InvalidScopeError("no user: give user_id=, or context_user_key= to read it from the runtime context")
        self._services: Connection = connect(service, config, data_dir)
        self._check_settings()

    def _check_settings(self) -> None:
        settings = self.settings
        limits = self._services.engine.config.limits
        validate_query(
            "probe",
            max(settings.top_k, 1),
            user_id=FALLBACK_SESSION if settings.user_id is None else settings.user_id,
            session_id=settings.session_id,
            agent_id=settings.agent_id,
            sort_by="score",
            order="desc",
            metadata_filter=settings.metadata_filter,
            since=settings.since,
            until=settings.until,
            limits=limits,
        )

    # -- scope --------------------------------------------------------------------------------

    def _count(self, text: str) -> int:
        """Tokens of one chat message with this text, by the RoundBuffer's tokenizer."""
        return self._services.engine.counter.count_messages([text])

    def _scope(self, runtime: Runtime[Any] | None) -> Scope:
        limits = self._services.engine.config.limits
        from_context = self._context_user(runtime)
        user = self.settings.user_id if from_context is None else from_context
        if user is None:
            raise InvalidScopeError(
                f"no user for this run: the runtime context has no {self.settings.context_user_key!r} "
                "and no user_id= was given"
            )
        check_id(user, "user_id", limits)
        thread = _thread_id(runtime) if self.settings.use_thread_id else None
        session = thread or self.settings.session_id or FALLBACK_SESSION
        check_id(session, "session_id (the run's thread_id)" if thread else "session_id", limits)
        return Scope(user, session)

    def _context_user(self, runtime: Runtime[Any] | None) -> Any:
        """The user the run's context names (a dict key or an attribute), or None; checked by the caller."""
        key = self.settings.context_user_key
        context = getattr(runtime, "context", None)
        if key is None or context is None:
            return None
        return context.get(key) if isinstance(context, Mapping) else getattr(context, key, None)

    # -- the steps, without I/O ----------------------------------------------------------------

    def _model_steps(self, request: ModelRequest[Any]) -> Generator[Step, Any, ModelRequest[Any]]:
        """Trim the request, recall for its newest human message, and inject the memories."""
        settings = self.settings
        messages = list(request.messages)
        if settings.history_token_budget is not None:
            messages = agent_turns.trim(messages, settings.history_token_budget, self._count)
        query = agent_turns.latest_human_text(messages)
        if not settings.top_k or query is None:
            return request.override(messages=messages)
        scope = self._scope(request.runtime)
        exclude_ids, exclude_texts = agent_turns.exclusions(
            messages, partial(agent_turns.engine_id, scope.user_id, scope.session_id)
        )
        reply = yield (
            "query",
            {
                "query": query,
                "top_k": recall.query_size(settings.top_k, len(messages)),
                "user_id": scope.user_id,
                "session_id": scope.session_id if settings.recall_scope == "session" else None,
                "metadata_filter": settings.metadata_filter,
                "since": settings.since,
                "until": settings.until,
            },
        )
        memory = agent_turns.pack(
            reply["data"]["results"],
            header=settings.header,
            budget=settings.token_budget,
            top_k=settings.top_k,
            min_score=settings.min_score,
            exclude_ids=exclude_ids,
            exclude_texts=exclude_texts,
            count=self._count,
        )
        if memory is None:
            return request.override(messages=messages)
        session = scope.session_id if settings.recall_scope == "session" else None
        metadata = agent_turns.memory_metadata(memory, user_id=scope.user_id, session_id=session)
        system, messages = agent_turns.inject(request.system_message, messages, memory, metadata, settings.placement)
        return request.override(system_message=system, messages=messages)

    def _record_steps(self, state: AgentState[Any], runtime: Runtime[Any]) -> Generator[Step, Any, None]:
        """Store what the newest turn added as one round, skipping messages already stored."""
        if not self.settings.record:
            return
        turn = agent_turns.turn_to_record(state["messages"], with_tools=self.settings.record_tool_messages)
        if not turn:
            return
        scope = self._scope(runtime)
        records = self._records(turn, scope)
        read: dict[str, Any] = {"session_id": scope.session_id, "user_id": scope.user_id}
        # a stored turn is among the session's newest messages; an older one is found by the full read
        for limit in (2 * len(records), None):
            reply = yield ("get_messages_by_session", {**read, "limit": limit, "order": "desc"})
            stored = {message["id"] for message in reply["data"]["messages"]}
            missing = [record for record in records if record["id"] not in stored]
            if not missing:
                return
            added = yield (
                "add",
                {
                    "messages": missing,
                    "session_id": scope.session_id,
                    "user_id": scope.user_id,
                    "agent_id": self.settings.agent_id,
                },
            )
            if not isinstance(added, DuplicateMessageError):
                return
        raise added

    def _records(self, turn: list[tuple[int, BaseMessage]], scope: Scope) -> list[dict[str, Any]]:
        limits = self._services.engine.config.limits
        records = []
        for position, message in turn:
            record = to_record(message, limits)
            key = agent_turns.message_key(position, message)
            record["id"] = agent_turns.engine_id(scope.user_id, scope.session_id, key)
            records.append(record)
        return records

    # -- drivers: the same steps on the blocking and on the async facade ----------------------------

    def _run(self, steps: Generator[Step, Any, Any]) -> Any:
        reply: Any = None
        try:
            while True:
                method, arguments = steps.send(reply)
                try:
                    reply = getattr(self._services.sync, method)(**arguments)
                except DuplicateMessageError as exc:
                    reply = exc
        except StopIteration as done:
            return done.value

    async def _arun(self, steps: Generator[Step, Any, Any]) -> Any:
        reply: Any = None
        try:
            while True:
                method, arguments = steps.send(reply)
                try:
                    reply = await getattr(self._services.aio, method)(**arguments)
                except DuplicateMessageError as exc:
                    reply = exc
        except StopIteration as done:
            return done.value

    # -- hooks --------------------------------------------------------------------------------

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ModelResponse[Any]:
        """Call the model with the request trimmed and the recalled memories in it."""
        return handler(self._run(self._model_steps(request)))

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ModelResponse[Any]:
        """Async twin of :meth:`wrap_model_call` (the recall query runs off the event loop)."""
        return await handler(await self._arun(self._model_steps(request)))

    def after_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Record the finished turn durably (the engine's add commits before it returns)."""
        self._run(self._record_steps(state, runtime))
        return None

    async def aafter_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Async twin of :meth:`after_agent`."""
        await self._arun(self._record_steps(state, runtime))
        return None


def _thread_id(runtime: Runtime[Any] | None) -> str | None:
    """The checkpointer's thread_id of the current run, if it has one."""
    info = getattr(runtime, "execution_info", None)
    thread = getattr(info, "thread_id", None)
    if thread is None:
        try:
            thread = get_config().get("configurable", {}).get("thread_id")
        except RuntimeError:
            return None
    return None if thread is None else str(thread)
