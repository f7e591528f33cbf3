"""The official MemFuse SDK (memfuse==0.3.3, unchanged) against ``memfuse-memory serve`` in a subprocess,
with the real MiniLM, Chroma and SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from memfuse import AsyncMemFuse, MemFuse
from memfuse.utils.error_handling import MemFuseHTTPError

from memfuse_memory.server.process import ServerProcess, free_port

ADMIN_KEY = "integration-admin-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("open") / "data").start()
    yield process
    assert process.stop() == 0, process.log_tail()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("keyed")
    config = root / "server.yaml"
    config.write_text("server:\n  require_api_key: true\n")
    env = {**os.environ, "MEMFUSE_ADMIN_API_KEY": ADMIN_KEY}
    process = ServerProcess(root / "data", config=config, env=env).start()
    yield process
    assert process.stop() == 0, process.log_tail()


def test_sync_sdk_full_flow(server: ServerProcess) -> None:
    client = MemFuse(base_url=server.base_url)
    memory = client.init(user="alice", agent="helper", session="trip")
    again = client.init(user="alice", agent="helper", session="trip")
    assert (memory.user_id, memory.agent_id, memory.session_id) == (again.user_id, again.agent_id, again.session_id)

    added = memory.add(
        [{"role": "user", "content": "I adopted a cat named Miso"}, {"role": "assistant", "content": "Congrats!"}]
    )
    ids = added["data"]["message_ids"]
    assert len(ids) == 2
    buffered = memory.list_messages(limit=10, buffer_only=True)["data"]["messages"]
    stored = memory.list_messages(limit=10, buffer_only=False)["data"]["messages"]
    assert {m["id"] for m in buffered} | {m["id"] for m in stored} == set(ids)
    assert not {m["id"] for m in buffered} & {m["id"] for m in stored}
    newest = memory.list_messages(limit=1)["data"]["messages"]
    assert [m["content"] for m in newest] == ["Congrats!"]

    other = client.init(user="alice", agent="helper", session="other")
    other.add([{"role": "user", "content": "my sister's cat is called Tom"}])
    hits = memory.query_session("what is my cat called?")["data"]["results"]
    scopes = {h["content"]: h["metadata"]["scope"] for h in hits}
    assert scopes["I adopted a cat named Miso"] == "in_session"
    assert scopes["my sister's cat is called Tom"] == "cross_session"
    every = memory.query("cat", top_k=5)["data"]
    assert every["total"] == len(every["results"]) >= 2
    assert all(isinstance(h["metadata"], dict) for h in every["results"])

    read = memory.read([ids[0]])["data"]["messages"]
    assert read[0]["content"] == "I adopted a cat named Miso"
    memory.update([ids[0]], [{"role": "user", "content": "I adopted a dog named Pixel"}])
    assert memory.read([ids[0]])["data"]["messages"][0]["content"] == "I adopted a dog named Pixel"
    assert memory.query_session("what is my dog called?")["data"]["results"][0]["id"] == ids[0]
    memory.delete([ids[1]])
    assert [m["id"] for m in memory.list_messages()["data"]["messages"]] == [ids[0]]
    with pytest.raises(MemFuseHTTPError):
        memory.read([ids[1]])

    kid = memory.add_knowledge(["Alice is allergic to peanuts"])["data"]["knowledge_ids"][0]
    assert memory.read_knowledge([kid])["data"]["knowledge"][0]["content"] == "Alice is allergic to peanuts"
    found = memory.query("is Alice allergic to peanuts?")["data"]["results"]
    assert found[0]["type"] == "knowledge" and found[0]["id"] == kid
    in_session = memory.query_session("peanuts allergy")["data"]["results"]
    assert kid in [h["id"] for h in in_session]
    assert all(m["id"] != kid for m in memory.list_messages()["data"]["messages"])
    memory.update_knowledge([kid], ["Alice is allergic to shellfish"])
    assert (
        client.knowledge.list_sync(memory.user_id)["data"]["knowledge"][0]["content"]
        == "Alice is allergic to shellfish"
    )
    memory.delete_knowledge([kid])
    assert client.knowledge.list_sync(memory.user_id)["data"]["knowledge"] == []

    generated = client.init(user="alice")
    assert generated.session_id != memory.session_id and generated.session.startswith("alice-")
    client.close()


async def test_async_sdk_flow(server: ServerProcess) -> None:
    client = AsyncMemFuse(base_url=server.base_url)
    memory = await client.init(user="bob", agent="helper", session="async")
    again = await client.init(user="bob", agent="helper", session="async")
    assert (memory.user_id, memory.session_id) == (again.user_id, again.session_id)
    ids = (await memory.add([{"role": "user", "content": "I live in Lisbon near the river"}]))["data"]["message_ids"]
    listed = (await memory.list_messages(limit=10, buffer_only=True))["data"]["messages"]
    rest = (await memory.list_messages(limit=10, buffer_only=False))["data"]["messages"]
    assert [m["id"] for m in listed + rest] == ids
    hits = (await memory.query_session("which city do I live in?"))["data"]["results"]
    assert hits[0]["id"] == ids[0] and hits[0]["metadata"]["scope"] == "in_session"
    await memory.update(ids, [{"role": "user", "content": "I live in Porto"}])
    assert (await memory.read(ids))["data"]["messages"][0]["content"] == "I live in Porto"
    await memory.delete(ids)
    assert (await memory.list_messages())["data"]["messages"] == []
    await client.close()


def test_two_users_with_keys_cannot_see_each_other(keyed_server: ServerProcess) -> None:
    base = keyed_server.base_url
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    keys = {}
    with httpx.Client(base_url=base) as http:
        assert http.get("/api/v1/users").status_code == 401
        for name in ("carol", "dave"):
            uid = http.post("/api/v1/users", json={"name": name}, headers=admin).json()["data"]["user"]["id"]
            keys[name] = http.post(f"/api/v1/users/{uid}/api-keys", json={}, headers=admin).json()["data"]["key"]
    carol = MemFuse(base_url=base, api_key=keys["carol"]).init(user="carol", agent="a", session="s")
    dave_client = MemFuse(base_url=base, api_key=keys["dave"])
    dave = dave_client.init(user="dave", agent="a", session="s")
    carol.add([{"role": "user", "content": "carol's password hint is blue whale"}])
    dave.add([{"role": "user", "content": "dave likes whales too"}])
    assert all("carol" not in h["content"] for h in dave.query("blue whale password")["data"]["results"])
    with pytest.raises(MemFuseHTTPError):
        dave_client.init(user="carol")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['dave']}"}) as http:
        assert http.get(f"/api/v1/sessions/{carol.session_id}/messages").status_code == 403
        assert http.post(f"/api/v1/users/{carol.user_id}/query", json={"query": "whale"}).status_code == 403
    with pytest.raises(MemFuseHTTPError):
        MemFuse(base_url=base).init(user="carol")


def test_a_read_only_key_inits_reads_and_queries_but_cannot_write(keyed_server: ServerProcess) -> None:
    base = keyed_server.base_url
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base) as http:
        uid = http.post("/api/v1/users", json={"name": "erin-ro"}, headers=admin).json()["data"]["user"]["id"]
        full = http.post(f"/api/v1/users/{uid}/api-keys", json={}, headers=admin).json()["data"]["key"]
        body = {"permissions": {"read": True}}
        reader = http.post(f"/api/v1/users/{uid}/api-keys", json=body, headers=admin).json()["data"]["key"]
    writer = MemFuse(base_url=base, api_key=full).init(user="erin-ro", agent="helper", session="notes")
    writer.add([{"role": "user", "content": "the spare key is under the blue pot"}])
    memory = MemFuse(base_url=base, api_key=reader).init(user="erin-ro", agent="helper", session="notes")
    assert (memory.user_id, memory.agent_id, memory.session_id) == (writer.user_id, writer.agent_id, writer.session_id)
    assert [m["content"] for m in memory.list_messages()["data"]["messages"]] == ["the spare key is under the blue pot"]
    assert "blue pot" in memory.query_session("where is the spare key?")["data"]["results"][0]["content"]
    with pytest.raises(MemFuseHTTPError, match="write"):
        memory.add([{"role": "user", "content": "overwritten"}])
    assert len(writer.list_messages()["data"]["messages"]) == 1


def test_docs_page_works_offline(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/docs")
        assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
        assert "cdn" not in page.text.lower()
        assert http.get("/docs/static/swagger-ui-bundle.js").status_code == 200
        assert http.get("/docs/static/swagger-ui.css").status_code == 200
        assert "/api/v1/users/{user_id}/query" in http.get("/openapi.json").json()["paths"]


def test_bad_input_over_http_is_a_4xx_naming_the_field(server: ServerProcess, tmp_path: Path) -> None:
    memory = MemFuse(base_url=server.base_url).init(user="erin", agent="a", session="s")
    with httpx.Client(base_url=server.base_url) as http:
        reply = http.post(f"/api/v1/sessions/{memory.session_id}/messages", json={"messages": [{"role": "x"}]})
        assert reply.status_code == 400 and "messages[0]" in reply.json()["message"]
        assert http.get(f"/api/v1/sessions/{memory.session_id}/messages").json()["data"]["messages"] == []


def test_a_second_server_on_the_same_data_dir_fails_with_exit_1(server: ServerProcess) -> None:
    command = [sys.executable, "-m", "memfuse_memory", "--data-dir", str(server.data_dir), "serve"]
    second = subprocess.run([*command, "--port", str(free_port())], capture_output=True, text=True, timeout=180)
    assert second.returncode == 1, second.stderr[-2000:]
    assert "in use by another process" in second.stderr and "did not start" in second.stderr
    assert server.healthy()
