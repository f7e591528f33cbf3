"""Keyword search alone, on real text: one user's store filled with LongMemEval haystack turns.

The store is grown through the message store's own append (no embedding: this stage times the
keyword path only) to each size, and each size is queried with LongMemEval questions: the keyword
top-k p50 / p99 of the in-memory index, against a baseline in the same process, SQLite FTS5's
BM25 over the same texts with every match ranked (what the store used before); the time to build
a user's index from the store (a process's first search of that user) and to catch up with the
messages added since the last search; and a cProfile of the search.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memfuse_memory.bench.latency import percentiles, timed
from memfuse_memory.bench.longmemeval import DATA, load_questions
from memfuse_memory.models import QueryRequest, Round, Scope, StoredMessage
from memfuse_memory.ranking.keywords import query_terms
from memfuse_memory.storage.keyword_index import KeywordIndexes
from memfuse_memory.storage.sqlite.store import MessageStore

USER = "bench"
POOL = 50  # top-k of the keyword comparison (the engine draws `candidate_pool`, 100 by default)
LONG_QUERY = " ".join(f"w{n}" for n in range(10_000))  # 10k distinct words, none of them stored


def turns(data: Path) -> tuple[Iterator[str], list[str]]:
    """Distinct haystack turn texts in file order, and the question texts."""
    questions = load_questions(data)

    def texts() -> Iterator[str]:
        seen: set[str] = set()
        for question in questions:
            for _, _, session in question.sessions:
                for turn in session:
                    content = str(turn.get("content", "")).strip()
                    if content and content not in seen:
                        seen.add(content)
                        yield content

    return texts(), [q.text for q in questions]


def request(text: str) -> QueryRequest:
    return QueryRequest(text, 10, USER, None, None, "score", "desc", None, None, None)


class Fts5Baseline:
    """SQLite FTS5 BM25 over the same texts (its own file): every match ranked, the top ``POOL`` kept."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(
            "CREATE VIRTUAL TABLE docs USING fts5 (content, tokenize = 'porter unicode61 remove_diacritics 2')"
        )

    def add(self, texts: list[str]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO docs (content) VALUES (?)", [(t,) for t in texts])
        self.conn.execute("COMMIT")

    def search(self, text: str) -> list[tuple[int, float]]:
        words = query_terms(text)
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        return self.conn.execute(
            "SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?", (match, POOL)
        ).fetchall()


def _fill(store: MessageStore, baseline: Fts5Baseline, texts: Iterator[str], start: int, stop: int) -> int:
    """Append turns ``start..stop`` as rounds of 50 messages (to the baseline too); returns the count."""
    scope = Scope(user_id=USER, session_id="haystack", agent_id=None)
    now = datetime.now(UTC)
    added = start
    while added < stop:
        batch = []
        for n in range(added, min(stop, added + 50)):
            content = next(texts, None)
            if content is None:
                break
            batch.append(StoredMessage(f"m{n}", "user", content, None, now, {}, scope, f"r{n // 50}"))
        if not batch:
            break
        store.append_rounds([Round(f"r{added // 50}", scope, batch)])
        baseline.add([m.content for m in batch])
        added += len(batch)
    return added


def _each(operation: Callable[[str], Any], texts: list[str]) -> list[float]:
    """Milliseconds of ``operation`` on each text."""
    samples = []
    for text in texts:
        started = time.perf_counter()
        operation(text)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _profile(store: MessageStore, questions: list[str]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for text in questions:
        store.keyword_search(request(text), POOL)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(12)
    return out.getvalue()


def measure(sizes: list[int], data: Path = DATA, queries: int = 100) -> dict[str, Any]:
    """Keyword top-k latency of one user at each size of real text, against FTS5 in the same process."""
    texts, questions = turns(data)
    chosen = questions[:: max(1, len(questions) // queries)][:queries]
    report: dict[str, Any] = {"queries": len(chosen), "pool": POOL, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="kw-") as tmp:
        path = Path(tmp) / "messages.sqlite3"
        store, baseline = MessageStore(path), Fts5Baseline(Path(tmp) / "fts5.sqlite3")
        stored = 0
        try:
            for size in sizes:
                began = time.perf_counter()
                before = stored
                stored = _fill(store, baseline, texts, stored, size)
                fill_s = time.perf_counter() - began
                catch_up = timed(lambda: store.keyword_search(request(chosen[0]), POOL), 1)[0]
                build, from_snapshot = _build_seconds(path)
                for text in chosen[:5]:
                    baseline.search(text)  # warm the page cache
                search = _each(lambda text: store.keyword_search(request(text), POOL), chosen)
                fts5 = _each(baseline.search, chosen)
                long_query = timed(lambda: store.keyword_search(request(LONG_QUERY), POOL), 3)
                row = {
                    "fill seconds": round(fill_s, 1),
                    "keyword top-k ms": percentiles(search),
                    "fts5 top-k ms": percentiles(fts5),
                    "ratio p50": percentiles(search)["p50"] / percentiles(fts5)["p50"],
                    "build seconds": round(build, 2),
                    "from snapshot seconds": round(from_snapshot, 3),
                    "catch-up ms": round(catch_up, 1),
                    "caught up": stored - before,
                    "10k-word query ms": percentiles(long_query),
                    "profile": _profile(store, chosen[:20]),
                }
                report["sizes"][stored] = row
                print(
                    f"keywords: {stored} stored, top-k {row['keyword top-k ms']}, fts5 {row['fts5 top-k ms']}, "
                    f"build {row['build seconds']} s",
                    flush=True,
                )
        finally:
            store.close()
            baseline.conn.close()
    return report


def _build_seconds(path: Path) -> tuple[float, float]:
    """A fresh store on the file: seconds of its first search building the user's index from the
    table, and of one starting from the snapshot (saved here first)."""
    fresh = MessageStore(path)
    try:
        started = time.perf_counter()
        KeywordIndexes(fresh, snapshots=False).search(request("anything at all"), POOL)
        build = time.perf_counter() - started
        fresh.keyword_indexes.snapshot_now(USER)
    finally:
        fresh.close()
    fresh = MessageStore(path)
    try:
        started = time.perf_counter()
        fresh.keyword_search(request("anything at all"), POOL)
        return build, time.perf_counter() - started
    finally:
        fresh.close()


def section(result: dict[str, Any]) -> list[str]:
    """The report's keyword-search table."""
    lines = [
        "## Keyword search on LongMemEval text",
        "",
        f"One user, {result['queries']} LongMemEval questions, top {result['pool']} by BM25; milliseconds "
        "p50 / p95 / p99. The in-memory index against SQLite FTS5 ranking every match, in the same process; "
        "a process's first search of a user builds its index from the store (build) or loads the "
        "snapshot kept there (from snapshot); later searches read only what was added since "
        "(catch-up, the first search after this size's fill).",
        "",
        "| stored | keyword top-k | FTS5 BM25 top-k | ratio p50 | build | from snapshot | catch-up "
        "| one 10k-word query |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, row in result["sizes"].items():
        cells = [row[key] for key in ("keyword top-k ms", "fts5 top-k ms")]
        figures = " | ".join(f"{c['p50']:.2f} / {c['p95']:.2f} / {c['p99']:.2f}" for c in cells)
        long_query = row["10k-word query ms"]
        lines.append(
            f"| {int(size):,} | {figures} | {row['ratio p50']:.3f} | {row['build seconds']:.2f} s | "
            f"{row['from snapshot seconds']:.3f} s | "
            f"{row['catch-up ms']:.1f} ms ({row['caught up']:,} new) | {long_query['p50']:.2f} |"
        )
    return lines
