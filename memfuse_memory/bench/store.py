"""LangGraph store latency: get, put, replace and delete p50 as one namespace grows from 20 to 20,000 items.

Each operation is one statement on the key-value table's primary key, so its p50 should stay flat
as the namespace grows; the table prints each p50 as a ratio to the same operation at the first
size, and beside LangGraph's ``InMemoryStore`` doing the same operations in the same process.
The namespace is filled through ``batch`` without vectors (fast); "put indexed" replaces an item
with its vector (MiniLM embedding + Chroma upsert), the cost an application pays per indexed put.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.embedding.base import Embedder

SIZES = (20, 200, 2_000, 20_000)
NAMESPACE = ("bench", "memories")
OPERATIONS = ("get", "put new", "replace", "delete", "put indexed")


def _p50_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 4)


def _timed(operation: Callable[[int], object], repeat: int) -> float:
    samples = []
    for number in range(repeat):
        started = time.perf_counter()
        operation(number)
        samples.append(time.perf_counter() - started)
    return _p50_ms(samples)


def _value(number: int) -> dict[str, Any]:
    return {"text": f"memory number {number}: the user mentioned topic {number % 97}", "n": number}


def _fill(store: Any, start: int, stop: int) -> None:
    from langgraph.store.base import PutOp

    for first in range(start, stop, 1000):
        store.batch([PutOp(NAMESPACE, f"k{n}", _value(n), index=False) for n in range(first, min(stop, first + 1000))])


def _measure_size(store: Any, size: int, repeat: int, rng: random.Random, indexed: bool) -> dict[str, float]:
    """p50 of each operation on a namespace of ``size`` items (the namespace is back at ``size`` after)."""
    fresh = f"new-{size}-"
    row = {
        "get": _timed(lambda n: store.get(NAMESPACE, f"k{rng.randrange(size)}"), repeat),
        "put new": _timed(lambda n: store.put(NAMESPACE, f"{fresh}{n}", _value(n), index=False), repeat),
        "replace": _timed(lambda n: store.put(NAMESPACE, f"k{rng.randrange(size)}", _value(n), index=False), repeat),
        "delete": _timed(lambda n: store.delete(NAMESPACE, f"{fresh}{n}"), repeat),
    }
    if indexed:
        row["put indexed"] = _timed(lambda n: store.put(NAMESPACE, f"k{n % size}", _value(n)), max(1, repeat // 4))
    return row


def measure(
    embedder: Embedder, sizes: tuple[int, ...] = SIZES, repeat: int = 200, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """p50 milliseconds per operation and size, for MemFuseStore (on the message store of ``config``,
    SQLite by default) and InMemoryStore."""
    from langgraph.store.memory import InMemoryStore

    from langchain_memfuse import MemFuseStore

    rng = random.Random(7)
    result: dict[str, Any] = {"repeat": repeat, "sizes": {}, "in_memory": {}}
    with (
        tempfile.TemporaryDirectory(prefix="store-bench-") as tmp,
        BlockingBufferService.from_config(config=config, data_dir=Path(tmp), embedder=embedder) as memory,
    ):
        ours = MemFuseStore(user_id="bench", service=memory, index_fields=["text"])
        reference = InMemoryStore()
        ours.put(NAMESPACE, "warm-up", _value(0))  # loads the model and creates the collection
        ours.delete(NAMESPACE, "warm-up")
        filled = 0
        for size in sizes:
            _fill(ours, filled, size)
            _fill(reference, filled, size)
            filled = size
            result["sizes"][size] = _measure_size(ours, size, repeat, rng, indexed=True)
            result["in_memory"][size] = _measure_size(reference, size, repeat, rng, indexed=False)
            print(f"  store at {size:,} items: {result['sizes'][size]}", flush=True)
        result["embedding_p50_ms"] = _timed(lambda n: embedder.embed([_value(n)["text"]]), max(1, repeat // 4))
    return result


def section(result: dict[str, Any]) -> list[str]:
    """The report section: p50 per size, each with its ratio to the first size."""
    sizes = list(result["sizes"])
    first = result["sizes"][sizes[0]]
    lines = [
        "## LangGraph store (MemFuseStore) latency",
        "",
        f"p50 milliseconds over {result['repeat']} calls per cell, one namespace of N items "
        "(ratio to the same operation at the first size in brackets; InMemoryStore in the same process).",
        "",
        "| operation | " + " | ".join(f"{int(size):,} items" for size in sizes) + " | InMemoryStore, largest |",
        "| --- |" + " --- |" * (len(sizes) + 1),
    ]
    for op in OPERATIONS:
        if op not in first:
            continue
        cells = [f"{result['sizes'][s][op]:.3f} ({result['sizes'][s][op] / first[op]:.2f}x)" for s in sizes]
        baseline = result["in_memory"][sizes[-1]].get(op)
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {'' if baseline is None else f'{baseline:.3f}'} |")
    if "embedding_p50_ms" in result:
        embedding = result["embedding_p50_ms"]
        indexed = result["sizes"][sizes[-1]]["put indexed"]
        lines += [
            "",
            f"One bare MiniLM embedding of the same text in the same process: {embedding:.3f} ms p50; "
            f"a put indexed at the largest size costs {indexed / embedding:.2f}x that.",
        ]
    return lines


def section_by_store(by_store: dict[str, dict[str, Any]]) -> list[str]:
    """Get and put p50 per size on each message store's key-value table, with ratios to the first store."""
    from memfuse_memory.bench.message_stores import table

    names = list(by_store)
    sizes = list(by_store[names[0]]["sizes"])

    def cell(name: str, size: Any, op: str) -> str:
        ms = by_store[name]["sizes"][size][op]
        base, start = by_store[names[0]]["sizes"][size][op], by_store[name]["sizes"][sizes[0]][op]
        return f"{ms:.3f} ({ms / base:.2f}x / {ms / start:.2f}x)"

    return [
        "## LangGraph store on each message store",
        "",
        f"p50 in ms of MemFuseStore get and put (a new key, no vector) per items in the namespace; ratios to "
        f"{names[0]} at the same size, and (after the slash) to the same store at the first size.",
        "",
        *table(names, sizes, ("get", "put new", "replace"), cell, "items"),
    ]
