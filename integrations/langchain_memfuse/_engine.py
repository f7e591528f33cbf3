"""Resolve the engine an adapter runs on, and wrap it in the async and blocking services."""

from __future__ import annotations

from pathlib import Path

from memfuse_memory.shared import ConfigLike, ServiceLike, Services

__all__ = ["ConfigLike", "ServiceLike", "Services", "connect"]


def connect(
    service: ServiceLike | None = None,
    config: ConfigLike | None = None,
    data_dir: str | Path | None = None,
) -> Services:
    """The given service's engine, or the process-wide shared engine of ``config``/``data_dir``.

    Adapters built on the same data directory share one engine, so what a chat history writes
    is visible at once to a retriever or a store.
    """
    return Services.open(service, config, data_dir)
