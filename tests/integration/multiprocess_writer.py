"""One replica of tests/integration/test_multiprocess.py: writes rounds to shared users and
sessions in server mode and acknowledges each message after ``add`` returns; the ``prober``
also checks that its cached queries see the other writer's acknowledged messages.

Usage: multiprocess_writer.py DATA_DIR HOST PORT NAME ROUNDS ACK_FILE [PEER_ACK_FILE | --follow FOLLOWED_ACK_FILE]

The watched writer follows the prober (``--follow``): it starts round ``n`` once the prober has
written ``n`` rounds, or after a short wait, so the prober's probes meet it mid-run however
slow the machine is.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from memfuse_memory import BlockingBufferService
from tests.integration.message_store_mode import overrides

USERS = ("alice", "bob")
SESSIONS = ("s0", "s1", "s2")
PEER = "a"  # the writer the prober watches


def word(name: str, n: int) -> str:
    """A word found in exactly one message: the ``n``-th round of writer ``name``."""
    return f"zq{name}{n}x"


def target(n: int) -> tuple[str, str]:
    return USERS[n % len(USERS)], SESSIONS[(n // len(USERS)) % len(SESSIONS)]


def peer_acks(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def probe(memory: BlockingBufferService, peer: Path, peer_rounds: int, stats: dict[str, int]) -> None:
    """Cache a query for the peer's next round before it is written, wait for its acknowledgement,
    then ask again: the answer must now hold it (a stale cache entry would not)."""
    n = len([a for a in peer_acks(peer) if a["role"] == "user"])
    if n >= peer_rounds:
        return
    user, _ = target(n)
    text = word(PEER, n)
    before = memory.query(text, top_k=5, user_id=user)["data"]
    deadline = time.monotonic() + 20
    while True:
        acked = [a for a in peer_acks(peer) if a["round"] == n and a["role"] == "user"]
        if acked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not acked:
        stats["probe_timeouts"] += 1
        return
    after = memory.query(text, top_k=5, user_id=user)["data"]
    stats["probes"] += 1
    if acked[0]["id"] not in [r["id"] for r in after["results"]]:
        stats["stale"] += 1
    if acked[0]["id"] not in [r["id"] for r in before["results"]]:
        stats["probes_cached_before_write"] += 1


def keep_pace(followed: Path, n: int, wait: float = 2.0) -> None:
    """Wait (at most ``wait`` seconds) until the followed writer has acknowledged ``n`` rounds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if followed.exists() and len([a for a in peer_acks(followed) if a["role"] == "user"]) >= n:
            return
        time.sleep(0.01)


def main() -> None:
    data_dir, host, port, name, rounds, ack_path = sys.argv[1:7]
    follow = Path(sys.argv[8]) if sys.argv[7:8] == ["--follow"] else None
    peer = Path(sys.argv[7]) if len(sys.argv) > 7 and follow is None else None
    stats = {"probes": 0, "stale": 0, "probe_timeouts": 0, "probes_cached_before_write": 0}
    with BlockingBufferService.from_config(
        data_dir=data_dir,
        config=overrides(data_dir),
        storage__vector_store__mode="server",
        storage__vector_store__host=host,
        storage__vector_store__port=int(port),
        buffer__round_buffer__max_size=2,
        buffer__hybrid_buffer__max_size=2,
        embedding__batch_size=8,
    ) as memory:
        with Path(ack_path).open("a", encoding="utf-8") as acks:
            for n in range(int(rounds)):
                if follow is not None:
                    keep_pace(follow, n)
                elif peer is None:
                    time.sleep(0.02)
                elif n % 3 == 0:
                    probe(memory, peer, int(rounds), stats)
                user, session = target(n)
                reply = memory.add(
                    [
                        {"role": "user", "content": f"{name} round {n}: note {word(name, n)} about parrots"},
                        {"role": "assistant", "content": f"noted {name} {n}"},
                    ],
                    session_id=session,
                    user_id=user,
                )
                for role, mid in zip(("user", "assistant"), reply["data"]["message_ids"], strict=True):
                    record = {"writer": name, "round": n, "role": role, "user": user, "session": session, "id": mid}
                    acks.write(json.dumps(record) + "\n")
                acks.flush()
                own = memory.query(word(name, n), top_k=5, user_id=user)["data"]["results"]
                if reply["data"]["message_ids"][0] not in [r["id"] for r in own]:
                    stats["stale"] += 1
        memory.flush_all(timeout=120)
    Path(ack_path).with_suffix(".stats.json").write_text(json.dumps(stats))


if __name__ == "__main__":
    main()
