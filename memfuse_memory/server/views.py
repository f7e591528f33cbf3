"""Engine replies reshaped into what the MemFuse SDK reads (message items, query result items)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KNOWLEDGE_SESSION = "_knowledge"
"""Engine session holding a user's knowledge items: never a gateway session (those ids are uuid4),
so knowledge stays out of every chat history but is searched by the user-level query."""


def message_item(message: Mapping[str, Any], updated: Mapping[str, str]) -> dict[str, Any]:
    """A stored message as the SDK lists it: ``{id, session_id, role, content, created_at, updated_at, metadata}``."""
    return {
        "id": message["id"],
        "session_id": message["session_id"],
        "role": message["role"],
        "content": message["content"],
        "name": message.get("name"),
        "created_at": message["created_at"],
        "updated_at": updated.get(message["id"], message["created_at"]),
        "metadata": message.get("metadata") or {},
        "round_id": message.get("round_id"),
    }


def knowledge_item(message: Mapping[str, Any], updated: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": message["id"],
        "content": message["content"],
        "created_at": message["created_at"],
        "updated_at": updated.get(message["id"], message["created_at"]),
    }


def result_item(
    hit: Mapping[str, Any], *, session_names: Mapping[str, str], asked_session: str | None
) -> dict[str, Any]:
    """A query hit in upstream's shape; ``metadata`` is never null and ``metadata.scope`` is set when the
    request named a session (``in_session`` for its hits, ``cross_session`` for the rest)."""
    session_id = hit.get("session_id")
    is_knowledge = session_id == KNOWLEDGE_SESSION
    scope = None
    if asked_session is not None:
        scope = "in_session" if session_id == asked_session else "cross_session"
    retrieval = hit.get("retrieval") or {}
    return {
        "id": hit["id"],
        "content": hit["content"],
        "score": hit.get("score"),
        "type": "knowledge" if is_knowledge else "message",
        "role": hit.get("role"),
        "created_at": hit.get("created_at"),
        "updated_at": hit.get("updated_at") or hit.get("created_at"),
        "metadata": {
            "user_id": hit.get("user_id"),
            "agent_id": hit.get("agent_id"),
            "session_id": None if is_knowledge else session_id,
            "session_name": None if is_knowledge else session_names.get(str(session_id)),
            "scope": scope,
            "level": 0,
            "retrieval": {
                "source": hit.get("source"),
                "similarity": retrieval.get("vector_similarity"),
                "methods": retrieval.get("methods", []),
            },
            "message": hit.get("metadata") or {},
        },
    }


def merge_hits(
    groups: Sequence[Sequence[dict[str, Any]]], top_k: int, sort_by: str, order: str
) -> list[dict[str, Any]]:
    """Join hits of several engine queries: one per id, sorted like the engine sorts, cut to ``top_k``."""
    seen: dict[str, dict[str, Any]] = {}
    for group in groups:
        for hit in group:
            seen.setdefault(hit["id"], hit)
    key = "score" if sort_by == "score" else "created_at"
    hits = sorted(seen.values(), key=lambda h: h[key], reverse=order == "desc")
    return hits[:top_k]
