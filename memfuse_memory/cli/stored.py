"""What ``stats`` shows first: what a data directory holds (per user and session, pending work,
sizes on disk), as opposed to the counters of the process that just started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.storage.sqlite import FILE_NAME


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def disk_usage(data_dir: Path, *, sqlite_file: bool = True) -> dict[str, int]:
    """Bytes on disk: the message store (SQLite with its WAL; nothing here for PostgreSQL),
    everything else (the embedded vector store), and the total."""
    sqlite = 0 if not sqlite_file else sum(_size(data_dir / f"{FILE_NAME}{suffix}") for suffix in ("", "-wal", "-shm"))
    total = _size(data_dir)
    return {"message_store_bytes": sqlite, "vector_store_bytes": total - sqlite, "total_bytes": total}


def stored_summary(service: BlockingBufferService, config: MemFuseConfig, counts: dict[str, Any]) -> dict[str, Any]:
    """Every user and session with message counts, what waits for the vector store, sizes on disk,
    and which message store holds them (its backend stats)."""
    users = []
    for user in service.list_users():
        sessions = service.list_sessions(user_id=user)["data"]["sessions"]
        users.append({"user_id": user, "messages": sum(s["messages"] for s in sessions), "sessions": sessions})
    data_dir = Path(config.storage.data_dir)
    backend = counts.get("message_store") or {"backend": config.storage.message_store.backend}
    return {
        "data_dir": str(data_dir),
        "message_store": backend,
        "users": users,
        "messages": counts.get("messages"),
        "rounds": counts.get("rounds"),
        "pending_rounds": counts.get("pending_rounds"),
        "disk": disk_usage(data_dir, sqlite_file=backend["backend"] == "sqlite"),
    }


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"


def stored_view(stored: dict[str, Any]) -> Group:
    """The summary as a table of sessions and one line of totals."""
    backend = stored["message_store"]
    where = stored["data_dir"]
    if backend["backend"] == "postgres":
        where = f"PostgreSQL {backend['dsn']} (schema {backend['schema']}), vectors in {where}"
    table = Table(title=f"Stored in {where}", title_justify="left")
    for column in ("user", "session", "messages", "first", "last"):
        table.add_column(column, justify="right" if column == "messages" else "left")
    for user in stored["users"]:
        for index, session in enumerate(user["sessions"]):
            table.add_row(
                user["user_id"] if index == 0 else "",
                session["session_id"],
                str(session["messages"]),
                session["first_at"],
                session["last_at"],
            )
        table.add_section()
    disk = stored["disk"]
    line = (
        f"{stored['messages']} messages in {stored['rounds']} rounds, {len(stored['users'])} user(s); "
        f"{stored['pending_rounds']} round(s) pending (acknowledged, not yet in the vector store); on disk "
        f"{_mb(disk['total_bytes'])} (message store {_mb(disk['message_store_bytes'])}, "
        f"vector store {_mb(disk['vector_store_bytes'])})"
    )
    return Group(table, line)
