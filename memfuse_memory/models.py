"""Data models: validated messages and rounds, the scope they live in, chunks and query hits
(checking what callers pass is :mod:`memfuse_memory.validation`).

Timestamps are timezone-aware UTC datetimes everywhere inside; the store keeps them as integer
microseconds so sorting is exact, and replies render them as ISO 8601 strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from memfuse_memory.scope import IdKey, Scope, ScopeFilter

__all__ = ["Chunk", "Hit", "IdKey", "MessageFacts", "QueryRequest", "Round", "Scope", "ScopeFilter", "StoredMessage"]

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


def new_id() -> str:
    """A fresh random id (32 hex characters)."""
    return uuid.uuid4().hex


def to_micros(moment: datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of integer microseconds since the epoch."""
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(microsecond=micros % 1_000_000)


def iso(moment: datetime) -> str:
    """ISO 8601 rendering used in every reply."""
    return moment.isoformat().replace("+00:00", "Z")


class MessageFacts(NamedTuple):
    """What ranking needs of a stored message before its text: who said it and when."""

    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A validated message with its id, time, position and owner."""

    id: str
    role: str
    content: str
    name: str | None
    created_at: datetime
    metadata: dict[str, Any]
    scope: Scope
    round_id: str
    seq: int = 0

    @property
    def key(self) -> IdKey:
        """The message's id within its user."""
        return IdKey(self.scope.user_id, self.id)

    @property
    def round_key(self) -> IdKey:
        """Its round's id within the user."""
        return IdKey(self.scope.user_id, self.round_id)

    def to_dict(self) -> dict[str, Any]:
        """The message as replies show it."""
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "name": self.name,
            "created_at": iso(self.created_at),
            "metadata": self.metadata,
            "session_id": self.scope.session_id,
            "user_id": self.scope.user_id,
            "agent_id": self.scope.agent_id,
            "round_id": self.round_id,
        }


@dataclass(slots=True)
class Round:
    """One ``messages`` list of one ``add`` call: the unit the buffers move."""

    id: str
    scope: Scope
    messages: list[StoredMessage]
    tokens: int = 0
    seq: int = 0

    @property
    def key(self) -> IdKey:
        """The round's id within its user."""
        return IdKey(self.scope.user_id, self.id)

    @property
    def created_at(self) -> datetime:
        return self.messages[0].created_at


@dataclass(frozen=True, slots=True)
class Chunk:
    """A text to embed, built by a ChunkStrategy from one round; ``message_ids`` are its focus."""

    id: str
    round_id: str
    scope: Scope
    text: str
    message_ids: tuple[str, ...]
    created_at: datetime

    @property
    def round_key(self) -> IdKey:
        """Its round's id within the user."""
        return IdKey(self.scope.user_id, self.round_id)


@dataclass(slots=True)
class Hit:
    """One candidate message of a query, with the raw scores of the rankings that found it."""

    message_id: str
    keyword: float | None = None
    vector: float | None = None
    score: float = 0.0
    retrieved_by: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """A validated query; also the cache key (every field changes the answer)."""

    text: str
    top_k: int
    user_id: str
    session_id: str | None
    agent_id: str | None
    sort_by: str
    order: str
    metadata_filter: str | None
    since: int | None
    until: int | None
    min_score: float = 0.0
    reference_time: int | None = None  # what "yesterday" or "last week" in the text are read against

    @property
    def reference(self) -> datetime:
        """The reference time of the text's time expressions (now when none was given)."""
        return datetime.now(UTC) if self.reference_time is None else from_micros(self.reference_time)

    @property
    def filter_dict(self) -> dict[str, Any]:
        return json.loads(self.metadata_filter) if self.metadata_filter else {}

    @property
    def scope(self) -> ScopeFilter:
        """The records this query may see, as every store filters them."""
        return ScopeFilter(self.user_id, self.session_id, self.agent_id, self.since, self.until)


def matches_filter(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True when every key of ``wanted`` equals the message metadata's value for it."""
    return all(key in metadata and metadata[key] == value for key, value in wanted.items())
