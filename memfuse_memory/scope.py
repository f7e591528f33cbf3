"""Scope: who a record belongs to, and the one place that turns a query's scope into each
store's filter (SQL clauses, a Chroma ``where``, an in-memory predicate).

A session whose id starts with :data:`INTERNAL_PREFIX` is internal: an adapter keeps records
there for itself (the LangGraph store's namespace catalog). Every recall leaves internal
sessions out unless the query names that session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

INTERNAL_PREFIX = "~"


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a record belongs to, and the key of its conversation (one RoundBuffer queue each).

    ``agent_id`` None means no agent.
    """

    user_id: str
    session_id: str
    agent_id: str | None = None

    @property
    def internal(self) -> bool:
        """Whether the session is an adapter's own (see :data:`INTERNAL_PREFIX`)."""
        return is_internal(self.session_id)


class IdKey(NamedTuple):
    """A round's or message's id within its user: ids are unique per user, never across users,
    so every lookup by id (buffers, worker, stores) keys by this pair."""

    user_id: str
    id: str


def is_internal(session_id: str) -> bool:
    """Whether a session id names an internal session."""
    return session_id.startswith(INTERNAL_PREFIX)


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """The records a read may see: one user, optionally one session or agent, a time range;
    internal sessions only when named."""

    user_id: str
    session_id: str | None = None
    agent_id: str | None = None
    since: int | None = None
    until: int | None = None

    @property
    def excludes_internal(self) -> bool:
        return self.session_id is None or not is_internal(self.session_id)

    def accepts(self, scope: Scope) -> bool:
        """The in-memory predicate over a record's scope (time is checked by :meth:`accepts_time`)."""
        if scope.user_id != self.user_id:
            return False
        if self.session_id is not None and scope.session_id != self.session_id:
            return False
        if self.agent_id is not None and scope.agent_id != self.agent_id:
            return False
        return not (self.excludes_internal and scope.internal)

    def accepts_time(self, micros: int) -> bool:
        return (self.since is None or micros >= self.since) and (self.until is None or micros <= self.until)

    def sql(self, alias: str, mark: str = "?") -> tuple[str, list[Any]]:
        """SQL conditions (joined by AND, starting with the user) over ``alias``'s columns user_id,
        session_id, agent_id, created_us; ``mark`` is the driver's placeholder."""
        clauses = [f"{alias}.user_id = {mark}"]
        args: list[Any] = [self.user_id]
        if self.session_id is not None:
            clauses.append(f"{alias}.session_id = {mark}")
            args.append(self.session_id)
        if self.agent_id is not None:
            clauses.append(f"{alias}.agent_id = {mark}")
            args.append(self.agent_id)
        if self.since is not None:
            clauses.append(f"{alias}.created_us >= {mark}")
            args.append(self.since)
        if self.until is not None:
            clauses.append(f"{alias}.created_us <= {mark}")
            args.append(self.until)
        if self.excludes_internal:
            clauses.append(f"substr({alias}.session_id, 1, {len(INTERNAL_PREFIX)}) <> {mark}")
            args.append(INTERNAL_PREFIX)
        return " AND ".join(clauses), args

    def chroma_where(self) -> dict[str, Any] | None:
        """A Chroma ``where`` within one user's collection. Chroma has no prefix match, so internal
        sessions are left out after retrieval, by :meth:`accepts` on the hydrated messages."""
        clauses: list[dict[str, Any]] = []
        if self.session_id is not None:
            clauses.append({"session_id": self.session_id})
        if self.agent_id is not None:
            clauses.append({"agent_id": self.agent_id})
        if self.since is not None:
            clauses.append({"created_us": {"$gte": self.since}})
        if self.until is not None:
            clauses.append({"created_us": {"$lte": self.until}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}
