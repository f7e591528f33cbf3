"""Fault injection for reliability tests: wrap a vector store or the keyword index of a message
store so its calls raise, hang, go down for a while, or fail every k-th time.

A :class:`FaultInjector` decides, call by call, whether an operation fails; the wrappers ask it
before delegating to the real store. :class:`BreakerRecorder` logs the state transitions of a
circuit breaker so tests can assert that it opened, half-opened and closed again.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import StorageError
from memfuse_memory.models import QueryRequest
from memfuse_memory.resilience import CircuitBreaker, State
from memfuse_memory.scope import ScopeFilter
from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.storage.vector_store import VectorHit, VectorItem, VectorStore

ErrorFactory = Callable[[str], BaseException]


class InjectedFault(ConnectionError):
    """The error an injector raises when told to fail (a backend connection error)."""


class InjectedTimeout(TimeoutError):
    """The error an injector raises after a hang (a backend call that timed out)."""


@dataclass(slots=True)
class _Plan:
    mode: str = "healthy"
    error: ErrorFactory = InjectedFault
    remaining: int | None = None
    until: float = 0.0
    every: int = 0
    hang_seconds: float = 0.0


class FaultInjector:
    """Decides per call whether an operation fails, in one of these modes.

    - ``fail(n)`` / ``fail()``: raise on the next ``n`` calls (forever when ``n`` is None);
    - ``hang(seconds, n)``: sleep ``seconds`` then raise a timeout, on the next ``n`` calls;
    - ``down_for(seconds)``: raise on every call until ``seconds`` have passed, then recover;
    - ``every(k)``: raise on every k-th call;
    - ``heal()``: healthy again.

    Only the operations named in ``operations`` are affected (all when None). Thread-safe.
    """

    def __init__(self, operations: Collection[str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.operations = None if operations is None else frozenset(operations)
        self._clock = clock
        self._lock = threading.Lock()
        self._plan = _Plan()
        self._counter = 0
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def fail(self, times: int | None = None, error: ErrorFactory = InjectedFault) -> None:
        with self._lock:
            self._plan = _Plan(mode="fail", error=error, remaining=times)

    def hang(self, seconds: float, times: int | None = None, error: ErrorFactory = InjectedTimeout) -> None:
        with self._lock:
            self._plan = _Plan(mode="hang", error=error, remaining=times, hang_seconds=seconds)

    def down_for(self, seconds: float, error: ErrorFactory = InjectedFault) -> None:
        with self._lock:
            self._plan = _Plan(mode="down", error=error, until=self._clock() + seconds)

    def every(self, k: int, error: ErrorFactory = InjectedFault) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        with self._lock:
            self._plan = _Plan(mode="every", error=error, every=k)
            self._counter = 0

    def heal(self) -> None:
        with self._lock:
            self._plan = _Plan()

    @property
    def down(self) -> bool:
        """Whether the next affected call would fail (for ``every``: whether the mode is on)."""
        with self._lock:
            plan = self._plan
            if plan.mode == "down":
                return self._clock() < plan.until
            return plan.mode != "healthy" and plan.remaining != 0

    def check(self, operation: str) -> None:
        """Raise (possibly after hanging) when this call of ``operation`` is to fail."""
        hang = 0.0
        with self._lock:
            self.calls[operation] += 1
            if self.operations is not None and operation not in self.operations:
                return
            plan = self._plan
            failing = False
            if plan.mode in ("fail", "hang") and plan.remaining != 0:
                failing = True
                if plan.remaining is not None:
                    plan.remaining -= 1
                hang = plan.hang_seconds
            elif plan.mode == "down":
                failing = self._clock() < plan.until
            elif plan.mode == "every":
                self._counter += 1
                failing = self._counter % plan.every == 0
            if not failing:
                return
            self.failures[operation] += 1
            error = plan.error
        if hang:
            time.sleep(hang)
        raise error(f"injected fault in {operation}")


class FaultyVectorStore:
    """A :class:`VectorStore` that asks a :class:`FaultInjector` before every call it delegates."""

    def __init__(self, inner: VectorStore, injector: FaultInjector | None = None) -> None:
        self.inner = inner
        self.faults = injector or FaultInjector()
        self.upserted: Counter[str] = Counter()
        self._lock = threading.Lock()

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None:
        self.faults.check("upsert")
        self.inner.upsert(user_id, items)
        with self._lock:
            self.upserted.update(item.chunk.id for item in items)

    def query(self, vector: np.ndarray, where: ScopeFilter, limit: int) -> list[VectorHit]:
        self.faults.check("query")
        return self.inner.query(vector, where, limit)

    def delete_session(self, user_id: str, session_id: str) -> None:
        self.faults.check("delete")
        self.inner.delete_session(user_id, session_id)

    def delete_rounds(self, user_id: str, round_ids: Sequence[str]) -> None:
        self.faults.check("delete")
        self.inner.delete_rounds(user_id, round_ids)

    def delete_user(self, user_id: str) -> None:
        self.faults.check("delete")
        self.inner.delete_user(user_id)

    def close(self) -> None:
        self.inner.close()


class FaultyKeywordIndex:
    """Wraps the keyword side (``keyword_search``) of one :class:`MessageStore` instance.

    Writes stay untouched: the SQLite commit is the durability point, so keyword faults are
    read faults. ``uninstall`` restores the store's own method.
    """

    def __init__(self, store: MessageStore, injector: FaultInjector | None = None) -> None:
        self.store = store
        self.faults = injector or FaultInjector()
        self._original = store.keyword_search

    def keyword_search(self, request: QueryRequest, limit: int, frame_weight: float = 1.0) -> dict[str, float]:
        self.faults.check("keyword_search")
        return self._original(request, limit, frame_weight)

    def install(self) -> FaultyKeywordIndex:
        self.store.keyword_search = self.keyword_search  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        self.store.keyword_search = self._original  # type: ignore[method-assign]


class BreakerRecorder:
    """Records every state a circuit breaker passes through, as seen by its callers."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self.states: list[State] = [breaker.state]
        self._lock = threading.Lock()
        for name in ("allow", "record_success", "record_failure"):
            self._wrap(name)

    def _wrap(self, name: str) -> None:
        original: Callable[[], Any] = getattr(self.breaker, name)

        def recorded() -> Any:
            with self._lock:
                if name == "allow":
                    self._note(self.breaker.state)
                result = original()
                self._note(self.breaker.state)
            return result

        setattr(self.breaker, name, recorded)

    def _note(self, state: State) -> None:
        if self.states[-1] != state:
            self.states.append(state)

    @property
    def transitions(self) -> list[tuple[State, State]]:
        with self._lock:
            return list(zip(self.states, self.states[1:], strict=False))


class StallingProxy:
    """A TCP proxy on 127.0.0.1 in front of a server, which can go silent: while stalled it accepts
    connections and reads requests but forwards and answers nothing, as a hung server does."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[Any] = []
        threading.Thread(target=self._accept, name="stalling-proxy", daemon=True).start()

    def stall(self) -> None:
        self._stalled.set()

    def resume(self) -> None:
        self._stalled.clear()

    def close(self) -> None:
        self._closed.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._upstream)
            except OSError:
                return
            self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: Any, target: Any) -> None:
        """Copy bytes one way; drop them while stalled, so whoever waits on them times out."""
        try:
            while data := source.recv(65536):
                if not self._stalled.is_set():
                    target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.close()


def drain(service: BlockingBufferService, deadline_seconds: float) -> int:
    """flush_all until it succeeds (each failed pass raises); return how many attempts it took."""
    deadline = time.monotonic() + deadline_seconds
    attempts = 0
    while True:
        attempts += 1
        try:
            service.flush_all(timeout=deadline_seconds)
            return attempts
        except StorageError:
            assert time.monotonic() < deadline, "storage never recovered"
            threading.Event().wait(0.02)
