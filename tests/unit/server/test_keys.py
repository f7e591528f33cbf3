"""Keys and isolation: the admin key creates users and keys; a user's key sees only its user (403)."""

from __future__ import annotations

import httpx
import pytest

from memfuse_memory.config import load_config
from memfuse_memory.errors import ConfigError
from memfuse_memory.server import resolve_settings
from tests.unit.server.conftest import ADMIN_KEY
from tests.unit.server.test_routes import assert_envelope

API = "/api/v1"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _user_with_key(client: httpx.AsyncClient, name: str) -> tuple[str, str, str]:
    uid = (await client.post(f"{API}/users", json={"name": name}, headers=ADMIN)).json()["data"]["user"]["id"]
    made = assert_envelope(await client.post(f"{API}/users/{uid}/api-keys", json={"name": "k"}, headers=ADMIN), 201)
    key = made["data"]["key"]
    agent = await client.post(f"{API}/agents", json={"name": f"agent-{name}"}, headers=bearer(key))
    aid = assert_envelope(agent, 201)["data"]["agent"]["id"]
    body = {"user_id": uid, "agent_id": aid, "name": "chat"}
    sid = assert_envelope(await client.post(f"{API}/sessions", json=body, headers=bearer(key)), 201)["data"]["session"][
        "id"
    ]
    return uid, sid, key


async def test_keys_required_admin_creates_and_users_are_isolated(make_gateway) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        assert_envelope(await client.get(f"{API}/users"), 401)
        assert_envelope(await client.get(f"{API}/users", headers=bearer("wrong-key-0123456789")), 401)
        assert_envelope(await client.get(f"{API}/health"), 200)
        a_uid, a_sid, a_key = await _user_with_key(client, "alice")
        b_uid, b_sid, b_key = await _user_with_key(client, "bob")
        assert_envelope(await client.post(f"{API}/users", json={"name": "eve"}, headers=bearer(a_key)), 403)
        msg = {"messages": [{"role": "user", "content": "alice secret cat"}]}
        assert_envelope(await client.post(f"{API}/sessions/{a_sid}/messages", json=msg, headers=bearer(a_key)), 201)
        kn = {"knowledge": ["alice likes tea"]}
        assert_envelope(await client.post(f"{API}/users/{a_uid}/knowledge", json=kn, headers=bearer(a_key)), 201)
        forbidden = [
            ("GET", f"{API}/users/{a_uid}", None),
            ("GET", f"{API}/users?name=alice", None),
            ("PUT", f"{API}/users/{a_uid}", {"name": "x"}),
            ("DELETE", f"{API}/users/{a_uid}", None),
            ("GET", f"{API}/sessions/{a_sid}", None),
            ("GET", f"{API}/sessions?user_id={a_uid}", None),
            ("POST", f"{API}/sessions", {"user_id": a_uid, "agent_id": "x"}),
            ("DELETE", f"{API}/sessions/{a_sid}", None),
            ("GET", f"{API}/sessions/{a_sid}/messages", None),
            ("POST", f"{API}/sessions/{a_sid}/messages", msg),
            ("POST", f"{API}/sessions/{a_sid}/messages/read", {"message_ids": ["x"]}),
            ("PUT", f"{API}/sessions/{a_sid}/messages", {"message_ids": ["x"], "new_messages": msg["messages"]}),
            ("DELETE", f"{API}/sessions/{a_sid}/messages", {"message_ids": ["x"]}),
            ("POST", f"{API}/users/{a_uid}/query", {"query": "cat"}),
            ("GET", f"{API}/users/{a_uid}/knowledge", None),
            ("POST", f"{API}/users/{a_uid}/knowledge", kn),
            ("POST", f"{API}/users/{a_uid}/knowledge/read", {"knowledge_ids": ["x"]}),
            ("GET", f"{API}/users/{a_uid}/api-keys", None),
            ("POST", f"{API}/users/{a_uid}/api-keys", {}),
        ]
        for method, url, body in forbidden:
            reply = await client.request(method, url, json=body, headers=bearer(b_key))
            assert reply.status_code == 403, (method, url, reply.text)
            assert_envelope(reply, 403)
        listed = assert_envelope(await client.get(f"{API}/sessions", headers=bearer(b_key)), 200)["data"]["sessions"]
        assert [s["id"] for s in listed] == [b_sid]
        users = assert_envelope(await client.get(f"{API}/users", headers=bearer(b_key)), 200)["data"]["users"]
        assert [u["id"] for u in users] == [b_uid]
        found = await client.post(f"{API}/users/{a_uid}/query", json={"query": "cat tea"}, headers=bearer(a_key))
        assert {r["type"] for r in assert_envelope(found, 200)["data"]["results"]} == {"message", "knowledge"}
        own = await client.post(
            f"{API}/users/{b_uid}/query", json={"query": "alice secret cat tea"}, headers=bearer(b_key)
        )
        assert assert_envelope(own, 200)["data"]["results"] == []


