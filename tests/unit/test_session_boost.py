"""The session boost: candidates of the session the candidate list points to move up, none is dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.models import Hit
from memfuse_memory.ranking.session_boost import session_boost


def hits(*scores: float) -> list[Hit]:
    return [Hit(f"m{n}", score=score) for n, score in enumerate(scores)]


def test_a_weak_hit_of_the_strongest_session_passes_a_lone_strong_one() -> None:
    sessions = {"m0": "lone", "m1": "busy", "m2": "busy", "m3": "busy"}
    boosted = session_boost(hits(0.9, 0.85, 0.8, 0.6), sessions, 0.5)
    assert [hit.message_id for hit in boosted] == ["m1", "m2", "m3", "m0"]
    assert session_boost(hits(0.9, 0.85, 0.8, 0.6), sessions, 0.0)[0].message_id == "m0", "weight 0: unchanged"


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=30),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=30, max_size=30),
    st.floats(0, 1),
)
def test_every_hit_stays_scores_stay_in_range_and_sorted(scores: list[float], names: list[str], weight: float) -> None:
    sessions = {f"m{n}": names[n] for n in range(len(scores)) if n % 4}  # some of unknown session
    boosted = session_boost(hits(*sorted(scores, reverse=True)), sessions, weight)  # fusion hands them sorted
    assert sorted(hit.message_id for hit in boosted) == sorted(f"m{n}" for n in range(len(scores)))
    assert all(0.0 <= hit.score <= 1.0 for hit in boosted)
    assert [hit.score for hit in boosted] == sorted((hit.score for hit in boosted), reverse=True)
