"""The latency stage on each message store: SQLite (the data dir's file) and PostgreSQL on
127.0.0.1 (``--pg-dsn``, or a private server from the ``pgserver`` wheel started for the run).

``python -m memfuse_memory.bench latency --message-store both --sizes 1000`` measures both in
one process and reports PostgreSQL's add and cold-query p50 as ratios to SQLite's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

CHOICES = ("sqlite", "postgres", "both", "all")
# "all": also PostgreSQL with synchronous_commit off (an add survives a replica crash, not a server
# crash: the same promise as SQLite's default synchronous NORMAL)
NAMES = {"both": ["sqlite", "postgres"], "all": ["sqlite", "postgres", "postgres (synchronous_commit off)"]}
TARGETS = {"add": 3.0, "cold query": 1.2}  # PostgreSQL p50 at most this many times SQLite's


@contextmanager
def configs(choice: str, dsn: str) -> Iterator[dict[str, dict[str, Any] | None]]:
    """Backend name -> ``from_config`` config for the chosen stores (a server started if needed)."""
    names = NAMES.get(choice, [choice])
    with ExitStack() as stack:
        found: dict[str, dict[str, Any] | None] = {}
        for name in names:
            if name == "sqlite":
                found[name] = None
                continue
            if not dsn:
                from memfuse_memory.bench.postgres_server import local_postgres

                dsn = stack.enter_context(local_postgres()).dsn
            synchronous = "off" if "off" in name else "on"
            settings = {"backend": "postgres", "dsn": dsn, "schema_name": f"bench_{synchronous}"}
            found[name] = {"storage": {"message_store": {**settings, "synchronous_commit": synchronous}}}
        yield found


def measure(choice: str, dsn: str, run: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
    """``run`` (the latency stage) on each chosen store: name -> its result."""
    with configs(choice, dsn) as chosen:
        return {name: run(config) for name, config in chosen.items()}


def table(
    names: list[str], sizes: list[Any], operations: Iterable[str], cell: Callable[[str, Any, str], str], first: str
) -> list[str]:
    """A Markdown table with a row per size and operation and a column per store."""
    lines = [f"| {first} | operation | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for size in sizes:
        for op in operations:
            lines.append(f"| {int(size):,} | {op} | " + " | ".join(cell(name, size, op) for name in names) + " |")
    return lines


def section(by_store: dict[str, dict[str, Any]]) -> list[str]:
    """The side-by-side table of the stores' add and cold-query p50, with ratios to the first store."""
    names = list(by_store)

    def cell(name: str, size: Any, op: str) -> str:
        base = by_store[names[0]]["sizes"][size][op]["p50"]
        p50 = by_store[name]["sizes"][size][op]["p50"]
        return f"{p50:.3f}" if name == names[0] else f"{p50:.3f} ({p50 / base:.2f}x)"

    return [
        "## Message stores side by side",
        "",
        f"p50 in ms of the latency stage per message store (PostgreSQL 16 on 127.0.0.1); ratios to {names[0]}; "
        f"targets: add <= {TARGETS['add']}x, cold query <= {TARGETS['cold query']}x.",
        "",
        *table(names, list(by_store[names[0]]["sizes"]), TARGETS, cell, "stored"),
    ]
