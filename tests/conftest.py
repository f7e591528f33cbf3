"""Shared fixtures: unit tests get a real SQLite store with a fake embedder and vector store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService, BufferService
from tests.fakes import FakeEmbedder, MemoryVectorStore


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def vectors() -> MemoryVectorStore:
    return MemoryVectorStore()


@pytest.fixture
def make_memory(
    tmp_path: Path, embedder: FakeEmbedder, vectors: MemoryVectorStore
) -> Iterator[Callable[..., BlockingBufferService]]:
    """Build started blocking services on a temp data dir with the fakes; closed after the test."""
    made: list[BlockingBufferService] = []

    def build(**overrides: Any) -> BlockingBufferService:
        overrides.setdefault("data_dir", tmp_path / "data")
        service = BlockingBufferService.from_config(embedder=embedder, vector_store=vectors, **overrides)
        made.append(service)
        return service

    yield build
    for service in made:
        service.close()


@pytest.fixture
def memory(make_memory: Callable[..., BlockingBufferService]) -> BlockingBufferService:
    return make_memory()


@pytest.fixture
async def amemory(tmp_path: Path, embedder: FakeEmbedder, vectors: MemoryVectorStore) -> Any:
    service = BufferService.from_config(data_dir=tmp_path / "adata", embedder=embedder, vector_store=vectors)
    async with service:
        yield service
