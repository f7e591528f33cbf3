"""RoundBuffer: a per-session token FIFO in front of the HybridBuffer (pure, no I/O).

A session's rounds move on together, as one :class:`Transfer`, when adding a round would push
them over ``max_tokens`` or ``max_size``, on a flush, or when the session goes idle. A single
round above ``max_tokens`` passes alone. One transfer never mixes sessions.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from memfuse_memory.models import IdKey, Round, Scope

Trigger = Literal["tokens", "size", "flush", "idle", "delete"]


@dataclass(slots=True)
class Transfer:
    """Rounds of one session leaving the RoundBuffer together."""

    scope: Scope
    rounds: list[Round]
    trigger: Trigger


@dataclass(slots=True)
class _Queue:
    rounds: list[Round] = field(default_factory=list)
    tokens: int = 0
    last_write: float = 0.0


class RoundBuffer:
    """Token-based FIFO, one queue per conversation (its :class:`Scope`)."""

    def __init__(self, max_tokens: int, max_size: int) -> None:
        self.max_tokens = max_tokens
        self.max_size = max_size
        self._queues: OrderedDict[Scope, _Queue] = OrderedDict()
        self._round_keys: set[IdKey] = set()
        self.transfer_triggers: Counter[str] = Counter()

    def add(self, round_: Round, now: float) -> list[Transfer]:
        """Queue a round (``round_.tokens`` already counted); return the transfers it triggers."""
        key = round_.scope
        queue = self._queues.setdefault(key, _Queue())
        transfers: list[Transfer] = []
        if queue.rounds and queue.tokens + round_.tokens > self.max_tokens:
            transfers.append(self._take(key, "tokens"))
        elif len(queue.rounds) + 1 > self.max_size:
            transfers.append(self._take(key, "size"))
        queue = self._queues.setdefault(key, _Queue())
        queue.rounds.append(round_)
        queue.tokens += round_.tokens
        queue.last_write = now
        self._round_keys.add(round_.key)
        self._queues.move_to_end(key)
        if queue.tokens > self.max_tokens:
            transfers.append(self._take(key, "tokens"))
        return transfers

    def _take(self, key: Scope, trigger: Trigger) -> Transfer:
        queue = self._queues.pop(key)
        for round_ in queue.rounds:
            self._round_keys.discard(round_.key)
        if trigger != "delete":
            self.transfer_triggers[trigger] += 1
        return Transfer(scope=key, rounds=queue.rounds, trigger=trigger)

    def flush(self, trigger: Trigger = "flush") -> list[Transfer]:
        """Transfer every session's rounds, one transfer per session."""
        return [self._take(key, trigger) for key in list(self._queues)]

    def flush_idle(self, now: float, idle_seconds: float) -> list[Transfer]:
        """Transfer the sessions without a write for ``idle_seconds``."""
        idle = [key for key, queue in self._queues.items() if now - queue.last_write >= idle_seconds]
        return [self._take(key, "idle") for key in idle]

    def drop(self, scopes: Iterable[Scope]) -> list[Round]:
        """Forget the queues of the given sessions (they are being deleted)."""
        dropped: list[Round] = []
        for key in list(scopes):
            if key in self._queues:
                dropped.extend(self._take(key, "delete").rounds)
        return dropped

    def last_round(self, key: Scope) -> Round | None:
        """The newest round a session has queued, if any."""
        queue = self._queues.get(key)
        return queue.rounds[-1] if queue is not None and queue.rounds else None

    def grow(self, round_: Round, extra_tokens: int, now: float) -> list[Transfer]:
        """Account for messages appended to a queued round; transfer the session if now over max_tokens."""
        key = round_.scope
        queue = self._queues[key]
        round_.tokens += extra_tokens
        queue.tokens += extra_tokens
        queue.last_write = now
        if queue.tokens > self.max_tokens:
            return [self._take(key, "tokens")]
        return []

    def discard(self, round_keys: set[IdKey]) -> None:
        """Remove these rounds wherever they are queued (their messages were deleted)."""
        for key in list(self._queues):
            queue = self._queues[key]
            kept = [r for r in queue.rounds if r.key not in round_keys]
            if len(kept) != len(queue.rounds):
                queue.rounds = kept
                queue.tokens = sum(r.tokens for r in kept)
                if not kept:
                    del self._queues[key]
        self._round_keys -= round_keys

    def scopes(self) -> list[Scope]:
        """The conversations with queued rounds, least recently written first."""
        return list(self._queues)

    def contains(self, round_key: IdKey) -> bool:
        return round_key in self._round_keys

    def rounds(self) -> list[Round]:
        """Every buffered round, oldest session first."""
        return [round_ for queue in self._queues.values() for round_ in queue.rounds]

    @property
    def current_tokens(self) -> int:
        return sum(queue.tokens for queue in self._queues.values())

    @property
    def round_count(self) -> int:
        return len(self._round_keys)

    def stats(self) -> dict[str, object]:
        return {
            "current_tokens": self.current_tokens,
            "round_count": self.round_count,
            "session_count": len(self._queues),
            "transfer_triggers": dict(self.transfer_triggers),
            "max_tokens": self.max_tokens,
            "max_size": self.max_size,
        }
