"""Convert LangChain messages to memfuse messages and back, losslessly.

The engine stores a role, a text ``content`` and a JSON ``metadata`` dict. Everything else a
LangChain message carries (its type, ``id``, ``name``, ``tool_calls``, ``tool_call_id``,
``additional_kwargs``, ``response_metadata``, list-of-blocks content, ...) goes into the
metadata under ``lc_type`` / ``lc_data``, so reading a session back rebuilds equal messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from memfuse_memory.adapters import LimitsConfig, check_id
from memfuse_memory.errors import InvalidMessageError

#: LangChain message ``type`` -> memfuse role. ``remove`` (a graph instruction) is not a message.
ROLE_OF_TYPE: dict[str, str] = {
    "human": "user",
    "HumanMessageChunk": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "SystemMessageChunk": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "tool",
    "FunctionMessageChunk": "tool",
    "chat": "user",
    "ChatMessageChunk": "user",
}

#: ``ChatMessage.role`` -> memfuse role; any other role is stored as ``user`` (the type is kept).
_CHAT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant", "system": "system"}

TYPE_KEY = "lc_type"
DATA_KEY = "lc_data"


def to_record(message: Any, limits: LimitsConfig, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One LangChain message as an engine message dict (role, text content, metadata).

    Raises:
        InvalidMessageError: ``message`` is not a LangChain message, or a kind no chat history holds.
    """
    if not isinstance(message, BaseMessage):
        raise InvalidMessageError(
            f"expected a LangChain BaseMessage (HumanMessage, AIMessage, ...), got {type(message).__name__}"
        )
    serialized = message_to_dict(message)
    kind = serialized["type"]
    role = ROLE_OF_TYPE.get(kind)
    if role is None:
        raise InvalidMessageError(
            f"unsupported message type {kind!r} ({type(message).__name__}); supported: {sorted(ROLE_OF_TYPE)}"
        )
    data = dict(serialized["data"])
    data.pop("type", None)
    if kind in ("chat", "ChatMessageChunk"):
        role = _CHAT_ROLES.get(str(data.get("role", "")).lower(), role)
    content = data.get("content")
    text = data.pop("content") if isinstance(content, str) else message.text
    record: dict[str, Any] = {
        "role": role,
        "content": text,
        "metadata": {**(extra or {}), TYPE_KEY: kind, DATA_KEY: data},
    }
    name = data.get("name")
    if isinstance(name, str) and _valid_name(name, limits):
        record["name"] = name
    return record


def _valid_name(name: str, limits: LimitsConfig) -> bool:
    try:
        check_id(name, "name", limits)
    except ValueError:
        return False
    return True


def to_records(messages: Sequence[Any], limits: LimitsConfig) -> list[dict[str, Any]]:
    """A sequence of LangChain messages as one round of engine messages."""
    if isinstance(messages, BaseMessage | str | Mapping) or not isinstance(messages, Sequence):
        raise InvalidMessageError(f"messages must be a sequence of LangChain messages, not {type(messages).__name__}")
    return [to_record(message, limits) for message in messages]


def from_record(row: Mapping[str, Any]) -> BaseMessage:
    """Rebuild the LangChain message of a stored engine message.

    Messages written by LangChain come back equal to what was added; messages written through
    the plain engine API become the natural type of their role, with the engine id and name.
    """
    metadata = row.get("metadata") or {}
    kind = metadata.get(TYPE_KEY)
    data = metadata.get(DATA_KEY)
    if isinstance(kind, str) and isinstance(data, dict):
        payload = dict(data)
        payload.setdefault("content", row["content"])
        return messages_from_dict([{"type": kind, "data": payload}])[0]
    common: dict[str, Any] = {"content": row["content"], "id": row.get("id"), "name": row.get("name")}
    role = row.get("role")
    if role == "assistant":
        return AIMessage(**common)
    if role == "system":
        return SystemMessage(**common)
    if role == "tool":
        return ToolMessage(tool_call_id=str(metadata.get("tool_call_id", "")), **common)
    return HumanMessage(**common)
