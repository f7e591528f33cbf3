"""The ``/api/v1`` routes, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from memfuse_memory.server.routes import agents, api_keys, health, knowledge, messages, query, sessions, users


def api_router() -> APIRouter:
    """Every route of the contract under ``/api/v1``."""
    router = APIRouter(prefix="/api/v1")
    for module in (health, users, agents, sessions, messages, query, knowledge, api_keys):
        router.include_router(module.router)
    return router
