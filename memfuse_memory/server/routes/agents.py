"""Agents: named, with ids. An agent made with a per-user key belongs to that user (its name is unique
among the user's agents); one made with the admin key, or on a server without keys, is shared. A
per-user key sees its user's agents and the shared ones, and no other user's (404), so an agent name
tells nothing about another user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import READ, WRITE, Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import ConflictError, ForbiddenError, NotFoundError
from memfuse_memory.server.registry import AgentRecord
from memfuse_memory.server.schemas import NamedBody, UpdateNamedBody

router = APIRouter(prefix="/agents", tags=["agents"])

GW = Depends(gateway)
CALLER = Depends(caller)


@router.get("")
async def list_agents(name: str | None = Query(None), gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """The agents the caller sees, or the one named ``name`` (404 when there is none; the caller's own
    agent before a shared one of the same name)."""
    who.require(READ)
    if name is not None:
        record = gw.registry.agent_by_name(name, who.scope)
        if record is None:
            raise NotFoundError(f"no agent named {name!r}", field="name")
        return ok({"agents": [record.to_dict()]})
    return ok({"agents": [r.to_dict() for r in gw.registry.agents(who.scope)]})


@router.post("", status_code=201)
async def create_agent(body: NamedBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Create an agent; a name the caller already sees is a 409 'already exists' (the SDK then looks it up
    by name), also for a read-only key, so the SDK's ``init`` works with one."""
    seen = gw.registry.agent_by_name(body.name, who.scope)
    if seen is not None and (who.scope is not None or seen.user_id is None):
        raise ConflictError(f"agent named {body.name!r}: already exists", field="name")
    who.require(WRITE)
    record = gw.registry.create_agent(body.name, body.description, who.scope)
    return ok({"agent": record.to_dict()}, "agent created", 201)


@router.get("/{agent_id}")
async def get_agent(agent_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    who.require(READ)
    return ok({"agent": gw.agent(agent_id, who).to_dict()})


def _changeable(gw: Gateway, agent_id: str, who: Principal, what: str) -> AgentRecord:
    """The agent, if the caller may change it: the admin key any, a per-user key (with write) its own."""
    who.require(WRITE)
    record = gw.agent(agent_id, who)
    if record.user_id is None and not who.full_access:
        raise ForbiddenError(f"{what} a shared agent needs the admin key")
    return record


@router.put("/{agent_id}")
async def update_agent(agent_id: str, body: UpdateNamedBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    _changeable(gw, agent_id, who, "changing")
    record = gw.registry.update_agent(agent_id, body.name, body.description)
    assert record is not None
    return ok({"agent": record.to_dict()}, "agent updated")


@router.delete("/{agent_id}")
async def delete_agent(agent_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Remove the agent's name; messages written under it keep its id."""
    _changeable(gw, agent_id, who, "deleting")
    gw.registry.delete_agent(agent_id)
    return ok({"agent_id": agent_id}, "agent deleted")
