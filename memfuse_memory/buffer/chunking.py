"""Chunk strategies: how transferred rounds become texts to embed (pure, no I/O).

all-MiniLM-L6-v2 reads at most 256 word pieces and silently ignores the rest, so the
``turn`` strategy embeds each message alone and a long one as several overlapping passages (a
message's vector score is then the best of its passages), and the ``contextual`` strategy does the
same but gives short messages their preceding turns as context, each chunk within a word budget.
The ``user`` strategy embeds what the user said alone, as passages, and each reply after the user
messages it answers: a user turn is found by its own words, a reply by the exchange it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from memfuse_memory.errors import ConfigError
from memfuse_memory.models import Chunk, Round, StoredMessage


class ChunkStrategy(Protocol):
    """Turns the rounds of one transfer (one session, in order) into chunks."""

    name: str

    def chunk(self, rounds: Sequence[Round]) -> list[Chunk]: ...


CHUNK_ID_SEPARATOR = "/"  # validation forbids it in every id, so the parts of a chunk id never blur


def round_chunk_id(round_id: str) -> str:
    """The vector id of a chunk of a whole round (the ``message`` strategy)."""
    return f"{round_id}:0"


def chunk_focus(cid: str) -> tuple[str, str | None]:
    """The round a chunk id belongs to, and the message it is about (None: the whole round)."""
    parts = cid.split(CHUNK_ID_SEPARATOR)
    if len(parts) == 3:
        return parts[0], parts[1]
    return cid.removesuffix(":0"), None


def chunk_id(round_id: str, message_id: str, part: int) -> str:
    """The vector id of one part of one message: distinct (round, message, part) never share it.

    Ids may contain ':' but never '/', so joining with '/' is reversible (ids are unique per user,
    and each user has its own collection).
    """
    return CHUNK_ID_SEPARATOR.join((round_id, message_id, str(part)))


def _line(message: StoredMessage) -> str:
    return f"{message.role}: {message.content}"


class MessageChunkStrategy:
    """One chunk per round: the round's messages as ``role: content`` lines."""

    name = "message"

    def chunk(self, rounds: Sequence[Round]) -> list[Chunk]:
        return [
            Chunk(
                id=round_chunk_id(r.id),
                round_id=r.id,
                scope=r.scope,
                text="\n".join(_line(m) for m in r.messages),
                message_ids=tuple(m.id for m in r.messages),
                created_at=r.created_at,
            )
            for r in rounds
        ]


def windows(words: list[str], max_words: int) -> list[str]:
    """Overlapping passages of at most ``max_words`` words (a fifth of them shared with the next)."""
    overlap = max(1, max_words // 5)
    step = max_words - overlap
    return [" ".join(words[start : start + max_words]) for start in range(0, max(1, len(words) - overlap), step)]


def passages(role: str, content: str, max_words: int) -> list[str]:
    """The texts embedded for one message: ``role: content``, split into windows when too long."""
    words = content.split()
    if len(words) <= max_words:
        return [f"{role}: {content}"]
    return [f"{role}: {window}" for window in windows(words, max_words)]


def _message_chunks(r: Round, message: StoredMessage, texts: list[str]) -> list[Chunk]:
    return [
        Chunk(
            id=chunk_id(r.id, message.id, n),
            round_id=r.id,
            scope=r.scope,
            text=text,
            message_ids=(message.id,),
            created_at=message.created_at,
        )
        for n, text in enumerate(texts)
    ]


class TurnChunkStrategy:
    """One vector per message; a message over the word budget becomes overlapping passages."""

    name = "turn"

    def __init__(self, max_words: int) -> None:
        self.max_words = max_words

    def chunk(self, rounds: Sequence[Round]) -> list[Chunk]:
        return [
            chunk
            for r in rounds
            for message in r.messages
            for chunk in _message_chunks(r, message, passages(message.role, message.content, self.max_words))
        ]


class ContextualChunkStrategy:
    """One chunk per message; long ones split into windows, short ones prefixed with earlier turns."""

    name = "contextual"

    def __init__(self, max_words: int) -> None:
        self.max_words = max_words

    def chunk(self, rounds: Sequence[Round]) -> list[Chunk]:
        chunks: list[Chunk] = []
        history: list[StoredMessage] = []
        for r in rounds:
            for message in r.messages:
                words = message.content.split()
                if len(words) > self.max_words:
                    texts = passages(message.role, message.content, self.max_words)
                else:
                    budget = self.max_words - len(words)
                    context: list[str] = []
                    for earlier in reversed(history):
                        size = len(earlier.content.split())
                        if size > budget:
                            break
                        context.insert(0, _line(earlier))
                        budget -= size
                    texts = ["\n".join([*context, _line(message)])]
                chunks.extend(_message_chunks(r, message, texts))
                history.append(message)
        return chunks


class UserChunkStrategy:
    """User messages alone (long ones as overlapping passages); each other message with what it answers.

    A reply is embedded as the ``role: content`` lines of the user messages just before it (the
    last run of them in its round) followed by its own line: for a user-assistant pair exactly the
    text the ``message`` strategy embeds, so its vector keeps the question it answers; a user
    message's vector is its own, so it no longer shares the reply's. Each reply repeats only its
    question, so a round of many replies stays linear in size.
    """

    name = "user"

    def __init__(self, max_words: int) -> None:
        self.max_words = max_words

    def chunk(self, rounds: Sequence[Round]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for r in rounds:
            question: list[str] = []
            asked = False  # whether a reply came since the last user message
            for message in r.messages:
                if message.role == "user":
                    if asked:
                        question, asked = [], False
                    question.append(_line(message))
                    texts = passages(message.role, message.content, self.max_words)
                else:
                    asked = True
                    texts = ["\n".join([*question, _line(message)])]
                chunks.extend(_message_chunks(r, message, texts))
        return chunks


def make_strategy(name: str, max_words: int) -> ChunkStrategy:
    """The strategy a config names; an unknown name is an error, never silently replaced."""
    if name == "message":
        return MessageChunkStrategy()
    if name == "turn":
        return TurnChunkStrategy(max_words)
    if name == "contextual":
        return ContextualChunkStrategy(max_words)
    if name == "user":
        return UserChunkStrategy(max_words)
    raise ConfigError(f"unknown chunk_strategy {name!r}: use 'message', 'turn', 'contextual' or 'user'")
