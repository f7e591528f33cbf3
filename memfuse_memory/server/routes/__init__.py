"""The ``/api/v1`` routes, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from memfuse_memory.server.routes import agents, api_keys, health, knowledge, messages, query, sessions, users

PREFIX = "/api/v1"


def include_routes(app: FastAPI) -> None:
    """Every route of the contract under ``/api/v1``, each resource's router included on the app itself
    (one level of routers keeps route matching cheap); routes are matched in order, so the ones every
    chat turn calls (messages, query) come first."""
    routers: list[APIRouter] = [
        m.router for m in (messages, query, health, users, agents, sessions, knowledge, api_keys)
    ]
    for router in routers:
        app.include_router(router, prefix=PREFIX)
