"""HybridBuffer: transferred rounds kept twice, as chunks with embeddings and as the original
rounds, in FIFO order until the MemoryService has stored them (pure, no I/O).

Rounds leave only through :meth:`remove` after storage confirmed the write, so the buffer is
never the only copy of anything in flight. Rounds are keyed by their id within the user
(:class:`~memfuse_memory.scope.IdKey`): two users may use the same round id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from memfuse_memory.models import Chunk, IdKey, Round, Scope


@dataclass(slots=True)
class HybridEntry:
    """One buffered round: its original messages and its chunks (vectors once embedded)."""

    round: Round
    chunks: list[Chunk]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return len(self.vectors) == len(self.chunks)


class HybridBuffer:
    """FIFO of rounds with their chunks; the oldest embedded rounds flush when over ``max_size``."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[IdKey, HybridEntry] = OrderedDict()
        self.flush_operations = 0
        self.flushed_rounds = 0

    def add(self, rounds: Sequence[Round], chunks: Sequence[Chunk]) -> None:
        """Take the rounds of one transfer and the chunks built from them."""
        by_round: dict[IdKey, list[Chunk]] = {r.key: [] for r in rounds}
        for chunk in chunks:
            by_round[chunk.round_key].append(chunk)
        for r in rounds:
            self._entries[r.key] = HybridEntry(round=r, chunks=by_round[r.key])

    def pending_chunks(self, limit: int, accept: Callable[[Scope], bool] | None = None) -> list[Chunk]:
        """Up to ``limit`` chunks still without a vector (of the scopes ``accept`` takes), oldest first."""
        pending: list[Chunk] = []
        if limit <= 0:
            return pending
        for entry in self._entries.values():
            if accept is not None and not accept(entry.round.scope):
                continue
            for chunk in entry.chunks:
                if chunk.id not in entry.vectors:
                    pending.append(chunk)
                    if len(pending) == limit:
                        return pending
        return pending

    def set_vectors(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Install embeddings; chunks whose round has gone (deleted, moved on) or whose text has
        changed meanwhile (the round grew) are skipped."""
        for chunk, vector in zip(chunks, vectors, strict=True):
            entry = self._entries.get(chunk.round_key)
            if entry is not None and any(c.id == chunk.id and c.text == chunk.text for c in entry.chunks):
                entry.vectors[chunk.id] = vector

    def take_vectors(self, round_keys: Collection[IdKey]) -> dict[str, np.ndarray]:
        """Remove these rounds and return the vectors they had, by chunk text (carried along when
        rounds move from the RoundBuffer's early vectors to the HybridBuffer)."""
        known: dict[str, np.ndarray] = {}
        for key in round_keys:
            entry = self._entries.pop(key, None)
            if entry is None:
                continue
            for chunk in entry.chunks:
                vector = entry.vectors.get(chunk.id)
                if vector is not None:
                    known[chunk.text] = vector
        return known

    def due(self, everything: bool) -> list[HybridEntry]:
        """Embedded entries to flush: all of them, or the oldest beyond ``max_size``."""
        entries = list(self._entries.values())
        if not everything:
            entries = entries[: max(0, len(entries) - self.max_size)]
        return [entry for entry in entries if entry.embedded]

    def remove(self, entries: Sequence[HybridEntry]) -> None:
        """Drop entries that storage has confirmed; an entry replaced meanwhile (its round grew)
        stays, to be stored again."""
        removed = 0
        for entry in entries:
            if self._entries.get(entry.round.key) is entry:
                del self._entries[entry.round.key]
                removed += 1
        if removed:
            self.flush_operations += 1
            self.flushed_rounds += removed

    def replace(self, round_: Round, chunks: Sequence[Chunk]) -> bool:
        """Swap a buffered round for a grown version of it (chunks rebuilt, vectors again to
        compute), keeping its place in the FIFO; False when the round is not here."""
        if round_.key not in self._entries:
            return False
        self._entries[round_.key] = HybridEntry(round=round_, chunks=list(chunks))
        return True

    def drop(self, predicate: Callable[[Scope], bool], round_keys: Collection[IdKey] = ()) -> list[IdKey]:
        """Forget the rounds whose scope matches or whose key is listed (being deleted); return their keys."""
        gone = [key for key, entry in self._entries.items() if key in round_keys or predicate(entry.round.scope)]
        for key in gone:
            del self._entries[key]
        return gone

    def search(self, query: np.ndarray, accept: Callable[[Scope], bool], limit: int) -> list[tuple[Chunk, float]]:
        """Cosine similarity of the query to every embedded chunk in scope, best first."""
        chunks: list[Chunk] = []
        vectors: list[np.ndarray] = []
        for entry in self._entries.values():
            if not accept(entry.round.scope):
                continue
            for chunk in entry.chunks:
                vector = entry.vectors.get(chunk.id)
                if vector is not None:
                    chunks.append(chunk)
                    vectors.append(vector)
        if not chunks:
            return []
        scores = np.stack(vectors) @ query
        order = np.argsort(-scores)[:limit]
        return [(chunks[i], float(scores[i])) for i in order]

    def contains(self, round_key: IdKey) -> bool:
        return round_key in self._entries

    def entries(self) -> list[HybridEntry]:
        return list(self._entries.values())

    @property
    def round_count(self) -> int:
        return len(self._entries)

    @property
    def chunk_count(self) -> int:
        return sum(len(entry.chunks) for entry in self._entries.values())

    def stats(self) -> dict[str, object]:
        return {
            "round_count": self.round_count,
            "chunk_count": self.chunk_count,
            "pending_embeddings": sum(len(e.chunks) - len(e.vectors) for e in self._entries.values()),
            "flush_operations": self.flush_operations,
            "flushed_rounds": self.flushed_rounds,
            "max_size": self.max_size,
        }
