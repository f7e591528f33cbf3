"""A user's knowledge items: facts that are not chat turns.

Stored through the engine as single-message rounds (role ``system``, metadata ``{"type":
"knowledge"}``) in the user's reserved engine session ``_knowledge``, which no gateway session can
name: they never appear in a chat history, are durable like messages, and the user-level query
finds them (``type: "knowledge"``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import READ, WRITE, Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import BadRequestError
from memfuse_memory.server.schemas import KnowledgeBody, KnowledgeIdsBody, UpdateKnowledgeBody
from memfuse_memory.server.views import KNOWLEDGE_SESSION, knowledge_item

router = APIRouter(prefix="/users/{user_id}/knowledge", tags=["knowledge"])

GW = Depends(gateway)
CALLER = Depends(caller)


def _message(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text, "metadata": {"type": "knowledge"}}


async def _all(gw: Gateway, user_id: str) -> dict[str, dict[str, Any]]:
    exported = await gw.service.export_messages(user_id=user_id, session_id=KNOWLEDGE_SESSION)
    items = exported["data"]["messages"]
    return {m["id"]: m for m in items}


@router.get("")
async def list_knowledge(user_id: str, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    who.require(READ)
    gw.user(user_id, who)
    items = list((await _all(gw, user_id)).values())
    updated = gw.registry.updated_times(user_id, [m["id"] for m in items])
    return ok({"knowledge": [knowledge_item(m, updated) for m in items]})


@router.post("", status_code=201)
async def add_knowledge(user_id: str, body: KnowledgeBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Store the items, all or nothing; each is its own round, so each is found on its own."""
    who.require(WRITE)
    gw.user(user_id, who)
    rounds = [[_message(text)] for text in body.knowledge]
    reply = await gw.service.add_batch(rounds, KNOWLEDGE_SESSION, user_id=user_id)
    return ok({"knowledge_ids": reply["data"]["message_ids"]}, "knowledge added", 201)


@router.post("/read")
async def read_knowledge(
    user_id: str, body: KnowledgeIdsBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    who.require(READ)
    gw.user(user_id, who)
    found = await gw.stored(user_id, KNOWLEDGE_SESSION, body.knowledge_ids, "knowledge_ids")
    updated = gw.registry.updated_times(user_id, body.knowledge_ids)
    return ok({"knowledge": [knowledge_item(m, updated) for m in found]})


@router.put("")
async def update_knowledge(
    user_id: str, body: UpdateKnowledgeBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    if len(body.new_knowledge) != len(body.knowledge_ids):
        raise BadRequestError("new_knowledge must hold one item per knowledge id", field="new_knowledge")
    who.require(WRITE)
    gw.user(user_id, who)
    await gw.stored(user_id, KNOWLEDGE_SESSION, body.knowledge_ids, "knowledge_ids")
    await gw.service.update_messages(body.knowledge_ids, [_message(t) for t in body.new_knowledge], user_id=user_id)
    gw.registry.touch_messages(user_id, body.knowledge_ids)
    return ok({"knowledge_ids": body.knowledge_ids}, "knowledge updated")


@router.delete("")
async def delete_knowledge(
    user_id: str, body: KnowledgeIdsBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    who.require(WRITE)
    gw.user(user_id, who)
    await gw.stored(user_id, KNOWLEDGE_SESSION, body.knowledge_ids, "knowledge_ids")
    await gw.service.delete_messages(body.knowledge_ids, user_id=user_id)
    return ok({"knowledge_ids": body.knowledge_ids}, "knowledge deleted")
