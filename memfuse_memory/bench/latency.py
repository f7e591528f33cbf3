"""The seed's latency table, measured at several store sizes, each against an in-process baseline.

Baselines: a bare SQLite WAL insert+commit for ``add`` (the durability floor), one bare MiniLM
embedding for a cold query, a dict lookup plus a deep copy for a cached query. The store is
grown to each size through the engine itself (real MiniLM vectors, cached on disk by text);
the timed adds and cold queries carry a per-run salt, so none of them finds its embedding in
that cache: each cold query pays for its query embedding, and the worker embeds each timed add.
"""

from __future__ import annotations

import copy
import os
import pickle
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.models import QueryRequest
from memfuse_memory.scope import ScopeFilter

TOPICS = [
    "the weather in Lisbon",
    "my sourdough starter",
    "training for a marathon",
    "the cat's vet visit",
    "a job interview on Friday",
    "learning Japanese verbs",
    "the quarterly budget",
    "a hiking trip in Norway",
    "repairing the bike brakes",
    "my sister's wedding plans",
    "a new espresso machine",
    "reading Dune again",
]

TARGETS = {
    "add": ("< 5 ms (seed), p99 <= 1 ms (ours)", 5.0),
    "transfer": ("< 50 ms (seed)", 50.0),
    "flush": ("< 200 ms (seed)", 200.0),
    "cached query": ("< 10 ms (seed), p50 <= 0.1 ms (ours)", 10.0),
    "cold query": ("< 100 ms (seed), p50 <= 20 ms at 100k (ours)", 100.0),
}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99)}


ADD_BLOCK = 20
"""Adds timed back to back on one engine before the next engine's turn (several engines)."""
REPEATED = "what did we say about the marathon?"
"""The query timed from the cache (asked once before)."""


