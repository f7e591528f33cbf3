"""QueryBuffer: the LRU cache (generations, versions, invalidation) and result assembly."""

from __future__ import annotations

from dataclasses import replace

from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.models import Hit
from memfuse_memory.scope import INTERNAL_PREFIX
from tests.builders import round_of
from tests.fakes import query_request


def results(n: int) -> list[dict]:
    return [{"id": str(n)}]


def test_an_answer_is_served_until_the_user_changes() -> None:
    cache = QueryBuffer(cache_size=10, max_size=15)
    request = query_request("cats")
    cache.put(request, results(1), cache.generation("alice", version=3))
    assert cache.get(request, version=3) == results(1)
    assert cache.get(request, version=4) is None, "another process wrote: the entry is outdated"
    cache.put(request, results(2), cache.generation("alice", version=4))
    cache.invalidate({"bob"})
    assert cache.get(request, version=4) == results(2), "another user's write changes nothing"
    cache.invalidate({"alice"})
    assert cache.get(request, version=4) is None
    stats = cache.stats()
    assert stats["cache_hits"] == 2 and stats["cache_misses"] == 2


def test_an_answer_computed_across_a_write_is_not_cached() -> None:
    cache = QueryBuffer(cache_size=10, max_size=15)
    request = query_request("cats")
    before = cache.generation("alice")
    cache.invalidate({"alice"})
    cache.put(request, results(1), before)
    assert cache.get(request) is None


def test_the_cache_is_a_bounded_lru_and_hands_out_copies() -> None:
    cache = QueryBuffer(cache_size=2, max_size=15)
    first, second, third = (query_request(text) for text in ("a", "b", "c"))
    for request in (first, second):
        cache.put(request, results(1), cache.generation("alice"))
    got = cache.get(first)
    assert got is not None
    got[0]["id"] = "changed"
    cache.put(third, results(3), cache.generation("alice"))
    assert cache.get(second) is None and cache.get(first) == results(1)


def test_assemble_rechecks_scope_and_leaves_internal_sessions_out() -> None:
    cache = QueryBuffer(cache_size=0, max_size=15)
    mine, other, internal = (
        round_of("r1", "mine"),
        round_of("r2", "theirs", user="bob"),
        round_of("r3", "catalog", session=f"{INTERNAL_PREFIX}x"),
    )
    messages = {m.id: m for r in (mine, other, internal) for m in r.messages}
    hits = [Hit(mid, score=1.0 - n / 10, retrieved_by=["keyword"]) for n, mid in enumerate(messages)]
    request = query_request("anything", user="u")
    assembled = cache.assemble(request, hits, messages.get, lambda round_id: "storage")
    assert [r["content"] for r in assembled] == ["mine"]
    assert assembled[0]["source"] == "storage" and assembled[0]["retrieval"]["methods"] == ["keyword"]


def test_assemble_leaves_out_hits_below_min_score() -> None:
    cache = QueryBuffer(cache_size=0, max_size=15)
    round_ = round_of("r1", "strong", "weak")
    messages = {m.id: m for m in round_.messages}
    hits = [Hit("r1-0", score=0.9), Hit("r1-1", score=0.2)]
    request = replace(query_request("anything", user="u"), min_score=0.5)
    assert [r["content"] for r in cache.assemble(request, hits, messages.get, lambda round_id: "storage")] == ["strong"]
    assert len(cache.assemble(query_request("anything", user="u"), hits, messages.get, lambda rid: "storage")) == 2
