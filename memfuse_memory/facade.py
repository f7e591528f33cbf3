"""How the two facades are made from one signature source: each public operation is an
:class:`~memfuse_memory.engine.Engine` method, and a facade method is generated from it with the
same name, signature and docstring: run in a worker thread (``BufferService``) or on the
caller's thread (``BlockingBufferService``). ``tests/engine/test_facades.py`` checks they match.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from memfuse_memory.config import MemFuseConfig, load_config
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.engine import Engine
from memfuse_memory.storage.vector_store import VectorStore

P = ParamSpec("P")
R = TypeVar("R")


class Facade:
    """What both facades share: construction over one engine and ``from_config``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def from_config(
        cls,
        config: str | Path | MemFuseConfig | dict[str, Any] | None = None,
        *,
        data_dir: str | Path | None = None,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        **overrides: Any,
    ) -> Self:
        """Build a service from a YAML path, a config object, a dict or the defaults. It is not
        started: use it as a context manager (``with`` / ``async with``) or call ``start()``.

        ``overrides`` are merged over the config as nested dicts or ``section__key`` names;
        ``embedder`` and ``vector_store`` replace the configured ones (tests, custom backends).
        """
        settings = load_config(config, data_dir=data_dir, **overrides)
        return cls(Engine(settings, embedder=embedder, vector_store=vector_store))

    @property
    def engine(self) -> Engine:
        """The shared engine behind this facade."""
        return self._engine

    @property
    def config(self) -> MemFuseConfig:
        return self._engine.config


def _like(call: Callable[..., Any], method: Callable[..., Any]) -> None:
    call.__name__ = method.__name__
    call.__qualname__ = method.__qualname__
    call.__doc__ = method.__doc__
    call.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]


def on_caller(method: Callable[Concatenate[Engine, P], R]) -> Callable[Concatenate[Facade, P], R]:
    """The engine method, called on the caller's thread."""
    name = method.__name__

    def call(self: Facade, *args: P.args, **kwargs: P.kwargs) -> R:
        return getattr(self._engine, name)(*args, **kwargs)

    _like(call, method)
    return call


def in_thread(
    method: Callable[Concatenate[Engine, P], R],
) -> Callable[Concatenate[Facade, P], Coroutine[Any, Any, R]]:
    """The engine method as a coroutine that runs it in a worker thread (never on the loop)."""
    name = method.__name__

    async def call(self: Facade, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(getattr(self._engine, name), *args, **kwargs)

    _like(call, method)
    return call


def cached_on_loop(
    method: Callable[Concatenate[Engine, P], dict[str, Any]],
) -> Callable[Concatenate[Facade, P], Coroutine[Any, Any, dict[str, Any]]]:
    """``Engine.query`` as a coroutine: validated and answered from the cache on the loop (no
    thread hop, no lock held across I/O), computed in a worker thread otherwise."""

    async def call(self: Facade, *args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        engine = self._engine
        request = engine.prepare_query(*args, **kwargs)
        cached = engine.cached_query(request)
        if cached is not None:
            return cached
        return await asyncio.to_thread(engine.run_query, request, use_cache=False)

    _like(call, method)
    return call
