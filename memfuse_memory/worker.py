"""The background index worker: embeds buffered chunks in batches and flushes the HybridBuffer.

It runs on its own thread, so embedding never runs on an event loop and never while a buffer
lock is held: it takes the next batch from the WriteBuffer, embeds it, then installs the
vectors (each one WriteBuffer intent). Failures are retried with backoff (see :mod:`memfuse_memory.resilience`);
after that the work stays pending and is tried again later, and waiting flushers are told.

On Linux the thread lowers its own scheduling priority (``embedding.worker_nice``), so while it
embeds, an ``add``, a query and the database server (PostgreSQL) get the cores first; with one
intra-op thread per call (``embedding.intra_op_threads``) the embedding runs on this thread, at
that priority.

Processes sharing one message store also adopt each other's orphans: a round that stays pending
across two checks ``3 * idle_seconds`` apart without being in this process's buffers was left by
a process that stopped, so this one indexes it (idempotent if that process is merely slow).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Collection

from memfuse_memory.buffer.hybrid_buffer import HybridEntry
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import RetryConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.errors import EmbeddingError, FlushTimeoutError, MemFuseError, StorageUnavailableError
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.metrics import LatencyRecorder
from memfuse_memory.models import IdKey, Scope
from memfuse_memory.resilience import CircuitBreaker, backoff_delay, call_with_retry

log = logging.getLogger(__name__)

ORPHAN_CHECKS_PER_IDLE = 3


def orphans(pending: set[IdKey], mine: set[IdKey], suspects: set[IdKey]) -> tuple[set[IdKey], set[IdKey]]:
    """Rounds to adopt now (pending and suspect at the last check too) and the new suspects."""
    foreign = pending - mine
    return foreign & suspects, foreign - suspects


class IndexWorker:
    """Producer/consumer: ``add`` produces rounds, this thread consumes them into storage."""

    def __init__(
        self,
        write_buffer: WriteBuffer,
        embedder: Embedder,
        memory: MemoryService,
        *,
        batch_size: int,
        retry: RetryConfig,
        idle_seconds: float,
        storage_lock: threading.Lock,
        on_change: Callable[[set[str]], None],
        nice: int = 0,
    ) -> None:
        self._nice = nice
        self._native_id: int | None = None
        self._buffer = write_buffer
        self._embedder = embedder
        self._memory = memory
        self._batch_size = batch_size
        self._retry = retry
        self._idle_seconds = idle_seconds
        self._tick = min(1.0, idle_seconds / 4)
        self._orphan_every = ORPHAN_CHECKS_PER_IDLE * idle_seconds
        self._next_orphan_check = time.monotonic() + self._orphan_every
        self._suspects: set[IdKey] = set()
        self.adopted_rounds = 0
        self._storage_lock = storage_lock
        self._on_change = on_change
        self.embed_breaker = CircuitBreaker(
            "embedding model", retry.breaker_failure_threshold, retry.breaker_reset_seconds
        )
        self._cond = threading.Condition()
        write_buffer.subscribe(self.wake)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._flush_requested = 0
        self._flush_served = 0
        self._retry_at = 0.0
        self._failed_passes = 0
        self.failures = 0
        self.last_error: MemFuseError | None = None
        self.embedded_chunks = 0
        self.embed_batches = 0
        self.embed_latency = LatencyRecorder()
        self.flush_latency = LatencyRecorder()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memfuse-index-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def wake(self) -> None:
        """Something changed in the buffers: look for work, and let waiters re-check."""
        with self._cond:
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- waiting ------------------------------------------------------------------------------

    def wait_stored(self, round_keys: Collection[IdKey], timeout: float | None) -> None:
        """Block until none of ``round_keys`` is buffered (a full flush is requested)."""
        self._wait(lambda: not self._buffer.holds_any(round_keys), timeout, flush=True)

    def wait_caught_up(self, timeout: float | None) -> None:
        """Block until every buffered chunk is embedded and the HybridBuffer is within max_size."""
        self._wait(lambda: not self._buffer.has_work(), timeout, flush=False)

    def _wait(self, done: Callable[[], bool], timeout: float | None, *, flush: bool) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            failures_at_start = self.failures
            if flush:
                self._flush_requested += 1
            self._retry_at = 0.0
            self._cond.notify_all()
            while not done():
                if self.failures > failures_at_start and self.last_error is not None:
                    error = self.last_error
                    kind = EmbeddingError if isinstance(error, EmbeddingError) else StorageUnavailableError
                    raise kind(f"flush did not complete, the data stays pending and is retried: {error}") from error
                if not self.alive:
                    raise StorageUnavailableError("the index worker is not running")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise FlushTimeoutError(f"flush did not complete within {timeout} s; the data stays pending")
                self._cond.wait(timeout=0.5 if remaining is None else min(0.5, remaining))

    # -- the loop -----------------------------------------------------------------------------

    def _work_waiting(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        return self._flush_served < self._flush_requested or self._buffer.has_work()

    def _run(self) -> None:
        self._native_id = threading.get_native_id()
        lower_priority(self._native_id, self._nice)
        next_idle_check = time.monotonic() + self._tick
        while True:
            with self._cond:
                while not self._stopping and not self._work_waiting() and time.monotonic() < next_idle_check:
                    self._cond.wait(timeout=max(0.0, min(self._tick, next_idle_check - time.monotonic())))
                if self._stopping:
                    return
                request = self._flush_requested
                wanted = self._flush_served < request
            idle: set[Scope] | None = None
            if time.monotonic() >= next_idle_check:
                next_idle_check = time.monotonic() + self._tick
                idle = self._buffer.transfer_idle(self._idle_seconds) or None
                if time.monotonic() >= self._next_orphan_check:
                    self._next_orphan_check = time.monotonic() + self._orphan_every
                    self._adopt_orphans()
            if time.monotonic() < self._retry_at:
                continue
            ok = self._embed_batch() and self._flush(wanted, idle)
            if ok:
                self._failed_passes = 0
                if idle:
                    self._buffer.forget_idle(idle)
                with self._cond:
                    if not self._buffer.embedding_pending():
                        self._flush_served = max(self._flush_served, request)
                    self._cond.notify_all()

    def _fail(self, error: MemFuseError) -> None:
        self._failed_passes += 1
        log.warning("index worker pass failed (data stays pending): %s", error)
        with self._cond:
            self.failures += 1
            self.last_error = error
            self._retry_at = time.monotonic() + backoff_delay(self._retry, self._failed_passes)
            self._cond.notify_all()

    def _adopt_orphans(self) -> None:
        try:
            pending = self._memory.store.pending_round_ids()
            mine = {key for key in pending if self._buffer.location(key) != "storage"}
            adopt, self._suspects = orphans(pending, mine, self._suspects)
            rounds = self._memory.store.rounds_by_id(sorted(adopt)) if adopt else []
        except MemFuseError as exc:
            log.warning("orphan check skipped: %s", exc)
            return
        adopted = [round_ for round_ in rounds if self._buffer.location(round_.key) == "storage"]
        self._buffer.recover(adopted)
        self.adopted_rounds += len(adopted)
        if rounds:
            log.info("adopted %d round(s) left pending by another process", len(rounds))

    def _embed_batch(self) -> bool:
        """Embed the oldest batch of pending chunks; False when it failed. One batch per pass, so
        rounds flush between batches and a burst of adds never holds the HybridBuffer back."""
        chunks = self._buffer.next_embedding_batch(self._batch_size)
        if not chunks:
            return True
        texts = [chunk.text for chunk in chunks]
        started = time.perf_counter()
        try:
            vectors = call_with_retry(
                lambda texts=texts: self._embedder.embed(texts),
                breaker=self.embed_breaker,
                config=self._retry,
                error=EmbeddingError,
            )
            if vectors.shape != (len(chunks), self._embedder.dimension):
                raise EmbeddingError(f"embedder returned shape {vectors.shape} for {len(chunks)} texts")
        except EmbeddingError as exc:
            self._fail(exc)
            return False
        self._buffer.install_vectors(chunks, vectors)
        self.embedded_chunks += len(chunks)
        self.embed_batches += 1
        self.embed_latency.since(started)
        self._on_change({chunk.scope.user_id for chunk in chunks})
        return True

    def _flush(self, everything: bool, idle: set[Scope] | None) -> bool:
        with self._storage_lock:
            entries: list[HybridEntry] = self._buffer.due(everything, idle or ())
            if not entries:
                return True
            started = time.perf_counter()
            try:
                self._memory.persist(entries)
            except MemFuseError as exc:
                self._fail(exc)
                return False
            except Exception as exc:  # a store bug must not kill the worker; keep the data pending
                self._fail(StorageUnavailableError(f"storing {len(entries)} round(s) failed: {exc}"))
                return False
            self._buffer.confirm_stored(entries)
            self.flush_latency.since(started)
        self._on_change({entry.round.scope.user_id for entry in entries})
        return True

    def stats(self) -> dict[str, object]:
        return {
            "alive": self.alive,
            "nice": thread_nice(self._native_id) if self.alive else None,  # a dead thread's id may be reused
            "embedded_chunks": self.embedded_chunks,
            "embed_batches": self.embed_batches,
            "embed_batch_latency_ms": self.embed_latency.summary(),
            "flush_latency_ms": self.flush_latency.summary(),
            "adopted_rounds": self.adopted_rounds,
            "failures": self.failures,
            "last_error": None if self.last_error is None else str(self.last_error),
            "embedding_breaker": self.embed_breaker.stats(),
        }


def lower_priority(thread_id: int, by: int) -> None:
    """Raise a thread's nice value by ``by`` (Linux: ``setpriority`` on a thread id affects that thread only;
    elsewhere it would renice the whole process, so nothing is done). Never needs privileges."""
    if by <= 0 or sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, thread_id, min(19, os.getpriority(os.PRIO_PROCESS, thread_id) + by))
    except OSError as exc:  # a sandbox may refuse it: the worker still works, at the process's priority
        log.warning("index worker: cannot lower its priority: %s", exc)


def thread_nice(thread_id: int | None) -> int | None:
    """A running thread's nice value as the kernel has it (Linux), else None."""
    if thread_id is None or sys.platform != "linux":
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, thread_id)
    except OSError:
        return None
