"""The latency stage on each message store: SQLite (the data dir's file) and PostgreSQL on
127.0.0.1 (``--pg-dsn``, or a private server from the ``pgserver`` wheel started for the run).

``python -m memfuse_memory.bench latency --message-store both --sizes 1000`` measures both in
one process and reports PostgreSQL's add and cold-query p50 as ratios to SQLite's;
``quality --message-store both`` scores each variant on each store, side by side in one table.
"""

from __future__ import annotations

import os
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


def per_store(
    variants: dict[str, dict[str, Any] | None], stores: dict[str, dict[str, Any] | None]
) -> dict[str, dict[str, Any] | None]:
    """Each quality variant on each store, named ``variant [store]``; every PostgreSQL run gets its own
    schema, so no run sees another's messages. Plain BM25 (None) uses no store and runs once."""
    runs: dict[str, dict[str, Any] | None] = {}
    for index, (variant, overrides) in enumerate(variants.items()):
        if overrides is None:
            runs[variant] = None
            continue
        for store, config in stores.items():
            merged = dict(overrides)
            if config is not None:
                settings = {**config["storage"]["message_store"], "schema_name": f"quality_{index}"}
                merged["storage"] = {**merged.get("storage", {}), "message_store": settings}
            runs[f"{variant} [{store}]"] = merged
    return runs


def round_trip_floor(settings: dict[str, Any], repeat: int = 200) -> dict[str, float]:
    """p50/p95/p99 ms of a bare one-row INSERT committed on the store's server (autocommit, its
    ``synchronous_commit``): the floor of a durable add on PostgreSQL, one round trip plus commit."""
    import psycopg

    from memfuse_memory.bench.latency import percentiles, timed

    options = f"-c synchronous_commit={settings['synchronous_commit']}"
    with psycopg.connect(settings["dsn"], autocommit=True, options=options) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body text)")
        samples = timed(lambda: conn.execute("INSERT INTO bench_floor (body) VALUES ('one message')"), repeat)
        conn.execute("DROP TABLE bench_floor")
    return percentiles(samples)


def measure(choice: str, dsn: str, run: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
    """``run`` (a stage on one store) on each chosen store in turn: name -> its result, with the
    load average around it and, for PostgreSQL, the round-trip floor measured just before it."""
    with configs(choice, dsn) as chosen:
        results = {}
        for name, config in chosen.items():
            load = os.getloadavg()[0]
            floor = round_trip_floor(config["storage"]["message_store"]) if config is not None else None
            results[name] = run(config)
            _annotate(results[name], load, floor)
        return results


def measure_together(
    choice: str, dsn: str, run: Callable[[dict[str, dict[str, Any] | None]], dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    """``run`` (the latency stage) on all chosen stores at once, their operations taking turns in
    one process (``latency.measure_stores``): a load change on this shared machine then lands on
    every store alike, instead of on whichever ran second. Name -> its result, as :func:`measure`."""
    with configs(choice, dsn) as chosen:
        load = os.getloadavg()[0]
        floors = {
            name: round_trip_floor(config["storage"]["message_store"])
            for name, config in chosen.items()
            if config is not None
        }
        results = run(chosen)
        for name, result in results.items():
            _annotate(result, load, floors.get(name))
            result["interleaved"] = len(results) > 1
        return results


def _annotate(result: dict[str, Any], load: float, floor: dict[str, float] | None) -> None:
    result["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    if floor is not None:
        result["baselines"]["postgres insert+commit"] = floor


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

    lines = [
        "## Message stores side by side",
        "",
        f"p50 in ms of the latency stage per message store (PostgreSQL 16 on 127.0.0.1); ratios to {names[0]}; "
        f"targets: add <= {TARGETS['add']}x, cold query <= {TARGETS['cold query']}x.",
        "",
        *table(names, list(by_store[names[0]]["sizes"]), TARGETS, cell, "stored"),
    ]
    floors = [
        f"{name} {by_store[name]['baselines']['postgres insert+commit']['p50']:.3f} ms"
        for name in names
        if "postgres insert+commit" in by_store[name].get("baselines", {})
    ]
    if all("load_average" in by_store[name] for name in names):
        loads = [f"{name} {'-'.join(map(str, by_store[name]['load_average']))}" for name in names]
        lines += ["", "Load average (1 min) at the start and end of each store's run: " + "; ".join(loads) + "."]
    if by_store[names[0]].get("interleaved"):
        lines += [
            "",
            "The stores ran in one process at once, one engine each, their operations taking turns (blocks of "
            "20 adds, each engine flushed before the other's block; one cold query each; batches of cached "
            "queries), so a change of load lands on both.",
        ]
    if floors:
        lines += [
            "",
            "Floor of a durable add on PostgreSQL, measured just before each run: a bare one-row INSERT "
            "committed on the same server (one round trip plus commit), p50: " + "; ".join(floors) + ".",
        ]
    return lines
