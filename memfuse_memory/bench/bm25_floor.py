"""Plain BM25 over one user's turns, the recipe of the LongMemEval data's README floor.

k1 = 1.5, b = 0.75, lowercased word tokens, English stop words removed, the question as the query;
every turn (user and assistant) is a document. Scored in memory, so it needs no embedder.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import datetime

from memfuse_memory.bench.peers import Message

K1, B = 1.5, 0.75
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "s",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "t",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)


def tokens(text: str) -> list[str]:
    """Lowercased word tokens less stop words."""
    return [word for word in re.findall(r"\w+", text.lower()) if word not in STOP_WORDS]


class PlainBM25:
    """A :class:`~memfuse_memory.bench.peers.MemorySystem` ranking turns by plain BM25."""

    name = "plain BM25"

    def __init__(self) -> None:
        self._docs: dict[str, list[tuple[str, Counter[str], int]]] = defaultdict(list)

    def add(self, user: str, session: str, messages: list[Message]) -> None:
        for message in messages:
            words = tokens(message["content"])
            self._docs[user].append((message["id"], Counter(words), len(words)))

    def add_bulk(self, user: str, session: str, rounds: list[list[Message]]) -> None:
        for messages in rounds:
            self.add(user, session, messages)

    def flush(self) -> None:
        return None

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        docs = self._docs[user]
        if not docs:
            return []
        average = sum(length for _, _, length in docs) / len(docs) or 1.0
        frequency = Counter(word for _, counts, _ in docs for word in counts)
        query = tokens(text)
        scores: list[tuple[float, int, str]] = []
        for position, (mid, counts, length) in enumerate(docs):
            score = 0.0
            for word in query:
                tf = counts.get(word, 0)
                if tf:
                    idf = math.log(1 + (len(docs) - frequency[word] + 0.5) / (frequency[word] + 0.5))
                    score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
            if score > 0:
                scores.append((-score, position, mid))
        return [mid for _, _, mid in sorted(scores)[:k]]

    def forget(self, user: str) -> None:
        self._docs.pop(user, None)

    def close(self) -> None:
        return None
