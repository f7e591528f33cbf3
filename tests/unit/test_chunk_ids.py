"""Chunk ids never collide: distinct (round, message, part) triples get distinct ids, whatever
characters the ids hold (ids may contain ':')."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from memfuse_memory.buffer.chunking import (
    ContextualChunkStrategy,
    MessageChunkStrategy,
    TurnChunkStrategy,
    UserChunkStrategy,
    chunk_focus,
)
from memfuse_memory.config import LimitsConfig
from memfuse_memory.errors import InvalidInputError
from memfuse_memory.validation import check_id
from tests.builders import round_of

_LIMITS = LimitsConfig()


def _valid(value: str) -> bool:
    try:
        check_id(value, "id", _LIMITS)
    except InvalidInputError:
        return False
    return True


ids = st.text(alphabet=st.sampled_from(["a", ":", "b", "é", " "]), min_size=1, max_size=4).filter(_valid)


def _ids_of(round_id: str, message_id: str, words: int) -> list[str]:
    built = round_of(round_id, " ".join(["w"] * words))
    round_ = replace(built, messages=[replace(built.messages[0], id=message_id)])
    return [chunk.id for chunk in ContextualChunkStrategy(max_words=4).chunk([round_])]


@st.composite
def id_pairs(draw: st.DrawFn) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two (round, message) pairs: independent, or the first re-cut at another ':' (the near miss)."""
    first = (draw(ids), draw(ids))
    joined = ":".join(first)
    cuts = [n for n, char in enumerate(joined) if char == ":"]
    cut = draw(st.sampled_from(cuts))
    second = (joined[:cut], joined[cut + 1 :])
    if draw(st.booleans()) or not all(map(_valid, second)):
        second = (draw(ids), draw(ids))
    return first, second


@given(id_pairs(), st.integers(1, 12), st.integers(1, 12))
def test_distinct_triples_never_share_a_chunk_id(
    pairs: tuple[tuple[str, str], tuple[str, str]], words_a: int, words_b: int
) -> None:
    first, second = pairs
    a = _ids_of(*first, words_a)
    b = _ids_of(*second, words_b)
    assert len(set(a)) == len(a)
    if first != second:
        assert not set(a) & set(b), (first, second)


def test_the_reported_collision_is_gone() -> None:
    assert set(_ids_of("a", "b:c", 1)).isdisjoint(_ids_of("a:b", "c", 1))


@given(ids, ids, st.integers(1, 12))
def test_every_chunk_id_names_its_round_and_focus(round_id: str, message_id: str, words: int) -> None:
    """What a vector query reads back instead of Chroma's metadata: the round, and the message unless
    the chunk is the whole round."""
    built = round_of(round_id, " ".join(["w"] * words), "a reply")
    round_ = replace(built, messages=[replace(built.messages[0], id=message_id), built.messages[1]])
    strategies = (
        MessageChunkStrategy(),
        TurnChunkStrategy(max_words=4),
        ContextualChunkStrategy(max_words=4),
        UserChunkStrategy(max_words=4),
    )
    for strategy in strategies:
        for chunk in strategy.chunk([round_]):
            round_of_chunk, focus = chunk_focus(chunk.id)
            assert round_of_chunk == round_id
            assert (chunk.message_ids if focus is None else (focus,)) == chunk.message_ids
            assert (focus is None) == (strategy.name == "message")
