"""Keyword search alone, on real text: one user's store filled with LongMemEval haystack turns.

The store is grown through the message store's own append (no embedding: this stage times the
FTS5 path only) to each size, and each size is queried with LongMemEval questions: the keyword
top-k p50 / p99, the term-statistics read alone, and a cProfile of the slowest step's callers.
"""

from __future__ import annotations

import cProfile
import io
import pstats
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
from memfuse_memory.storage.sqlite.store import MessageStore

USER = "bench"
POOL = 50  # the engine's default candidate pool
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


def _fill(store: MessageStore, texts: Iterator[str], start: int, stop: int) -> int:
    """Append turns ``start..stop`` as rounds of 50 messages; returns how many were added."""
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
    """Keyword top-k latency (and term statistics alone) of one user at each size of real text."""
    texts, questions = turns(data)
    chosen = questions[:: max(1, len(questions) // queries)][:queries]
    report: dict[str, Any] = {"queries": len(chosen), "pool": POOL, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="kw-") as tmp:
        store = MessageStore(Path(tmp) / "messages.sqlite3")
        stored = 0
        try:
            for size in sizes:
                began = time.perf_counter()
                stored = _fill(store, texts, stored, size)
                fill_s = time.perf_counter() - began
                for text in chosen[:5]:
                    store.keyword_search(request(text), POOL)  # warm the page cache
                search = _each(lambda text: store.keyword_search(request(text), POOL), chosen)
                stats = _each(lambda text: store.term_stats(query_terms(text)), chosen)
                long_query = timed(lambda: store.keyword_search(request(LONG_QUERY), POOL), 3)
                report["sizes"][stored] = {
                    "fill seconds": round(fill_s, 1),
                    "keyword top-k ms": percentiles(search),
                    "term stats ms": percentiles(stats),
                    "10k-word query ms": percentiles(long_query),
                    "profile": _profile(store, chosen[:20]),
                }
                print(f"keywords: {stored} stored, top-k {report['sizes'][stored]['keyword top-k ms']}", flush=True)
        finally:
            store.close()
    return report


def section(result: dict[str, Any]) -> list[str]:
    """The report's keyword-search table."""
    lines = [
        "## Keyword search on LongMemEval text",
        "",
        f"One user, {result['queries']} LongMemEval questions, top {result['pool']} by FTS5 BM25; "
        "milliseconds p50 / p95 / p99.",
        "",
        "| stored | keyword top-k | term statistics | one 10k-word query |",
        "| --- | --- | --- | --- |",
    ]
    for size, row in result["sizes"].items():
        cells = [row[key] for key in ("keyword top-k ms", "term stats ms", "10k-word query ms")]
        figures = " | ".join(f"{c['p50']:.2f} / {c['p95']:.2f} / {c['p99']:.2f}" for c in cells)
        lines.append(f"| {int(size):,} | {figures} |")
    return lines
