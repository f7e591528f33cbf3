"""A private Chroma server (``chroma run``, shipped with chromadb) on 127.0.0.1 for a run.

The latency stage's ``--vector-store server`` and the integration tests' server pass use it: with
Chroma in its own process, its writes no longer hold this process's GIL while an ``add`` waits.
"""

from __future__ import annotations

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

from memfuse_memory.config import VectorStoreConfig

START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ChromaServer:
    """A running ``chroma run`` server on the loopback interface."""

    host: str
    port: int
    path: Path
    process: subprocess.Popen[bytes]

    def config(self) -> VectorStoreConfig:
        return VectorStoreConfig(mode="server", host=self.host, port=self.port)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def heartbeat(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=1.0) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def run_chroma_server(path: Path, timeout: float = START_TIMEOUT_SECONDS) -> Iterator[ChromaServer]:
    """Start ``chroma run`` (the executable next to this Python) on a free port, wait for its
    heartbeat, yield it, and stop it."""
    executable = Path(sys.executable).with_name("chroma")
    if not executable.is_file():
        raise RuntimeError(f"no chroma executable at {executable}")
    path.mkdir(parents=True, exist_ok=True)
    host, port = "127.0.0.1", free_port()
    log_path = path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(executable), "run", "--path", str(path / "db"), "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while not heartbeat(host, port):
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
