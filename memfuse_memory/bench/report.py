"""The Markdown report: results.json, REPORT.md and the plots, from the stages measured so far."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memfuse_memory.bench import (
    compare,
    http,
    keywords,
    latency,
    lme_metrics,
    message_stores,
    runtimes,
    startup,
    store,
)

METRICS = lme_metrics.METRICS
STAGES = ("latency", "throughput", "quality", "fusion", "peers", "startup", "runtimes", "store", "http", "keywords")


def _latency_section(result: dict[str, Any]) -> list[str]:
    chroma = "a Chroma server in its own process" if result.get("vector store") == "server" else "embedded Chroma"
    lines = [
        "## Seed latency table",
        "",
        f"Milliseconds, p50 / p95 / p99, real MiniLM and {chroma} on this machine.",
        "",
    ]
    sizes = list(result["sizes"])
    lines.append("| operation | target | " + " | ".join(f"{int(size):,} stored" for size in sizes) + " |")
    lines.append("| --- | --- |" + " --- |" * len(sizes))
    for op, (target, limit) in latency.TARGETS.items():
        cells = []
        for size in sizes:
            row = result["sizes"][size][op]
            if row.get("p50") is None:
                cells.append("n/a")
                continue
            verdict = "meets" if row["p50"] < limit else "MISSES"
            cells.append(f"{row['p50']:.3f} / {row['p95']:.3f} / {row['p99']:.3f} ({verdict} seed)")
        lines.append(f"| {op} | {target} | " + " | ".join(cells) + " |")
    base = result["baselines"]
    last = result["sizes"][sizes[-1]]
    lines += [
        "",
        "Baselines measured in the same process, and our p50 as a ratio to them (largest size):",
        "",
        f"- add: {last['add']['p50']:.3f} ms = {last['add']['p50'] / base['sqlite insert+commit']['p50']:.1f}x a bare "
        f"SQLite WAL insert+commit ({base['sqlite insert+commit']['p50']:.3f} ms)",
        f"- cold query: {last['cold query']['p50']:.2f} ms = "
        f"{last['cold query']['p50'] / base['one MiniLM embedding']['p50']:.1f}x "
        f"one bare MiniLM query embedding ({base['one MiniLM embedding']['p50']:.2f} ms) of the same form of "
        f"question; cold queries whose embedding came from the disk cache: "
        f"{sum(row.get('cold query embeddings from cache', 0) for row in result['sizes'].values())} of "
        f"{len(sizes)} x 50",
        *_cold_parts(result, sizes),
        f"- cached query: {last['cached query']['p50']:.3f} ms = "
        f"{last['cached query']['p50'] / base['dict lookup + deepcopy']['p50']:.1f}x a dict lookup plus deep copy of "
        f"10 results ({base['dict lookup + deepcopy']['p50']:.3f} ms)",
        f"- RSS growth while filling the query cache ({result['cache_entries']} entries) and the buffers at default "
        f"settings: {result['rss_growth_mb']} MB (target <= 8 MB)",
    ]
    return lines


def _cold_parts(result: dict[str, Any], sizes: list[Any]) -> list[str]:
    """The cold query against one bare query embedding plus one bare Chroma query, per size, and
    each part alone (p50 ms); empty for runs from before these were measured."""
    rows = [(size, result["sizes"][size]) for size in sizes if "embedding + chroma query" in result["sizes"][size]]
    return [
        f"- cold query at {int(size):,} stored: {row['cold query']['p50']:.2f} ms = "
        f"{row['cold query']['p50'] / row['embedding + chroma query']['p50']:.2f}x one bare query embedding plus "
        f"one bare Chroma query of the user's collection{_top(row)} ({row['embedding + chroma query']['p50']:.2f} ms); "
        f"alone: embedding {row['query embedding']['p50']:.2f}, Chroma {row['bare chroma query']['p50']:.2f}, "
        f"keyword search {row['keyword search']['p50']:.2f} ms"
        for size, row in rows
    ]


def _top(row: dict[str, Any]) -> str:
    """How many candidates the bare Chroma query and the keyword search drew (absent in older runs)."""
    return f" for the {row['candidate pool']} candidates the query draws" if "candidate pool" in row else ""


def _table(variants: dict[str, Any], part: str | None = None, floor: bool = True) -> list[str]:
    lines = ["| variant | questions | " + " | ".join(METRICS) + " |", "| --- | --- |" + " --- |" * len(METRICS)]
    for name, row in variants.items():
        if part and part not in row:
            continue
        scores = row[part] if part else row
        overall = scores["overall"]  # a run from before a metric existed leaves its cell empty
        cells = " | ".join(f"{overall[m]:.3f}" if m in overall else "" for m in METRICS)
        lines.append(f"| {name} | {scores.get('questions', '')} | {cells} |")
    if floor:
        cells = " | ".join(
            f"{lme_metrics.README_FLOOR[m]:.3f}" if m in lme_metrics.README_FLOOR else "" for m in METRICS
        )
        lines.append(f"| plain BM25 floor, the data's README | 469 | {cells} |")
    return lines


def _quality_section(result: dict[str, Any]) -> list[str]:
    variants = result["variants"]
    lines = [
        "## Retrieval quality on LongMemEval S",
        "",
        f"Up to {result['questions']} non-abstention questions ({result['subset']}; the questions column says how "
        "many each variant has finished); turn level = evidence turns "
        "(`has_answer`), session level = `answer_session_ids`. `recall_all`, `ndcg_any`: LongMemEval's own "
        "metrics (see `memfuse_memory/bench/lme_metrics.py`); `turn_recall@k`: share of evidence turns in the top k; "
        "`turn_recall_any@5` is hit@5.",
        "",
        *_table(variants),
    ]
    untuned = next((row["untuned"]["questions"] for row in variants.values() if "untuned" in row), 0)
    if untuned:
        lines += ["", f"The {untuned} of them never used to choose a setting (outside the tuning draw):", ""]
        lines += _table(variants, "untuned", floor=False)
    types = sorted({t for row in variants.values() for t in row["by_type"]})
    lines += ["", "Turn Recall@5 / Recall@10 per question type (all questions of the run):", ""]
    lines.append("| variant | " + " | ".join(types) + " |")
    lines.append("| --- |" + " --- |" * len(types))
    for name, row in variants.items():
        cells = [_recall_cell(row["by_type"].get(t)) for t in types]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Session recall_all@5 per question type:", ""]
    lines.append("| variant | " + " | ".join(types) + " |")
    lines.append("| --- |" + " --- |" * len(types))
    for name, row in variants.items():
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{row['by_type'][t]['session_recall_all@5']:.3f}"
                if "session_recall_all@5" in row["by_type"].get(t, {})
                else "n/a"
                for t in types
            )
            + " |"
        )
    return lines


def _recall_cell(scores: dict[str, Any] | None) -> str:
    """Turn Recall@5 / @10 of one question type, or n/a when the run has none of that type yet."""
    if scores is None:
        return "n/a"
    return f"{scores['turn_recall@5']:.3f} / {scores['turn_recall@10']:.3f}"


def _fusion_section(result: dict[str, Any]) -> list[str]:
    return [
        "## Choosing the ranking settings",
        "",
        f"{result['questions']} LongMemEval S questions ({result['subset']}); every setting of the default was "
        "chosen on these alone, and the quality tables above also report the questions outside them.",
        "",
        *_table(result["variants"], floor=False),
    ]


def _plots(out: Path, lat: dict[str, Any] | None, quality: dict[str, Any] | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: list[str] = []
    if lat:
        sizes = [int(s) for s in lat["sizes"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        for op in ("add", "cold query", "cached query"):
            ax.plot(sizes, [lat["sizes"][s][op]["p50"] for s in lat["sizes"]], marker="o", label=f"{op} p50")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("stored messages")
        ax.set_ylabel("ms")
        ax.legend()
        ax.set_title("Latency vs stored messages")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=120)
        plt.close(fig)
        lines += ["", "![latency](latency.png)"]
    if quality:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, row in quality["variants"].items():
            curve = row.get("recall_at_k", {})  # none in a run from before the curve was kept
            ax.plot([int(k) for k in curve], list(curve.values()), label=name)
        ax.scatter([5, 10], [0.685, 0.779], color="black", marker="x", zorder=3, label="plain BM25 floor (README)")
        ax.set_xlabel("k (results returned)")
        ax.set_ylabel("turn recall@k")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        ax.set_title(f"LongMemEval S, {quality['questions']} questions: turn recall vs k")
        fig.tight_layout()
        fig.savefig(out / "quality.png", dpi=120)
        plt.close(fig)
        lines += ["", "![quality](quality.png)"]
    return lines


def _commands(results: dict[str, Any]) -> dict[str, list[str]]:
    """Each command that made part of the results, with the stages it measured."""
    made: dict[str, list[str]] = {}
    for stage in STAGES:
        if stage in results:
            made.setdefault(results["commands"].get(stage, results["command"]), []).append(stage)
    return made


def write(out: Path, results: dict[str, Any]) -> list[str]:
    """Write results.json, the plots and REPORT.md from what has been measured so far; return the report."""
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    made = "; ".join(f"`{command}` ({', '.join(stages)})" for command, stages in _commands(results).items())
    lines = ["# memfuse-memory benchmarks", "", f"Last run {results['when']}; {results['machine']}; made by {made}", ""]
    if "latency" in results:
        lines += [*_latency_section(results["latency"]), ""]
    if "latency_by_store" in results:
        lines += [*message_stores.section(results["latency_by_store"]), ""]
    if "throughput" in results:
        t = results["throughput"]
        lines += [
            "## Ingest throughput",
            "",
            f"{t['rounds']} rounds (user + assistant) through add and flush_all: {t['memfuse_rounds_per_s']} rounds/s; "
            f"raw MiniLM on the same chunk texts at batch {t['batch_size']}: "
            f"{t['raw_embedding_rounds_per_s']} rounds/s; "
            f"ratio {t['ratio']} (target >= 0.85); chunk strategy {t.get('chunk_strategy', 'message')}, "
            f"{t.get('texts_per_round', 1.0)} texts embedded a round.",
            "",
        ]
    if "quality" in results:
        lines += [*_quality_section(results["quality"]), ""]
    if "fusion" in results:
        lines += [*_fusion_section(results["fusion"]), ""]
    if "peers" in results:
        lines += [*compare.section(results["peers"]), *compare.plot(results["peers"], out), ""]
    if "startup" in results:
        lines += [*startup.section(results["startup"]), ""]
    if "runtimes" in results:
        lines += [*runtimes.section(results["runtimes"]), ""]
    if "store" in results:
        lines += [*store.section(results["store"]), ""]
    if "store_by_backend" in results:
        lines += [*store.section_by_store(results["store_by_backend"]), ""]
    if "http" in results:
        lines += [*http.section(results["http"]), ""]
    if "keywords" in results:
        lines += [*keywords.section(results["keywords"]), ""]
    lines += _plots(out, results.get("latency"), results.get("quality"))
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")
    return lines
