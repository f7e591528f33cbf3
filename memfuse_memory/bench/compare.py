"""Ours and the peers side by side, in one process, on the same model, messages and queries.

For each system in turn, in its own temporary folder: fill the store to each size through its
bulk path, then time single adds (one user + assistant round per call) and distinct cold
queries at that size under each embedding setting of :data:`SETTINGS` (each system's default
runtime; everyone on ONNX Runtime), on the same filled store; then, in a fresh store, the ingest
rate of one long conversation (including our final flush); then retrieval quality on the
LongMemEval subset through the same evaluation loop as ours (both on ONNX Runtime). Timed texts
carry a per-run salt, so every system pays for a real embedding on each timed add and query; fill
texts repeat across runs and come from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memfuse_memory.bench import latency, longmemeval, peers, throughput

SYSTEMS = ["ours", "langchain", "llamaindex", "mem0"]
QUERIES = 50
"""Cold queries timed at each size (fewer when ``repeat`` is smaller)."""

SETTINGS = {
    "defaults": "each system on its default runtime: ours on ONNX Runtime, each peer on PyTorch "
    "(sentence-transformers, the local embedding path each peer documents)",
    "onnx": "every system handed the same ONNX Runtime embedder",
}
"""Embedding settings the adds and queries are timed under (row label -> what it means)."""


def runtime_for(setting: str, name: str) -> str:
    """The runtime ``name`` embeds with under ``setting``: ours keeps ONNX Runtime (its default)."""
    return "onnx" if setting == "onnx" or name == "ours" else "torch"


QUALITY = ["turn_recall@5", "turn_recall@10", "turn_ndcg_any@10", "session_recall@5", "session_recall@10"]


def _round(n: int, salt: str) -> list[peers.Message]:
    return [
        {"role": "user", "content": f"({salt} {n}) {latency.text(n)}", "id": f"{salt}-{n}-u"},
        {"role": "assistant", "content": f"({salt} {n}) Noted, thanks.", "id": f"{salt}-{n}-a"},
    ]


def _fill(system: peers.MemorySystem, start: int, stop: int) -> None:
    rounds = [[{"role": "user", "content": latency.text(n), "id": f"fill-{n}"}] for n in range(start, stop)]
    system.add_bulk("bench", "fill", rounds)
    system.flush()


def scaling(
    system: peers.MemorySystem,
    name: str,
    sizes: list[int],
    repeat: int,
    salt: str,
    switch: peers.RuntimeSwitch,
    settings: list[str],
) -> dict[int, dict[str, Any]]:
    """Add and cold-query percentiles (ms) at each stored size under each embedding setting (on
    the same filled store), plus the time the fill took."""
    out: dict[int, dict[str, Any]] = {}
    stored = 0
    counter = iter(range(10**9))
    for size in sizes:
        switch.use("onnx")
        started = time.perf_counter()
        _fill(system, stored, size)
        fill_seconds = time.perf_counter() - started
        stored = size
        out[size] = {"fill_seconds": round(fill_seconds, 2)}
        for setting in settings:
            runtime = runtime_for(setting, name)
            switch.use(runtime)
            adds = latency.timed(lambda: system.add("bench", "live", _round(next(counter), salt)), repeat)
            system.flush()
            queries = latency.timed(
                lambda: system.search("bench", latency.question(next(counter), salt), 10),
                min(QUERIES, repeat),
            )
            out[size][setting] = {
                "runtime": runtime,
                "add": latency.percentiles(adds),
                "query": latency.percentiles(queries),
            }
        switch.use("onnx")
    return out


def ingest_rate(system: peers.MemorySystem, rounds: int, salt: str) -> float:
    """Messages per second through ``add`` (one round per call) and a final flush, uncached texts."""
    system.add("t", "warm", _round(-1, salt))
    system.flush()
    conversation = throughput.conversation(rounds, salt)
    started = time.perf_counter()
    for n, messages in enumerate(conversation):
        system.add("t", "long", [{**m, "id": f"{salt}-c{n}-{i}"} for i, m in enumerate(messages)])
    system.flush()
    return 2 * rounds / (time.perf_counter() - started)


def measure_one(
    name: str,
    make: Any,
    sizes: list[int],
    repeat: int,
    rounds: int,
    questions: list[longmemeval.Question],
    switch: peers.RuntimeSwitch,
) -> dict[str, Any]:
    """Every measurement of one system, each part in a fresh store."""
    salt = f"r{time.time_ns()}"
    result: dict[str, Any] = {}
    settings = [s for s in SETTINGS if s == "onnx" or "torch" in switch.runtimes]
    with peers.running(make) as system:
        result["name"] = system.name
        result["sizes"] = scaling(system, name, sizes, repeat, salt, switch, settings)
    with peers.running(make) as system:
        result["ingest_messages_per_s"] = round(ingest_rate(system, rounds, salt), 1)
    if questions:
        with peers.running(make) as system:
            result["quality"] = longmemeval.summarize(*longmemeval.evaluate(questions, system))
    return result


def measure(
    names: list[str],
    switch: peers.RuntimeSwitch,
    sizes: list[int],
    repeat: int,
    rounds: int,
    questions: list[longmemeval.Question],
    on_progress: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """The side-by-side results of the named systems (``ours`` first), and why any peer was skipped;
    ``switch`` holds the runtimes (``onnx``, and ``torch`` for the peers' default setting).

    ``on_progress`` gets the report so far after each system, so a long run keeps what it measured.
    """
    report: dict[str, Any] = {
        "sizes": sizes,
        "queries": min(QUERIES, repeat),
        "systems": {},
        "skipped": {},
        "questions": len(questions),
    }
    for name in names:
        reason = peers.unavailable(name)
        if reason:
            report["skipped"][name] = reason
            continue
        print(f"peers: {name} ...", flush=True)
        make = peers.factory(name, switch)
        report["systems"][name] = measure_one(name, make, sizes, repeat, rounds, questions, switch)
        if on_progress is not None:
            on_progress(report)
    return report


NOTES = {
    "ours": "`add` commits the round to SQLite (WAL) and returns; a background worker embeds in batches and files "
    "vectors in Chroma; a query fuses BM25 keyword and vector rankings over every buffer stage.",
    "langchain": "`Chroma.add_texts` once per message (embeds it, writes vector + document + metadata); "
    "`similarity_search(filter={'user_id': ...})` over one collection. Fill: `add_texts` in batches of "
    f"{peers.CHUNK}.",
    "llamaindex": "`Memory.put_messages` writes the round to its SQLite chat store; when the short-term queue "
    "passes 70% of `token_limit` (1,000 here) the oldest ~100 tokens of messages are joined into one node, "
    "embedded and added to Chroma inside that `put`. Search: the block's filtered vector query (top k nodes, "
    "expanded to their messages), then the short-term queue. Under the default 30,000-token limit nothing "
    "reaches the vector store in these runs.",
    "mem0": "`Memory.add(round, infer=False)`: per message one embedding, one Chroma insert and one history row "
    "in SQLite; no LLM call. `search(filters={'user_id': ...})` over-fetches max(4k, 60) by vector and scores "
    "them; with Chroma and without spaCy there is no BM25 or entity boost. No bulk path: the fill uses `add`.",
}


def _cell(value: float | None, base: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    ratio = f" ({value / base:.2f}x)" if base else ""
    return f"{value:,.0f}{unit}{ratio}" if value >= 100 else f"{value:.3g}{unit}{ratio}"


def _settings(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Setting -> timings at one size; a result from before the settings is one ``shared`` setting."""
    found = {k: v for k, v in entry.items() if isinstance(v, dict) and "add" in v}
    return found or {"shared": entry}


def _rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, float | None]]]:
    """(label, unit, value per system) for every compared number."""
    systems = report["systems"]
    rows: list[tuple[str, str, dict[str, float | None]]] = []
    first = next(iter(systems.values()))
    for size in report["sizes"]:
        for setting in _settings(first["sizes"][_key(first["sizes"], size)]):
            tag = "" if setting == "shared" else f", {setting}"
            for op, stats in (("add", ("p50", "p95", "p99")), ("query", ("p50", "p95", "p99"))):
                for stat in stats:
                    values = {
                        n: _settings(s["sizes"][_key(s["sizes"], size)]).get(setting, {}).get(op, {}).get(stat)
                        for n, s in systems.items()
                    }
                    rows.append((f"{op} {stat} at {size:,} stored{tag}", " ms", values))
    rows.append(("ingest, messages/s", "", {n: s["ingest_messages_per_s"] for n, s in systems.items()}))
    if report["questions"]:
        for metric in QUALITY:
            values = {
                n: s["quality"]["overall"][metric]
                for n, s in systems.items()
                if metric in s.get("quality", {}).get("overall", {})
            }
            rows.append((f"LongMemEval {metric}", "", values))
    return rows


