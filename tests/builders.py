"""Builders of model objects for tests below the engine."""

from __future__ import annotations

from datetime import UTC, datetime

from memfuse_memory.models import IdKey, Round, Scope, StoredMessage


def key(rid: str, user: str = "u") -> IdKey:
    """A round's or message's key, of user "u" unless told."""
    return IdKey(user, rid)


def round_of(rid: str, *contents: str, session: str = "s", user: str = "u") -> Round:
    scope = Scope(user_id=user, session_id=session)
    now = datetime.now(UTC)
    messages = [
        StoredMessage(
            id=f"{rid}-{i}",
            role="user" if i % 2 == 0 else "assistant",
            content=text,
            name=None,
            created_at=now,
            metadata={},
            scope=scope,
            round_id=rid,
        )
        for i, text in enumerate(contents)
    ]
    return Round(id=rid, scope=scope, messages=messages)
