"""Two replicas on one memory: two writer processes (real MiniLM, Chroma server mode, one data
directory) write interleaved to the same users and sessions; every invariant is checked across
both: no loss, no duplicate, nothing in another user or session, per-writer order within each
session, read-your-writes through the cache (also across processes), and every acknowledged
message in the vector store after both flushed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from memfuse_memory import BlockingBufferService
from tests.integration.conftest import ChromaServer
from tests.integration.multiprocess_writer import SESSIONS, USERS

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("multiprocess_writer.py")
ROUNDS = 24


def test_two_processes_share_users_and_sessions_without_loss_or_stale_reads(
    tmp_path: Path, chroma_server: ChromaServer
) -> None:
    data_dir = tmp_path / "data"
    acks = {name: tmp_path / f"acks-{name}.jsonl" for name in ("a", "b")}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    base = [sys.executable, str(WRITER), str(data_dir), chroma_server.host, str(chroma_server.port)]
    writers = {
        "a": subprocess.Popen([*base, "a", str(ROUNDS), str(acks["a"]), "--follow", str(acks["b"])], env=env, cwd=ROOT),
        "b": subprocess.Popen([*base, "b", str(ROUNDS), str(acks["b"]), str(acks["a"])], env=env, cwd=ROOT),
    }
    for name, writer in writers.items():
        assert writer.wait(timeout=150) == 0, f"writer {name} failed"

    acked = [json.loads(line) for name in ("a", "b") for line in acks[name].read_text().splitlines()]
    by_id = {record["id"]: record for record in acked}
    per_writer = Counter(record["writer"] for record in acked)
    assert per_writer == {"a": 2 * ROUNDS, "b": 2 * ROUNDS}
    assert len(by_id) == len(acked), "a message id was acknowledged twice"
    stats = {name: json.loads(acks[name].with_suffix(".stats.json").read_text()) for name in ("a", "b")}
    assert stats["a"]["stale"] == stats["b"]["stale"] == 0, stats
    assert stats["b"]["probe_timeouts"] == 0 and stats["b"]["probes"] >= ROUNDS // 3 - 2, stats
    assert stats["b"]["probes_cached_before_write"] > 0, "no probe cached an answer before the peer's write"

    vector_config = chroma_server.config()
    with BlockingBufferService.from_config(
        data_dir=data_dir,
        storage__vector_store__mode="server",
        storage__vector_store__host=vector_config.host,
        storage__vector_store__port=vector_config.port,
    ) as memory:
        assert memory.get_stats()["storage"]["pending_rounds"] == 0
        stored: list[dict] = [m for user in USERS for m in memory.export_messages(user_id=user)["data"]["messages"]]
        counts = Counter(m["id"] for m in stored)
        duplicates = sum(n - 1 for n in counts.values())
        lost = sorted(set(by_id) - set(counts))
        unacknowledged = sorted(set(counts) - set(by_id))
        print(
            f"\n[multiprocess] acknowledged a={per_writer['a']} b={per_writer['b']} stored={len(stored)} "
            f"lost={len(lost)} duplicates={duplicates} unacknowledged={len(unacknowledged)} "
            f"cross-process probes={stats['b']['probes']} (cached before the write: "
            f"{stats['b']['probes_cached_before_write']}) stale={stats['a']['stale'] + stats['b']['stale']}"
        )
        assert lost == [] and duplicates == 0 and unacknowledged == []

        for message in stored:
            record = by_id[message["id"]]
            assert (message["user_id"], message["session_id"]) == (record["user"], record["session"])
        for user in USERS:
            for session in SESSIONS:
                history = memory.get_messages_by_session(session, user_id=user)["data"]["messages"]
                for name in ("a", "b"):
                    order = [
                        (by_id[m["id"]]["round"], by_id[m["id"]]["role"])
                        for m in history
                        if by_id[m["id"]]["writer"] == name
                    ]
                    assert order == sorted(order, key=lambda item: (item[0], item[1] != "user")), (user, session, name)

        vectors = memory.engine.components.vectors
        in_vectors: set[str] = set()
        for user in USERS:
            in_vectors.update(vectors.message_ids(user))  # type: ignore[attr-defined]
        assert in_vectors == set(by_id), "every acknowledged message is in the vector store, nothing else"
        hit = memory.query("a note about parrots", top_k=15, user_id="alice")["data"]["results"]
        assert hit and all("vector" in r["retrieval"]["methods"] for r in hit)
