"""Every route of the contract in process: shapes the SDK reads, 404s where it needs them, the envelope."""

from __future__ import annotations

import httpx

from memfuse_memory import __version__
from tests.unit.server.conftest import setup_session

API = "/api/v1"


def assert_envelope(reply: httpx.Response, code: int) -> dict:
    assert reply.status_code == code, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == code
    assert body["status"] == ("success" if code < 400 else "error")
    if code >= 400:
        assert body["data"] is None and body["errors"] and isinstance(body["message"], str)
    return body


async def test_health_both_paths_without_redirect(client: httpx.AsyncClient) -> None:
    for path in (f"{API}/health", f"{API}/health/"):
        body = assert_envelope(await client.get(path), 200)
        assert body["data"]["version"].startswith("0.3.") and body["data"]["components"]["message_store"] == "ok"
        assert body["data"]["memfuse_memory_version"] == __version__


async def test_user_agent_session_get_or_create_by_name(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get(f"{API}/users?name=alice"), 404)
    user = assert_envelope(await client.post(f"{API}/users", json={"name": "alice"}), 201)["data"]["user"]
    assert assert_envelope(await client.get(f"{API}/users?name=alice"), 200)["data"]["users"][0]["id"] == user["id"]
    assert_envelope(await client.post(f"{API}/users", json={"name": "alice"}), 409)
    agent = assert_envelope(await client.post(f"{API}/agents", json={"name": "bot"}), 201)["data"]["agent"]
    taken = assert_envelope(await client.post(f"{API}/agents", json={"name": "bot"}), 409)
    assert "already exists" in taken["message"]
    assert assert_envelope(await client.get(f"{API}/agents?name=bot"), 200)["data"]["agents"][0]["id"] == agent["id"]
    assert_envelope(await client.get(f"{API}/sessions?name=chat&user_id={user['id']}"), 404)
    body = {"user_id": user["id"], "agent_id": agent["id"], "name": "chat"}
    session = assert_envelope(await client.post(f"{API}/sessions", json=body), 201)["data"]["session"]
    found = assert_envelope(await client.get(f"{API}/sessions?name=chat&user_id={user['id']}"), 200)
    assert found["data"]["sessions"][0]["id"] == session["id"]
    unnamed = {"user_id": user["id"], "agent_id": agent["id"], "name": None}
    generated = assert_envelope(await client.post(f"{API}/sessions", json=unnamed), 201)["data"]["session"]["name"]
    assert generated.startswith("alice-bot-") and len(generated) == len("alice-bot-") + 8
    ghost = {"user_id": "nobody", "agent_id": agent["id"]}
    assert_envelope(await client.post(f"{API}/sessions", json=ghost), 404)


async def test_messages_add_list_read_update_delete(client: httpx.AsyncClient) -> None:
    _uid, _aid, sid = await setup_session(client)
    url = f"{API}/sessions/{sid}/messages"
    messages = [{"role": "user", "content": "my cat is Miso"}, {"role": "assistant", "content": "nice"}]
    ids = assert_envelope(await client.post(url, json={"messages": messages}), 201)["data"]["message_ids"]
    listed = assert_envelope(await client.get(f"{url}?limit=20&sort_by=timestamp&order=desc"), 200)["data"]["messages"]
    assert [m["id"] for m in listed] == ids[::-1]
    assert set(listed[0]) >= {"id", "session_id", "role", "content", "created_at", "updated_at", "metadata"}
    buffered = assert_envelope(await client.get(f"{url}?buffer_only=true"), 200)["data"]["messages"]
    rest = assert_envelope(await client.get(f"{url}?buffer_only=false"), 200)["data"]["messages"]
    assert {m["id"] for m in buffered} | {m["id"] for m in rest} == set(ids)
    assert not {m["id"] for m in buffered} & {m["id"] for m in rest}
    read = assert_envelope(await client.post(f"{url}/read", json={"message_ids": ids[:1]}), 200)
    assert read["data"]["messages"][0]["content"] == "my cat is Miso"
    update = {"message_ids": ids[:1], "new_messages": [{"role": "user", "content": "my dog is Pixel"}]}
    assert assert_envelope(await client.put(url, json=update), 200)["data"]["message_ids"] == ids[:1]
    read = assert_envelope(await client.post(f"{url}/read", json={"message_ids": ids[:1]}), 200)
    assert read["data"]["messages"][0]["content"] == "my dog is Pixel"
    deleted = await client.request("DELETE", url, json={"message_ids": ids[1:]})
    assert assert_envelope(deleted, 200)["data"]["message_ids"] == ids[1:]
    assert [m["id"] for m in assert_envelope(await client.get(url), 200)["data"]["messages"]] == ids[:1]
    assert_envelope(await client.post(f"{url}/read", json={"message_ids": ids[1:]}), 404)


