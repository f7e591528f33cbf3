"""Run the benchmarks and write a Markdown report with plots.

python -m memfuse_memory.bench all --sizes 1000,10000,100000      # the whole published report
python -m memfuse_memory.bench latency --sizes 1000,10000,100000
python -m memfuse_memory.bench latency --sizes 1000,10000 --message-store both   # SQLite and PostgreSQL side by side
python -m memfuse_memory.bench latency --sizes 10000 --vector-store server  # Chroma in its own process (add p99)
python -m memfuse_memory.bench quality --questions 469   # the full non-abstention set
python -m memfuse_memory.bench quality --message-store both --variants bm25,default   # recall on SQLite and PostgreSQL
python -m memfuse_memory.bench fusion                    # every ranking setting on the fixed 100-question tuning draw
python -m memfuse_memory.bench peers --peer-sizes 1000,10000 --keep   # ours and three peers, joined to the report
python -m memfuse_memory.bench store --store-sizes 20,200,2000,20000   # LangGraph store get/put p50 as it grows
python -m memfuse_memory.bench store --store-sizes 20,20000 --message-store both   # on SQLite and PostgreSQL
python -m memfuse_memory.bench startup --keep            # start-up time, RSS, threads, per embedding backend
python -m memfuse_memory.bench runtimes --keep           # ONNX Runtime against PyTorch in one process
python -m memfuse_memory.bench http --clients 32 --http-seconds 20 --keep  # the HTTP gateway under load
python -m memfuse_memory.bench keywords --sizes 10000,100000 --keep  # keyword top-k on LongMemEval text vs FTS5
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from memfuse_memory.bench import (
    chroma_server,
    compare,
    http,
    keywords,
    latency,
    longmemeval,
    message_stores,
    peers,
    quality,
    report,
    runtimes,
    startup,
    store,
    throughput,
)
from memfuse_memory.bench.embed_cache import CachedEmbedder
from memfuse_memory.config import load_config
from memfuse_memory.embedding.loader import load_embedder

STAGES = report.STAGES
# stages that measure in their own processes or runtimes, or without any embedder
_NO_EMBEDDER = {"startup", "runtimes", "keywords"}


def _sizes(args: argparse.Namespace, for_peers: bool = False) -> list[int]:
    text = args.peer_sizes if for_peers and args.peer_sizes else args.sizes
    return [int(s) for s in text.split(",")]


def _subset(args: argparse.Namespace) -> tuple[list[longmemeval.Question], str] | None:
    """The LongMemEval questions of this run and how they were chosen, or None without the data."""
    if not args.data.exists():
        print(f"LongMemEval data not found at {args.data}; skipping retrieval quality", file=sys.stderr)
        return None
    questions = longmemeval.load_questions(args.data)
    if args.question_type:
        questions = [q for q in questions if q.qtype == args.question_type]
    if args.question_ids:
        order = args.question_ids.read_text().split()
        by_id = {q.qid: q for q in questions}
        subset = [by_id[qid] for qid in order if qid in by_id]
        how = f"all of those listed in {args.question_ids.name}, in its order"
    elif args.questions >= len(questions):  # the tuning draw first: its rows serve the fusion stage too
        tuned = {q.qid for q in longmemeval.tuning_subset(longmemeval.load_questions(args.data))}
        subset = sorted(questions, key=lambda q: q.qid not in tuned)
        how = "all"
    else:
        subset = longmemeval.stratified(questions, args.questions)
        how = "stratified by question type, seed 0"
    if args.question_type:
        how += f", {args.question_type} only"
    if args.haystack_sessions:
        subset = longmemeval.trimmed(subset, args.haystack_sessions)
        how += f", haystacks trimmed to {args.haystack_sessions} sessions"
    return subset, how


def _quality(
    args: argparse.Namespace,
    subset: tuple[list[longmemeval.Question], str],
    embedder: CachedEmbedder,
    written: Any,
) -> dict[str, Any]:
    """Every selected variant of ours (and plain BM25) on the subset, resumable from OUT/quality/."""
    questions, how = subset
    chosen = {
        k: v
        for k, v in (
            longmemeval.VARIANTS | (longmemeval.TIME_BOOST_GRID | longmemeval.tuning_grids() if args.variants else {})
        ).items()
        if _selected(k, args.variants)
    }
    if args.finished_only:
        return quality.finished(questions, how, chosen, args.out, _untuned(args), args.haystack_sessions)
    untuned, trim = _untuned(args), args.haystack_sessions
    if args.message_store != "sqlite":
        with message_stores.configs(args.message_store, args.pg_dsn) as stores:
            runs = message_stores.per_store(chosen, stores)
            return quality.run(questions, how, runs, embedder, args.out, untuned, written, trim)
    return quality.run(questions, how, chosen, embedder, args.out, untuned, written, trim)


def _selected(name: str, variants: str) -> bool:
    """Whether ``--variants`` selects a variant: any comma-separated part whose '&'-joined substrings are all in it."""
    return not variants or any(all(bit in name for bit in part.split("&")) for part in variants.split(","))


def _untuned(args: argparse.Namespace) -> set[str]:
    """Question ids never used to choose a setting (outside the tuning draw)."""
    questions = longmemeval.load_questions(args.data)
    tuned = {q.qid for q in longmemeval.tuning_subset(questions)}
    return {q.qid for q in questions if q.qid not in tuned}


def _with_vectors(config: dict[str, Any] | None, vectors: dict[str, Any] | None) -> dict[str, Any] | None:
    """``config`` with the vector store settings of ``--vector-store`` (None: embedded, unchanged)."""
    if vectors is None:
        return config
    config = dict(config or {})
    config["storage"] = {**config.get("storage", {}), "vector_store": vectors}
    return config


def _kept(out: Path, measured: set[str]) -> dict[str, Any]:
    """The stages of an earlier OUT/results.json that this run does not measure again, with their commands."""
    path = out / "results.json"
    if not path.exists():
        return {"commands": {}}
    earlier = json.loads(path.read_text())
    commands = earlier.get("commands", {})
    kept: dict[str, Any] = {"commands": {}}
    for stage in STAGES:
        if stage in earlier and stage not in measured:
            kept[stage] = earlier[stage]
            kept["commands"][stage] = commands.get(stage, earlier["command"])
    return kept


def _header(args: argparse.Namespace, argv: list[str] | None, measured: set[str]) -> dict[str, Any]:
    return {
        **(_kept(args.out, measured) if args.keep else {"commands": {}}),
        "machine": f"{platform.machine()}, {platform.python_version()}, cores={__import__('os').cpu_count()}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python -m memfuse_memory.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
    }


def _own_processes(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The stages that need no benchmark embedder in this process: start-up and the runtimes."""
    if args.what in ("all", "startup"):
        print("start-up, per embedding backend ...", flush=True)
        runs = min(args.repeat, 5)
        results["startup"] = [startup.measure("onnx", runs), startup.measure("torch", runs)]
        report.write(args.out, results)
    if args.what in ("all", "runtimes"):
        print("embedding runtimes ...", flush=True)
        results["runtimes"] = runtimes.measure(repeat=args.repeat)
        report.write(args.out, results)
    if args.what in ("all", "keywords") and args.data.exists():
        print(f"keyword search alone on LongMemEval turns at {_sizes(args)} ...", flush=True)
        results["keywords"] = keywords.measure(_sizes(args), args.data)
        report.write(args.out, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m memfuse_memory.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["all", *STAGES])
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder of REPORT.md, JSON and plots")
    parser.add_argument("--sizes", default="1000,10000", help="stored-message counts for the latency table")
    parser.add_argument(
        "--peer-sizes", default="", help="stored-message counts of the peers comparison (default: --sizes)"
    )
    parser.add_argument("--repeat", type=int, default=200, help="samples per latency measurement")
    parser.add_argument("--rounds", type=int, default=600, help="rounds of the ingest throughput run")
    parser.add_argument("--questions", type=int, default=30, help="stratified LongMemEval subset size (469 = all)")
    parser.add_argument(
        "--variants", default="", help="comma-separated substrings selecting quality (or fusion) variants"
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="quality/fusion: report what OUT/quality/ holds, on the questions every variant finished; run nothing",
    )
    parser.add_argument(
        "--question-ids", type=Path, default=None, help="a file of LongMemEval question ids to run, in that order"
    )
    parser.add_argument(
        "--tuning-questions",
        type=int,
        default=longmemeval.TUNING_COUNT,
        help="size of the fixed stratified draw the fusion stage chooses settings on",
    )
    parser.add_argument("--question-type", default="", help="only LongMemEval questions of this type")
    parser.add_argument("--haystack-sessions", type=int, default=0, help="trim each haystack to N sessions (0 = all)")
    parser.add_argument(
        "--systems", default=",".join(compare.SYSTEMS), help="systems of the peers comparison (ours first)"
    )
    parser.add_argument(
        "--store-sizes", default="20,200,2000,20000", help="items in one namespace for the LangGraph store stage"
    )
    parser.add_argument("--data", type=Path, default=longmemeval.DATA, help="longmemeval_s.jsonl.gz")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients of the http stage")
    parser.add_argument("--http-seconds", type=float, default=20.0, help="load time of each http stage run")
    parser.add_argument(
        "--keep", action="store_true", help="keep the other stages of OUT/results.json in the report (default: replace)"
    )
    parser.add_argument(
        "--backend", choices=["onnx", "torch"], default="onnx", help="embedding runtime of our system (default onnx)"
    )
    parser.add_argument(
        "--message-store",
        choices=message_stores.CHOICES,
        default="sqlite",
        help="message store(s) to measure",
    )
    parser.add_argument(
        "--vector-store",
        choices=["embedded", "server"],
        default="embedded",
        help="latency stage: Chroma embedded, or a private Chroma server (its writes then leave this process's GIL)",
    )
    parser.add_argument(
        "--pg-dsn", default="", help="PostgreSQL of --message-store postgres/both (default: a private one, pgserver)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    measured = set(STAGES) if args.what == "all" else {args.what}
    results: dict[str, Any] = _header(args, argv, measured)
    if args.what in _NO_EMBEDDER:
        _own_processes(args, results)
        print("\n".join(report.write(args.out, results)))
        return 0
    raw = load_embedder(load_config(embedding__backend=args.backend))
    cached = CachedEmbedder(raw, args.out / "cache" / "embeddings.sqlite3", "all-MiniLM-L6-v2")
    if args.what in ("all", "latency"):
        print(f"latency at {_sizes(args)} ...", flush=True)
        with ExitStack() as stack:
            vectors = None
            if args.vector_store == "server":
                server = stack.enter_context(chroma_server.run_chroma_server(args.out / "chroma-server"))
                vectors = server.config().model_dump()
            by_store = message_stores.measure_together(
                args.message_store,
                args.pg_dsn,
                lambda chosen: latency.measure_stores(
                    _sizes(args),
                    cached,
                    raw,
                    {name: _with_vectors(config, vectors) for name, config in chosen.items()},
                    repeat=args.repeat,
                ),
            )
        results["latency"] = {**next(iter(by_store.values())), "vector store": args.vector_store}
        if args.message_store != "sqlite":
            results["latency_by_store"] = by_store
        report.write(args.out, results)
    if args.what in ("all", "throughput"):
        print("ingest throughput ...", flush=True)
        results["throughput"] = throughput.measure(raw, rounds=args.rounds)
        report.write(args.out, results)
    subset = _subset(args) if args.what in ("all", "quality", "fusion", "peers") else None
    if args.what in ("all", "quality") and subset is not None:

        def quality_so_far(so_far: dict[str, Any]) -> None:
            report.write(args.out, {**results, "quality": so_far})

        results["quality"] = _quality(args, subset, cached, quality_so_far)
        report.write(args.out, results)
    if args.what in ("all", "fusion") and subset is not None:
        tuning = longmemeval.tuning_subset(longmemeval.load_questions(args.data), args.tuning_questions)
        how = f"the tuning draw: stratified by question type, seed 1, {len(tuning)} questions"
        if args.question_ids:
            listed = set(args.question_ids.read_text().split())
            tuning = [q for q in tuning if q.qid in listed]
            how += f", the {len(tuning)} of them listed in {args.question_ids.name}"
        if args.haystack_sessions:
            tuning = longmemeval.trimmed(tuning, args.haystack_sessions)
            how += f", haystacks trimmed to {args.haystack_sessions} sessions"
        grid = {k: v for k, v in longmemeval.tuning_grids().items() if _selected(k, args.variants)}

        def fusion_so_far(so_far: dict[str, Any]) -> None:
            report.write(args.out, {**results, "fusion": so_far})

        if args.finished_only:
            results["fusion"] = quality.finished(tuning, how, grid, args.out, set(), args.haystack_sessions)
        else:
            results["fusion"] = quality.run(
                tuning, how, grid, cached, args.out, set(), fusion_so_far, args.haystack_sessions
            )
        report.write(args.out, results)
    if args.what in ("all", "peers"):
        names = [n for n in args.systems.split(",") if n]

        def partial(so_far: dict[str, Any]) -> None:
            report.write(args.out, {**results, "peers": so_far})

        runtimes_used = {args.backend: cached}
        for other in {"onnx", "torch"} - {args.backend}:  # both runtimes, one cache (their vectors agree)
            inner = load_embedder(load_config(embedding__backend=other))
            runtimes_used[other] = CachedEmbedder(inner, args.out / "cache" / "embeddings.sqlite3", "all-MiniLM-L6-v2")
        switch = peers.RuntimeSwitch(runtimes_used, "onnx")
        results["peers"] = compare.measure(
            names, switch, _sizes(args, for_peers=True), args.repeat, args.rounds, subset[0] if subset else [], partial
        )
    if args.what in ("all", "store"):
        sizes = tuple(int(size) for size in args.store_sizes.split(","))
        print(f"LangGraph store at {sizes} items ...", flush=True)
        on_stores = message_stores.measure(
            args.message_store, args.pg_dsn, lambda config: store.measure(raw, sizes, repeat=args.repeat, config=config)
        )
        results["store"] = next(iter(on_stores.values()))
        if args.message_store != "sqlite":
            results["store_by_backend"] = on_stores
        report.write(args.out, results)
    if args.what in ("all", "http"):
        print(f"http gateway, {args.clients} clients ...", flush=True)
        results["http"] = http.measure(raw, clients=args.clients, seconds=args.http_seconds)
        report.write(args.out, results)
    _own_processes(args, results)
    print("\n".join(report.write(args.out, results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
