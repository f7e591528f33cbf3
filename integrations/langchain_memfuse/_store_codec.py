"""How ``MemFuseStore`` lays LangGraph items out as memfuse messages (pure functions, no I/O).

Every namespace is one session (``lgstore.<label>.<label>``, or ``lgstore@<agent>.<label>...``
for an agent's store; labels are percent-encoded and never hold a period, so the name is
unambiguous); each item is one message of its own round (so it is embedded alone), its text
being the indexed fields of the value, its metadata the key, namespace, value and creation
time: items are memories, found by every recall of their user. One catalog session per store
space lists the namespaces in use; it is internal (``~`` prefix), so no recall ever returns it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from langgraph.store.base import InvalidNamespaceError, Item, MatchCondition, get_text_at_path, tokenize_path

from memfuse_memory.adapters import INTERNAL_PREFIX
from memfuse_memory.errors import InvalidInputError, InvalidScopeError

KIND_KEY = "lgstore"
ITEM = "item"
NAMESPACE = "namespace"
CATALOG_SESSION = INTERNAL_PREFIX + "lgstore#namespaces"  # internal: the store's bookkeeping, never recalled
_MAX_SESSION_CHARS = 200


class NamespaceError(InvalidScopeError, InvalidNamespaceError):
    """A namespace is empty or holds a label LangGraph rejects (both a MemFuse and a LangGraph error)."""


def check_namespace(namespace: Any, *, for_write: bool) -> tuple[str, ...]:
    """Validate a namespace tuple the way LangGraph does; writes need at least one label."""
    if not isinstance(namespace, tuple):
        raise NamespaceError(f"a namespace must be a tuple of strings, got {type(namespace).__name__}")
    if for_write and not namespace:
        raise NamespaceError("a namespace must hold at least one label")
    for label in namespace:
        if not isinstance(label, str) or not label or "." in label or "\x00" in label:
            raise NamespaceError(f"invalid namespace label {label!r} in {namespace}: non-empty, no '.' or NUL")
        try:
            label.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NamespaceError(f"namespace label {label!r} in {namespace} is not valid Unicode") from exc
    if for_write and namespace[0] == "langgraph":
        raise NamespaceError(f'the root label "langgraph" is reserved: {namespace}')
    return namespace


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


def prefix_filter(prefix: tuple[str, ...]) -> dict[str, Any]:
    """Engine metadata filter selecting store items whose namespace starts with ``prefix``."""
    return {KIND_KEY: ITEM, **{f"ns_{depth}": label for depth, label in enumerate(prefix)}}


def matches_condition(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether a namespace matches a prefix/suffix condition (``*`` matches any one label)."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise InvalidInputError(f"match_type must be 'prefix' or 'suffix', got {condition.match_type!r}")
    return all(wanted == "*" or label == wanted for label, wanted in pairs)


def matches_filter(value: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """LangGraph filter semantics: nested equality and ``$eq $ne $gt $gte $lt $lte``."""
    return not wanted or all(_compare(value.get(key), expected) for key, expected in wanted.items())


_OPERATORS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and float(a) > float(b),
    "$gte": lambda a, b: a is not None and float(a) >= float(b),
    "$lt": lambda a, b: a is not None and float(a) < float(b),
    "$lte": lambda a, b: a is not None and float(a) <= float(b),
}


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(isinstance(key, str) and key.startswith("$") for key in expected):
            for operator, operand in expected.items():
                test = _OPERATORS.get(operator)
                if test is None:
                    raise InvalidInputError(f"unsupported filter operator {operator!r}; use one of {list(_OPERATORS)}")
                if not test(actual, operand):
                    return False
            return True
        return isinstance(actual, Mapping) and all(_compare(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(expected)
            and all(_compare(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual == expected
