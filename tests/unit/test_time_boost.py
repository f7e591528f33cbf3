"""The soft time boost: it reorders, never removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.models import Hit
from memfuse_memory.ranking.time_boost import boost
from memfuse_memory.ranking.time_expressions import TimeHint, resolve

BASE = datetime(2023, 1, 1, tzinfo=UTC)


@given(
    scores=st.lists(st.floats(0, 1), min_size=0, max_size=30),
    days=st.lists(st.integers(0, 400), min_size=30, max_size=30),
    text=st.sampled_from(["yesterday", "last Saturday", "the first trip", "most recent", "in May 2023", "rice"]),
    weight=st.floats(0, 5),
)
def test_boost_never_removes_results(scores: list[float], days: list[int], text: str, weight: float) -> None:
    hits = [Hit(message_id=f"m{i}", score=s) for i, s in enumerate(scores)]
    times = {f"m{i}": BASE + timedelta(days=days[i]) for i in range(len(scores)) if i % 3}  # some without a time
    out = boost(hits, times, resolve(text, BASE + timedelta(days=200)), weight)
    assert sorted(hit.message_id for hit in out) == sorted(f"m{i}" for i in range(len(scores)))
    boosted = sorted((hit.score for hit in out), reverse=True)
    assert all(after >= before for before, after in zip(sorted(scores, reverse=True), boosted, strict=True))
    assert all(0.0 <= score <= 1.0 for score in boosted), "a boosted score stays a score"


def test_window_moves_the_dated_message_first() -> None:
    hits = [Hit(message_id=m, score=0.5) for m in ("a", "b", "c")]
    times = {"a": datetime(2023, 5, 20, tzinfo=UTC), "b": datetime(2023, 5, 27, 9, tzinfo=UTC), "c": BASE}
    out = boost(hits, times, resolve("what did I do last Saturday?", datetime(2023, 5, 30, tzinfo=UTC)), 0.3)
    assert out[0].message_id == "b"


def test_order_prefers_the_earliest_or_latest() -> None:
    times = {m: BASE + timedelta(days=n) for n, m in enumerate("abc")}
    earliest = boost(
        [Hit(message_id=m, score=0.5) for m in "abc"], times, TimeHint(order="earliest", order_confidence=0.7), 0.3
    )
    latest = boost(
        [Hit(message_id=m, score=0.5) for m in "abc"], times, TimeHint(order="latest", order_confidence=0.7), 0.3
    )
    assert [h.message_id for h in earliest] == ["a", "b", "c"]
    assert [h.message_id for h in latest] == ["c", "b", "a"]


def test_zero_weight_or_no_hint_changes_nothing() -> None:
    hits = [Hit(message_id="a", score=0.2), Hit(message_id="b", score=0.9)]
    times = {"a": BASE, "b": BASE}
    assert [h.score for h in boost(hits, times, resolve("yesterday", BASE), 0.0)] == [0.2, 0.9]
    assert [h.score for h in boost(hits, times, TimeHint(), 1.0)] == [0.2, 0.9]
