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


def measure(
    choice: str, dsn: str, run: Callable[[dict[str, Any] | None], dict[str, Any]], *, passes: int = 1
) -> dict[str, Any]:
    """``run`` (the latency stage) on each chosen store: name -> its result; a PostgreSQL store's
    result also holds the round-trip floor measured just before it.

    With ``passes`` > 1 the stores take turns (sqlite, postgres, sqlite, postgres, ...), each pass on
    a fresh schema, and each operation keeps the pass with its lowest p50 (:func:`best_of`): a load
    change on this shared machine then lands on both stores instead of on whichever ran second."""
    with configs(choice, dsn) as chosen:
        by_pass: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
        for index in range(passes):
            for name, config in chosen.items():
                if config is not None and index:
                    settings = dict(config["storage"]["message_store"])
                    settings["schema_name"] = f"{settings['schema_name']}_{index}"
                    config = {"storage": {"message_store": settings}}
                load = os.getloadavg()[0]
                floor = round_trip_floor(config["storage"]["message_store"]) if config is not None else None
                result = run(config)
                result["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
                if floor is not None:
                    result["baselines"]["postgres insert+commit"] = floor
                by_pass[name].append(result)
        return {name: best_of(results) for name, results in by_pass.items()}


def best_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The first pass's result, each ``sizes`` operation (and baseline) replaced by the pass with the
    lowest p50; ``p50_by_pass`` keeps every pass's p50 and ``load_average`` every pass's load."""
    if len(results) == 1:
        return results[0]
    best = dict(results[0])
    best["passes"] = len(results)
    best["load_average"] = [value for result in results for value in result["load_average"]]
    for part in ("sizes", "baselines"):
        if part not in best:
            continue
        merged: dict[Any, Any] = {}
        for key, first in results[0][part].items():
            runs = [result[part][key] for result in results]
            if isinstance(first, dict) and "p50" in first:  # a baseline
                merged[key] = min(runs, key=lambda timing: timing["p50"])
                continue
            merged[key] = dict(first)
            for op, timing in first.items():
                if isinstance(timing, dict) and "p50" in timing:
                    merged[key][op] = min((run[op] for run in runs), key=lambda timing: timing["p50"])
            merged[key]["p50_by_pass"] = {op: [run[op]["p50"] for run in runs] for op in TARGETS if op in first}
        best[part] = merged
    return best


def table(
    names: list[str], sizes: list[Any], operations: Iterable[str], cell: Callable[[str, Any, str], str], first: str
) -> list[str]:
    """A Markdown table with a row per size and operation and a column per store."""
    lines = [f"| {first} | operation | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for size in sizes:
        for op in operations:
            lines.append(f"| {int(size):,} | {op} | " + " | ".join(cell(name, size, op) for name in names) + " |")
    return lines


def _spans(loads: list[float]) -> list[str]:
    return [f"{start}-{end}" for start, end in zip(loads[::2], loads[1::2], strict=True)]


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
        loads = [f"{name} {', '.join(_spans(by_store[name]['load_average']))}" for name in names]
        lines += ["", "Load average (1 min) at the start and end of each store's run: " + "; ".join(loads) + "."]
    passes = by_store[names[0]].get("passes", 1)
    if passes > 1:
        lines += [
            "",
            f"The stores took turns, {passes} runs each, each on fresh storage; a cell is the lower p50 of its "
            "store's runs (every run's p50 is in results.json, `p50_by_pass`).",
        ]
    if floors:
        lines += [
            "",
            "Floor of a durable add on PostgreSQL, measured just before each run: a bare one-row INSERT "
            "committed on the same server (one round trip plus commit), p50: " + "; ".join(floors) + ".",
        ]
    return lines
