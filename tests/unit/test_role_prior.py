"""The role prior: the user's turns first, unless the query asks what the assistant said."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.models import Hit
from memfuse_memory.ranking.role_prior import asks_about_assistant, favour_user_turns

ROLES = ["user", "assistant", "tool", "system"]


@given(
    scores=st.lists(st.floats(0, 1), min_size=0, max_size=30),
    roles=st.lists(st.sampled_from([*ROLES, None]), min_size=30, max_size=30),
    weight=st.floats(0, 1),
    text=st.sampled_from(["How many bikes do I own?", "Can you remind me which hotel you recommended?", ""]),
)
def test_scores_stay_scores_and_no_hit_is_lost(
    scores: list[float], roles: list[str | None], weight: float, text: str
) -> None:
    hits = sorted((Hit(message_id=f"m{i}", score=s) for i, s in enumerate(scores)), key=lambda hit: -hit.score)
    role_of = {f"m{i}": role for i, role in enumerate(roles[: len(scores)]) if role is not None}
    out = favour_user_turns(hits, role_of, weight, text)
    assert sorted(hit.message_id for hit in out) == sorted(f"m{i}" for i in range(len(scores)))
    assert all(0.0 <= hit.score <= 1.0 for hit in out)
    assert [hit.score for hit in out] == sorted((hit.score for hit in out), reverse=True)
    for hit in out:
        before = scores[int(hit.message_id[1:])]
        if role_of.get(hit.message_id) in ("user", "system", None):
            assert hit.score == before, "only replies move"
        else:
            assert hit.score <= before


def test_a_user_turn_that_fits_as_well_ranks_above_the_reply() -> None:
    hits = [Hit(message_id="reply", score=0.9), Hit(message_id="said", score=0.6)]
    out = favour_user_turns(hits, {"reply": "assistant", "said": "user"}, 0.2, "How many bikes do I own?")
    assert [hit.message_id for hit in out] == ["said", "reply"]
    assert out[1].score == pytest.approx(0.18)


def test_weight_one_or_a_question_about_the_assistant_changes_nothing() -> None:
    def ranked(weight: float, text: str) -> list[str]:
        hits = [Hit(message_id="reply", score=0.9), Hit(message_id="said", score=0.6)]
        out = favour_user_turns(hits, {"reply": "assistant", "said": "user"}, weight, text)
        return [hit.message_id for hit in out]

    assert ranked(1.0, "How many bikes do I own?") == ["reply", "said"]
    assert ranked(0.2, "What was the name of the hostel you recommended in Amsterdam?") == ["reply", "said"]


@pytest.mark.parametrize(
    "text",
    [
        "Can you remind me what the 7th job in the list was?",
        "I'm looking back at our previous conversation about cocktails.",
        "You mentioned some online resources for music theory, which were they?",
        "In our previous chat, you suggested a few alternative terms.",
        "What did you say about the Library of Babel?",
        "Which traditional game did you describe?",
        "I remember you told me to dilute tea tree oil.",
        "what was the move you made after 27. Kg2?",
        "You've recommended a deli near the Vatican, what was it?",
    ],
)
def test_questions_about_the_assistant(text: str) -> None:
    assert asks_about_assistant(text)


@pytest.mark.parametrize(
    "text",
    [
        "How many bikes do I own?",
        "Can you suggest some accessories for my photography setup?",
        "Which event happened first, the meeting with Rachel or the pride parade?",
        "How long had I been a member of 'Book Lovers Unite' when I attended the meetup?",
        "What did I say about my sister's wedding?",
        "youth hostels I stayed in",
    ],
)
def test_questions_about_the_user(text: str) -> None:
    assert not asks_about_assistant(text)
