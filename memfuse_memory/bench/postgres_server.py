"""A private PostgreSQL 16 on 127.0.0.1 for tests and benchmarks, from the ``pgserver`` wheel.

``pgserver`` initialises a data folder and runs postgres as its own system user (so this works as
root too); we then run it on a TCP port of the loopback interface, so the engine talks to it the
way a replica talks to a remote server, and so it can be stopped and started again mid-run.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(slots=True)
class LocalPostgres:
    """A PostgreSQL server on 127.0.0.1:``port`` with its data in ``pgdata``."""

    pgdata: Path
    port: int
    system_user: Any

    @property
    def dsn(self) -> str:
        """The libpq URI of the server's ``postgres`` database (trust authentication)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, args: list[str]) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(args, pgdata=self.pgdata, user=self.system_user, timeout=30)

    def start(self) -> None:
        """Start (or start again) the server on its port and wait until it accepts connections."""
        log = self.pgdata / "server.log"
        self._ctl(["-w", "-o", f"-h 127.0.0.1 -p {self.port} -k ''", "-l", str(log), "start"])

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are cut, as in an outage)."""
        self._ctl(["-w", "-m", "fast", "stop"])


@contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """Initialise a server in a new temporary folder, run it on a free loopback port, yield it,
    then stop it and remove the folder. (The folder is made under the system temp dir: the
    postgres system user must be able to reach it, which a 0700 parent like pytest's forbids.)"""
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="memfuse-pg-"))
    bootstrap = pgserver.get_server(folder, cleanup_mode=None)
    server = LocalPostgres(Path(bootstrap.pgdata), free_port(), bootstrap.system_user)
    server.stop()
    server.start()
    try:
        yield server
    finally:
        with suppress(Exception):
            server.stop()
