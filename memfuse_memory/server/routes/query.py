"""The query routes: ``POST /api/v1/users/{user_id}/query`` (the SDK's ``query`` and ``query_session``)
searches all of a user's sessions and knowledge; ``POST /api/v1/sessions/{session_id}/query`` (ours)
searches one session.

Like upstream, the user-level ``session_id`` only labels results (``metadata.scope``); ``agent_id``
filters messages (knowledge belongs to the user, so it is searched regardless). Our own optional fields
(``since``, ``until``, ``metadata_filter``, ``sort_by``, ``order``, ``min_score``, ``reference_time``)
pass through to the engine on both routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from memfuse_memory.server.auth import Principal
from memfuse_memory.server.context import Gateway, caller, gateway
from memfuse_memory.server.envelope import ok
from memfuse_memory.server.errors import NotFoundError
from memfuse_memory.server.schemas import QueryBody, SearchBody
from memfuse_memory.server.views import KNOWLEDGE_SESSION, merge_hits, result_item

router = APIRouter(tags=["query"])

GW = Depends(gateway)
CALLER = Depends(caller)


async def _has_knowledge(gw: Gateway, user_id: str) -> bool:
    """One indexed read, so a user without knowledge items pays for one search, not two."""
    reply = await gw.service.get_messages_by_session(KNOWLEDGE_SESSION, user_id=user_id, limit=1)
    return bool(reply["data"]["messages"])


def _options(gw: Gateway, body: SearchBody, user_id: str) -> dict[str, Any]:
    """The engine's query arguments of a body (sort and order default to the config's)."""
    config = gw.service.config.buffer.query
    return {
        "user_id": user_id,
        "sort_by": body.sort_by or config.default_sort_by,
        "order": body.order or config.default_order,
        "since": body.since,
        "until": body.until,
        "metadata_filter": body.metadata_filter,
        "min_score": body.min_score,
        "reference_time": body.reference_time,
    }


def _answer(gw: Gateway, user_id: str, hits: list[dict[str, Any]], asked_session: str | None) -> JSONResponse:
    names: dict[str, str] = {}
    for session_id in {str(h.get("session_id")) for h in hits} - {KNOWLEDGE_SESSION}:
        record = gw.registry.session(session_id)  # cached: no listing of every session of the user
        if record is not None and record.user_id == user_id:
            names[session_id] = record.name
    updated = gw.registry.updated_times(user_id, [h["id"] for h in hits])
    results = [
        result_item({**h, "updated_at": updated.get(h["id"])}, session_names=names, asked_session=asked_session)
        for h in hits
    ]
    return ok({"results": results, "total": len(results)})


@router.post("/users/{user_id}/query")
async def query(user_id: str, body: QueryBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """The ``top_k`` most relevant messages and knowledge items of the user."""
    who.require("read")
    gw.user(user_id, who)
    if body.session_id is not None:
        session = gw.registry.session(body.session_id)
        if session is None or session.user_id != user_id:
            raise NotFoundError(f"no session {body.session_id!r} of this user", field="session_id")
    if body.agent_id is not None:
        gw.agent(body.agent_id, who)
    options = _options(gw, body, user_id)
    groups: list[list[dict[str, Any]]] = []
    if body.include_messages:
        reply = await gw.service.query(body.query, body.top_k, agent_id=body.agent_id, **options)
        hits = reply["data"]["results"]
        if not body.include_knowledge:
            hits = [h for h in hits if h["session_id"] != KNOWLEDGE_SESSION]
        groups.append(hits)
    if (
        body.include_knowledge
        and (body.agent_id is not None or not body.include_messages)
        and await _has_knowledge(gw, user_id)
    ):
        reply = await gw.service.query(body.query, body.top_k, session_id=KNOWLEDGE_SESSION, **options)
        groups.append(reply["data"]["results"])
    hits = merge_hits(groups, body.top_k, options["sort_by"], options["order"])
    return _answer(gw, user_id, hits, body.session_id)


@router.post("/sessions/{session_id}/query")
async def query_session(session_id: str, body: SearchBody, gw: Gateway = GW, who: Principal = CALLER) -> JSONResponse:
    """The ``top_k`` most relevant messages of this session only (``metadata.scope`` is ``in_session``)."""
    who.require("read")
    session = gw.session(session_id, who)
    options = _options(gw, body, session.user_id)
    reply = await gw.service.query(body.query, body.top_k, session_id=session.id, **options)
    return _answer(gw, session.user_id, reply["data"]["results"], session.id)
