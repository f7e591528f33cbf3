"""MemFuseStore over the fake embedder, side by side with LangGraph's own InMemoryStore."""

from __future__ import annotations

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from langchain_memfuse import MemFuseStore
from memfuse_memory import InvalidInputError, InvalidQueryError, MemFuseError
from tests.fakes import FakeEmbedder

MEMORIES = [
    (("memories", "alice"), "food", {"text": "Alice loves spicy ramen", "kind": "preference", "stars": 5}),
    (("memories", "alice"), "pet", {"text": "Alice has a cat named Miso", "kind": "fact", "stars": 3}),
    (("memories", "bob"), "food", {"text": "Bob is allergic to peanuts", "kind": "fact", "stars": 4}),
    (("memories", "bob", "work"), "job", {"text": "Bob works as a nurse at night", "kind": "fact", "stars": 2}),
    (("docs",), "readme", {"text": "How to install the project", "kind": "doc", "stars": 1}),
]


def reference_store() -> InMemoryStore:
    embedder = FakeEmbedder()
    return InMemoryStore(index={"dims": embedder.dimension, "embed": lambda texts: embedder.embed(texts).tolist()})


def view(result):
    """What both stores must agree on: namespaces, keys and values, in order."""
    if result is None:
        return None
    if isinstance(result, list):
        return [view(r) if not isinstance(r, tuple) else r for r in result]
    return (result.namespace, result.key, result.value)


def unordered(items):
    """Search results as a set: we order by last update (as PostgresStore), InMemoryStore by insertion."""
    return sorted(items, key=lambda item: (item.namespace, item.key))


@pytest.fixture
def store(memory):
    return MemFuseStore(user_id="app", service=memory)


def fill(*stores):
    for target in stores:
        for namespace, key, value in MEMORIES:
            target.put(namespace, key, value)


def test_same_answers_as_in_memory_store(store):
    reference = reference_store()
    fill(store, reference)
    calls = [
        lambda s: s.get(("memories", "alice"), "pet"),
        lambda s: s.get(("memories", "alice"), "missing"),
        lambda s: unordered(s.search(("memories",))),
        lambda s: unordered(s.search(("memories", "bob"))),
        lambda s: unordered(s.search((), filter={"kind": "fact"})),
        lambda s: unordered(s.search((), filter={"stars": {"$gte": 3}, "kind": {"$ne": "preference"}})),
        lambda s: unordered(s.search((), query="", filter={"stars": {"$lt": 3}})),
        lambda s: s.search(("nothing",)),
        lambda s: s.list_namespaces(),
        lambda s: s.list_namespaces(prefix=("memories",)),
        lambda s: s.list_namespaces(prefix=("memories", "*")),
        lambda s: s.list_namespaces(suffix=("work",)),
        lambda s: s.list_namespaces(max_depth=1),
        lambda s: s.list_namespaces(limit=2, offset=1),
    ]
    for call in calls:
        assert view(call(store)) == view(call(reference))

    for target in (store, reference):
        target.put(("memories", "alice"), "pet", {"text": "Alice adopted a dog named Rex", "kind": "fact", "stars": 4})
        target.delete(("memories", "bob"), "food")
        target.delete(("memories", "bob"), "never-existed")
    for call in calls[:8]:
        assert view(call(store)) == view(call(reference))
    # The one deliberate difference: a namespace whose last item was deleted is no longer listed
    # (InMemoryStore keeps listing it; LangGraph's Postgres store does not).
    assert ("memories", "bob") in reference.list_namespaces()
    assert store.list_namespaces() == [ns for ns in reference.list_namespaces() if ns != ("memories", "bob")]


def test_reads_never_create_namespaces(store):
    # InMemoryStore lists a namespace once anything read it (a defaultdict quirk); we list only
    # namespaces that hold items, as LangGraph's Postgres store does.
    fill(store)
    assert store.get(("memories",), "pet") is None
    assert store.search(("ghost",)) == []
    assert ("memories",) not in store.list_namespaces()
    assert ("ghost",) not in store.list_namespaces()


