"""Agents: named, with ids, shared by all users (any valid key may create and read them)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import NotFoundError
from memfuse_memory.server.schemas import NamedBody, UpdateNamedBody

router = APIRouter(prefix="/agents", tags=["agents"])

GW = Depends(gateway)
CALLER = Depends(caller)


@router.get("")
async def list_agents(name: str | None = Query(None), gw: Gateway = GW, _who: Principal = CALLER) -> JSONResponse:
    """All agents, or the one named ``name`` (404 when there is none)."""
    if name is not None:
        record = gw.registry.agent_by_name(name)
        if record is None:
            raise NotFoundError(f"no agent named {name!r}", field="name")
        return ok({"agents": [record.to_dict()]})
    return ok({"agents": [r.to_dict() for r in gw.registry.agents()]})


@router.post("", status_code=201)
async def create_agent(body: NamedBody, gw: Gateway = GW, _who: Principal = CALLER) -> JSONResponse:
    """Create an agent; a taken name is a 409 'already exists' (the SDK then looks it up by name)."""
    record = gw.registry.create_agent(body.name, body.description)
    return ok({"agent": record.to_dict()}, "agent created", 201)


@router.get("/{agent_id}")
async def get_agent(agent_id: str, gw: Gateway = GW, _who: Principal = CALLER) -> JSONResponse:
    return ok({"agent": gw.agent(agent_id).to_dict()})


@router.put("/{agent_id}")
async def update_agent(agent_id: str, body: UpdateNamedBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    who.require_admin("changing an agent")
    gw.agent(agent_id)
    record = gw.registry.update_agent(agent_id, body.name, body.description)
    assert record is not None
    return ok({"agent": record.to_dict()}, "agent updated")


@router.delete("/{agent_id}")
async def delete_agent(agent_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Remove the agent's name; messages written under it keep its id."""
    who.require_admin("deleting an agent")
    gw.agent(agent_id)
    gw.registry.delete_agent(agent_id)
    return ok({"agent_id": agent_id}, "agent deleted")
