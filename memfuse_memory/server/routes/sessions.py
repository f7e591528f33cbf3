"""Sessions: one user and one agent each, named (unique per user), with ids."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import READ, WRITE, Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import NotFoundError
from memfuse_memory.server.schemas import RenameSessionBody, SessionBody

router = APIRouter(prefix="/sessions", tags=["sessions"])

GW = Depends(gateway)
CALLER = Depends(caller)


@router.get("")
async def list_sessions(
    name: str | None = Query(None),
    user_id: str | None = Query(None),
    agent_id: str | None = Query(None),
    gw: Gateway = GW,
    who: Principal = CALLER,
) -> JSONResponse:
    """Sessions of a user and/or agent, or the one named ``name`` (404 when there is none)."""
    who.require(READ)
    if user_id is not None:
        who.require_user(user_id)
    elif not who.full_access:
        user_id = who.user_id
    if name is not None:
        record = gw.registry.session_by_name(name, user_id)
        if record is None:
            raise NotFoundError(f"no session named {name!r}", field="name")
        who.require_user(record.user_id)
        return ok({"sessions": [record.to_dict()]})
    return ok({"sessions": [r.to_dict() for r in gw.registry.sessions(user_id, agent_id)]})


@router.post("", status_code=201)
async def create_session(body: SessionBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Create a session of a user with an agent that user sees; with no name it is called
    ``{user}-{agent}-{8 hex}`` like upstream."""
    who.require(WRITE)
    user = gw.user(body.user_id, who)
    agent = gw.agent(body.agent_id, who)
    if not agent.visible_to(user.id):
        raise NotFoundError(f"no agent with id {body.agent_id!r} of this user", field="agent_id")
    name = body.name or f"{user.name}-{agent.name}-{secrets.token_hex(4)}"
    record = gw.registry.create_session(user.id, agent.id, name)
    return ok({"session": record.to_dict()}, "session created", 201)


@router.get("/{session_id}")
async def get_session(session_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    who.require(READ)
    return ok({"session": gw.session(session_id, who).to_dict()})


@router.put("/{session_id}")
async def rename_session(
    session_id: str, body: RenameSessionBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    who.require(WRITE)
    gw.session(session_id, who)
    record = gw.registry.rename_session(session_id, body.name)
    assert record is not None
    return ok({"session": record.to_dict()}, "session updated")


@router.delete("/{session_id}")
async def delete_session(session_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Forget the session and every message in it."""
    who.require(WRITE)
    record = gw.session(session_id, who)
    await gw.service.delete_session(session_id, user_id=record.user_id)
    gw.registry.delete_session(session_id)
    return ok({"session_id": session_id}, "session deleted")
