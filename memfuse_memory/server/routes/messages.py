"""A session's messages: add, list (with the SDK's ``buffer_only``), read, update, delete.

``buffer_only=true`` lists the messages still buffered (acknowledged and durable, not yet indexed in
storage); ``false`` lists the others, so an LLM wrapper asking for both never sees a message twice.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import READ, WRITE, Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import BadRequestError
from memfuse_memory.server.schemas import MessageIdsBody, MessagesBody, UpdateMessagesBody
from memfuse_memory.server.views import message_item

router = APIRouter(prefix="/sessions/{session_id}/messages", tags=["messages"])

GW = Depends(gateway)
CALLER = Depends(caller)


def _int(value: str, field: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequestError(f"{field} must be an integer, got {value!r}", field=field) from None
    if number <= 0:
        raise BadRequestError(f"{field} must be greater than 0, got {number}", field=field)
    return number


def _choice(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadRequestError(f"{field} must be one of {', '.join(allowed)}, got {value!r}", field=field)
    return value


@router.post("", status_code=201)
async def add_messages(session_id: str, body: MessagesBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """Store the messages as one round; when this answers, they are durable."""
    who.require(WRITE)
    session = gw.session(session_id, who)
    reply = await gw.service.add(body.messages, session.id, user_id=session.user_id, agent_id=session.agent_id)
    return ok({"message_ids": reply["data"]["message_ids"]}, "messages added", 201)


@router.get("")
async def list_messages(
    session_id: str,
    limit: str = Query("20"),
    sort_by: str = Query("timestamp"),
    order: str = Query("desc"),
    buffer_only: str | None = Query(None),
    gw: Gateway = GW,
    who: Principal = CALLER,
) -> JSONResponse:
    """The latest ``limit`` messages (capped at ``server.max_list_limit``)."""
    who.require(READ)
    count = min(_int(limit, "limit"), gw.settings.max_list_limit)
    _choice(sort_by, "sort_by", ("timestamp", "id"))
    _choice(order, "order", ("asc", "desc"))
    if buffer_only is not None:
        _choice(buffer_only, "buffer_only", ("true", "false"))
    session = gw.session(session_id, who)
    service, user = gw.service, session.user_id
    if buffer_only == "true":
        reply = await service.get_messages_by_session(
            session.id, user_id=user, buffer_only=True, limit=count, order=order
        )
        messages = reply["data"]["messages"]
    elif buffer_only == "false":
        buffered = await service.get_messages_by_session(session.id, user_id=user, buffer_only=True)
        skip = {m["id"] for m in buffered["data"]["messages"]}
        reply = await service.get_messages_by_session(session.id, user_id=user, limit=count + len(skip), order=order)
        messages = [m for m in reply["data"]["messages"] if m["id"] not in skip][:count]
    else:
        reply = await service.get_messages_by_session(session.id, user_id=user, limit=count, order=order)
        messages = reply["data"]["messages"]
    if sort_by == "id":
        messages.sort(key=lambda m: m["id"], reverse=order == "desc")
    updated = gw.registry.updated_times(user, [m["id"] for m in messages])
    return ok({"messages": [message_item(m, updated) for m in messages]})


@router.post("/read")
async def read_messages(
    session_id: str, body: MessageIdsBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    who.require(READ)
    session = gw.session(session_id, who)
    found = await gw.stored(session.user_id, session.id, body.message_ids, "message_ids")
    updated = gw.registry.updated_times(session.user_id, body.message_ids)
    return ok({"messages": [message_item(m, updated) for m in found]})


@router.put("")
async def update_messages(
    session_id: str, body: UpdateMessagesBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    """Replace messages in place (same ids and times), all or nothing; they are re-indexed."""
    who.require(WRITE)
    if len(body.new_messages) != len(body.message_ids):
        raise BadRequestError("new_messages must hold one message per message id", field="new_messages")
    session = gw.session(session_id, who)
    await gw.stored(session.user_id, session.id, body.message_ids, "message_ids")
    await gw.service.update_messages(body.message_ids, body.new_messages, user_id=session.user_id)
    gw.registry.touch_messages(session.user_id, body.message_ids)
    return ok({"message_ids": body.message_ids}, "messages updated")


@router.delete("")
async def delete_messages(
    session_id: str, body: MessageIdsBody, gw: Gateway = GW, who: Principal = CALLER
) -> JSONResponse:
    who.require(WRITE)
    session = gw.session(session_id, who)
    await gw.stored(session.user_id, session.id, body.message_ids, "message_ids")
    await gw.service.delete_messages(body.message_ids, user_id=session.user_id)
    return ok({"message_ids": body.message_ids}, "messages deleted")
