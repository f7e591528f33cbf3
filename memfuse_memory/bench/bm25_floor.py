"""Plain BM25 over one user's turns, the recipe of the LongMemEval data's README floor.

k1 = 1.5, b = 0.75, lowercased word tokens, English stop words (the keyword index's list) removed,
the question as the query; every turn (user and assistant) is a document. Scored in memory, so it
needs no embedder.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import datetime

from memfuse_memory.bench.peers import Message
from memfuse_memory.ranking.keywords import STOP_WORDS

K1, B = 1.5, 0.75


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
        self.add(user, session, [message for messages in rounds for message in messages])

    def flush(self) -> None:
        """Nothing to wait for: every add is searchable at once."""

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
