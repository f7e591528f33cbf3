"""Lossless conversion between LlamaIndex ``ChatMessage`` objects and memfuse-memory message dicts.

The engine knows four roles (system, user, assistant, tool) and plain-text content. Everything
else a ``ChatMessage`` carries goes into the stored message's ``metadata["llama_index"]``:

- ``role``: the original role when it is not one of ours (developer, function, chatbot, model);
- ``blocks``: the content blocks, unless the message is a single text block;
- ``additional_kwargs``: JSON, with pydantic models (``ToolSelection``, provider tool-call
  objects) tagged by class so they come back as the same type.

The stored ``content`` is the message text (tool calls and media rendered as short markers), so
keyword and vector search see what the message says.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from pydantic import BaseModel, ValidationError

from memfuse_memory.errors import InvalidMessageError

METADATA_KEY = "llama_index"
_MODEL_TAG = "__memfuse_model__"
# Only classes from these packages are rebuilt from stored data; anything else stays a dict.
_TRUSTED_MODULES = ("llama_index.", "openai.", "anthropic.")

_TO_ENGINE_ROLE = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "tool",
}


def engine_role(message: ChatMessage) -> str:
    """The memfuse role (system|user|assistant|tool) of a LlamaIndex message."""
    return _TO_ENGINE_ROLE[MessageRole(message.role)]


def _encode(value: Any) -> Any:
    if isinstance(value, BaseModel):
        kind = type(value)
        return {_MODEL_TAG: f"{kind.__module__}:{kind.__qualname__}", "data": value.model_dump(mode="json")}
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _load_class(path: str) -> type[BaseModel] | None:
    module_name, _, qualname = path.partition(":")
    if not module_name.startswith(_TRUSTED_MODULES):
        return None
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return target if isinstance(target, type) and issubclass(target, BaseModel) else None


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_MODEL_TAG, "data"}:
            kind = _load_class(str(value[_MODEL_TAG]))
            if kind is not None:
                try:
                    return kind.model_validate(value["data"])
                except ValidationError:
                    return value["data"]
            return value["data"]
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _render_block(block: Any) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolCallBlock):
        arguments = block.tool_kwargs if isinstance(block.tool_kwargs, str) else json.dumps(block.tool_kwargs)
        return f"[tool call {block.tool_name} {arguments}]"
    return f"[{getattr(block, 'block_type', 'block')}]"


def message_text(message: ChatMessage) -> str:
    """The searchable, countable text of a message: its text blocks, with markers for the rest."""
    return "\n".join(part for part in (_render_block(block) for block in message.blocks) if part)


def _is_plain_text(message: ChatMessage) -> bool:
    return len(message.blocks) == 1 and isinstance(message.blocks[0], TextBlock)


def to_engine_message(message: ChatMessage) -> dict[str, Any]:
    """A memfuse message dict that :func:`from_engine_message` turns back into an equal ChatMessage."""
    if not isinstance(message, ChatMessage):
        raise InvalidMessageError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
    extra: dict[str, Any] = {}
    role = engine_role(message)
    if MessageRole(message.role).value != role:
        extra["role"] = MessageRole(message.role).value
    if not _is_plain_text(message):
        extra["blocks"] = [block.model_dump(mode="json") for block in message.blocks]
    if message.additional_kwargs:
        extra["additional_kwargs"] = _encode(message.additional_kwargs)
    return {
        "role": role,
        "content": message_text(message),
        "metadata": {METADATA_KEY: extra} if extra else {},
    }


def from_engine_message(stored: Mapping[str, Any]) -> ChatMessage:
    """Rebuild the ChatMessage a stored memfuse message came from (any message, ours or not)."""
    metadata = stored.get("metadata") or {}
    extra = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    extra = extra if isinstance(extra, Mapping) else {}
    role = extra.get("role", stored["role"])
    kwargs = _decode(extra.get("additional_kwargs", {}))
    if "blocks" in extra:
        return ChatMessage.model_validate({"role": role, "blocks": extra["blocks"], "additional_kwargs": kwargs})
    return ChatMessage(role=role, content=stored.get("content", ""), additional_kwargs=kwargs)


def split_rounds(messages: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    """Group messages into rounds: each user message starts one, the replies that follow join it."""
    rounds: list[list[ChatMessage]] = []
    for message in messages:
        if not isinstance(message, ChatMessage):
            raise InvalidMessageError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
        if not rounds or engine_role(message) == "user":
            rounds.append([message])
        else:
            rounds[-1].append(message)
    return rounds


def latest_user_text(messages: Iterable[ChatMessage]) -> str | None:
    """The text of the newest user message, or None."""
    for message in reversed(list(messages)):
        if engine_role(message) == "user":
            text = message_text(message).strip()
            if text:
                return text
    return None


def input_text(value: Any) -> str | None:
    """The query text of a ``get(input=...)`` argument: a string or a ChatMessage."""
    if value is None:
        return None
    if isinstance(value, ChatMessage):
        return message_text(value).strip() or None
    if isinstance(value, str):
        return value.strip() or None
    raise InvalidMessageError(f"input must be a string or a ChatMessage, got {type(value).__name__}")
