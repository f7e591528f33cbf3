"""The two embedding runtimes side by side in one process: single-query latency and batch throughput."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from memfuse_memory.config import load_config
from memfuse_memory.embedding.loader import load_embedder

QUERIES = [
    "which pet do I have?",
    "where am I staying in Lisbon?",
    "what did the doctor say about my knee?",
    "when is my sister's birthday party?",
]


def _texts(count: int) -> list[str]:
    """Short chat messages of varied length, the kind the worker embeds."""
    words = ["I", "adopted", "a", "kitten", "named", "Miso", "who", "sleeps", "on", "the", "sofa", "all", "day"]
    return [f"message {i}: " + " ".join(words[: 4 + i % len(words)]) for i in range(count)]


def _median_ms(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall milliseconds of one call, and mean CPU milliseconds (all threads) per call."""
    call()
    samples = []
    cpu = time.process_time()
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), (time.process_time() - cpu) * 1000 / repeat


def _per_second(call: Callable[[], object], items: int, repeat: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return items * repeat / (time.perf_counter() - start)


def measure(repeat: int = 100, batches: int = 10) -> dict[str, Any]:
    """Latency of one query, batch-32 throughput and agreement of the vectors, ONNX against PyTorch."""
    onnx = load_embedder(load_config(embedding__backend="onnx"))
    torch = load_embedder(load_config(embedding__backend="torch"))
    batch = _texts(32)
    result: dict[str, Any] = {"onnx_threads": getattr(onnx, "threads", None), "runtimes": {}}
    for name, embedder in (("onnx", onnx), ("torch", torch)):
        wall, cpu = _median_ms(lambda e=embedder: e.embed([QUERIES[0]]), repeat)
        result["runtimes"][name] = {
            "class": type(embedder).__name__,
            "single_query_ms": round(wall, 3),
            "single_query_cpu_ms": round(cpu, 3),
            "batch32_per_s": round(_per_second(lambda e=embedder: e.embed(batch), len(batch), batches), 1),
        }
    a, b = onnx.embed(batch + QUERIES), torch.embed(batch + QUERIES)
    result["min_cosine"] = round(float(np.min(np.sum(a * b, axis=1))), 7)
    result["max_abs_diff"] = float(np.max(np.abs(a - b)))
    o, t = result["runtimes"]["onnx"], result["runtimes"]["torch"]
    result["single_query_speedup"] = round(t["single_query_ms"] / o["single_query_ms"], 2)
    result["batch32_throughput_ratio"] = round(o["batch32_per_s"] / t["batch32_per_s"], 2)
    return result


def section(result: dict[str, Any]) -> list[str]:
    """The report's runtime table."""
    o, t = result["runtimes"]["onnx"], result["runtimes"]["torch"]
    return [
        "## Embedding runtimes",
        "",
        f"all-MiniLM-L6-v2 on both runtimes in one process (ONNX Runtime {result['onnx_threads']} intra-op threads).",
        "",
        "| runtime | one query p50 (ms) | CPU per query (ms) | batch-32 texts/s |",
        "| --- | --- | --- | --- |",
        *(
            f"| {label} ({r['class']}) | {r['single_query_ms']:.2f} | {r['single_query_cpu_ms']:.2f} | "
            f"{r['batch32_per_s']:.0f} |"
            for label, r in (("ONNX Runtime", o), ("PyTorch", t))
        ),
        "",
        f"ONNX is {result['single_query_speedup']}x faster per query and {result['batch32_throughput_ratio']}x the "
        f"batch throughput; vectors agree to cosine >= {result['min_cosine']} (max abs diff "
        f"{result['max_abs_diff']:.1e}).",
    ]
