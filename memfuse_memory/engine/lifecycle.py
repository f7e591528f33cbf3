"""An engine's lifecycle: new -> running -> closing -> closed, the started parts, the data
directory lock, and the gate that lets ``close`` wait for the calls in flight.

Every public operation of the Engine runs through :func:`counted`: it is refused unless the
engine is running, and ``close`` stops new calls at once, gives the ones in flight
``CLOSE_GRACE_SECONDS`` and only then closes the stores under them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from memfuse_memory.config import MemFuseConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.engine.components import Buffers, Components, open_components
from memfuse_memory.errors import MemFuseError, ServiceClosedError
from memfuse_memory.storage import dirlock
from memfuse_memory.storage.vector_store import VectorStore

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
CLOSE_GRACE_SECONDS = 2.0  # how long close waits for calls in flight before closing the stores under them


class Lifecycle:
    """Starts and closes one engine's components and counts the calls running on them."""

    def __init__(self, config: MemFuseConfig, buffers: Buffers) -> None:
        self._config = config
        self._buffers = buffers
        self.state = "new"
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._dir_lock: Path | None = None
        self.parts: Components | None = None
        self.started_at: float | None = None

    def start(self, embedder: Embedder | None, vector_store: VectorStore | None) -> None:
        """Lock the data directory (embedded vectors), open every component; idempotent while running."""
        with self._lock:
            if self.state == "running":
                return
            if self.state == "closed":
                raise ServiceClosedError("this service is closed; create a new one")
            storage = self._config.storage
            data_dir = Path(storage.data_dir)
            if storage.vector_store.mode == "embedded" and vector_store is None:
                self._dir_lock = dirlock.acquire(data_dir)
            try:
                self.parts = open_components(
                    self._config, data_dir, self._buffers, embedder=embedder, vector_store=vector_store
                )
            except BaseException:
                self._release_dir()
                raise
            self.state = "running"
            self.started_at = time.time()

    def close(self, flush: bool, timeout: float | None) -> None:
        """Refuse new calls, flush, wait for the calls in flight, close the stores (see the Engine)."""
        with self._lock:
            if self.state != "running" or self.parts is None:
                self.state = "closed"
                return
            self.state = "closing"
        parts = self.parts
        try:
            if flush:
                try:
                    parts.writes.flush(timeout)
                except MemFuseError as exc:
                    log.warning("close: flush incomplete, the rest is re-indexed at next start: %s", exc)
        finally:
            with self._lock:
                self._idle.wait_for(lambda: self._in_flight == 0, timeout=CLOSE_GRACE_SECONDS)
            try:
                parts.close()
            finally:
                self._release_dir()
                self._buffers.query_buffer.invalidate()
                with self._lock:
                    self.state = "closed"

    def _release_dir(self) -> None:
        if self._dir_lock is not None:
            dirlock.release(self._dir_lock)
            self._dir_lock = None

    def running(self) -> Components:
        """The started parts; ServiceClosedError before start and once closing."""
        if self.state == "running" and self.parts is not None:
            return self.parts
        if self.state == "new":
            raise ServiceClosedError("the service is not started: use 'async with service:' or 'await service.start()'")
        raise ServiceClosedError("the service is closed; create a new one")

    def enter(self) -> None:
        """Count one call in, if the engine is running."""
        with self._lock:
            self.running()
            self._in_flight += 1

    def leave(self) -> None:
        """Count one call out, waking a ``close`` that waits for the last one."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()


class Gated(Protocol):
    """What :func:`counted` needs of its owner."""

    _life: Lifecycle


G = TypeVar("G", bound=Gated)


def counted(method: Callable[Concatenate[G, P], R]) -> Callable[Concatenate[G, P], R]:
    """A public operation that ``close`` waits for: it runs only while the engine is running."""

    @functools.wraps(method)
    def call(self: G, *args: P.args, **kwargs: P.kwargs) -> R:
        self._life.enter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._life.leave()

    return call
