"""Users: named, with ids; the admin key creates them. A per-user key sees only its own user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import NotFoundError
from memfuse_memory.server.schemas import NamedBody, UpdateNamedBody

router = APIRouter(prefix="/users", tags=["users"])

GW = Depends(gateway)
CALLER = Depends(caller)


@router.get("")
async def list_users(name: str | None = Query(None), gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """All users, or the one named ``name`` (404 when there is none)."""
    if name is not None:
        record = gw.registry.user_by_name(name)
        if record is None:
            raise NotFoundError(f"no user named {name!r}", field="name")
        who.require_user(record.id)
        return ok({"users": [record.to_dict()]})
    records = gw.registry.users() if who.full_access else [r for r in [gw.registry.user(who.user_id or "")] if r]
    return ok({"users": [r.to_dict() for r in records]})


@router.post("", status_code=201)
async def create_user(body: NamedBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    who.require_admin("creating a user")
    record = gw.registry.create_user(body.name, body.description)
    return ok({"user": record.to_dict()}, "user created", 201)


@router.get("/{user_id}")
async def get_user(user_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    return ok({"user": gw.user(user_id, who).to_dict()})


@router.put("/{user_id}")
async def update_user(user_id: str, body: UpdateNamedBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    gw.user(user_id, who)
    record = gw.registry.update_user(user_id, body.name, body.description)
    assert record is not None
    return ok({"user": record.to_dict()}, "user updated")


@router.delete("/{user_id}")
async def delete_user(user_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Forget the user: every message, knowledge item, session and key."""
    gw.user(user_id, who)
    await gw.service.delete_user(user_id)
    gw.registry.delete_user(user_id)
    return ok({"user_id": user_id}, "user deleted")
