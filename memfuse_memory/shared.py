"""One engine per data directory per process, shared by every adapter that asks for it.

Framework adapters built on the same ``data_dir`` (or config) get the same engine, so a
retriever sees at once what a chat history wrote; the engines are flushed and closed at exit.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Any

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.config import MemFuseConfig, load_config
from memfuse_memory.engine import Engine
from memfuse_memory.errors import ConfigError
from memfuse_memory.service import BufferService

ServiceLike = BufferService | BlockingBufferService | Engine
ConfigLike = str | Path | MemFuseConfig | dict[str, Any]

_engines: dict[tuple[str, str], Engine] = {}
_lock = threading.Lock()


def shared_engine(
    config: str | Path | MemFuseConfig | dict[str, Any] | None = None,
    *,
    data_dir: str | Path | None = None,
    **overrides: Any,
) -> Engine:
    """The running engine of this config and data directory, started on first use."""
    settings = load_config(config, data_dir=data_dir, **overrides)
    key = (str(Path(settings.storage.data_dir).resolve()), settings.model_dump_json(exclude={"storage": {"data_dir"}}))
    with _lock:
        engine = _engines.get(key)
        if engine is None or engine.state == "closed":
            engine = Engine(settings)
            engine.start()
            _engines[key] = engine
        return engine


def resolve_service(
    service: ServiceLike | None = None,
    config: ConfigLike | None = None,
    data_dir: str | Path | None = None,
) -> Engine:
    """The engine an adapter should use: the given service's, or the shared one of config/data_dir."""
    if service is not None:
        if config is not None or data_dir is not None:
            raise ConfigError("pass either service= or config=/data_dir=, not both")
        if isinstance(service, Engine):
            return service
        return service.engine
    return shared_engine(config, data_dir=data_dir)


@atexit.register
def close_shared_engines() -> None:
    """Flush and close every shared engine (runs at interpreter exit)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.close()