def test_query_ranks_the_matching_item_first_like_in_memory_store(store):
    reference = reference_store()
    fill(store, reference)
    for query in ["cat named Miso", "peanuts allergy", "nurse night work"]:
        ours = store.search(("memories",), query=query)
        theirs = reference.search(("memories",), query=query)
        assert ours[0].key == theirs[0].key and ours[0].namespace == theirs[0].namespace
        assert ours[0].score is not None and ours[0].score > 0
        assert {(i.namespace, i.key) for i in ours} == {(i.namespace, i.key) for i in theirs}


def test_query_results_stay_within_prefix_and_filter(store):
    fill(store)
    found = store.search(("memories", "bob"), query="Alice cat Miso ramen", filter={"kind": "fact"})
    assert {(i.namespace, i.key) for i in found} == {
        (("memories", "bob"), "food"),
        (("memories", "bob", "work"), "job"),
    }


def test_batch_reads_see_the_store_before_the_batch(store):
    reference = reference_store()
    ops = [
        PutOp(("n",), "a", {"v": 1}),
        ListNamespacesOp(),
        GetOp(("n",), "a"),
        SearchOp(("n",)),
        PutOp(("n",), "a", {"v": 2}),
    ]
    ours, theirs = store.batch(ops), reference.batch(ops)
    assert view(ours) == view(theirs) == [None, [], None, [], None]
    assert store.get(("n",), "a").value == reference.get(("n",), "a").value == {"v": 2}


async def test_async_api_matches_sync(store):
    await store.aput(("mem", "u"), "k", {"text": "likes tea"})
    assert (await store.aget(("mem", "u"), "k")).value == {"text": "likes tea"}
    assert view(await store.asearch(("mem",))) == view(store.search(("mem",)))
    assert await store.alist_namespaces() == [("mem", "u")]
    await store.adelete(("mem", "u"), "k")
    assert await store.aget(("mem", "u"), "k") is None


def test_replace_keeps_one_row_and_created_at_and_moves_to_the_front(store, memory):
    store.put(("n",), "a", {"text": "first"})
    store.put(("n",), "b", {"text": "second"})
    before = store.get(("n",), "a")
    store.put(("n",), "a", {"text": "first, edited"})
    after = store.get(("n",), "a")
    assert after.value == {"text": "first, edited"}
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert [i.key for i in store.search(("n",))] == ["a", "b"]  # newest update first, one row each
    assert [i.value["text"] for i in store.search(("n",), query="first", limit=1)] == ["first, edited"]


def test_store_items_and_messages_never_mix(store, memory):
    memory.add([{"role": "user", "content": "secret code 1234"}], "chat", user_id="app")
    store.put(("a",), "k", {"text": "secret code 1234"})
    memory.flush_all()
    recalled = memory.query("secret code 1234", user_id="app")["data"]["results"]
    assert [r["metadata"] for r in recalled] == [{}]  # only the chat message
    found = store.search((), query="secret code 1234")
    assert [(i.namespace, i.key) for i in found] == [(("a",), "k")]


def test_deleting_the_last_item_drops_the_namespace_and_its_vectors(store, vectors):
    store.put(("a",), "k", {"text": "secret code 1234"}, index=["text"])
    store.put(("b",), "k", {"text": "other"})
    assert len(vectors.items_index.vectors["app"]) == 2
    store.delete(("a",), "k")
    assert store.list_namespaces() == [("b",)]
    assert len(vectors.items_index.vectors["app"]) == 1
    assert [i.namespace for i in store.search((), query="secret code 1234")] == [("b",)]


def test_unindexed_items_are_kept_but_never_scored(store):
    store.put(("n",), "hidden", {"text": "pineapple pizza"}, index=False)
    store.put(("n",), "shown", {"text": "pineapple pizza"})
    store.put(("n",), "fields", {"title": "pineapple", "body": "nothing here"}, index=["title"])
    found = {i.key: i.score for i in store.search(("n",), query="pineapple pizza")}
    assert found["hidden"] is None and found["shown"] is not None and found["fields"] is not None


