"""Which message store the integration tests run on: SQLite (default) or PostgreSQL.

With ``MEMFUSE_TEST_MESSAGE_STORE=postgres`` every engine the tests build uses a real PostgreSQL
(a private server the session starts, ``MEMFUSE_TEST_PG_DSN`` for subprocesses), each data
directory in a schema of its own, so tests stay as isolated as with one SQLite file per folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from memfuse_memory.config import MessageStoreConfig
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.sqlite import FILE_NAME, MessageStore

MESSAGE_STORE = os.environ.get("MEMFUSE_TEST_MESSAGE_STORE", "sqlite")
if MESSAGE_STORE not in ("sqlite", "postgres"):
    raise RuntimeError(f"MEMFUSE_TEST_MESSAGE_STORE must be 'sqlite' or 'postgres', not {MESSAGE_STORE!r}")
DSN_VARIABLE = "MEMFUSE_TEST_PG_DSN"


def schema_for(data_dir: Path | str) -> str:
    """The PostgreSQL schema standing for one data directory."""
    return "t" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:24]


def store_settings(data_dir: Path | str, dsn: str | None = None) -> MessageStoreConfig:
    """The PostgreSQL message-store settings of a data directory."""
    return MessageStoreConfig(backend="postgres", dsn=dsn or os.environ[DSN_VARIABLE], schema_name=schema_for(data_dir))


def overrides(data_dir: Path | str) -> dict[str, Any]:
    """``from_config`` overrides selecting this pass's message store for ``data_dir``."""
    if MESSAGE_STORE != "postgres":
        return {}
    settings = store_settings(data_dir)
    return {"storage": {"message_store": settings.model_dump()}}


def open_for_check(data_dir: Path) -> MessageStoreProtocol:
    """The message store of ``data_dir`` opened beside a live or dead writer, to read it back."""
    if MESSAGE_STORE == "postgres":
        from memfuse_memory.storage.postgres import PostgresMessageStore

        return PostgresMessageStore(store_settings(data_dir))
    return MessageStore(data_dir / FILE_NAME, read_only=True)
