"""The latency stage on each message store: SQLite (the data dir's file) and PostgreSQL on
127.0.0.1 (``--pg-dsn``, or a private server from the ``pgserver`` wheel started for the run).

``python -m memfuse_memory.bench latency --message-store both --sizes 1000`` measures both in
one process and reports PostgreSQL's add and cold-query p50 as ratios to SQLite's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

CHOICES = ("sqlite", "postgres", "both")
TARGETS = {"add": 3.0, "cold query": 1.2}  # PostgreSQL p50 at most this many times SQLite's


@contextmanager
def configs(choice: str, dsn: str) -> Iterator[dict[str, dict[str, Any] | None]]:
    """Backend name -> ``from_config`` config for the chosen stores (a server started if needed)."""
    names = ["sqlite", "postgres"] if choice == "both" else [choice]
    with ExitStack() as stack:
        found: dict[str, dict[str, Any] | None] = {}
        for name in names:
            if name == "sqlite":
                found[name] = None
                continue
            if not dsn:
                from memfuse_memory.bench.postgres_server import local_postgres

                dsn = stack.enter_context(local_postgres()).dsn
            found[name] = {"storage": {"message_store": {"backend": "postgres", "dsn": dsn, "schema_name": "bench"}}}
        yield found


def measure(choice: str, dsn: str, run: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
    """``run`` (the latency stage) on each chosen store: name -> its result."""
    with configs(choice, dsn) as chosen:
        return {name: run(config) for name, config in chosen.items()}


def section(by_store: dict[str, dict[str, Any]]) -> list[str]:
    """The side-by-side table of the stores' add and cold-query p50 (ratios when both ran)."""
    lines = [
        "## Message stores side by side",
        "",
        "p50 in ms of the latency stage per message store (PostgreSQL 16 on 127.0.0.1); ratio = PostgreSQL / SQLite.",
        "",
        "| stored | operation | " + " | ".join(by_store) + (" | ratio (target) |" if len(by_store) == 2 else " |"),
        "| --- | --- |" + " --- |" * (len(by_store) + (1 if len(by_store) == 2 else 0)),
    ]
    first = next(iter(by_store.values()))
    for size in first["sizes"]:
        for op, target in TARGETS.items():
            p50 = [result["sizes"][size][op]["p50"] for result in by_store.values()]
            cells = " | ".join(f"{value:.3f}" for value in p50)
            ratio = f" | {p50[1] / p50[0]:.2f}x (<= {target}x)" if len(p50) == 2 else ""
            lines.append(f"| {int(size):,} | {op} | {cells}{ratio} |")
    return lines
