"""Stats: the seed's metrics of every component and health read from their real state."""

from __future__ import annotations

import time
from typing import Any

from memfuse_memory.config import MemFuseConfig
from memfuse_memory.engine.components import Buffers, Components
from memfuse_memory.errors import StorageError


def _breaker(state: str) -> str:
    return "ok" if state == "closed" else f"degraded (breaker {state})"


def health(
    write: dict[str, Any], storage: dict[str, Any], worker: dict[str, Any], store_error: str | None
) -> dict[str, str]:
    """Each component's health from its counters: the worker's thread, the breakers, the store's
    answer, and whether the buffers are draining (a stopped worker leaves them stuck)."""
    alive = bool(worker["alive"])
    hybrid = write["hybrid_buffer"]
    over = max(0, hybrid["round_count"] - hybrid["max_size"])
    if not alive:
        hybrid_health = round_health = "stalled (index worker stopped)"
    else:
        round_health = "ok"
        hybrid_health = f"backlog ({over} round(s) over max_size wait for storage)" if over else "ok"
    return {
        "round_buffer": round_health,
        "hybrid_buffer": hybrid_health,
        "index_worker": "ok" if alive else "stopped",
        "vector_store": _breaker(storage["vector_store_breaker"]["state"]),
        "embedding": _breaker(worker["embedding_breaker"]["state"]),
        "message_store": "ok" if store_error is None else f"unreachable ({store_error})",
    }


def engine_stats(
    config: MemFuseConfig, state: str, started_at: float, parts: Components, buffers: Buffers
) -> dict[str, Any]:
    """Counters and health of every component of a started engine."""
    write = parts.write_buffer.stats()
    worker = parts.worker.stats()
    store_error: str | None = None
    try:
        storage = parts.memory.stats()
    except StorageError as exc:
        store_error = str(exc)
        storage = parts.memory.stats(with_counts=False)
    return {
        "service": {
            "state": state,
            "data_dir": str(config.storage.data_dir),
            "uptime_seconds": round(time.time() - started_at, 3),
            "recovered_rounds": parts.recovered_rounds,
            "buffer_enabled": config.buffer.enabled,
        },
        "write_buffer": {
            "total_writes": write["total_writes"],
            "total_messages": write["total_messages"],
            "total_transfers": write["total_transfers"],
            "transferred_rounds": write["transferred_rounds"],
            "transfer_latency_ms": write["transfer_latency_ms"],
            "component_health": health(write, storage, worker, store_error),
        },
        "round_buffer": write["round_buffer"],
        "hybrid_buffer": write["hybrid_buffer"],
        "query_buffer": buffers.query_buffer.stats(),
        "storage": storage,
        "index_worker": worker,
    }