def timed(operation: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def timed_spread(
    operations: dict[str, Callable[[], Any]], repeat: int, batches: int = 10, pause: float = 0.1
) -> dict[str, list[float]]:
    """:func:`timed` of each operation in ``batches`` batches ``pause`` seconds apart, the operations
    taking turns within each batch: a sub-millisecond operation timed back to back fits in a few
    milliseconds, and one burst of another process's work then decides its p50; spread over a
    second, the p50 is the operation's, the burst shows in p95/p99."""
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for batch in range(batches):
        if batch:
            time.sleep(pause)
        for name, operation in operations.items():
            samples[name] += timed(operation, repeat // batches + (batch < repeat % batches))
    return samples


def text(n: int) -> str:
    return f"Note {n}: we talked about {TOPICS[n % len(TOPICS)]} and what to do next ({n % 97})."


def question(n: int, salt: str) -> str:
    """A cold query about stored message ``n``; the salt makes its text, and so its embedding, new."""
    return f"what about {text(n)} ({salt})"


def sqlite_baseline(folder: Path, repeat: int) -> list[float]:
    """A bare insert+commit of one row into a WAL SQLite file: the floor of a durable add."""
    db = sqlite3.connect(folder / "baseline.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")

    def insert() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", (text(1),))
        db.execute("COMMIT")

    samples = timed(insert, repeat)
    db.close()
    return samples


def _cold_queries(
    memories: dict[str, BlockingBufferService], raw_embedder: Embedder, counter: Any, salt: str, repeat: int = 50
) -> dict[str, dict[str, Any]]:
    """Cold queries, each followed by its parts alone on another new question: the query embedding,
    one bare Chroma query of the user's collection (the issue's baseline is the two together), and
    the keyword search, both parts drawing the engine's ``candidate_pool`` as its query does.
    Interleaved (and the stores take turns), so a load change lands on the query and its baseline,
    and on every store, alike. Store name -> percentiles by part."""
    samples: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in memories}
    for _ in range(repeat):
        for name, memory in memories.items():
            out = samples[name]
            pool = memory.engine.config.buffer.query.candidate_pool
            out["cold query"] += timed(lambda m=memory: m.query(question(next(counter) + 7, salt), user_id="bench"), 1)
            text_ = question(next(counter) + 7, salt)
            started = time.perf_counter()
            vector = raw_embedder.embed([text_])[0]
            embedded = time.perf_counter()
            memory.engine.components.vectors.query(vector, ScopeFilter("bench"), pool)
            done = time.perf_counter()
            out["query embedding"].append((embedded - started) * 1000)
            out["bare chroma query"].append((done - embedded) * 1000)
            out["embedding + chroma query"].append((done - started) * 1000)
            request = QueryRequest(text_, 10, "bench", None, None, "score", "desc", None, None, None)
            store = memory.engine.components.store
            out["keyword search"] += timed(lambda r=request, st=store, k=pool: st.keyword_search(r, k), 1)
    return {name: {part: percentiles(values) for part, values in parts.items()} for name, parts in samples.items()}


def _baselines(folder: Path, raw_embedder: Embedder, salt: str, repeat: int) -> dict[str, dict[str, float]]:
    """The in-process baselines every ratio of the stage is taken against."""
    baselines = {"sqlite insert+commit": percentiles(sqlite_baseline(folder, repeat))}
    raw_embedder.embed(["warm up"])
    others = iter(range(-1, -(10**9), -1))
    baselines["one MiniLM embedding"] = percentiles(
        timed(lambda: raw_embedder.embed([question(next(others), salt)]), 50)
    )
    cached = [{"id": str(i), "content": text(i), "metadata": {"n": i}} for i in range(10)]
    baselines["dict lookup + deepcopy"] = percentiles(timed(lambda: copy.deepcopy(cached), repeat))
    frozen = pickle.dumps(cached, pickle.HIGHEST_PROTOCOL)  # how the query cache keeps an answer
    baselines["pickle.loads of 10 results"] = percentiles(timed(lambda: pickle.loads(frozen), repeat))
    return baselines


def _fill(memory: BlockingBufferService, start: int, stop: int) -> None:
    batch = [[{"role": "user", "content": text(n)}] for n in range(start, stop)]
    for first in range(0, len(batch), 500):
        memory.add_batch(batch[first : first + 500], session_id=f"fill{first % 40}", user_id="bench")
    memory.flush_all()
    memory.engine.write_buffer.transfer_latency = type(memory.engine.write_buffer.transfer_latency)()
    memory.engine.worker.flush_latency = type(memory.engine.worker.flush_latency)()


def _add(memory: BlockingBufferService, counter: Any, salt: str) -> None:
    messages = [
        {"role": "user", "content": f"{text(next(counter))} [{salt}]"},
        {"role": "assistant", "content": "Noted."},
    ]
    memory.add(messages, session_id="live", user_id="bench")


def measure_stores(
    sizes: list[int],
    embedder: Embedder,
    raw_embedder: Embedder,
    configs: dict[str, dict[str, Any] | None],
    repeat: int = 200,
) -> dict[str, dict[str, Any]]:
    """Latency percentiles of each operation at each store size, plus RSS growth of buffers and
    cache, on one engine per config (each selects a message store, see ``bench.message_stores``),
    all in one process. With several, each timed operation takes turns across them: blocks of
    :data:`ADD_BLOCK` adds (each engine flushed, untimed, before the next one's block), one cold
    query each, batches of cached queries. Name -> that engine's result; RSS growth is measured on
    the first."""
    process = psutil.Process(os.getpid())
    salt = f"r{time.time_ns()}"  # timed texts are new to the embedding cache: each add and query pays its embedding
    with tempfile.TemporaryDirectory(prefix="lat-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        baselines = _baselines(folder, raw_embedder, salt, repeat)
        memories = {
            name: stack.enter_context(
                BlockingBufferService.from_config(config=config, data_dir=folder / f"data{i}", embedder=embedder)
            )
            for i, (name, config) in enumerate(configs.items())
        }
        reports: dict[str, dict[str, Any]] = {name: {"sizes": {}, "baselines": dict(baselines)} for name in memories}
        stored = 0
        counter = iter(range(10**9))  # one count over all sizes: no timed text repeats within the run
        for size in sizes:
            for memory in memories.values():
                _fill(memory, stored, size)
            stored = size
            adds: dict[str, list[float]] = {name: [] for name in memories}
            for start in range(0, repeat, ADD_BLOCK):
                for name, memory in memories.items():
                    adds[name] += timed(lambda m=memory: _add(m, counter, salt), min(ADD_BLOCK, repeat - start))
                    if len(memories) > 1:  # the next engine's adds meet only their own worker, as when alone
                        memory.flush_all()
            stats = {}
            for name, memory in memories.items():
                memory.flush_all()
                stats[name] = memory.get_stats()
            hits_before = getattr(embedder, "hits", 0)
            cold = _cold_queries(memories, raw_embedder, counter, salt)
            cold_cache_hits = getattr(embedder, "hits", 0) - hits_before
            for memory in memories.values():
                memory.query(REPEATED, user_id="bench")
            hits = timed_spread(
                {name: (lambda m=memory: m.query(REPEATED, user_id="bench")) for name, memory in memories.items()},
                repeat,
            )
            for name in memories:
                reports[name]["sizes"][size] = {
                    "add": percentiles(adds[name]),
                    "transfer": stats[name]["write_buffer"]["transfer_latency_ms"],
                    "flush": stats[name]["index_worker"]["flush_latency_ms"],
                    "cached query": percentiles(hits[name]),
                    "cold query embeddings from cache": cold_cache_hits,
                    **cold[name],
                    "stored messages": stats[name]["storage"]["messages"],
                    "candidate pool": memory.engine.config.buffer.query.candidate_pool,
                }
        first, memory = next(iter(memories.items()))
        rss_start = process.memory_info().rss
        for n in range(120):
            memory.query(f"question {n} about {TOPICS[n % len(TOPICS)]}", user_id="bench")
        for n in range(40):
            memory.add([{"role": "user", "content": text(n)}], session_id=f"steady{n % 8}", user_id="steady")
        reports[first]["rss_growth_mb"] = round((process.memory_info().rss - rss_start) / 2**20, 2)
        reports[first]["cache_entries"] = memory.get_stats()["query_buffer"]["cache_entries"]
    return reports