async def test_keys_are_hashed_listed_without_secret_and_revocable(make_gateway, tmp_path) -> None:
    async with make_gateway(admin=True, require_api_key=True) as client:
        uid, _sid, key = await _user_with_key(client, "carol")
        listed = assert_envelope(await client.get(f"{API}/users/{uid}/api-keys", headers=bearer(key)), 200)
        record = listed["data"]["api_keys"][0]
        assert key not in str(listed) and record["prefix"] == key[:8]
        assert_envelope(await client.delete(f"{API}/users/{uid}/api-keys/{record['id']}", headers=bearer(key)), 200)
        assert_envelope(await client.get(f"{API}/users/{uid}", headers=bearer(key)), 401)
        assert_envelope(await client.delete(f"{API}/users/{uid}/api-keys/nope", headers=ADMIN), 404)
        past = {"expires_at": "2000-01-01T00:00:00Z"}
        old = assert_envelope(await client.post(f"{API}/users/{uid}/api-keys", json=past, headers=ADMIN), 201)
        assert_envelope(await client.get(f"{API}/users/{uid}", headers=bearer(old["data"]["key"])), 401)
    registry = (tmp_path / "data" / "server.sqlite3").read_bytes()
    assert key.encode() not in registry


def test_public_interface_needs_keys_unless_told(tmp_path) -> None:
    config = load_config(data_dir=tmp_path)
    assert resolve_settings(config, environ={}).require_api_key is False
    with pytest.raises(ConfigError, match="admin key"):
        resolve_settings(config, host="0.0.0.0", environ={})
    settings = resolve_settings(config, host="0.0.0.0", environ={"MEMFUSE_ADMIN_API_KEY": ADMIN_KEY})
    assert settings.require_api_key is True
    open_config = load_config(data_dir=tmp_path, server={"require_api_key": False})
    with pytest.raises(ConfigError, match="refusing"):
        resolve_settings(open_config, host="0.0.0.0", environ={})
    told = load_config(data_dir=tmp_path, server={"require_api_key": False, "allow_public_without_key": True})
    assert resolve_settings(told, host="0.0.0.0", environ={}).require_api_key is False
    with pytest.raises(ConfigError, match="at least"):
        resolve_settings(config, environ={"MEMFUSE_ADMIN_API_KEY": "short"})


def test_serve_refuses_a_public_interface_without_keys_and_starts_nothing(tmp_path, monkeypatch) -> None:
    from memfuse_memory.cli import main

    monkeypatch.delenv("MEMFUSE_ADMIN_API_KEY", raising=False)
    assert main(["--data-dir", str(tmp_path / "data"), "serve", "--host", "0.0.0.0", "--port", "1"]) == 3
    assert not (tmp_path / "data").exists()


async def test_two_users_with_keys_use_the_same_message_ids_and_change_only_their_own(make_gateway) -> None:
    """Ids are unique per user: bob adding ids alice has succeeds (no oracle, no squatting), and
    each key reads, updates and deletes its own message of that id; edit times stay per user."""
    async with make_gateway(admin=True, require_api_key=True) as client:
        users = {name: await _user_with_key(client, name) for name in ("alice", "bob")}
        for name, (_, sid, key) in users.items():
            body = {"messages": [{"id": "m1", "role": "user", "content": f"{name} parks the teal kayak"},
                                 {"id": "m2", "role": "assistant", "content": f"noted, {name}"}]}  # fmt: skip
            added = await client.post(f"{API}/sessions/{sid}/messages", json=body, headers=bearer(key))
            assert assert_envelope(added, 201)["data"]["message_ids"] == ["m1", "m2"]
        (a_uid, a_sid, a_key), (b_uid, b_sid, b_key) = users["alice"], users["bob"]
        update = {"message_ids": ["m1"], "new_messages": [{"role": "user", "content": "alice sold the kayak"}]}
        assert_envelope(await client.put(f"{API}/sessions/{a_sid}/messages", json=update, headers=bearer(a_key)), 200)
        gone = {"message_ids": ["m2"]}
        assert_envelope(
            await client.request("DELETE", f"{API}/sessions/{b_sid}/messages", json=gone, headers=bearer(b_key)), 200
        )
        read = {"message_ids": ["m1"]}
        a_read = await client.post(f"{API}/sessions/{a_sid}/messages/read", json=read, headers=bearer(a_key))
        b_read = await client.post(f"{API}/sessions/{b_sid}/messages/read", json=read, headers=bearer(b_key))
        (a_m1,) = assert_envelope(a_read, 200)["data"]["messages"]
        (b_m1,) = assert_envelope(b_read, 200)["data"]["messages"]
        assert a_m1["content"] == "alice sold the kayak" and a_m1["updated_at"] != a_m1["created_at"]
        assert b_m1["content"] == "bob parks the teal kayak" and b_m1["updated_at"] == b_m1["created_at"]
        a_list = assert_envelope(await client.get(f"{API}/sessions/{a_sid}/messages", headers=bearer(a_key)), 200)
        b_list = assert_envelope(await client.get(f"{API}/sessions/{b_sid}/messages", headers=bearer(b_key)), 200)
        assert sorted(m["id"] for m in a_list["data"]["messages"]) == ["m1", "m2"]
        assert [m["id"] for m in b_list["data"]["messages"]] == ["m1"]
        b_found = await client.post(f"{API}/users/{b_uid}/query", json={"query": "teal kayak"}, headers=bearer(b_key))
        assert [r["content"] for r in assert_envelope(b_found, 200)["data"]["results"]][:1] == [
            "bob parks the teal kayak"
        ]
        a_found = await client.post(f"{API}/users/{a_uid}/query", json={"query": "kayak"}, headers=bearer(a_key))
        a_contents = {r["content"] for r in assert_envelope(a_found, 200)["data"]["results"]}
        assert "alice sold the kayak" in a_contents and a_contents <= {"alice sold the kayak", "noted, alice"}