def test_user_label_maps_namespaces_onto_memfuse_users(memory, vectors):
    store = MemFuseStore(user_id="app", user_label=1, service=memory)
    store.put(("memories", "alice"), "pet", {"text": "cat named Miso"})
    store.put(("memories", "bob"), "pet", {"text": "dog named Rex"})
    assert set(vectors.items_index.vectors) == {"alice", "bob"}
    assert {i.key for i in store.search(("memories",), query="named")} == {"pet"}
    assert len(store.search(("memories",), query="named")) == 2
    assert [i.namespace for i in store.search(("memories", "alice"), query="named")] == [("memories", "alice")]
    memory.delete_user("alice")
    assert store.get(("memories", "alice"), "pet") is None
    assert "alice" not in vectors.items_index.vectors
    assert store.get(("memories", "bob"), "pet").value == {"text": "dog named Rex"}


def test_empty_value_and_any_key_text_round_trip(store):
    store.put(("n",), "", {})
    store.put(("n",), "with/slash and spaces", {"nested": {"list": [1, 2.5, None, True]}})
    assert store.get(("n",), "").value == {}
    assert store.get(("n",), "with/slash and spaces").value == {"nested": {"list": [1, 2.5, None, True]}}


def test_long_and_odd_namespace_labels(store):
    namespace = ("x" * 150, "y/z\\w", "%2F")
    store.put(namespace, "k", {"v": 1})
    assert store.get(namespace, "k").value == {"v": 1}
    assert store.list_namespaces() == [namespace]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.batch([PutOp(("a.b",), "k", {"v": 1})]), InvalidNamespaceError, "label"),
        (lambda s: s.batch([PutOp((), "k", {"v": 1})]), InvalidNamespaceError, "at least one label"),
        (lambda s: s.batch([PutOp(("n",), "k", ["not", "a", "dict"])]), InvalidInputError, "value must be a dict"),
        (lambda s: s.batch([PutOp(("n",), 7, {"v": 1})]), InvalidInputError, "key must be a string"),
        (lambda s: s.batch([SearchOp(("n",), limit=-1)]), InvalidQueryError, "limit"),
        (lambda s: s.batch(["not an op"]), InvalidInputError, "unsupported store operation"),
        (lambda s: s.search(("n",), filter={"v": {"$regex": "x"}}), InvalidInputError, "operator"),
    ],
)
def test_bad_input_is_a_typed_memfuse_error(store, call, error, match):
    store.put(("n",), "k", {"v": 1})
    with pytest.raises(error, match=match) as caught:
        call(store)
    assert isinstance(caught.value, MemFuseError)
    assert store.search(("n",))[0].value == {"v": 1}


def test_bad_constructor_arguments(memory):
    with pytest.raises(InvalidInputError, match="user_label"):
        MemFuseStore(user_label="1", service=memory)


def test_each_agent_has_its_own_store_space(memory):
    planner = MemFuseStore(user_id="app", agent_id="planner", service=memory)
    critic = MemFuseStore(user_id="app", agent_id="critic", service=memory)
    shared = MemFuseStore(user_id="app", service=memory)
    planner.put(("notes",), "k", {"text": "plan the launch"})
    critic.put(("notes",), "k", {"text": "the plan is risky"})
    assert planner.get(("notes",), "k").value == {"text": "plan the launch"}
    assert critic.get(("notes",), "k").value == {"text": "the plan is risky"}
    assert shared.get(("notes",), "k") is None and shared.list_namespaces() == []
    assert [i.value["text"] for i in critic.search((), query="plan launch risky")] == ["the plan is risky"]
    planner.delete(("notes",), "k")
    assert critic.list_namespaces() == [("notes",)] and planner.list_namespaces() == []


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_prebuilt_react_agent_accepts_the_store(store):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langgraph.prebuilt import create_react_agent

    agent = create_react_agent(FakeListChatModel(responses=["hi"]), tools=[], store=store)
    assert agent.store is store
    assert agent.invoke({"messages": [("user", "hello")]})["messages"][-1].content == "hi"
