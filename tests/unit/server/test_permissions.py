"""Key permissions (read, write) enforced on every route, and agents scoped so no name crosses users."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from memfuse_memory.server.sqlite_registry import SQLiteRegistry
from tests.unit.server.test_keys import ADMIN, API, _user_with_key, bearer
from tests.unit.server.test_routes import assert_envelope

READS = [
    ("GET", "/users", None),
    ("GET", "/users/{uid}", None),
    ("GET", "/agents", None),
    ("GET", "/agents/{aid}", None),
    ("GET", "/sessions", None),
    ("GET", "/sessions/{sid}", None),
    ("GET", "/sessions/{sid}/messages", None),
    ("POST", "/sessions/{sid}/messages/read", {"message_ids": ["{mid}"]}),
    ("POST", "/users/{uid}/query", {"query": "tea"}),
    ("POST", "/sessions/{sid}/query", {"query": "tea"}),
    ("GET", "/users/{uid}/knowledge", None),
    ("POST", "/users/{uid}/knowledge/read", {"knowledge_ids": ["{kid}"]}),
    ("GET", "/users/{uid}/api-keys", None),
]
WRITES = [
    ("PUT", "/users/{uid}", {"description": "x"}),
    ("POST", "/agents", {"name": "new-agent"}),
    ("PUT", "/agents/{aid}", {"description": "x"}),
    ("POST", "/sessions", {"user_id": "{uid}", "agent_id": "{aid}", "name": "new"}),
    ("PUT", "/sessions/{sid}", {"name": "renamed"}),
    ("POST", "/sessions/{sid}/messages", {"messages": [{"role": "user", "content": "hi"}]}),
    ("PUT", "/sessions/{sid}/messages", {"message_ids": ["{mid}"], "new_messages": [{"role": "user", "content": "x"}]}),
    ("DELETE", "/sessions/{sid}/messages", {"message_ids": ["{mid}"]}),
    ("POST", "/users/{uid}/knowledge", {"knowledge": ["x"]}),
    ("PUT", "/users/{uid}/knowledge", {"knowledge_ids": ["{kid}"], "new_knowledge": ["y"]}),
    ("DELETE", "/users/{uid}/knowledge", {"knowledge_ids": ["{kid}"]}),
    ("POST", "/users/{uid}/api-keys", {"name": "another"}),
    ("DELETE", "/users/{uid}/api-keys/{key_id}", None),
    ("DELETE", "/agents/{aid}", None),
    ("DELETE", "/sessions/{sid}", None),
    ("DELETE", "/users/{uid}", None),
]


def _fill(value: object, ids: dict[str, str]) -> object:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _fixture(client: httpx.AsyncClient, permissions: dict[str, bool]) -> tuple[dict[str, str], str]:
    """A user with data, its own agent, and a key holding ``permissions``; the ids, and that key."""
    uid, sid, key = await _user_with_key(client, "alice")
    session = assert_envelope(await client.get(f"{API}/sessions/{sid}", headers=ADMIN), 200)["data"]["session"]
    msg = {"messages": [{"role": "user", "content": "I like tea"}]}
    added = await client.post(f"{API}/sessions/{sid}/messages", json=msg, headers=bearer(key))
    kn = await client.post(f"{API}/users/{uid}/knowledge", json={"knowledge": ["tea"]}, headers=bearer(key))
    made = await client.post(f"{API}/users/{uid}/api-keys", json={"permissions": permissions}, headers=ADMIN)
    made_body = assert_envelope(made, 201)["data"]
    assert made_body["api_key"]["permissions"] == {"read": False, "write": False, **permissions}
    ids = {
        "uid": uid,
        "sid": sid,
        "aid": session["agent_id"],
        "mid": assert_envelope(added, 201)["data"]["message_ids"][0],
        "kid": assert_envelope(kn, 201)["data"]["knowledge_ids"][0],
        "key_id": made_body["api_key"]["id"],
    }
    return ids, made_body["key"]


async def test_a_read_only_key_reads_and_every_write_route_is_403(make_gateway) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        ids, key = await _fixture(client, {"read": True})
        for method, path, body in READS:
            reply = await client.request(method, API + path.format(**ids), json=_fill(body, ids), headers=bearer(key))
            assert reply.status_code == 200, (method, path, reply.text)
        for method, path, body in WRITES:
            reply = await client.request(method, API + path.format(**ids), json=_fill(body, ids), headers=bearer(key))
            answer = assert_envelope(reply, 403)
            assert "'write'" in answer["message"] and answer["errors"][0]["field"] == "permissions", (method, path)
        listed = await client.get(f"{API}/sessions/{ids['sid']}/messages", headers=bearer(key))
        assert len(assert_envelope(listed, 200)["data"]["messages"]) == 1  # nothing was written or deleted


async def test_a_write_only_key_writes_and_every_read_route_is_403(make_gateway) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        ids, key = await _fixture(client, {"write": True})
        for method, path, body in READS:
            reply = await client.request(method, API + path.format(**ids), json=_fill(body, ids), headers=bearer(key))
            answer = assert_envelope(reply, 403)
            assert "'read'" in answer["message"], (method, path)
        msg = {"messages": [{"role": "user", "content": "more tea"}]}
        assert_envelope(await client.post(f"{API}/sessions/{ids['sid']}/messages", json=msg, headers=bearer(key)), 201)


async def test_the_sdk_init_works_with_a_read_only_key(make_gateway) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        ids, key = await _fixture(client, {"read": True})
        agent = assert_envelope(await client.get(f"{API}/agents/{ids['aid']}", headers=ADMIN), 200)["data"]["agent"]
        again = await client.post(f"{API}/agents", json={"name": agent["name"]}, headers=bearer(key))
        assert "already exists" in assert_envelope(again, 409)["message"]
        found = await client.get(f"{API}/agents?name={agent['name']}", headers=bearer(key))
        assert assert_envelope(found, 200)["data"]["agents"][0]["id"] == ids["aid"]


async def test_key_permissions_are_checked_and_never_escalate(make_gateway) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        ids, reader = await _fixture(client, {"read": True})
        uid = ids["uid"]
        for bad, field in (
            ({"admin": True}, "permissions.admin"),
            ({"read": "yes"}, "permissions.read"),
            ({}, "permissions"),
            ({"read": False, "write": False}, "permissions"),
        ):
            reply = await client.post(f"{API}/users/{uid}/api-keys", json={"permissions": bad}, headers=ADMIN)
            assert assert_envelope(reply, 422)["errors"][0]["field"] == field, bad
        full = assert_envelope(await client.post(f"{API}/users/{uid}/api-keys", json={}, headers=ADMIN), 201)
        assert full["data"]["api_key"]["permissions"] is None  # no permissions given: read and write
        writer = full["data"]["key"]
        narrow = await client.post(
            f"{API}/users/{uid}/api-keys", json={"permissions": {"read": True}}, headers=bearer(writer)
        )
        assert_envelope(narrow, 201)
        write_only = assert_envelope(
            await client.post(f"{API}/users/{uid}/api-keys", json={"permissions": {"write": True}}, headers=ADMIN), 201
        )["data"]["key"]
        wider = await client.post(
            f"{API}/users/{uid}/api-keys",
            json={"permissions": {"read": True, "write": True}},
            headers=bearer(write_only),
        )
        assert "more permissions" in assert_envelope(wider, 403)["message"]
        assert_envelope(await client.post(f"{API}/users/{uid}/api-keys", json={}, headers=bearer(reader)), 403)


async def test_agents_and_user_names_are_no_oracle_across_users(make_gateway) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        a_uid, _a_sid, a_key = await _user_with_key(client, "alice")
        b_uid, _b_sid, b_key = await _user_with_key(client, "bob")
        secret = await client.post(f"{API}/agents", json={"name": "secret-project"}, headers=bearer(a_key))
        secret_id = assert_envelope(secret, 201)["data"]["agent"]["id"]
        assert_envelope(await client.get(f"{API}/agents?name=secret-project", headers=bearer(b_key)), 404)
        assert_envelope(await client.get(f"{API}/agents/{secret_id}", headers=bearer(b_key)), 404)
        listed = assert_envelope(await client.get(f"{API}/agents", headers=bearer(b_key)), 200)["data"]["agents"]
        assert {a["name"] for a in listed} == {"agent-bob"}
        own = await client.post(f"{API}/agents", json={"name": "secret-project"}, headers=bearer(b_key))
        assert assert_envelope(own, 201)["data"]["agent"]["id"] != secret_id  # bob's own, same name: no 409
        body = {"user_id": b_uid, "agent_id": secret_id, "name": "spy"}
        assert_envelope(await client.post(f"{API}/sessions", json=body, headers=bearer(b_key)), 404)
        spy = {"query": "x", "agent_id": secret_id}
        assert_envelope(await client.post(f"{API}/users/{b_uid}/query", json=spy, headers=bearer(b_key)), 404)
        for method in ("PUT", "DELETE"):
            reply = await client.request(method, f"{API}/agents/{secret_id}", json={"name": "x"}, headers=bearer(b_key))
            assert_envelope(reply, 404)
        shared = await client.post(f"{API}/agents", json={"name": "helper"}, headers=ADMIN)
        shared_id = assert_envelope(shared, 201)["data"]["agent"]["id"]
        for key in (a_key, b_key):
            seen = await client.get(f"{API}/agents?name=helper", headers=bearer(key))
            assert assert_envelope(seen, 200)["data"]["agents"][0]["id"] == shared_id
        assert_envelope(await client.put(f"{API}/agents/{shared_id}", json={"name": "x"}, headers=bearer(a_key)), 403)
        renamed = await client.put(f"{API}/agents/{secret_id}", json={"description": "d"}, headers=bearer(a_key))
        assert_envelope(renamed, 200)
        for name in ("alice", "nobody"):  # the same answer whether the user exists or not
            assert_envelope(await client.get(f"{API}/users?name={name}", headers=bearer(b_key)), 403)
        assert_envelope(await client.put(f"{API}/users/{b_uid}", json={"name": "alice"}, headers=bearer(b_key)), 403)
        assert_envelope(
            await client.put(f"{API}/users/{b_uid}", json={"description": "hi"}, headers=bearer(b_key)), 200
        )
        assert_envelope(await client.delete(f"{API}/users/{a_uid}", headers=ADMIN), 200)
        assert_envelope(await client.get(f"{API}/agents/{secret_id}", headers=ADMIN), 404)  # alice's agents went too


def test_agents_of_a_first_release_registry_become_shared(tmp_path: Path) -> None:
    path = tmp_path / "server.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE agents (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        old.execute("INSERT INTO agents VALUES ('a1', 'bot', NULL, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    old.close()
    registry = SQLiteRegistry(path)
    try:
        agent = registry.agent("a1")
        assert agent is not None and agent.user_id is None and agent.name == "bot"
        assert registry.agent_by_name("bot", "some-user") == agent
        mine = registry.create_agent("bot", None, "some-user")
        assert registry.agent_by_name("bot", "some-user") == mine
    finally:
        registry.close()