def _key(by_size: dict[Any, Any], size: int) -> Any:
    """Sizes are ints in a fresh result and strings once read back from JSON."""
    return size if size in by_size else str(size)


def section(report: dict[str, Any]) -> list[str]:
    """The "Peers side by side" Markdown section."""
    names = list(report["systems"])
    base = report["systems"].get("ours")
    lines = [
        "## Peers side by side",
        "",
        "Same process, same model (the local all-MiniLM-L6-v2, handed to every framework in its own interface), "
        "each system on its own embedded Chroma, same messages and queries. A cell is the absolute number and, "
        "in brackets, its ratio to ours (for latency lower is better, for throughput and recall higher is "
        "better). Adds are one user + assistant round per call with fresh texts (a real embedding for every "
        f"system that embeds inline); queries are {report['queries']} distinct cold questions, top 10, scoped "
        "to one user. Latency rows are timed on the same filled store under each embedding setting: "
        + "; ".join(f"*{name}*: {text}" for name, text in SETTINGS.items())
        + ". Ingest and recall run on ONNX Runtime for every system.",
        "",
        "| measure | " + " | ".join(report["systems"][n]["name"] for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for label, unit, values in _rows(report):
        ours = values.get("ours") if base else None
        lines.append(f"| {label} | " + " | ".join(_cell(values.get(n), ours, unit) for n in names) + " |")
    if report["questions"]:
        lines += ["", f"LongMemEval: {report['questions']} questions, the same harness and ingest order as above."]
    lines += ["", "What each system does per call:", ""]
    lines += [f"- {report['systems'][n]['name']}: {NOTES[n]}" for n in names]
    lines += [f"- {name}: not run, {reason}" for name, reason in report["skipped"].items()]
    lines += ["", "Fill time to each size (seconds, bulk path): " + _fills(report)]
    return lines


def _fills(report: dict[str, Any]) -> str:
    parts = []
    for system in report["systems"].values():
        sizes = system["sizes"]
        parts.append(f"{system['name']} " + ", ".join(f"{int(s):,}: {sizes[s]['fill_seconds']}" for s in sizes))
    return "; ".join(parts) + "."


def plot(report: dict[str, Any], out: Path) -> list[str]:
    """Add p50 and query p50 against stored messages, log-log, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, op in zip(axes, ("add", "query"), strict=True):
        for system in report["systems"].values():
            sizes = system["sizes"]
            for setting, style in zip(_settings(next(iter(sizes.values()))), ("-", "--"), strict=False):
                label = system["name"] if setting in ("shared", "defaults") else f"{system['name']}, {setting}"
                points = [_settings(sizes[s])[setting][op]["p50"] for s in sizes]
                ax.plot([int(s) for s in sizes], points, marker="o", linestyle=style, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("stored messages")
        ax.set_ylabel("ms")
        ax.set_title(f"{op} p50")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "peers_scaling.png", dpi=120)
    plt.close(fig)
    return ["", "![peers scaling](peers_scaling.png)"]
