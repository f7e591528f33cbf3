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
from collections.abc import Callable
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


def timed(operation: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - started) * 1000)
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


def _cold_query_parts(
    memory: BlockingBufferService, raw_embedder: Embedder, counter: Any, salt: str, repeat: int = 50
) -> dict[str, dict[str, float]]:
    """The parts of a cold query, each alone on new questions: the query embedding, one bare Chroma
    query of the user's collection (the issue's baseline is the two together), and the keyword search."""
    vectors = memory.engine.components.vectors
    store = memory.engine.components.store
    scope = ScopeFilter("bench")
    embeds, chroma, both, keyword = [], [], [], []
    for _ in range(repeat):
        text_ = question(next(counter) + 7, salt)
        started = time.perf_counter()
        vector = raw_embedder.embed([text_])[0]
        embedded = time.perf_counter()
        vectors.query(vector, scope, 50)
        done = time.perf_counter()
        embeds.append((embedded - started) * 1000)
        chroma.append((done - embedded) * 1000)
        both.append((done - started) * 1000)
        request = QueryRequest(text_, 10, "bench", None, None, "score", "desc", None, None, None)
        keyword.append(timed(lambda r=request: store.keyword_search(r, 50), 1)[0])
    return {
        "query embedding": percentiles(embeds),
        "bare chroma query": percentiles(chroma),
        "embedding + chroma query": percentiles(both),
        "keyword search": percentiles(keyword),
    }


def measure(
    sizes: list[int],
    embedder: Embedder,
    raw_embedder: Embedder,
    repeat: int = 200,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Latency percentiles of each operation at each store size, plus RSS growth of buffers and cache;
    ``config`` selects another message store (see ``bench.message_stores``)."""
    process = psutil.Process(os.getpid())
    report: dict[str, Any] = {"sizes": {}, "baselines": {}}
    salt = f"r{time.time_ns()}"  # timed texts are new to the embedding cache: each add and query pays its embedding
    with tempfile.TemporaryDirectory(prefix="lat-") as tmp:
        folder = Path(tmp)
        report["baselines"]["sqlite insert+commit"] = percentiles(sqlite_baseline(folder, repeat))
        raw_embedder.embed(["warm up"])
        others = iter(range(-1, -(10**9), -1))
        report["baselines"]["one MiniLM embedding"] = percentiles(
            timed(lambda: raw_embedder.embed([question(next(others), salt)]), 50)
        )
        cached = [{"id": str(i), "content": text(i), "metadata": {"n": i}} for i in range(10)]
        report["baselines"]["dict lookup + deepcopy"] = percentiles(timed(lambda: copy.deepcopy(cached), repeat))
        frozen = pickle.dumps(cached, pickle.HIGHEST_PROTOCOL)  # how the query cache keeps an answer
        report["baselines"]["pickle.loads of 10 results"] = percentiles(timed(lambda: pickle.loads(frozen), repeat))
        with BlockingBufferService.from_config(config=config, data_dir=folder / "data", embedder=embedder) as memory:
            stored = 0
            counter = iter(range(10**9))  # one count over all sizes: no timed text repeats within the run
            for size in sizes:
                batch = [[{"role": "user", "content": text(n)}] for n in range(stored, size)]
                for start in range(0, len(batch), 500):
                    memory.add_batch(batch[start : start + 500], session_id=f"fill{start % 40}", user_id="bench")
                memory.flush_all()
                stored = size
                memory.engine.write_buffer.transfer_latency = type(memory.engine.write_buffer.transfer_latency)()
                memory.engine.worker.flush_latency = type(memory.engine.worker.flush_latency)()
                adds = timed(
                    lambda c=counter: memory.add(
                        [
                            {"role": "user", "content": f"{text(next(c))} [{salt}]"},
                            {"role": "assistant", "content": "Noted."},
                        ],
                        session_id="live",
                        user_id="bench",
                    ),
                    repeat,
                )
                memory.flush_all()
                stats = memory.get_stats()
                hits_before = getattr(embedder, "hits", 0)
                colds = timed(lambda c=counter: memory.query(question(next(c) + 7, salt), user_id="bench"), 50)
                cold_cache_hits = getattr(embedder, "hits", 0) - hits_before
                parts = _cold_query_parts(memory, raw_embedder, counter, salt)
                memory.query("what did we say about the marathon?", user_id="bench")
                hits = timed(lambda: memory.query("what did we say about the marathon?", user_id="bench"), repeat)
                report["sizes"][size] = {
                    "add": percentiles(adds),
                    "transfer": stats["write_buffer"]["transfer_latency_ms"],
                    "flush": stats["index_worker"]["flush_latency_ms"],
                    "cached query": percentiles(hits),
                    "cold query": percentiles(colds),
                    "cold query embeddings from cache": cold_cache_hits,
                    **parts,
                    "stored messages": stats["storage"]["messages"],
                }
            rss_start = process.memory_info().rss
            for n in range(120):
                memory.query(f"question {n} about {TOPICS[n % len(TOPICS)]}", user_id="bench")
            for n in range(40):
                memory.add([{"role": "user", "content": text(n)}], session_id=f"steady{n % 8}", user_id="steady")
            report["rss_growth_mb"] = round((process.memory_info().rss - rss_start) / 2**20, 2)
            report["cache_entries"] = memory.get_stats()["query_buffer"]["cache_entries"]
    return report
