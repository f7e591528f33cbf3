"""Kill the writer with SIGKILL mid-stream; every acknowledged message survives, once, in order."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from memfuse_memory import BlockingBufferService

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def read_acks(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if line.count("\t") == 1]  # type: ignore[misc]


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir, acks = tmp_path / "data", tmp_path / "acks.tsv"
    rng = random.Random(7)
    kills = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for run in range(3):
        before = len(read_acks(acks))
        writer = subprocess.Popen([sys.executable, str(WRITER), str(data_dir), str(acks), str(run)], env=env, cwd=ROOT)
        deadline = time.monotonic() + 120
        while len(read_acks(acks)) == before:  # waiting for the other process to start writing, bounded
            assert writer.poll() is None, "writer died on its own"
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.05)
        time.sleep(rng.uniform(1.0, 3.0))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        kills += 1
    acknowledged = read_acks(acks)
    with BlockingBufferService.from_config(data_dir=data_dir) as memory:
        stats = memory.get_stats()
        rounds = stats["storage"]["rounds"]
        for session in ("s0", "s1", "s2"):
            stored = [m["id"] for m in memory.get_messages_by_session(session, user_id="crash")["data"]["messages"]]
            expected = [mid for s, mid in acknowledged if s == session]
            assert len(stored) == len(set(stored)), "a message was stored twice"
            present = [mid for mid in stored if mid in set(expected)]
            assert present == expected, f"acknowledged messages of {session} missing or out of order"
        memory.flush_all()
        assert memory.get_stats()["storage"]["pending_rounds"] == 0
        last_session, last_id = acknowledged[-1]
        last = next(
            m
            for m in memory.get_messages_by_session(last_session, user_id="crash")["data"]["messages"]
            if m["id"] == last_id
        )
        found = memory.query(last["content"], top_k=5, user_id="crash", session_id=last_session)["data"]["results"]
        assert last_id in [r["id"] for r in found]
        assert "vector" in next(r for r in found if r["id"] == last_id)["retrieval"]["methods"]
    print(
        f"\ncrash test: acknowledged={len(acknowledged)} kills={kills} rounds={rounds} "
        f"pending_at_reopen={stats['storage']['pending_rounds']} lost=0"
    )