async def test_bad_list_parameters_are_400_naming_the_field(client: httpx.AsyncClient) -> None:
    _uid, _aid, sid = await setup_session(client)
    url = f"{API}/sessions/{sid}/messages"
    for query, field in (
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("sort_by=size", "sort_by"),
        ("order=up", "order"),
        ("buffer_only=yes", "buffer_only"),
    ):
        body = assert_envelope(await client.get(f"{url}?{query}"), 400)
        assert body["errors"][0]["field"] == field


async def test_bad_input_writes_nothing(client: httpx.AsyncClient) -> None:
    _uid, _aid, sid = await setup_session(client)
    url = f"{API}/sessions/{sid}/messages"
    bad = {"messages": [{"role": "user", "content": "fine"}, {"role": "robot", "content": "bad role"}]}
    body = assert_envelope(await client.post(url, json=bad), 400)
    assert "messages[1].role" in body["message"]
    body = assert_envelope(await client.post(url, json={"messages": "no"}), 422)
    assert body["errors"][0]["field"] == "messages"
    assert assert_envelope(await client.get(url), 200)["data"]["messages"] == []


async def test_query_shape_scope_and_knowledge(client: httpx.AsyncClient) -> None:
    uid, aid, sid = await setup_session(client)
    other = (await client.post(f"{API}/sessions", json={"user_id": uid, "agent_id": aid, "name": "old"})).json()
    other_sid = other["data"]["session"]["id"]
    await client.post(f"{API}/sessions/{sid}/messages", json={"messages": [{"role": "user", "content": "cat Miso"}]})
    await client.post(
        f"{API}/sessions/{other_sid}/messages", json={"messages": [{"role": "user", "content": "cat Tom"}]}
    )
    kn = await client.post(f"{API}/users/{uid}/knowledge", json={"knowledge": ["the cat Miso is grey"]})
    kid = assert_envelope(kn, 201)["data"]["knowledge_ids"][0]
    body = {"query": "cat", "session_id": sid, "agent_id": aid, "top_k": 5}
    results = assert_envelope(await client.post(f"{API}/users/{uid}/query", json=body), 200)["data"]["results"]
    by_type = {r["type"] for r in results}
    assert by_type == {"message", "knowledge"}
    scopes = {r["content"]: r["metadata"]["scope"] for r in results}
    assert scopes["cat Miso"] == "in_session" and scopes["cat Tom"] == "cross_session"
    assert all(isinstance(r["metadata"], dict) for r in results)
    assert [r["id"] for r in results if r["type"] == "knowledge"] == [kid]
    plain = assert_envelope(await client.post(f"{API}/users/{uid}/query", json={"query": "cat"}), 200)["data"]
    assert plain["total"] == 3 and all(r["metadata"]["scope"] is None for r in plain["results"])
    listed = assert_envelope(await client.get(f"{API}/sessions/{sid}/messages"), 200)["data"]["messages"]
    assert [m["content"] for m in listed] == ["cat Miso"]
    assert assert_envelope(await client.get(f"{API}/users/{uid}/knowledge"), 200)["data"]["knowledge"][0]["id"] == kid
    update = {"knowledge_ids": [kid], "new_knowledge": ["the cat Miso is black"]}
    assert_envelope(await client.put(f"{API}/users/{uid}/knowledge", json=update), 200)
    read = await client.post(f"{API}/users/{uid}/knowledge/read", json={"knowledge_ids": [kid]})
    assert assert_envelope(read, 200)["data"]["knowledge"][0]["content"] == "the cat Miso is black"
    gone = await client.request("DELETE", f"{API}/users/{uid}/knowledge", json={"knowledge_ids": [kid]})
    assert_envelope(gone, 200)
    assert assert_envelope(await client.get(f"{API}/users/{uid}/knowledge"), 200)["data"]["knowledge"] == []
    foreign = {"query": "cat", "session_id": "not-a-session"}
    assert_envelope(await client.post(f"{API}/users/{uid}/query", json=foreign), 404)


async def test_framework_errors_wear_the_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/nope"), 404)
    assert_envelope(await client.get(f"{API}/users/x/nothing"), 404)
    assert_envelope(await client.patch(f"{API}/users"), 405)
    assert_envelope(
        await client.post(f"{API}/users", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert_envelope(await client.get(f"{API}/users/"), 404)


async def test_body_size_limit_is_413(make_gateway) -> None:
    async with make_gateway(max_body_bytes=2048) as client:
        reply = await client.post(f"{API}/users", json={"name": "x" * 5000})
        assert_envelope(reply, 413)
        assert assert_envelope(await client.get(f"{API}/users"), 200)["data"]["users"] == []


async def test_delete_session_and_user(client: httpx.AsyncClient) -> None:
    uid, _aid, sid = await setup_session(client)
    await client.post(f"{API}/sessions/{sid}/messages", json={"messages": [{"role": "user", "content": "hi"}]})
    assert_envelope(await client.delete(f"{API}/sessions/{sid}"), 200)
    assert_envelope(await client.get(f"{API}/sessions/{sid}"), 404)
    assert_envelope(await client.delete(f"{API}/users/{uid}"), 200)
    assert_envelope(await client.get(f"{API}/users/{uid}"), 404)
