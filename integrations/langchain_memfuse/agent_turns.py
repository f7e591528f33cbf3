"""What the agent middleware reads from and writes to a thread's messages (pure, no I/O).

The newest turn of a thread (what to record), stable engine ids for LangChain message ids (so a
replay stores nothing twice), the whole-turn trim of a model request, and the memory message
built from recalled results within a token budget.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_memfuse.messages import ROLE_OF_TYPE
from memfuse_memory import recall, window

#: Key of the injected message's ``additional_kwargs`` holding what was recalled (for inspection).
RECALL_KEY = "memfuse_recall"
#: ``id`` of the injected memory message (it lives only in the model request, never in the state).
MEMORY_MESSAGE_ID = "memfuse-memory"

Placement = Literal["message", "system_prompt"]

_ID_NAMESPACE = uuid.UUID("5b0f7c1e-3f6a-4d1e-9a53-6d2f1c7e8a90")


def engine_id(user_id: str, session_id: str, message_id: str) -> str:
    """The engine id of a thread message: stable, so a second record of it is recognised.

    Derived from the owner and the session too, so one LangChain id reused in two threads (or by
    two users) names two stored messages instead of colliding.
    """
    return str(uuid.uuid5(_ID_NAMESPACE, f"{user_id}\x1f{session_id}\x1f{message_id}"))


def turn_start(messages: Sequence[BaseMessage]) -> int:
    """Index where the newest turn starts: its human message(s) (several when sent together)."""
    index = len(messages)
    for position in range(len(messages) - 1, -1, -1):
        if isinstance(messages[position], HumanMessage):
            index = position
            break
    while index > 0 and isinstance(messages[index - 1], HumanMessage):
        index -= 1
    return index


def turn_to_record(messages: Sequence[BaseMessage], *, with_tools: bool) -> list[tuple[int, BaseMessage]]:
    """The newest turn as memory keeps it, with each message's position in the thread: its human
    message(s) and the final AI reply, or with ``with_tools`` every message of the turn."""
    start = turn_start(messages)
    turn = [(start + i, m) for i, m in enumerate(messages[start:]) if not isinstance(m, SystemMessage)]
    if with_tools:
        return turn
    humans = [(i, m) for i, m in turn if isinstance(m, HumanMessage)]
    replies = [(i, m) for i, m in turn if isinstance(m, AIMessage) and not m.tool_calls and m.text.strip()]
    return [*humans, *replies[-1:]]


def message_key(position: int, message: BaseMessage) -> str:
    """What identifies a thread message: its id, else (outside a graph, where ids are assigned)
    its position, type and text, so recording the same state twice still finds it stored."""
    return message.id or f"#{position}:{message.type}:{message.text}"


def latest_human_text(messages: Sequence[BaseMessage]) -> str | None:
    """Text of the newest human message, the recall query; None when there is none (or it is blank)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            text = message.text.strip()
            return text or None
    return None


def message_cost_text(message: BaseMessage) -> str:
    """What a message spends tokens on: its text, plus the arguments of any tool calls."""
    text = message.text
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = [{"name": call["name"], "args": call["args"]} for call in message.tool_calls]
        text = f"{text}\n{json.dumps(calls, ensure_ascii=False, default=str)}"
    return text


@dataclass(frozen=True, slots=True)
class Counted:
    """A request message with the role the turn window splits on and its token count."""

    message: AnyMessage
    role: str
    tokens: int


def trim(messages: Sequence[AnyMessage], budget: int, count: Callable[[str], int]) -> list[AnyMessage]:
    """The newest whole turns within ``budget`` tokens; the newest turn is always kept whole.

    Whole turns keep every tool call with its results, and the kept history starts at a human
    message (or at the thread's first message), never at a tool result.
    """
    entries = [
        Counted(message, ROLE_OF_TYPE.get(message.type, "user"), count(message_cost_text(message)))
        for message in messages
    ]
    kept = window.select_window(window.split_turns(entries), sys.maxsize, budget)
    return [entry.message for entry in kept]


def exclusions(messages: Sequence[BaseMessage], to_engine_id: Callable[[str], str]) -> tuple[set[str], set[str]]:
    """Engine ids and texts of the messages already in the request: recalling them adds nothing."""
    ids = {to_engine_id(m.id) for m in messages if m.id}
    texts = {m.text.strip() for m in messages if m.text.strip()}
    return ids, texts


@dataclass(frozen=True, slots=True)
class Memory:
    """The rendered memories and the engine ids of the messages they quote."""

    text: str
    ids: list[str]
    tokens: int


def pack(
    results: Sequence[Mapping[str, Any]],
    *,
    header: str,
    budget: int,
    top_k: int,
    min_score: float,
    exclude_ids: Collection[str],
    exclude_texts: Collection[str],
    count: Callable[[str], int],
) -> Memory | None:
    """The best recalled results not already in the request, as one text of at most ``budget`` tokens."""
    chosen = recall.choose(
        results, exclude_ids=exclude_ids, exclude_texts=exclude_texts, top_k=top_k, min_score=min_score
    )
    text = recall.render(header, chosen, budget, count)
    if text is None:
        return None
    lines = set(text.splitlines())
    ids = [str(result["id"]) for result in chosen if recall.format_line(result) in lines]
    return Memory(text, ids, count(text))


def memory_metadata(memory: Memory, *, user_id: str, session_id: str | None) -> dict[str, Any]:
    """What travels in the injected message's ``additional_kwargs`` under :data:`RECALL_KEY`."""
    return {"message_ids": memory.ids, "tokens": memory.tokens, "user_id": user_id, "session_id": session_id}


def inject(
    system: SystemMessage | None,
    messages: Sequence[AnyMessage],
    memory: Memory,
    metadata: Mapping[str, Any],
    placement: Placement,
) -> tuple[SystemMessage | None, list[AnyMessage]]:
    """The request's system message and messages with the memories in them, once.

    ``message`` puts one system message before the conversation; ``system_prompt`` appends the
    memories to the system prompt (for models that accept a single system message).
    """
    kwargs = {RECALL_KEY: dict(metadata)}
    if placement == "message":
        note = SystemMessage(content=memory.text, id=MEMORY_MESSAGE_ID, additional_kwargs=kwargs)
        return system, [note, *messages]
    if system is None:
        return SystemMessage(content=memory.text, additional_kwargs=kwargs), list(messages)
    content: str | list[str | dict[str, Any]]
    if isinstance(system.content, str):
        content = f"{system.content}\n\n{memory.text}" if system.content else memory.text
    else:
        content = [*system.content, {"type": "text", "text": memory.text}]
    merged = system.model_copy(update={"content": content, "additional_kwargs": {**system.additional_kwargs, **kwargs}})
    return merged, list(messages)
