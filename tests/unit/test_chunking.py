"""Chunk strategies: one chunk per round, or long turns split and short ones given context, or user turns
alone and replies with their round."""

from __future__ import annotations

from dataclasses import replace

import pytest

from memfuse_memory.buffer.chunking import ContextualChunkStrategy, MessageChunkStrategy, make_strategy
from memfuse_memory.errors import ConfigError
from tests.builders import round_of


def test_message_strategy_gives_one_chunk_per_round() -> None:
    chunks = MessageChunkStrategy().chunk([round_of("r1", "hi there", "hello"), round_of("r2", "bye")])
    assert [c.id for c in chunks] == ["r1:0", "r2:0"]
    assert chunks[0].text == "user: hi there\nassistant: hello"
    assert chunks[0].message_ids == ("r1-0", "r1-1")


def test_contextual_strategy_splits_long_and_gives_short_ones_context() -> None:
    long_text = " ".join(f"w{i}" for i in range(50))
    chunks = ContextualChunkStrategy(max_words=20).chunk(
        [round_of("r1", "my cat is Miso", "nice cat"), round_of("r2", long_text)]
    )
    by_message: dict[str, list[str]] = {}
    for chunk in chunks:
        assert len(chunk.message_ids) == 1
        by_message.setdefault(chunk.message_ids[0], []).append(chunk.text)
    assert by_message["r1-1"] == ["user: my cat is Miso\nassistant: nice cat"]
    windows = by_message["r2-0"]
    assert len(windows) == 3
    assert all(len(text.split()) <= 21 for text in windows)
    covered = {word for text in windows for word in text.split()[1:]}
    assert covered == set(long_text.split())


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ConfigError, match="sentences"):
        make_strategy("sentences", 10)


def test_turn_strategy_gives_each_message_its_vector_and_long_ones_overlapping_passages() -> None:
    long_text = " ".join(f"w{i}" for i in range(50))
    chunks = make_strategy("turn", 20).chunk([round_of("r1", "my cat is Miso", "nice cat"), round_of("r2", long_text)])
    by_message: dict[str, list[str]] = {}
    for chunk in chunks:
        assert len(chunk.message_ids) == 1
        by_message.setdefault(chunk.message_ids[0], []).append(chunk.text)
    assert by_message["r1-0"] == ["user: my cat is Miso"]
    assert by_message["r1-1"] == ["assistant: nice cat"]  # no context from the turn before
    passages = [text.split()[1:] for text in by_message["r2-0"]]
    assert len(passages) == 3 and all(len(words) <= 20 for words in passages)
    assert set().union(*passages) == set(long_text.split())
    assert passages[0][-4:] == passages[1][:4]  # a fifth of the budget overlaps
    assert len({c.id for c in chunks}) == len(chunks)


def test_user_strategy_embeds_user_turns_alone_and_replies_with_their_round() -> None:
    long_text = " ".join(f"w{i}" for i in range(50))
    rounds = [round_of("r1", "my cat is Miso", "nice cat", "more", "sure"), round_of("r2", long_text, "ok")]
    chunks = make_strategy("user", 20).chunk(rounds)
    by_message: dict[str, list[str]] = {}
    for chunk in chunks:
        assert len(chunk.message_ids) == 1
        by_message.setdefault(chunk.message_ids[0], []).append(chunk.text)
    assert by_message["r1-0"] == ["user: my cat is Miso"]
    assert by_message["r1-1"] == ["user: my cat is Miso\nassistant: nice cat"]
    # the same text the message strategy embeds for a user-assistant pair, so both share cached vectors
    assert by_message["r2-1"] == [MessageChunkStrategy().chunk([rounds[1]])[0].text]
    assert by_message["r1-2"] == ["user: more"]  # a later user turn: alone
    assert by_message["r1-3"] == ["user: more\nassistant: sure"]  # a reply carries the question it answers
    passages = [text.split()[1:] for text in by_message["r2-0"]]
    assert len(passages) == 3 and all(len(words) <= 20 for words in passages)
    assert set().union(*passages) == set(long_text.split())
    assert len({c.id for c in chunks}) == len(chunks)


def test_user_strategy_repeats_only_the_question_so_many_replies_stay_linear() -> None:
    """A tool-calling round: each reply carries the user message before it, never the other replies."""
    question = " ".join(["word"] * 50)
    replies = [f"reply {n}" for n in range(200)]
    r = round_of("r", question, *replies)
    r = replace(r, messages=[r.messages[0], *(replace(m, role="assistant") for m in r.messages[1:])])
    chunks = make_strategy("user", 160).chunk([r])
    assert len(chunks) == 201
    for chunk, reply in zip(chunks[1:], replies, strict=True):
        assert chunk.text == f"user: {question}\nassistant: {reply}"
