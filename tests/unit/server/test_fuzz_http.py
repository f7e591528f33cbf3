"""Hypothesis over raw HTTP: any method, path, query, header and body gets a JSON envelope, never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfuse_memory import BufferService
from memfuse_memory.config import load_config
from memfuse_memory.server import create_app, resolve_settings
from tests.fakes import FakeEmbedder, MemoryVectorStore
from tests.unit.server.conftest import ADMIN_KEY

FIELDS = [
    "name",
    "description",
    "user_id",
    "agent_id",
    "session_id",
    "messages",
    "message_ids",
    "new_messages",
    "query",
    "top_k",
    "knowledge",
    "knowledge_ids",
    "new_knowledge",
    "role",
    "content",
    "metadata",
    "since",
    "until",
    "metadata_filter",
    "sort_by",
    "order",
    "key",
    "expires_at",
    "permissions",
    "include_knowledge",
    "min_score",
    "reference_time",
    "read",
    "write",
]
SEGMENTS = ["users", "agents", "sessions", "messages", "read", "query", "knowledge", "api-keys", "health", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(lambda v: json.dumps(v).encode()),
)


def _paths(ids: list[str]) -> st.SearchStrategy[str]:
    segment = (
        st.sampled_from(SEGMENTS)
        | st.sampled_from(ids)
        | st.text(min_size=1, max_size=12).map(lambda t: quote(t, safe=""))
    )
    query = st.lists(
        st.tuples(
            st.sampled_from(["name", "user_id", "agent_id", "limit", "sort_by", "order", "buffer_only"]),
            st.text(max_size=10) | st.sampled_from([*ids, "0", "-1", "true", "false", "id", "asc"]),
        ),
        max_size=3,
    ).map(lambda pairs: "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs))
    # one leading slash: the test client refuses a path starting with //
    return st.tuples(st.sampled_from(["/api/v1/", "/api/", "/"]), st.lists(segment, max_size=5), query).map(
        lambda p: "/" + (p[0] + "/".join(p[1])).lstrip("/") + (f"?{p[2]}" if p[2] else "")
    )


def test_random_requests_get_an_envelope_and_never_a_5xx(tmp_path: Path) -> None:
    config = load_config(data_dir=tmp_path / "data", server={"require_api_key": True, "max_body_bytes": 4096})
    gateway = resolve_settings(config, environ={"MEMFUSE_ADMIN_API_KEY": ADMIN_KEY})
    service = BufferService.from_config(config, embedder=FakeEmbedder(), vector_store=MemoryVectorStore())
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(service, gateway), raise_server_exceptions=True) as client:
        uid = client.post("/api/v1/users", json={"name": "u"}, headers=admin).json()["data"]["user"]["id"]
        aid = client.post("/api/v1/agents", json={"name": "a"}, headers=admin).json()["data"]["agent"]["id"]
        body = {"user_id": uid, "agent_id": aid, "name": "s"}
        sid = client.post("/api/v1/sessions", json=body, headers=admin).json()["data"]["session"]["id"]
        key = client.post(f"/api/v1/users/{uid}/api-keys", json={}, headers=admin).json()["data"]["key"]
        read_only = {"permissions": {"read": True}}
        reader = client.post(f"/api/v1/users/{uid}/api-keys", json=read_only, headers=admin).json()["data"]["key"]
        msg = {"messages": [{"role": "user", "content": "hello"}]}
        mid = client.post(f"/api/v1/sessions/{sid}/messages", json=msg, headers=admin).json()["data"]["message_ids"][0]
        ids = [uid, aid, sid, mid]
        headers = st.sampled_from(
            [
                {},
                admin,
                {"Authorization": f"Bearer {key}"},
                {"X-API-Key": reader},
                {"Authorization": "Basic abc"},
                {"X-API-Key": "nope"},
            ]
        )

        @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
            path=_paths(ids),
            body=bodies,
            auth=headers,
        )
        def check(method: str, path: str, body: bytes | None, auth: dict[str, str]) -> None:
            reply = client.request(method, path, content=body, headers={"content-type": "application/json", **auth})
            assert reply.status_code < 500, (method, path, body, reply.text)
            if method == "HEAD":
                return
            assert reply.headers["content-type"].startswith("application/json"), (path, reply.text)
            envelope = reply.json()
            assert envelope["code"] == reply.status_code and envelope["status"] in ("success", "error")

        check()
