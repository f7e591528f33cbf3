"""Pure helpers of ``MemFuseStore``: namespace checks, indexed field texts, rows to LangGraph items."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from langgraph.store.base import (
    InvalidNamespaceError,
    Item,
    MatchCondition,
    SearchItem,
    get_text_at_path,
    tokenize_path,
)

from memfuse_memory.errors import InvalidInputError, InvalidQueryError, InvalidScopeError
from memfuse_memory.models import from_micros
from memfuse_memory.storage.kv_query import encode_namespace
from memfuse_memory.storage.kv_store import KVRow, KVWrite
from memfuse_memory.storage.kv_vectors import ItemVector, vector_ids


class NamespaceError(InvalidScopeError, InvalidNamespaceError):
    """A namespace is empty or holds a label LangGraph rejects (both a MemFuse and a LangGraph error)."""


def check_namespace(namespace: Any, *, for_write: bool) -> tuple[str, ...]:
    """Validate a namespace (tuple or list of labels) as LangGraph's stores do; writes need a label.

    The reserved root ``"langgraph"`` is refused by ``BaseStore.put`` itself, not here: LangGraph
    writes there through ``batch``.
    """
    if not isinstance(namespace, tuple | list):
        raise NamespaceError(f"a namespace must be a tuple of strings, got {type(namespace).__name__}")
    namespace = tuple(namespace)
    if for_write and not namespace:
        raise NamespaceError("a namespace must hold at least one label")
    for label in namespace:
        if not isinstance(label, str) or not label or "." in label or "\x00" in label:
            raise NamespaceError(f"invalid namespace label {label!r} in {namespace}: non-empty, no '.' or NUL")
        try:
            label.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NamespaceError(f"namespace label {label!r} in {namespace} is not valid Unicode") from exc
    return namespace


def check_page(limit: Any, offset: Any) -> None:
    """Reject a limit or offset that is not a non-negative integer."""
    for name, number in (("limit", limit), ("offset", offset)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidQueryError(f"{name} must be a non-negative integer, got {number!r}")


def check_key(key: Any) -> str:
    """Reject a key that is not a string of valid Unicode."""
    if not isinstance(key, str):
        raise InvalidInputError(f"an item key must be a string, got {type(key).__name__}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"item key {key!r} is not valid Unicode") from exc
    return key


def check_value(value: Any) -> None:
    """Reject a value that is not a dict."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"an item value must be a dict, got {type(value).__name__}")


def field_texts(value: Mapping[str, Any], fields: Sequence[str]) -> list[str]:
    """The texts embedded for a value, one per indexed field match (LangGraph's path syntax;
    ``$`` is the whole value as JSON)."""
    texts: list[str] = []
    for path in fields:
        if not isinstance(path, str) or not path:
            raise InvalidInputError(f"an index field must be a non-empty path string, got {path!r}")
        try:
            texts.extend(get_text_at_path(value, path if path == "$" else tokenize_path(path)))
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise InvalidInputError(f"cannot read index field {path!r} of the value: {exc}") from exc
    return [text for text in texts if text]


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


def fixed_prefix(conditions: Sequence[MatchCondition]) -> tuple[str, ...]:
    """The labels every listed namespace must start with (a prefix condition up to its first ``*``)."""
    best: tuple[str, ...] = ()
    for condition in conditions:
        if condition.match_type != "prefix":
            continue
        labels: list[str] = []
        for label in condition.path:
            if label == "*":
                break
            labels.append(label)
        if len(labels) > len(best):
            best = tuple(labels)
    return best


def to_item(row: KVRow) -> Item:
    """The LangGraph item of a stored row."""
    return Item(
        value=json.loads(row.value),
        key=row.key,
        namespace=row.namespace,
        created_at=from_micros(row.created_us),
        updated_at=from_micros(row.updated_us),
    )


def to_search_item(row: KVRow, score: float | None) -> SearchItem:
    """The LangGraph search result of a stored row."""
    return SearchItem(
        namespace=row.namespace,
        key=row.key,
        value=json.loads(row.value),
        created_at=from_micros(row.created_us),
        updated_at=from_micros(row.updated_us),
        score=score,
    )


def plan_vector_writes(
    prepared: Sequence[tuple[KVWrite, list[str]]],
    vectors: np.ndarray,
    replaced: Mapping[tuple[str, str, str, str], int],
    stamp: int,
) -> dict[str, tuple[list[ItemVector], list[str]]]:
    """Per user: the new field vectors of the written items, and the ids of replaced vectors beyond them."""
    per_user: dict[str, tuple[list[ItemVector], list[str]]] = {}
    position = 0
    for write, item_texts in prepared:
        fresh, stale = per_user.setdefault(write.user_id, ([], []))
        for field in range(len(item_texts)):
            fresh.append(ItemVector(write.agent_id, write.namespace, write.key, field, stamp, vectors[position]))
            position += 1
        address = (write.user_id, write.agent_id, encode_namespace(write.namespace), write.key)
        old = replaced.get(address, 0)
        if old > len(item_texts):
            stale.extend(vector_ids(write.agent_id, write.namespace, write.key, len(item_texts), old))
    return per_user
