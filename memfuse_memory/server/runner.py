"""``memfuse-memory serve``: build the engine and the app, run uvicorn until SIGTERM or Ctrl-C.

uvicorn stops accepting, lets requests in flight finish (up to ``server.shutdown_timeout_seconds``),
then the app's lifespan flushes and closes the engine: an add answered with 2xx is durable.
"""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn

from memfuse_memory.config import MemFuseConfig
from memfuse_memory.server.app import create_app
from memfuse_memory.server.settings import ServerSettings
from memfuse_memory.service import BufferService


class _Server(uvicorn.Server):
    """uvicorn re-raises the stop signal once it has shut down, so the process dies by it; the engine is
    flushed and closed by then, so the command returns and exits with 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(config: MemFuseConfig, settings: ServerSettings, *, log_level: str = "info") -> bool:
    """Serve until stopped; the engine uses the same data dir and config as the library and the CLI.

    Returns False when the server never started (the engine or the port failed; uvicorn logged why)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(BufferService.from_config(config), settings)
    uvicorn_config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        timeout_keep_alive=int(settings.keep_alive_seconds),
        server_header=False,
        lifespan="on",
        loop="auto",  # uvloop and httptools (the server extra) when installed, else asyncio and h11
        http="auto",
    )
    server = _Server(uvicorn_config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits on a failed start (engine, port); the caller reports it
        if exc.code not in (0, None):
            return False
        raise
    return bool(server.started)
