"""What every command gets: parsed arguments, output, the effective config and a way to open memory."""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.cli.errors import InputFileError
from memfuse_memory.cli.output import Output
from memfuse_memory.config import MemFuseConfig, load_config
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.errors import ConfigError, EmbeddingError, MemFuseError
from memfuse_memory.storage.sqlite import FILE_NAME


class ServiceFactory(Protocol):
    """Builds a started service for a config; ``needs_model`` False allows loading the model lazily."""

    def __call__(self, config: MemFuseConfig, *, needs_model: bool) -> BlockingBufferService: ...


class LazyEmbedder:
    """Loads the embedding model on first use, so commands that only read text start in a second."""

    def __init__(self, config: MemFuseConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._inner: Embedder | None = None

    def _load(self) -> Embedder:
        with self._lock:
            if self._inner is None:
                from memfuse_memory.embedding.loader import load_embedder

                try:
                    self._inner = load_embedder(self._config)
                except MemFuseError as exc:
                    raise EmbeddingError(f"cannot load the embedding model: {exc}") from exc
            return self._inner

    @property
    def dimension(self) -> int:
        return self._load().dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._load().embed(texts)


def quiet_model_loading() -> None:
    """Keep library progress bars and advisory logs of the model loader out of the terminal."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_factory(config: MemFuseConfig, *, needs_model: bool) -> BlockingBufferService:
    """The real engine: the configured embedder (loaded now, or on first use) and the configured Chroma."""
    quiet_model_loading()
    embedder = None
    if not needs_model:
        embedder = LazyEmbedder(config)
    return BlockingBufferService.from_config(config, embedder=embedder)


class Context:
    """One command run: arguments, output, config (loaded once) and the service factory."""

    def __init__(self, args: argparse.Namespace, out: Output, factory: ServiceFactory) -> None:
        self.args = args
        self.out = out
        self._factory = factory
        self._config: MemFuseConfig | None = None

    @property
    def config(self) -> MemFuseConfig:
        """``--config`` (or the defaults) with ``--data-dir`` applied; raises ConfigError."""
        if self._config is None:
            path = getattr(self.args, "config", None)
            data_dir = getattr(self.args, "data_dir", None)
            try:
                self._config = load_config(Path(path) if path else None, data_dir=data_dir)
            except ConfigError as exc:
                if path and str(path) not in str(exc):
                    raise ConfigError(f"{path}: {exc}") from exc
                raise
        return self._config

    @property
    def data_dir(self) -> Path:
        return Path(self.config.storage.data_dir)

    def require_memory(self) -> None:
        """Raise InputFileError when the data directory holds no memory (a command that only
        reads must not create an empty store in a misspelled folder). A PostgreSQL message store
        is not in the data directory: the engine reads the configured schema."""
        if self.config.storage.message_store.backend == "postgres":
            return
        path = self.data_dir / FILE_NAME
        if not path.is_file():
            raise InputFileError(f"no memory in {self.data_dir} (no {FILE_NAME}); check --data-dir")

    @contextmanager
    def service(self, *, needs_model: bool = True, existing: bool = False) -> Iterator[BlockingBufferService]:
        """A started service, closed (and flushed) when the block ends; ``existing`` requires a
        data directory that already holds memory."""
        if existing:
            self.require_memory()
        service = self._factory(self.config, needs_model=needs_model).start()
        try:
            yield service
        finally:
            service.close()
