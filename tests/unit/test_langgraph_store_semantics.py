"""MemFuseStore on the key-value table: LangGraph's search, namespace and TTL semantics, migration."""

from __future__ import annotations

import time

import numpy as np
import pytest
from langgraph.store.base import InvalidNamespaceError, PutOp

from langchain_memfuse import MemFuseStore
from langchain_memfuse._store_legacy import catalog_of, item_record, namespace_record, session_of
from langchain_memfuse._store_migration import MARKER
from memfuse_memory.errors import InvalidInputError
from memfuse_memory.storage.kv_query import compile_filter, prefix_condition


@pytest.fixture
def store(memory):
    return MemFuseStore(user_id="app", service=memory)


def keys(items):
    return sorted(item.key for item in items)


def test_reserved_root_is_refused_by_put_but_writable_through_batch(store):
    with pytest.raises(InvalidNamespaceError, match="langgraph"):
        store.put(("langgraph", "x"), "k", {"v": 1})
    store.batch([PutOp(("langgraph", "x"), "k", {"v": 1})])
    assert store.get(("langgraph", "x"), "k").value == {"v": 1}


def test_lists_are_namespaces_too(store):
    store.put(("docs", "a"), "k", {"v": 1})
    assert keys(store.search(["docs"])) == ["k"]
    assert store.list_namespaces(prefix=["docs"]) == [("docs", "a")]


def test_empty_query_is_a_filter_search(store):
    store.put(("n",), "a", {"v": 1})
    store.put(("n",), "b", {"v": 2})
    assert keys(store.search(("n",), query="", filter={"v": 2})) == ["b"]
    assert all(item.score is None for item in store.search(("n",), query=""))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ({"a.b": 1}, ["x"]),
        ({"a": {"b": 1}}, ["x"]),
        ({"a.b": {"$ne": 1}}, ["y", "z"]),
        ({"n": {"$gt": 2}}, ["y"]),
        ({"n": {"$gte": 2, "$lt": 5}}, ["x", "y"]),
        ({"n": {"$lte": 2}}, ["x"]),
        ({"tags": ["red", "blue"]}, ["x"]),
        ({"flag": True}, ["y"]),
        ({"name": "o'neil; DROP TABLE kv_items"}, ["z"]),
        ({"user-id": "7"}, ["z"]),
        ({"missing": {"$eq": None}}, []),
        ({"access') = 'public' OR '1'='1' OR json_extract(value, '$.": "dummy"}, []),
        ({"n": {"$lt": 10**100}}, ["x", "y"]),
    ],
)
def test_filters_follow_langgraph(store, wanted, expected):
    store.put(("f",), "x", {"a": {"b": 1}, "n": 2, "tags": ["red", "blue"], "flag": False})
    store.put(("f",), "y", {"a": {"b": 2}, "n": 4.5, "flag": True})
    store.put(("f",), "z", {"name": "o'neil; DROP TABLE kv_items", "user-id": "7"})
    assert keys(store.search(("f",), filter=wanted)) == expected


def test_filters_compile_to_bound_parameters():
    sql, params = compile_filter({"a.b": {"$gt": 3}})
    assert "?" in sql and params == ['$."a"."b"', '$."a"."b"', 3]
    assert prefix_condition(("a", "b"))[1] == ["a.b", "a.b.", "a.b/"]


def test_prefixes_stop_at_segment_boundaries_and_take_metacharacters_literally(store):
    for namespace in [("foo",), ("foo", "child"), ("foobar",), ("user_1",), ("userX1",), ("a%b",), ("axxb",)]:
        store.put(namespace, "k", {"v": 1})
    assert {i.namespace for i in store.search(("foo",))} == {("foo",), ("foo", "child")}
    assert {i.namespace for i in store.search(("user_1",))} == {("user_1",)}
    assert {i.namespace for i in store.search(("a%b",))} == {("a%b",)}
    assert {i.namespace for i in store.search(("fo",))} == set()
    assert store.list_namespaces(prefix=("foo",)) == [("foo",), ("foo", "child")]
    assert store.list_namespaces(prefix=("*", "child")) == [("foo", "child")]


def test_pagination_is_newest_first_and_pages_add_up(store):
    for number in range(7):
        store.put(("p",), f"k{number}", {"n": number})
    everything = [i.key for i in store.search(("p",), limit=100)]
    assert everything == [f"k{n}" for n in reversed(range(7))]
    pages = [i.key for offset in range(0, 7, 3) for i in store.search(("p",), limit=3, offset=offset)]
    assert pages == everything
    assert store.list_namespaces(limit=1, offset=0) == [("p",)] and store.list_namespaces(offset=1) == []


def test_score_is_the_best_fields_cosine_similarity(store, embedder):
    store.put(("s",), "doc", {"title": "red apple", "body": "a car on the road"}, index=["title", "body"])
    [found] = store.search(("s",), query="red apple")
    vectors = embedder.embed(["red apple", "a car on the road", "red apple"])
    expected = max(float(vectors[0] @ vectors[2]), float(vectors[1] @ vectors[2]))
    assert found.score == pytest.approx(expected, abs=1e-5)


