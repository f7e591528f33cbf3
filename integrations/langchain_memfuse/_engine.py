"""Resolve the engine an adapter runs on, and wrap it in the async and blocking services."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memfuse_memory import BlockingBufferService, BufferService, MemFuseConfig
from memfuse_memory.engine import Engine
from memfuse_memory.shared import resolve_service

ServiceLike = BufferService | BlockingBufferService | Engine
ConfigLike = str | Path | MemFuseConfig | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Services:
    """Both calling conventions over one engine: ``sync`` for blocking calls, ``aio`` for asyncio."""

    engine: Engine
    sync: BlockingBufferService
    aio: BufferService


def connect(
    service: ServiceLike | None = None,
    config: ConfigLike | None = None,
    data_dir: str | Path | None = None,
) -> Services:
    """The given service's engine, or the process-wide shared engine of ``config``/``data_dir``.

    Adapters built on the same data directory share one engine, so what a chat history writes
    is visible at once to a retriever or a store.
    """
    engine = resolve_service(service, config, data_dir)
    return Services(engine, BlockingBufferService(engine), BufferService(engine))
