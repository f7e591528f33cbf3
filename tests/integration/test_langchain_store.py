"""MemFuseStore on the real engine: semantic search with MiniLM, parity with InMemoryStore, a LangGraph graph."""

from __future__ import annotations

from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from langchain_memfuse import MemFuseStore
from memfuse_memory.shared import resolve_service

pytestmark = pytest.mark.integration

FACTS = {
    "pet": "The user owns a tabby cat called Miso",
    "coffee": "The user prefers dark roast coffee without sugar",
    "job": "The user works night shifts as a nurse",
    "trip": "The user is planning a holiday in Lisbon next May",
}


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path
    resolve_service(data_dir=tmp_path).close()


def test_search_ranks_the_semantically_matching_item_first(data_dir):
    store = MemFuseStore(user_id="alice", data_dir=data_dir)
    for key, text in FACTS.items():
        store.put(("memories", "alice"), key, {"text": text})
    expectations = {
        "which animal lives with them?": "pet",
        "what hot drink do they like in the morning?": "coffee",
        "what is their occupation?": "job",
        "where are they travelling for vacation?": "trip",
    }
    for query, key in expectations.items():
        found = store.search(("memories",), query=query, limit=4)
        assert found[0].key == key, (query, [(i.key, i.score) for i in found])
        assert found[0].score is not None and len(found) == 4


def test_items_are_ranked_by_meaning_as_soon_as_put(data_dir):
    store = MemFuseStore(user_id="alice", data_dir=data_dir)
    store.put(("memories", "alice"), "diet", {"text": "Alice is allergic to peanuts"})
    store.put(("memories", "alice"), "birthday", {"text": "Alice's sister was born on 3 March"})
    found = store.search(("memories", "alice"), query="When should I buy my sibling a present?", limit=2)
    assert [i.key for i in found] == ["birthday", "diet"]
    assert found[0].score is not None and found[0].score > (found[1].score or 0)


async def test_same_basic_semantics_as_in_memory_store(data_dir):
    ours, reference = MemFuseStore(user_id="alice", data_dir=data_dir), InMemoryStore()
    for target in (ours, reference):
        for key, text in FACTS.items():
            await target.aput(("memories", "alice"), key, {"text": text})
        await target.aput(("memories", "alice"), "pet", {"text": "The user owns a dog called Rex"})
        await target.adelete(("memories", "alice"), "job")
        await target.aput(("profile",), "name", {"name": "Alice"})

    def view(items):  # as a set: we order by last update (as PostgresStore), InMemoryStore by insertion
        return sorted((i.namespace, i.key, str(i.value)) for i in items)

    assert view(await ours.asearch(("memories",))) == view(await reference.asearch(("memories",)))
    assert view(await ours.asearch((), filter={"name": "Alice"})) == view(
        await reference.asearch((), filter={"name": "Alice"})
    )
    assert (await ours.aget(("memories", "alice"), "pet")).value == {"text": "The user owns a dog called Rex"}
    assert await ours.aget(("memories", "alice"), "job") is None
    assert await ours.alist_namespaces() == await reference.alist_namespaces()


class State(TypedDict):
    user: str
    text: str
    reply: str


def remember(state: State, *, store: BaseStore) -> dict:
    if state["text"].startswith("remember "):
        fact = state["text"].removeprefix("remember ")
        store.put(("memories", state["user"]), str(len(store.search(("memories", state["user"])))), {"text": fact})
        return {"reply": "noted"}
    hits = store.search(("memories", state["user"]), query=state["text"], limit=1)
    return {"reply": hits[0].value["text"] if hits else "I don't know"}


def test_a_langgraph_graph_recalls_across_threads(data_dir):
    store = MemFuseStore(user_label=1, data_dir=data_dir)
    graph = StateGraph(State).add_node("remember", remember).add_edge(START, "remember").add_edge("remember", END)
    app = graph.compile(store=store)
    monday = {"configurable": {"thread_id": "monday"}}
    tuesday = {"configurable": {"thread_id": "tuesday"}}
    assert (
        app.invoke({"user": "alice", "text": "remember my sister's birthday is on 3 March"}, monday)["reply"] == "noted"
    )
    assert app.invoke({"user": "alice", "text": "remember I am allergic to peanuts"}, monday)["reply"] == "noted"
    assert app.invoke({"user": "bob", "text": "remember my sister's birthday is in June"}, monday)["reply"] == "noted"
    reply = app.invoke({"user": "alice", "text": "when should I buy a present for my sibling?", "reply": ""}, tuesday)
    assert reply["reply"] == "my sister's birthday is on 3 March"
    assert app.invoke({"user": "carol", "text": "what do you know?"}, tuesday)["reply"] == "I don't know"
    # with user_label=1 each user's memories live in that memfuse user's partition, apart from messages
    memory = resolve_service(data_dir=data_dir)
    assert memory.query("birthday", user_id="bob")["data"]["results"] == []
    memory.delete_user("bob")
    assert store.search(("memories", "bob")) == []
    assert len(store.search(("memories", "alice"))) == 2


def test_item_vectors_live_in_their_own_chroma_collection_and_go_with_the_user(data_dir):
    from memfuse_memory.storage.vector_store import ITEMS, MESSAGES

    store = MemFuseStore(user_id="dora", data_dir=data_dir, index_fields=["text", "title"])
    store.put(("notes",), "a", {"title": "Lisbon trip", "text": "Dora flies to Lisbon in May"})
    memory = resolve_service(data_dir=data_dir)
    memory.add([{"role": "user", "content": "Dora asked about Lisbon flights"}], "chat", user_id="dora")
    memory.flush_all()
    vectors = memory.components.vectors  # resolve_service gives the engine; its own Chroma, embedded or server
    assert vectors.has_collection("dora", ITEMS) and vectors.has_collection("dora", MESSAGES)
    assert vectors.count("dora", ITEMS) == 2  # one vector per indexed field
    assert vectors.count("dora", MESSAGES) == 1  # the chat message only
    [found] = store.search(("notes",), query="Lisbon trip")
    assert found.score == pytest.approx(1.0, abs=1e-3)  # the title field is the query itself: best field wins
    memory.delete_user("dora")
    assert store.get(("notes",), "a") is None
    assert not vectors.has_collection("dora", ITEMS)