def test_scores_with_an_index_config_embedding_function(memory):
    def embed(texts):
        return [[1.0, float(len(text))] for text in texts]

    store = MemFuseStore(user_id="app", service=memory, index={"dims": 2, "embed": embed, "fields": ["t"]})
    store.put(("s",), "a", {"t": "abc"})
    [found] = store.search(("s",), query="abcdef")
    query, item = np.array([1.0, 6.0]), np.array([1.0, 3.0])
    assert found.score == pytest.approx(float(query @ item / np.linalg.norm(query) / np.linalg.norm(item)), abs=1e-5)


def test_index_false_store_keeps_no_vectors_and_query_only_filters(memory, vectors):
    store = MemFuseStore(user_id="app", service=memory, index=False)
    store.put(("n",), "a", {"text": "hello"})
    assert store.search(("n",), query="hello")[0].score is None
    assert vectors.items_index.vectors == {}


def test_ttl_items_vanish_at_once_refresh_on_read_and_are_swept(store, vectors):
    store.put(("t",), "short", {"text": "gone soon"}, ttl=0.5 / 60)
    store.put(("t",), "forever", {"text": "stays"})
    assert store.get(("t",), "short", refresh_ttl=True) is not None
    time.sleep(0.3)
    assert store.get(("t",), "short", refresh_ttl=True) is not None  # restarted at 0.3 s: lives to 0.8 s
    time.sleep(0.35)
    assert keys(store.search(("t",), refresh_ttl=False)) == ["forever", "short"]
    time.sleep(0.3)
    assert store.get(("t",), "short") is None
    assert keys(store.search(("t",), query="gone soon")) == ["forever"]
    assert store.sweep_ttl() == 1
    assert len(vectors.items_index.vectors["app"]) == 1
    assert store.stop_ttl_sweeper(timeout=5)


def test_an_expired_namespace_is_not_listed(store):
    store.put(("e",), "k", {"v": 1}, ttl=0.1 / 60)
    store.put(("keep",), "k", {"v": 1})
    time.sleep(0.15)
    assert store.list_namespaces() == [("keep",)]


def test_default_ttl_from_the_ttl_config(memory):
    store = MemFuseStore(user_id="app", service=memory, ttl={"default_ttl": 0.1 / 60, "refresh_on_read": False})
    store.put(("d",), "k", {"v": 1})
    store.put(("d",), "kept", {"v": 1}, ttl=None)
    time.sleep(0.15)
    assert keys(store.search(("d",))) == ["kept"]
    store.stop_ttl_sweeper()


def test_bad_ttl_is_refused_before_anything_is_written(store):
    with pytest.raises(Exception, match="ttl"):
        store.batch([PutOp(("n",), "a", {"v": 1}), PutOp(("n",), "b", {"v": 1}, ttl=-1)])
    assert store.search(("n",)) == []


def test_legacy_items_migrate_on_open(make_memory):
    memory = make_memory()
    old_item = item_record(
        ("memories", "alice"),
        "pet",
        {"text": "Alice has a cat"},
        index=None,
        default_fields=None,
        created_at="2024-01-02T03:04:05Z",
        updated_at="2024-02-03T04:05:06Z",
    )
    memory.add([namespace_record(("memories", "alice"))], catalog_of(None), user_id="app")
    memory.add([old_item], session_of(("memories", "alice")), user_id="app")
    assert memory.engine.kv.meta(MARKER) is None
    store = MemFuseStore(user_id="app", service=memory)
    item = store.get(("memories", "alice"), "pet")
    assert item.value == {"text": "Alice has a cat"}
    assert item.created_at.year == 2024
    assert [i.key for i in store.search(("memories",), query="cat")] == ["pet"]
    assert store.list_namespaces() == [("memories", "alice")]
    assert [s["session_id"] for s in memory.list_sessions(user_id="app")["data"]["sessions"]] == []
    assert memory.engine.kv.meta(MARKER) == "1"


def test_an_item_whose_vectors_fail_is_kept_and_listed_unscored(store, vectors, monkeypatch):
    def fail(*args, **kwargs):
        raise ConnectionError("vector store is down")

    monkeypatch.setattr(vectors.items_index, "write", fail)
    with pytest.raises(Exception, match="not indexed"):
        store.put(("v",), "k", {"text": "kept anyway"})
    assert store.get(("v",), "k").value == {"text": "kept anyway"}
    assert [(i.key, i.score) for i in store.search(("v",), query="kept")] == [("k", None)]


def test_an_unknown_distance_type_is_refused(memory):
    with pytest.raises(InvalidInputError, match="distance_type"):
        MemFuseStore(
            user_id="app",
            service=memory,
            index={"dims": 8, "embed": lambda t: [[1.0] * 8] * len(t), "distance_type": "hamming"},
        )


@pytest.mark.parametrize(("distance", "expected"), [("cosine", 0.6), ("inner_product", 1.2), ("l2", -(2.6**0.5))])
def test_scores_follow_the_index_distance_type(memory, distance, expected):
    vectors = {"doc": [2.0, 0.0], "query": [0.6, 0.8]}
    store = MemFuseStore(
        user_id="app",
        service=memory,
        index={
            "dims": 2,
            "embed": lambda texts: [vectors[t] for t in texts],
            "distance_type": distance,
            "fields": ["t"],
        },
    )
    store.put(("d",), "k", {"t": "doc"})
    (hit,) = store.search(("d",), query="query")
    assert hit.score == pytest.approx(expected, abs=1e-6)  # |(2, 0) - (0.6, 0.8)|^2 = 1.96 + 0.64
