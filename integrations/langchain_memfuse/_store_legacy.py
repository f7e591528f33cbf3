"""The layout ``MemFuseStore`` used before its key-value table (read by the migration; pure, no I/O).

Every namespace is one session (``lgstore.<label>.<label>``, or ``lgstore@<agent>.<label>...``
for an agent's store; labels are percent-encoded and never hold a period, so the name is
unambiguous); each item is one message of its own round (so it is embedded alone), its text
being the indexed fields of the value, its metadata the key, namespace, value and creation
time. One catalog session per store space lists the namespaces in use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from langgraph.store.base import Item, get_text_at_path, tokenize_path

from memfuse_memory.errors import InvalidInputError

KIND_KEY = "lgstore"
ITEM = "item"
NAMESPACE = "namespace"
CATALOG_SESSION = "lgstore#namespaces"
_MAX_SESSION_CHARS = 200


def catalog_of(agent_id: str | None) -> str:
    """The session listing the namespaces of one store space (one per agent, plus the agent-less one)."""
    return CATALOG_SESSION if agent_id is None else f"{CATALOG_SESSION}@{quote(agent_id, safe='')}"


def session_of(namespace: tuple[str, ...], agent_id: str | None = None) -> str:
    """The session id that holds a namespace's items (readable when short, hashed when long)."""
    space = "lgstore" if agent_id is None else f"lgstore@{quote(agent_id, safe='')}"
    name = space + "." + ".".join(quote(label, safe="") for label in namespace)
    if len(name) <= _MAX_SESSION_CHARS:
        return name
    digest = hashlib.sha256(json.dumps([agent_id, *namespace]).encode("utf-8")).hexdigest()
    return f"lgstore#{digest}"


def index_text(value: Mapping[str, Any], fields: Sequence[str] | None) -> str:
    """The text embedded and keyword-indexed for a value: its strings, or the named fields."""
    if fields is None or list(fields) == ["$"]:
        return "\n".join(_strings(value))
    texts: list[str] = []
    for path in fields:
        texts.extend(_strings(value) if path == "$" else get_text_at_path(value, tokenize_path(path)))
    return "\n".join(texts)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return [] if value is None else [json.dumps(value)]


def item_record(
    namespace: tuple[str, ...],
    key: str,
    value: Mapping[str, Any],
    *,
    index: bool | Sequence[str] | None,
    default_fields: Sequence[str] | None,
    created_at: str,
    updated_at: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """The engine message of one item (``index=False``: stored, but never ranked by a query)."""
    if not isinstance(key, str):
        raise InvalidInputError(f"an item key must be a string, got {type(key).__name__}")
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"an item value must be a dict, got {type(value).__name__}")
    indexed = index is not False
    fields = default_fields if index is None or index is True or index is False else index
    metadata: dict[str, Any] = {
        KIND_KEY: ITEM,
        "namespace": list(namespace),
        "key": key,
        "value": dict(value),
        "created_at": created_at,
        "indexed": indexed,
        **{f"ns_{depth}": label for depth, label in enumerate(namespace)},
    }
    record: dict[str, Any] = {
        "role": "user",
        "content": index_text(value, fields) if indexed else "",
        "metadata": metadata,
    }
    if updated_at is not None:
        record["created_at"] = updated_at
    if message_id is not None:
        record["id"] = message_id
    return record


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as read back from its session: the LangGraph item plus what a rewrite needs."""

    message_id: str
    item: Item
    record: dict[str, Any]
    indexed: bool


def read_item(row: Mapping[str, Any]) -> StoredItem | None:
    """The item of a stored message, or None when the message is not a store item."""
    metadata = row.get("metadata") or {}
    if metadata.get(KIND_KEY) != ITEM:
        return None
    namespace = tuple(metadata["namespace"])
    updated = _parse(row["created_at"])
    item = Item(
        value=metadata["value"],
        key=metadata["key"],
        namespace=namespace,
        created_at=_parse(metadata.get("created_at", row["created_at"])),
        updated_at=updated,
    )
    record = {
        "id": row["id"],
        "role": row["role"],
        "content": row["content"],
        "created_at": row["created_at"],
        "metadata": metadata,
    }
    return StoredItem(row["id"], item, record, bool(metadata.get("indexed", True)))


def namespace_record(namespace: tuple[str, ...]) -> dict[str, Any]:
    """The catalog message that records a namespace in use."""
    return {
        "role": "system",
        "content": "/".join(namespace),
        "metadata": {KIND_KEY: NAMESPACE, "namespace": list(namespace)},
    }


def read_namespace(row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The namespace a catalog message records, or None."""
    metadata = row.get("metadata") or {}
    if metadata.get(KIND_KEY) != NAMESPACE:
        return None
    return tuple(metadata["namespace"])


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
