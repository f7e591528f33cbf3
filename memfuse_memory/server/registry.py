"""What the gateway keeps that the engine has no notion of: named users, agents and sessions with ids,
hashed API keys and message edit times. A small protocol; ``SQLiteRegistry`` implements it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class NamedRecord:
    """A user or an agent: an id, a unique name and a description."""

    id: str
    name: str
    description: str | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


UserRecord = NamedRecord


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent: an id, a name and a description, and the user it belongs to (``user_id``), or None for a
    shared agent (made by the admin key, or on a server without keys). A per-user key sees its own
    user's agents and the shared ones, nothing else: agent names are no oracle across users."""

    id: str
    name: str
    description: str | None
    created_at: str
    updated_at: str
    user_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def visible_to(self, user_id: str | None) -> bool:
        """Whether a caller bound to ``user_id`` (None: the admin or an open server) may see the agent."""
        return user_id is None or self.user_id is None or self.user_id == user_id


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    name: str
    user_id: str
    agent_id: str
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A key as listed: never the key itself, only its first characters."""

    id: str
    user_id: str
    name: str | None
    prefix: str
    permissions: dict[str, Any] | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Registry(Protocol):
    """Storage of the gateway's own records. Name clashes raise ``ConflictError``; a missing id gives None.
    Agent lookups by name and listings take the caller's ``user_id`` (None: every agent) and see only
    what :meth:`AgentRecord.visible_to` allows, the user's own agents first."""

    def create_user(self, name: str, description: str | None) -> UserRecord: ...
    def user(self, user_id: str) -> UserRecord | None: ...
    def user_by_name(self, name: str) -> UserRecord | None: ...
    def users(self) -> list[UserRecord]: ...
    def update_user(self, user_id: str, name: str | None, description: str | None) -> UserRecord | None: ...
    def delete_user(self, user_id: str) -> bool: ...

    def create_agent(self, name: str, description: str | None, user_id: str | None) -> AgentRecord: ...
    def agent(self, agent_id: str) -> AgentRecord | None: ...
    def agent_by_name(self, name: str, user_id: str | None) -> AgentRecord | None: ...
    def agents(self, user_id: str | None) -> list[AgentRecord]: ...
    def update_agent(self, agent_id: str, name: str | None, description: str | None) -> AgentRecord | None: ...
    def delete_agent(self, agent_id: str) -> bool: ...

    def create_session(self, user_id: str, agent_id: str, name: str) -> SessionRecord: ...
    def session(self, session_id: str) -> SessionRecord | None: ...
    def session_by_name(self, name: str, user_id: str | None) -> SessionRecord | None: ...
    def sessions(self, user_id: str | None = None, agent_id: str | None = None) -> list[SessionRecord]: ...
    def rename_session(self, session_id: str, name: str) -> SessionRecord | None: ...
    def delete_session(self, session_id: str) -> bool: ...

    def create_key(
        self,
        user_id: str,
        key_hash: str,
        prefix: str,
        name: str | None,
        permissions: dict[str, Any] | None,
        expires_at: str | None,
    ) -> ApiKeyRecord: ...
    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...
    def keys(self, user_id: str) -> list[ApiKeyRecord]: ...
    def revoke_key(self, user_id: str, key_id: str) -> bool: ...

    def touch_messages(self, user_id: str, message_ids: Sequence[str]) -> None: ...
    def updated_times(self, user_id: str, message_ids: Sequence[str]) -> dict[str, str]: ...

    def close(self) -> None: ...
