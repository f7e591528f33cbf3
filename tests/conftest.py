"""Shared fixtures: unit tests get a real SQLite store with a fake embedder and vector store.

Reliability tests print count lines such as ``[crash] acknowledged=... lost=0``; they are gathered
from passed tests too and shown in a summary section at the end of the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService, BufferService
from tests.fakes import FakeEmbedder, MemoryVectorStore

_COUNT_LINE = re.compile(r"^\[[\w/-]+\] ")
_count_lines: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _count_lines.extend(line for line in report.capstdout.splitlines() if _COUNT_LINE.match(line))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _count_lines:
        terminalreporter.section("reliability counts")
        for line in _count_lines:
            terminalreporter.write_line(line)


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
        service = BlockingBufferService.from_config(embedder=embedder, vector_store=vectors, **overrides).start()
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
