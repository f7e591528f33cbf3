"""Sustained ingest throughput as a share of the embedding model's raw throughput on the same texts."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.buffer.chunking import make_strategy
from memfuse_memory.config import LimitsConfig, load_config
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.models import Scope
from memfuse_memory.validation import validate_round

SUBJECTS = ["my garden", "the new job", "a trip to Kyoto", "our dog Rex", "the piano lessons", "a tax question"]


def conversation(rounds: int, salt: str) -> list[list[dict[str, str]]]:
    """A long conversation of distinct rounds (no text repeats, so nothing is cached anywhere)."""
    return [
        [
            {"role": "user", "content": f"({salt} {n}) Can you help me think about {SUBJECTS[n % 6]} this week?"},
            {"role": "assistant", "content": f"({salt} {n}) Sure: start small with {SUBJECTS[(n + 1) % 6]} and plan."},
        ]
        for n in range(rounds)
    ]


def measure(embedder: Embedder, rounds: int = 600, batch_size: int = 32) -> dict[str, Any]:
    """Rounds per second through add + flush_all, against raw batched embedding of the same chunk texts
    (those the default chunk strategy makes of the same rounds)."""
    salt = str(time.time_ns())
    scope = Scope(user_id="t", session_id="t")
    hybrid = load_config().buffer.hybrid_buffer
    strategy = make_strategy(hybrid.chunk_strategy, hybrid.chunk_max_words)
    raw_rounds = [validate_round(r, scope, LimitsConfig()) for r in conversation(rounds, "raw" + salt)]
    texts = [chunk.text for chunk in strategy.chunk(raw_rounds)]
    embedder.embed(texts[:batch_size])
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        embedder.embed(texts[start : start + batch_size])
    raw_rate = rounds / (time.perf_counter() - started)
    with (
        tempfile.TemporaryDirectory(prefix="ingest-") as tmp,
        BlockingBufferService.from_config(
            data_dir=Path(tmp), embedder=embedder, embedding__batch_size=batch_size
        ) as memory,
    ):
        memory.add([{"role": "user", "content": "warm up"}], session_id="w", user_id="t")
        memory.flush_all()
        started = time.perf_counter()
        for messages in conversation(rounds, "ours" + salt):
            memory.add(messages, session_id="long", user_id="t")
        memory.flush_all()
        ours_rate = rounds / (time.perf_counter() - started)
    return {
        "rounds": rounds,
        "chunk_strategy": strategy.name,
        "texts_per_round": round(len(texts) / rounds, 2),
        "batch_size": batch_size,
        "raw_embedding_rounds_per_s": round(raw_rate, 1),
        "memfuse_rounds_per_s": round(ours_rate, 1),
        "ratio": round(ours_rate / raw_rate, 3),
    }
