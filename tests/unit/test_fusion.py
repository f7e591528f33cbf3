"""Rank fusion (min-max, reciprocal rank, z-score) and the query's keywords."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.ranking.fusion import fuse
from memfuse_memory.ranking.keywords import query_terms


def test_minmax_fusion_normalises_each_ranking() -> None:
    hits = fuse({"a": 12.0, "b": 3.0}, {"b": 0.9, "c": 0.2}, method="minmax", keyword_weight=0.5, vector_weight=0.5)
    scores = {hit.message_id: round(hit.score, 3) for hit in hits}
    assert scores == {"a": 0.5, "b": 0.5, "c": 0.0}
    assert {hit.message_id: hit.retrieved_by for hit in hits}["b"] == ["keyword", "vector"]


def test_a_vector_candidate_sharing_no_meaning_is_left_out() -> None:
    hits = fuse({}, {"a": 0.4, "b": 0.0, "c": -0.2}, method="minmax", keyword_weight=0.5, vector_weight=0.5)
    assert [hit.message_id for hit in hits] == ["a"]


def test_rrf_fusion_uses_ranks_only() -> None:
    hits = fuse({"a": 1000.0, "b": 999.0}, {"b": 0.1}, method="rrf", keyword_weight=1, vector_weight=1)
    assert [hit.message_id for hit in hits] == ["b", "a"]


@given(
    st.dictionaries(st.text(min_size=1, max_size=3), st.floats(-50, 50), max_size=20),
    st.dictionaries(st.text(min_size=1, max_size=3), st.floats(-1, 1), max_size=20),
    st.sampled_from(["minmax", "rrf"]),
)
def test_fusion_property_one_hit_per_message_sorted(keyword: dict, vector: dict, method: str) -> None:
    hits = fuse(keyword, vector, method=method, keyword_weight=0.5, vector_weight=0.5)  # type: ignore[arg-type]
    assert len({hit.message_id for hit in hits}) == len(hits)
    assert all(a.score >= b.score for a, b in pairwise(hits))
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert {hit.message_id for hit in hits} == set(keyword) | {key for key, value in vector.items() if value > 0}


def test_query_keywords_are_words_without_stop_words() -> None:
    assert query_terms("What is the NAME of my cat?") == ["name", "cat"]
    assert query_terms('cats "AND" NEAR( foo_bar') == ["cats", "near", "foo", "bar"]
    assert query_terms("the of and") == []


def test_zscore_fusion_lets_a_confident_ranking_outweigh_a_flat_one() -> None:
    # keyword: "a" stands far above the rest; vector: "b" ahead of an even spread; each last in the other
    keyword = {"a": 20.0, **{f"k{i}": 2.0 + 0.1 * i for i in range(8)}, "b": 1.5}
    vector = {"b": 0.60, **{f"k{i}": 0.59 - 0.01 * i for i in range(8)}, "a": 0.50}
    minmax = fuse(keyword, vector, method="minmax", keyword_weight=0.5, vector_weight=0.5)
    zscore = fuse(keyword, vector, method="zscore", keyword_weight=0.5, vector_weight=0.5)
    assert minmax[0].score == minmax[1].score  # min-max cannot tell the two apart
    assert [hit.message_id for hit in zscore[:2]] == ["a", "b"] and zscore[0].score > zscore[1].score
    assert zscore[0].score == 1.0 and all(0.0 <= hit.score <= 1.0 for hit in zscore)


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.floats(0, 50), max_size=6),
    st.dictionaries(st.sampled_from("defghi"), st.floats(-1, 1), max_size=6),
)
def test_zscore_scores_stay_in_unit_range(keyword: dict[str, float], vector: dict[str, float]) -> None:
    hits = fuse(keyword, vector, method="zscore", keyword_weight=0.5, vector_weight=0.5)
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
