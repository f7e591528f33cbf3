"""Our query features as optional body fields of both query routes: they reach the engine, a bad value is a
422 naming its field, and the OpenAPI schema lists them."""

from __future__ import annotations

import httpx
import pytest

from tests.unit.server.conftest import setup_session
from tests.unit.server.test_routes import assert_envelope

API = "/api/v1"

MESSAGES = [
    {"role": "user", "content": "I went hiking with Ana", "created_at": "2024-03-02T10:00:00Z", "metadata": {"t": "a"}},
    {"role": "user", "content": "I went hiking with Bo", "created_at": "2024-03-09T10:00:00Z", "metadata": {"t": "b"}},
    {"role": "user", "content": "the cat sleeps all day", "created_at": "2024-03-10T10:00:00Z", "metadata": {"t": "c"}},
]


async def _filled(client: httpx.AsyncClient) -> tuple[str, str, str]:
    uid, aid, sid = await setup_session(client)
    assert_envelope(await client.post(f"{API}/sessions/{sid}/messages", json={"messages": MESSAGES}), 201)
    other = await client.post(f"{API}/sessions", json={"user_id": uid, "agent_id": aid, "name": "other"})
    other_sid = assert_envelope(other, 201)["data"]["session"]["id"]
    hiking = {"messages": [{"role": "user", "content": "I went hiking alone", "created_at": "2024-03-09T11:00:00Z"}]}
    assert_envelope(await client.post(f"{API}/sessions/{other_sid}/messages", json=hiking), 201)
    return uid, sid, other_sid


async def _contents(client: httpx.AsyncClient, path: str, body: dict) -> list[str]:
    results = assert_envelope(await client.post(path, json=body), 200)["data"]["results"]
    return [r["content"] for r in results]


async def test_every_field_reaches_the_engine_on_both_routes(client: httpx.AsyncClient) -> None:
    uid, sid, _other = await _filled(client)
    for path in (f"{API}/users/{uid}/query", f"{API}/sessions/{sid}/query"):
        found = await _contents(client, path, {"query": "hiking", "metadata_filter": {"t": "b"}})
        assert found == ["I went hiking with Bo"]
        ranged = await _contents(
            client, path, {"query": "hiking cat", "since": "2024-03-05T00:00:00Z", "until": 1710028800}
        )
        assert "I went hiking with Ana" not in ranged and "I went hiking with Bo" in ranged
        assert "the cat sleeps all day" not in ranged  # 2024-03-10T10:00Z is after until (2024-03-10T00:00Z)
        oldest_first = await _contents(client, path, {"query": "hiking", "sort_by": "timestamp", "order": "asc"})
        assert oldest_first[0] == "I went hiking with Ana"
        every = assert_envelope(await client.post(path, json={"query": "hiking with Ana"}), 200)["data"]["results"]
        scores = sorted(r["score"] for r in every)
        assert scores[0] < scores[-1]
        cut = (scores[0] + scores[-1]) / 2
        strong = assert_envelope(await client.post(path, json={"query": "hiking with Ana", "min_score": cut}), 200)[
            "data"
        ]["results"]
        assert strong and all(r["score"] >= cut for r in strong) and len(strong) < len(every)
        cat: dict[str, float] = {}
        for reference in ("2024-03-05T12:00:00Z", "2024-03-12T12:00:00Z"):  # last Saturday: 03-02, then 03-09
            body = {"query": "who did I go hiking with last Saturday", "reference_time": reference}
            results = assert_envelope(await client.post(path, json=body), 200)["data"]["results"]
            cat[reference] = next(r["score"] for r in results if r["content"] == "the cat sleeps all day")
        assert cat["2024-03-12T12:00:00Z"] > cat["2024-03-05T12:00:00Z"]  # 03-10 is a day from 03-09


async def test_the_session_route_searches_that_session_only(client: httpx.AsyncClient) -> None:
    uid, sid, other_sid = await _filled(client)
    reply = await client.post(f"{API}/users/{uid}/query", json={"query": "hiking", "top_k": 10})
    names = {r["content"]: r["metadata"]["session_name"] for r in assert_envelope(reply, 200)["data"]["results"]}
    assert names["I went hiking alone"] == "other" and names["I went hiking with Ana"].startswith("alice-bot-")
    reply = await client.post(f"{API}/sessions/{sid}/query", json={"query": "hiking", "top_k": 10})
    results = assert_envelope(reply, 200)["data"]["results"]
    assert results and "I went hiking alone" not in [r["content"] for r in results]
    assert {r["metadata"]["scope"] for r in results} == {"in_session"}
    assert {r["metadata"]["session_id"] for r in results} == {sid}
    assert_envelope(await client.post(f"{API}/sessions/nope/query", json={"query": "hiking"}), 404)
    assert other_sid != sid


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("since", "nope"),
        ("since", True),
        ("until", "2024-01-01T00:00:00Z"),  # earlier than the since below
        ("reference_time", [2024]),
        ("min_score", 1.5),
        ("min_score", "high"),
        ("sort_by", "relevance"),
        ("order", "up"),
        ("metadata_filter", ["t"]),
        ("top_k", 0),
    ],
)
async def test_a_bad_field_is_a_422_naming_it(client: httpx.AsyncClient, field: str, value: object) -> None:
    uid, sid, _other = await _filled(client)
    body = {"query": "hiking", "since": "2024-02-01T00:00:00Z", field: value}
    for path in (f"{API}/users/{uid}/query", f"{API}/sessions/{sid}/query"):
        reply = assert_envelope(await client.post(path, json=body), 422)
        assert [e["field"] for e in reply["errors"]] == [field]
        assert field in reply["message"]


async def test_the_openapi_schema_lists_our_fields(client: httpx.AsyncClient) -> None:
    schema = assert_envelope_free(await client.get("/openapi.json"))
    paths = schema["paths"]
    for path in ("/api/v1/users/{user_id}/query", "/api/v1/sessions/{session_id}/query"):
        ref = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        properties = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
        for field in ("since", "until", "metadata_filter", "sort_by", "order", "min_score", "reference_time"):
            assert properties[field].get("description"), (path, field)


def assert_envelope_free(reply: httpx.Response) -> dict:
    assert reply.status_code == 200
    schema: dict = reply.json()
    return schema
