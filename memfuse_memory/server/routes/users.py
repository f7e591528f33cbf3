"""Users: named, with ids; the admin key creates them. A per-user key sees only its own user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import READ, WRITE, Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import ForbiddenError, NotFoundError
from memfuse_memory.server.schemas import NamedBody, UpdateNamedBody

router = APIRouter(prefix="/users", tags=["users"])

GW = Depends(gateway)
CALLER = Depends(caller)


@router.get("")
async def list_users(name: str | None = Query(None), gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """All users, or the one named ``name`` (404 when there is none). A per-user key sees its own user
    only, and asking for any other name is a 403 whether that user exists or not (no oracle)."""
    who.require(READ)
    if name is not None:
        record = gw.registry.user_by_name(name)
        if not who.full_access and (record is None or record.id != who.user_id):
            raise ForbiddenError("this API key can look up its own user only", field="name")
        if record is None:
            raise NotFoundError(f"no user named {name!r}", field="name")
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
    who.require(READ)
    return ok({"user": gw.user(user_id, who).to_dict()})


@router.put("/{user_id}")
async def update_user(user_id: str, body: UpdateNamedBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Change the description (a per-user key with write) or the name (the admin key: user names are
    unique, so a taken name would tell a per-user key that another user exists)."""
    who.require(WRITE)
    user = gw.user(user_id, who)
    if body.name is not None and body.name != user.name:
        who.require_admin("renaming a user")
    record = gw.registry.update_user(user_id, body.name, body.description)
    assert record is not None
    return ok({"user": record.to_dict()}, "user updated")


@router.delete("/{user_id}")
async def delete_user(user_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Forget the user: every message, knowledge item, session, agent of its own and key."""
    who.require(WRITE)
    gw.user(user_id, who)
    await gw.service.delete_user(user_id)
    gw.registry.delete_user(user_id)
    return ok({"user_id": user_id}, "user deleted")
