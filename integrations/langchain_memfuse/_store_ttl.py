"""The background sweeper of expired store items: a daemon thread calling one sweep per interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from memfuse_memory.errors import MemFuseError, ServiceClosedError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MINUTES = 1.0


class TTLSweeper:
    """Calls ``sweep`` every ``interval_minutes`` until stopped or the engine closes."""

    def __init__(self, sweep: Callable[[], int], interval_minutes: float | None) -> None:
        self._sweep = sweep
        self._interval = 60.0 * (interval_minutes or DEFAULT_INTERVAL_MINUTES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start the thread unless it runs already."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="memfuse-store-ttl", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread; returns whether it ended within ``timeout``."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                swept = self._sweep()
            except ServiceClosedError:
                return
            except MemFuseError as exc:  # storage failed: the next sweep tries again
                log.warning("store TTL sweep failed: %s", exc)
                continue
            if swept:
                log.debug("store TTL sweep deleted %d expired items", swept)


async def _nothing() -> None:
    return None


class Started:
    """What ``start_ttl_sweeper`` returns: nothing to wait for, but awaitable like the async stores' call."""

    def __await__(self) -> Any:
        return _nothing().__await__()
