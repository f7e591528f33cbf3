"""WriteBuffer: the one owner of the RoundBuffer and the HybridBuffer (pure, no I/O).

The engine commits rounds to the message store first, then hands them here; rounds move from
the RoundBuffer to the HybridBuffer (chunked) on transfer, the index worker takes the next
batch to embed, installs the vectors, and confirms what storage holds. Rounds still in the
RoundBuffer are embedded too, as soon as the worker can (their early vectors, kept apart and
carried over on transfer by chunk text), so an acknowledged round is findable by meaning at once,
whatever the transfer thresholds. Every method is one
intent, taken under a private lock that is never held while embedding, storing or waiting, so
any thread (the event loop included) may call any of them. Listeners (the index worker) are
told after each change, outside that lock. The lock order of the whole engine is written in
:mod:`memfuse_memory.engine.components`. Rounds are named by their id within the user
(:class:`~memfuse_memory.scope.IdKey`), since two users may use the same round id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from memfuse_memory.buffer.chunking import ChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer, HybridEntry
from memfuse_memory.buffer.round_buffer import RoundBuffer, Transfer, Trigger
from memfuse_memory.metrics import LatencyRecorder
from memfuse_memory.models import Chunk, IdKey, Round, Scope, StoredMessage
from memfuse_memory.tokens import TokenCounter

Location = str  # "round_buffer", "hybrid_buffer" or "storage"


class WriteBuffer:
    """RoundBuffer -> HybridBuffer transfer and the worker's view of them, behind one private lock."""

    def __init__(
        self,
        round_buffer: RoundBuffer,
        hybrid_buffer: HybridBuffer,
        strategy: ChunkStrategy,
        counter: TokenCounter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._round_buffer = round_buffer
        self._hybrid_buffer = hybrid_buffer
        self._early = HybridBuffer(0)  # rounds in the RoundBuffer, as chunks with early vectors
        self._strategy = strategy
        self._counter = counter
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._last_write: dict[Scope, float] = {}
        self.total_writes = 0
        self.total_messages = 0
        self.total_transfers = 0
        self.transferred_rounds = 0
        self.transfer_latency = LatencyRecorder()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (without arguments, outside the lock) after every change."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # -- writes (rounds already durable) -------------------------------------------------------

    def add_rounds(self, rounds: Sequence[Round]) -> None:
        """Buffer rounds just committed to the message store."""
        self._count(rounds)
        with self._lock:
            for round_ in rounds:
                self._buffer(round_)
                self.total_writes += 1
                self.total_messages += len(round_.messages)
        self._changed()

    def recover(self, rounds: Sequence[Round]) -> None:
        """Buffer rounds that are durable but were not stored when a process stopped."""
        self._count(rounds)
        with self._lock:
            for round_ in rounds:
                self._buffer(round_)
        self._changed()

    def last_round(self, scope: Scope) -> Round | None:
        """A copy of the conversation's newest round while it is still in the RoundBuffer."""
        with self._lock:
            last = self._round_buffer.last_round(scope)
            return None if last is None else replace(last, messages=list(last.messages))

    def extend_round(self, round_: Round, messages: Sequence[StoredMessage]) -> None:
        """Add messages just committed to a round: in place while it is in the RoundBuffer;
        re-chunked where it has moved on (HybridBuffer), or buffered again when it has left."""
        extra = self._counter.count_messages(m.content for m in messages)
        with self._lock:
            now = self._clock()
            self._last_write[round_.scope] = now
            self.total_messages += len(messages)
            queued = self._round_buffer.last_round(round_.scope)
            if queued is not None and queued.id == round_.id:
                queued.messages.extend(messages)
                self._early.replace(queued, self._strategy.chunk([queued]))
                self._move(self._round_buffer.grow(queued, extra, now))
            else:
                grown = replace(round_, messages=[*round_.messages, *messages], tokens=round_.tokens + extra)
                if not self._hybrid_buffer.replace(grown, self._strategy.chunk([grown])):
                    self._queue(grown, now)
        self._changed()

    def _count(self, rounds: Sequence[Round]) -> None:
        for round_ in rounds:
            round_.tokens = self._counter.count_messages(m.content for m in round_.messages)

    def _buffer(self, round_: Round) -> None:
        now = self._clock()
        self._last_write[round_.scope] = now
        self._queue(round_, now)

    def _queue(self, round_: Round, now: float) -> None:
        transfers = self._round_buffer.add(round_, now)
        if self._round_buffer.contains(round_.key):
            self._early.add([round_], self._strategy.chunk([round_]))
        self._move(transfers)

    def _move(self, transfers: list[Transfer]) -> None:
        for transfer in transfers:
            started = time.perf_counter()
            chunks = self._strategy.chunk(transfer.rounds)
            self._hybrid_buffer.add(transfer.rounds, chunks)
            known = self._early.take_vectors([r.key for r in transfer.rounds])
            carried = [chunk for chunk in chunks if chunk.text in known]
            if carried:
                self._hybrid_buffer.set_vectors(carried, np.stack([known[chunk.text] for chunk in carried]))
            self.total_transfers += 1
            self.transferred_rounds += len(transfer.rounds)
            self.transfer_latency.since(started)

    # -- transfers -----------------------------------------------------------------------------

    def transfer_all(self, trigger: Trigger = "flush") -> set[IdKey]:
        """Move every RoundBuffer session to the HybridBuffer; return the keys of all buffered rounds."""
        with self._lock:
            self._move(self._round_buffer.flush(trigger))
            held = {entry.round.key for entry in self._hybrid_buffer.entries()}
        self._changed()
        return held

    def transfer_idle(self, idle_seconds: float) -> set[Scope]:
        """Transfer the sessions without a write for ``idle_seconds``; return those sessions."""
        with self._lock:
            now = self._clock()
            idle = {scope for scope, at in self._last_write.items() if now - at >= idle_seconds}
            if idle:
                self._move(self._round_buffer.flush_idle(now, idle_seconds))
        if idle:
            self._changed()
        return idle

    def forget_idle(self, scopes: set[Scope]) -> None:
        """Stop tracking sessions that have nothing buffered any more."""
        with self._lock:
            held = {entry.round.scope for entry in self._hybrid_buffer.entries()} | set(self._round_buffer.scopes())
            for scope in scopes - held:
                self._last_write.pop(scope, None)

    # -- the index worker's side ---------------------------------------------------------------

    def next_embedding_batch(self, limit: int) -> list[Chunk]:
        """Up to ``limit`` chunks still without a vector: the HybridBuffer's first (they hold a
        flush back), then the RoundBuffer's, oldest first."""
        with self._lock:
            chunks = self._hybrid_buffer.pending_chunks(limit)
            return chunks + self._early.pending_chunks(limit - len(chunks))

    def unembedded(self, accept: Callable[[Scope], bool], limit: int) -> list[Chunk]:
        """Up to ``limit`` buffered chunks in scope still without a vector (a query embeds them)."""
        with self._lock:
            chunks = self._hybrid_buffer.pending_chunks(limit, accept)
            return chunks + self._early.pending_chunks(limit - len(chunks), accept)

    def install_vectors(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Install embeddings wherever their rounds are now (chunks of rounds deleted, grown or
        stored meanwhile are skipped)."""
        with self._lock:
            self._hybrid_buffer.set_vectors(chunks, vectors)
            self._early.set_vectors(chunks, vectors)
        self._changed()

    def due(self, everything: bool, idle: Collection[Scope] = ()) -> list[HybridEntry]:
        """Embedded entries to store now: all, or those over max_size plus idle sessions'."""
        with self._lock:
            if everything:
                return self._hybrid_buffer.due(True)
            entries = self._hybrid_buffer.due(False)
            if idle:
                chosen = {entry.round.key for entry in entries}
                entries += [
                    entry
                    for entry in self._hybrid_buffer.due(True)
                    if entry.round.scope in idle and entry.round.key not in chosen
                ]
            return entries

    def confirm_stored(self, entries: Sequence[HybridEntry]) -> None:
        """Storage holds these entries: they leave the HybridBuffer (unless replaced meanwhile)."""
        with self._lock:
            self._hybrid_buffer.remove(entries)
        self._changed()

    def has_work(self) -> bool:
        """Whether chunks wait for vectors or entries are due for storage."""
        with self._lock:
            return (
                bool(self._hybrid_buffer.pending_chunks(1))
                or bool(self._early.pending_chunks(1))
                or bool(self._hybrid_buffer.due(False))
            )

    def embedding_pending(self) -> bool:
        """Whether HybridBuffer chunks wait for vectors (what a flush waits for)."""
        with self._lock:
            return bool(self._hybrid_buffer.pending_chunks(1))

    def holds_any(self, round_keys: Collection[IdKey]) -> bool:
        """Whether any of these rounds is still in the HybridBuffer (not yet stored)."""
        with self._lock:
            return any(self._hybrid_buffer.contains(key) for key in round_keys)

    # -- reads and deletes ---------------------------------------------------------------------

    def search_vectors(
        self, query: np.ndarray, accept: Callable[[Scope], bool], limit: int
    ) -> list[tuple[Chunk, float]]:
        """Cosine similarity of the query to every embedded buffered chunk in scope (both buffers), best first."""
        with self._lock:
            found = self._hybrid_buffer.search(query, accept, limit) + self._early.search(query, accept, limit)
        return sorted(found, key=lambda pair: -pair[1])[:limit]

    def forget(self, accept: Callable[[Scope], bool]) -> None:
        """Forget the buffered rounds of deleted scopes."""
        with self._lock:
            self._round_buffer.drop([scope for scope in self._round_buffer.scopes() if accept(scope)])
            self._hybrid_buffer.drop(accept)
            self._early.drop(accept)
            for scope in [scope for scope in self._last_write if accept(scope)]:
                del self._last_write[scope]
        self._changed()

    def discard_rounds(self, round_keys: set[IdKey]) -> None:
        """Forget these rounds in both buffers (their messages were deleted)."""
        with self._lock:
            self._round_buffer.discard(round_keys)
            self._hybrid_buffer.drop(lambda scope: False, round_keys)
            self._early.drop(lambda scope: False, round_keys)
        self._changed()

    def location(self, round_key: IdKey) -> Location:
        """Where a round is now: round_buffer, hybrid_buffer or storage."""
        with self._lock:
            if self._round_buffer.contains(round_key):
                return "round_buffer"
            if self._hybrid_buffer.contains(round_key):
                return "hybrid_buffer"
            return "storage"

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total_writes": self.total_writes,
                "total_messages": self.total_messages,
                "total_transfers": self.total_transfers,
                "transferred_rounds": self.transferred_rounds,
                "transfer_latency_ms": self.transfer_latency.summary(),
                "round_buffer": {
                    **self._round_buffer.stats(),
                    "pending_embeddings": len(self._early.pending_chunks(self._early.chunk_count)),
                },
                "hybrid_buffer": self._hybrid_buffer.stats(),
            }
