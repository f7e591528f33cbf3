"""``export`` and ``import``: a lossless JSONL archive of the message store, one message a line.

Each line holds id, user_id, agent_id, session_id, round_id, role, name, content, created_at
(ISO 8601, microseconds) and metadata, in the order the rounds were added. Importing a file
replays its rounds through the public ``add_batch``, so ids, times, metadata, scopes and the
round grouping come back as they were.

The export reads the configured message store: the SQLite file opened read-only (so it also works
while an application holds the data directory), or the shared PostgreSQL schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.cli.errors import InputFileError
from memfuse_memory.cli.formats import read_documents
from memfuse_memory.config import LimitsConfig, MemFuseConfig
from memfuse_memory.errors import InvalidInputError
from memfuse_memory.models import IdKey, Scope
from memfuse_memory.storage import message_store
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.validation import check_id, validate_round

EXPORT_FIELDS = (
    "id",
    "user_id",
    "agent_id",
    "session_id",
    "round_id",
    "role",
    "name",
    "content",
    "created_at",
    "metadata",
)
_REQUIRED = frozenset({"id", "user_id", "session_id", "round_id", "role", "content", "created_at"})


@contextmanager
def read_store(config: MemFuseConfig) -> Iterator[MessageStoreProtocol]:
    """The configured message store, to read: SQLite opened read-only (export works beside a live
    writer, without the data-dir lock), or the shared PostgreSQL schema."""
    if config.storage.message_store.backend == "postgres":
        from memfuse_memory.storage.postgres import PostgresMessageStore

        store: MessageStoreProtocol = PostgresMessageStore(config.storage.message_store)
    else:
        data_dir = Path(config.storage.data_dir)
        path = data_dir / message_store.FILE_NAME
        if not path.is_file():
            raise InputFileError(f"no memory in {data_dir} (no {message_store.FILE_NAME}); nothing to export")
        store = MessageStore(path, read_only=True)
    try:
        yield store
    finally:
        store.close()


def export_rows(
    store: MessageStoreProtocol, *, user_id: str | None, session_id: str | None
) -> Iterator[dict[str, Any]]:
    """Every message in scope as an export row, in the order added."""
    for message in store.export(user_id=user_id, session_id=session_id):
        yield message.to_dict()


def export_line(row: dict[str, Any]) -> str:
    """One archive line: compact JSON, fields in a fixed order, UTF-8 kept as is."""
    return json.dumps({key: row[key] for key in EXPORT_FIELDS}, ensure_ascii=False, separators=(",", ":"))


@dataclass
class ArchiveRound:
    """One round of an archive: its scope, original id and messages (our message format)."""

    round_id: str
    scope: Scope
    messages: list[dict[str, Any]] = field(default_factory=list)
    where: str = ""


def read_archive(path: Path, limits: LimitsConfig) -> list[ArchiveRound]:
    """Parse and validate an export file completely; raise InputFileError naming the bad line."""
    rounds: list[ArchiveRound] = []
    seen_rounds: set[IdKey] = set()  # ids are unique per user: two users may share one
    seen_ids: set[IdKey] = set()
    for where, row in read_documents(path):
        if not isinstance(row, dict):
            raise InputFileError(f"{where}: expected an exported message object, not {type(row).__name__}")
        missing = _REQUIRED - row.keys()
        unknown = row.keys() - set(EXPORT_FIELDS)
        if missing or unknown:
            detail = f"missing {', '.join(sorted(missing))}" if missing else f"unknown {', '.join(sorted(unknown))}"
            raise InputFileError(f"{where}: not an export line ({detail}); use 'ingest' for conversations")
        try:
            for key in ("user_id", "session_id", "round_id", "id"):
                check_id(row[key], key, limits)
            if row.get("agent_id") is not None:
                check_id(row["agent_id"], "agent_id", limits)
        except InvalidInputError as exc:
            raise InputFileError(f"{where}: {exc}") from exc
        if IdKey(row["user_id"], row["id"]) in seen_ids:
            raise InputFileError(f"{where}: message id {row['id']!r} appears twice for user {row['user_id']!r}")
        seen_ids.add(IdKey(row["user_id"], row["id"]))
        scope = Scope(user_id=row["user_id"], session_id=row["session_id"], agent_id=row.get("agent_id"))
        current = rounds[-1] if rounds else None
        round_key = IdKey(row["user_id"], row["round_id"])
        if current is None or IdKey(current.scope.user_id, current.round_id) != round_key:
            if round_key in seen_rounds:
                raise InputFileError(f"{where}: the lines of round {row['round_id']!r} are not contiguous")
            seen_rounds.add(round_key)
            current = ArchiveRound(row["round_id"], scope, where=where)
            rounds.append(current)
        elif current.scope != scope:
            raise InputFileError(f"{where}: round {row['round_id']!r} mixes users, sessions or agents")
        message = {key: row[key] for key in ("id", "role", "content", "created_at")}
        if row.get("name") is not None:
            message["name"] = row["name"]
        message["metadata"] = row.get("metadata") or {}
        current.messages.append(message)
    for round_ in rounds:
        try:
            validate_round(round_.messages, round_.scope, limits)
        except InvalidInputError as exc:
            raise InputFileError(f"{round_.where}: {exc}") from exc
    return rounds


def batches(rounds: Sequence[ArchiveRound], size: int) -> Iterator[list[ArchiveRound]]:
    """Consecutive rounds of one scope, at most ``size`` per batch, in archive order."""
    batch: list[ArchiveRound] = []
    for round_ in rounds:
        if batch and (batch[0].scope != round_.scope or len(batch) >= size):
            yield batch
            batch = []
        batch.append(round_)
    if batch:
        yield batch


def write_batch(service: BlockingBufferService, batch: list[ArchiveRound]) -> None:
    """Store one batch of rounds in one transaction (all or nothing), keeping their round ids."""
    scope = batch[0].scope
    service.add_batch(
        [r.messages for r in batch],
        scope.session_id,
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        round_ids=[r.round_id for r in batch],
    )
