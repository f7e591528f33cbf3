"""Integration tests run the real engine: all-MiniLM-L6-v2, Chroma and SQLite (or PostgreSQL).

Chroma is embedded by default. With ``MEMFUSE_TEST_VECTOR_MODE=server`` every engine the tests
start in this process talks to a real Chroma server (``chroma run``, started once for the
session) instead; ``scripts/bootstrap.sh test`` runs the integration tests both ways. With
``MEMFUSE_TEST_MESSAGE_STORE=postgres`` (the third pass) every engine keeps its messages in a real
PostgreSQL the session starts (``message_store_mode``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from memfuse_memory.bench.chroma_server import ChromaServer, run_chroma_server
from memfuse_memory.bench.postgres_server import LocalPostgres, local_postgres
from memfuse_memory.config import MemFuseConfig, VectorStoreConfig
from memfuse_memory.engine import Engine
from tests.integration.message_store_mode import DSN_VARIABLE, MESSAGE_STORE, store_settings

VECTOR_MODE = os.environ.get("MEMFUSE_TEST_VECTOR_MODE", "embedded")
if VECTOR_MODE not in ("embedded", "server"):
    raise pytest.UsageError(f"MEMFUSE_TEST_VECTOR_MODE must be 'embedded' or 'server', not {VECTOR_MODE!r}")

# The server pass leaves out tests whose engines live in subprocesses with their own config (CLI,
# examples, crash writer, HTTP server), the benchmark smoke runs and the multi-process test (always on a server).
collect_ignore = (
    [
        "test_bench_smoke.py",
        "test_cli.py",
        "test_crash_recovery.py",
        "test_examples_quickstart.py",
        "test_langchain_examples.py",
        "test_llama_index_examples.py",
        "test_multiprocess.py",
        "test_server_crash.py",
        "test_server_sdk.py",
    ]
    if VECTOR_MODE == "server"
    else [
        # engines of their own config in subprocesses; the crash writer follows the pass (message_store_mode)
        "test_bench_smoke.py",
        "test_cli.py",
        "test_examples_quickstart.py",
        "test_langchain_examples.py",
        "test_llama_index_examples.py",
        "test_server_crash.py",
        "test_server_sdk.py",
    ]
    if MESSAGE_STORE == "postgres"
    else []
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A real Chroma server for the whole session (host, port, data path)."""
    with run_chroma_server(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server


@pytest.fixture(scope="session")
def vector_store_config(request: pytest.FixtureRequest) -> VectorStoreConfig:
    """The vector store settings of this pass: embedded, or the session's Chroma server."""
    if VECTOR_MODE == "server":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        return server.config()
    return VectorStoreConfig()


@pytest.fixture(scope="session", autouse=True)
def _engines_use_the_vector_mode(vector_store_config: VectorStoreConfig) -> Iterator[None]:
    """In the server pass, point every engine configured for embedded Chroma at the server."""
    if vector_store_config.mode != "server":
        yield
        return
    original = Engine.__init__

    def init(self: Engine, config: MemFuseConfig, **kwargs: Any) -> None:
        if config.storage.vector_store.mode == "embedded":
            storage = config.storage.model_copy(update={"vector_store": vector_store_config})
            config = config.model_copy(update={"storage": storage})
        original(self, config, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "__init__", init)
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A real PostgreSQL 16 (the pgserver wheel) on a free port of 127.0.0.1, for the whole session."""
    with local_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: LocalPostgres) -> str:
    """The DSN of the session's PostgreSQL."""
    return postgres_server.dsn


@pytest.fixture(scope="session", autouse=True)
def _engines_use_the_message_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the PostgreSQL pass, give every engine a PostgreSQL message store (a schema per data dir)."""
    if MESSAGE_STORE != "postgres":
        yield
        return
    dsn = request.getfixturevalue("postgres_dsn")
    original = Engine.__init__

    def init(self: Engine, config: MemFuseConfig, **kwargs: Any) -> None:
        if config.storage.message_store.backend == "sqlite":
            settings = store_settings(config.storage.data_dir, dsn)
            storage = config.storage.model_copy(update={"message_store": settings})
            config = config.model_copy(update={"storage": storage})
        original(self, config, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "__init__", init)
        patch.setenv(DSN_VARIABLE, dsn)
        yield
