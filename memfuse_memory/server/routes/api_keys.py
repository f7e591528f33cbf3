"""A user's API keys: created by the admin key or the user's own key (with ``write``, and never with more
permissions than that key holds), shown once, revocable."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import KEY_PREFIX, READ, WRITE, Principal, granted, new_key
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import BadRequestError, ForbiddenError, NotFoundError
from memfuse_memory.server.schemas import ApiKeyBody
from memfuse_memory.server.settings import hash_key

router = APIRouter(prefix="/users/{user_id}/api-keys", tags=["api keys"])

GW = Depends(gateway)
CALLER = Depends(caller)


@router.get("")
async def list_keys(user_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """The user's keys: ids, names, prefixes and dates, never the keys."""
    who.require(READ)
    gw.user(user_id, who)
    return ok({"api_keys": [k.to_dict() for k in gw.registry.keys(user_id)]})


@router.post("", status_code=201)
async def create_key(user_id: str, body: ApiKeyBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """A new key for the user; ``data.key`` is the only time the key is shown."""
    who.require(WRITE)
    gw.user(user_id, who)
    permissions = None if body.permissions is None else body.permissions.model_dump()
    if not granted(permissions) <= who.permissions:
        raise ForbiddenError("a key cannot grant more permissions than the key creating it", field="permissions")
    if body.expires_at is not None:
        try:
            datetime.fromisoformat(body.expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequestError("expires_at must be an ISO 8601 time", field="expires_at") from None
    key = body.key or new_key()
    prefix = key[: len(KEY_PREFIX) + 4]
    record = gw.registry.create_key(user_id, hash_key(key), prefix, body.name, permissions, body.expires_at)
    return ok({"api_key": record.to_dict(), "key": key}, "API key created; it is shown only this once", 201)


@router.delete("/{key_id}")
async def revoke_key(user_id: str, key_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    who.require(WRITE)
    gw.user(user_id, who)
    if not gw.registry.revoke_key(user_id, key_id):
        raise NotFoundError(f"no API key {key_id!r} of this user", field="key_id")
    return ok({"key_id": key_id}, "API key revoked")
