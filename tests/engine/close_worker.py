"""Close a service while queries and adds run in other threads, many times (run as a subprocess).

Prints ``closes= queries= adds= acknowledged= lost=``; a segmentation fault shows as the
process's return code.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from memfuse_memory import BlockingBufferService
from memfuse_memory.engine import lifecycle
from memfuse_memory.errors import MemFuseError
from memfuse_memory.storage.sqlite import connection
from tests.fakes import FakeEmbedder, MemoryVectorStore

WORDS = [f"w{n}x" for n in range(6000)]


def open_service(data_dir: Path, vectors: MemoryVectorStore) -> BlockingBufferService:
    return BlockingBufferService.from_config(data_dir=data_dir, embedder=FakeEmbedder(), vector_store=vectors).start()


def work(
    service: BlockingBufferService, rng: random.Random, counts: dict[str, int], acknowledged: list[str], kind: str
) -> None:
    """Query (short and very long queries) or add until the service is closed under the call."""
    while True:
        try:
            if kind == "query":
                service.query(" ".join(rng.sample(WORDS, rng.choice([20, 3000]))), top_k=5)
                counts["queries"] += 1
                continue
            result = service.add([{"role": "user", "content": " ".join(rng.sample(WORDS, 50))}], "live")
        except MemFuseError:
            return
        acknowledged.extend(result["data"]["message_ids"])
        counts["adds"] += 1


def main(rounds: int) -> None:
    lifecycle.CLOSE_GRACE_SECONDS = 0.1  # short graces, so most closes interrupt a running statement
    connection.CLOSE_GRACE_SECONDS = 0.1
    rng = random.Random(7)
    counts = {"closes": 0, "queries": 0, "adds": 0}
    acknowledged: list[str] = []
    data_dir = Path(tempfile.mkdtemp()) / "data"
    vectors = MemoryVectorStore()
    seed = open_service(data_dir, vectors)
    for n in range(30):
        seed.add_batch([[{"role": "user", "content": " ".join(rng.sample(WORDS, 200))}] for _ in range(20)], f"s{n}")
    seed.close()
    for _ in range(rounds):
        service = open_service(data_dir, vectors)
        threads = [
            threading.Thread(target=work, args=(service, rng, counts, acknowledged, kind))
            for kind in ("query", "query", "add")
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.05, 0.3))
        service.close()
        counts["closes"] += 1
        for thread in threads:
            thread.join()
    check = open_service(data_dir, vectors)
    stored = {m["id"] for m in check.export_messages(user_id="default", session_id="live")["data"]["messages"]}
    check.close()
    lost = len(set(acknowledged) - stored)
    print(
        f"[close-during-work] closes={counts['closes']} queries={counts['queries']} adds={counts['adds']} "
        f"acknowledged={len(acknowledged)} lost={lost}",
        flush=True,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
