"""What every route gets: the engine facade, the registry, the settings, the caller, and the lookups
that turn ids into records (404) and check the caller may see them (403)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from memfuse_memory.server.auth import Principal, authenticate, presented_key
from memfuse_memory.server.errors import NotFoundError
from memfuse_memory.server.registry import AgentRecord, Registry, SessionRecord, UserRecord
from memfuse_memory.server.settings import ServerSettings
from memfuse_memory.service import BufferService


@dataclass(slots=True)
class Gateway:
    """One per app: the engine (through its public facade), the registry and the settings."""

    service: BufferService
    registry: Registry
    settings: ServerSettings

    def user(self, user_id: str, caller: Principal) -> UserRecord:
        caller.require_user(user_id)
        record = self.registry.user(user_id)
        if record is None:
            raise NotFoundError(f"no user with id {user_id!r}", field="user_id")
        return record

    def agent(self, agent_id: str, caller: Principal) -> AgentRecord:
        """The agent, 404 also when it belongs to another user (so its id tells that user's key nothing)."""
        record = self.registry.agent(agent_id)
        if record is None or not record.visible_to(caller.scope):
            raise NotFoundError(f"no agent with id {agent_id!r}", field="agent_id")
        return record

    async def stored(self, user_id: str, session_id: str, ids: list[str], field: str) -> list[dict[str, Any]]:
        """The engine messages with these ids in one engine session of a user, in the order asked; 404
        naming any that is not there (another session's or user's message included)."""
        exported = await self.service.export_messages(user_id=user_id, session_id=session_id)
        by_id = {m["id"]: m for m in exported["data"]["messages"]}
        missing = [mid for mid in ids if mid not in by_id]
        if missing:
            raise NotFoundError(f"not found here: {', '.join(missing[:10])}", field=field)
        return [by_id[mid] for mid in ids]

    def session(self, session_id: str, caller: Principal) -> SessionRecord:
        record = self.registry.session(session_id)
        if record is None:
            raise NotFoundError(f"no session with id {session_id!r}", field="session_id")
        caller.require_user(record.user_id)
        return record


async def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


async def caller(request: Request) -> Principal:
    """The caller of this request (401 without a valid key when keys are required); no sub-dependency, so
    resolving it costs one call."""
    gw: Gateway = request.app.state.gateway
    return authenticate(presented_key(request), gw.settings, gw.registry)
