"""Integration tests run the real engine: all-MiniLM-L6-v2, Chroma and SQLite (or PostgreSQL).

Chroma is embedded by default. With ``MEMFUSE_TEST_VECTOR_MODE=server`` every engine the tests
start in this process talks to a real Chroma server (``chroma run``, started once for the
session) instead; ``scripts/bootstrap.sh test`` runs the integration tests both ways. With
``MEMFUSE_TEST_MESSAGE_STORE=postgres`` (the third pass) every engine keeps its messages in a real
PostgreSQL the session starts (``message_store_mode``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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

SERVER_START_TIMEOUT_SECONDS = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True, slots=True)
class ChromaServer:
    """A running ``chroma run`` server on the loopback interface."""

    host: str
    port: int
    path: Path
    process: subprocess.Popen[bytes]

    def config(self) -> VectorStoreConfig:
        return VectorStoreConfig(mode="server", host=self.host, port=self.port)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _heartbeat(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=1.0) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def run_chroma_server(path: Path, timeout: float = SERVER_START_TIMEOUT_SECONDS) -> Iterator[ChromaServer]:
    """Start ``chroma run`` (the executable next to this Python) on a free port, wait for its
    heartbeat, yield it, and stop it."""
    executable = Path(sys.executable).with_name("chroma")
    assert executable.is_file(), f"no chroma executable at {executable}"
    path.mkdir(parents=True, exist_ok=True)
    host, port = "127.0.0.1", _free_port()
    log_path = path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(executable), "run", "--path", str(path / "db"), "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _heartbeat(host, port):
            if process.poll() is not None:
                raise RuntimeError(f"chroma server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no chroma server heartbeat within {timeout} s: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield ChromaServer(host, port, path, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
