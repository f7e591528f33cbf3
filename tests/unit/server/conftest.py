"""The gateway in process: the real app over a real SQLite store, the fake embedder and vector store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from memfuse_memory import BufferService
from memfuse_memory.config import load_config
from memfuse_memory.server import create_app, resolve_settings
from tests.fakes import FakeEmbedder, MemoryVectorStore

ADMIN_KEY = "admin-key-for-tests-0123456789"

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_gateway(tmp_path: Path) -> GatewayFactory:
    """Open the app (lifespan and all) and yield an httpx client speaking to it in process."""

    @asynccontextmanager
    async def open_gateway(*, admin: bool = False, **server: Any) -> AsyncIterator[httpx.AsyncClient]:
        config = load_config(data_dir=tmp_path / "data", server=server)
        env = {"MEMFUSE_ADMIN_API_KEY": ADMIN_KEY} if admin else {}
        settings = resolve_settings(config, environ=env)
        service = BufferService.from_config(config, embedder=FakeEmbedder(), vector_store=MemoryVectorStore())
        app = create_app(service, settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client

    return open_gateway


@pytest.fixture
async def client(make_gateway: GatewayFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_gateway() as opened:
        yield opened


async def setup_session(client: httpx.AsyncClient, user: str = "alice", agent: str = "bot") -> tuple[str, str, str]:
    """Create a user, an agent and a session; return their ids."""
    uid = (await client.post("/api/v1/users", json={"name": user})).json()["data"]["user"]["id"]
    reply = await client.post("/api/v1/agents", json={"name": agent})
    if reply.status_code == 409:
        reply = await client.get(f"/api/v1/agents?name={agent}")
        aid = reply.json()["data"]["agents"][0]["id"]
    else:
        aid = reply.json()["data"]["agent"]["id"]
    sid = (await client.post("/api/v1/sessions", json={"user_id": uid, "agent_id": aid})).json()["data"]["session"][
        "id"
    ]
    return uid, aid, sid
