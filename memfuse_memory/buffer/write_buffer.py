"""WriteBuffer: the single entry point of writes.

It commits each round to the durable message store, then queues it in the RoundBuffer; rounds
that the RoundBuffer transfers are chunked and handed to the HybridBuffer, and the background
worker is woken to embed them. One lock guards both buffers; it is never held while embedding
or while writing to the vector store. The SQLite commit of an add does happen under it, so that
adds, deletes and the buffers agree on one order (a commit takes well under a millisecond).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from memfuse_memory.buffer.chunking import ChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer, HybridEntry
from memfuse_memory.buffer.round_buffer import RoundBuffer, ScopeKey, Transfer, Trigger
from memfuse_memory.metrics import LatencyRecorder
from memfuse_memory.models import Round, Scope
from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.tokens import TokenCounter


class WriteBuffer:
    """Durable append, then RoundBuffer -> HybridBuffer transfer, under one lock."""

    def __init__(
        self,
        store: MessageStore,
        round_buffer: RoundBuffer,
        hybrid_buffer: HybridBuffer,
        strategy: ChunkStrategy,
        counter: TokenCounter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.round_buffer = round_buffer
        self.hybrid_buffer = hybrid_buffer
        self.strategy = strategy
        self.counter = counter
        self._clock = clock
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._last_write: dict[ScopeKey, float] = {}
        self.total_writes = 0
        self.total_messages = 0
        self.total_transfers = 0
        self.transferred_rounds = 0
        self.transfer_latency = LatencyRecorder()

    def add_rounds(self, rounds: list[Round]) -> None:
        """Commit rounds durably in one transaction, then buffer them; the commit is the acknowledgement."""
        for round_ in rounds:
            round_.tokens = self.counter.count_messages(m.content for m in round_.messages)
        with self.lock:
            self._store.append_rounds(rounds)
            for round_ in rounds:
                self._buffer(round_)
                self.total_writes += 1
                self.total_messages += len(round_.messages)
            self.changed.notify_all()

    def append_to_last(self, round_: Round) -> Round | None:
        """Append a validated round's messages to its session's newest round, if that round is still
        in the RoundBuffer (a reply joining the question stored before it); None when it is not."""
        extra = self.counter.count_messages(m.content for m in round_.messages)
        with self.lock:
            last = self.round_buffer.last_round(round_.scope.key)
            if last is None:
                return None
            moved = [replace(m, round_id=last.id) for m in round_.messages]
            self._store.append_messages(last, moved)
            last.messages.extend(moved)
            now = self._clock()
            self._last_write[last.scope.key] = now
            self._move(self.round_buffer.grow(last, extra, now))
            self.total_messages += len(moved)
            self.changed.notify_all()
            return last

    def recover(self, round_: Round) -> None:
        """Buffer a round that is already durable but was not yet stored when the process stopped."""
        round_.tokens = self.counter.count_messages(m.content for m in round_.messages)
        with self.lock:
            self._buffer(round_)
            self.changed.notify_all()

    def _buffer(self, round_: Round) -> None:
        now = self._clock()
        self._last_write[round_.scope.key] = now
        self._move(self.round_buffer.add(round_, now))

    def _move(self, transfers: list[Transfer]) -> None:
        for transfer in transfers:
            started = time.perf_counter()
            self.hybrid_buffer.add(transfer.rounds, self.strategy.chunk(transfer.rounds))
            self.total_transfers += 1
            self.transferred_rounds += len(transfer.rounds)
            self.transfer_latency.since(started)

    def transfer_all(self, trigger: Trigger = "flush") -> set[str]:
        """Move every RoundBuffer session to the HybridBuffer; return the ids of all buffered rounds."""
        with self.lock:
            self._move(self.round_buffer.flush(trigger))
            self.changed.notify_all()
            return {entry.round.id for entry in self.hybrid_buffer.entries()}

    def idle_keys(self, idle_seconds: float) -> set[ScopeKey]:
        """Sessions without a write for ``idle_seconds``; their round-buffered rounds are transferred."""
        with self.lock:
            now = self._clock()
            idle = {key for key, at in self._last_write.items() if now - at >= idle_seconds}
            if idle:
                self._move(self.round_buffer.flush_idle(now, idle_seconds))
            return idle

    def forget_idle(self, keys: set[ScopeKey]) -> None:
        """Stop tracking sessions that have nothing buffered any more."""
        with self.lock:
            held = {entry.round.scope.key for entry in self.hybrid_buffer.entries()} | set(
                self.round_buffer.session_keys()
            )
            for key in keys - held:
                self._last_write.pop(key, None)

    def drop(self, accept: Callable[[Scope], bool]) -> None:
        """Forget buffered rounds of a deleted scope (the caller holds :attr:`lock`)."""
        self.round_buffer.drop(
            [key for key in self.round_buffer.session_keys() if accept(Scope(key[0], key[2], key[1]))]
        )
        self.hybrid_buffer.drop(accept)
        for key in [key for key in self._last_write if accept(Scope(key[0], key[2], key[1]))]:
            del self._last_write[key]

    def discard_rounds(self, round_ids: set[str]) -> None:
        """Forget these rounds in both buffers (the caller holds :attr:`lock`)."""
        self.round_buffer.discard(round_ids)
        self.hybrid_buffer.drop(lambda scope: False, round_ids)

    def due(self, everything: bool, keys: set[ScopeKey] | None = None) -> list[HybridEntry]:
        """Embedded HybridBuffer entries to store now: all, or those over max_size plus idle sessions'."""
        with self.lock:
            if everything:
                return self.hybrid_buffer.due(True)
            entries = self.hybrid_buffer.due(False)
            if keys:
                chosen = {entry.round.id for entry in entries}
                entries += [
                    entry
                    for entry in self.hybrid_buffer.due(True)
                    if entry.round.scope.key in keys and entry.round.id not in chosen
                ]
            return entries

    def location(self, round_id: str) -> str:
        """Where a round is now: round_buffer, hybrid_buffer or storage."""
        with self.lock:
            if self.round_buffer.contains(round_id):
                return "round_buffer"
            if self.hybrid_buffer.contains(round_id):
                return "hybrid_buffer"
            return "storage"

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total_writes": self.total_writes,
                "total_messages": self.total_messages,
                "total_transfers": self.total_transfers,
                "transferred_rounds": self.transferred_rounds,
                "transfer_latency_ms": self.transfer_latency.summary(),
                "round_buffer": self.round_buffer.stats(),
                "hybrid_buffer": self.hybrid_buffer.stats(),
            }
