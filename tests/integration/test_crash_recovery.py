"""Kill writers with SIGKILL at random moments, in flushes and in recovery: nothing acknowledged is lost.

Two lanes (separate data directories) run side by side to use both cores; each lane kills its
writer ``KILLS_PER_LANE`` times, cycling through three moments: at a random point while adding,
inside ``flush_all``, and right after start-up while the recovered rounds are being re-indexed.
After every kill the data directory is reopened read-only and checked; at the end the full
engine reopens it, flushes, and every acknowledged message must be found by vector search.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from memfuse_memory import BlockingBufferService
from tests.integration.message_store_mode import open_for_check, overrides

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]
LANES = 2
KILLS_PER_LANE = 11
MOMENTS = ("random", "flush", "recovery")
SESSIONS = ("s0", "s1", "s2")
WAIT_SECONDS = 180


@dataclass
class Lane:
    """One data directory and the record of the kills done to its writers."""

    folder: Path
    seed: int
    kills: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOMENTS, 0))
    killed_in_flush: int = 0
    recovered_rounds: int = 0
    checks: int = 0

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def acks(self) -> Path:
        return self.folder / "acks.tsv"

    @property
    def events(self) -> Path:
        return self.folder / "events.tsv"


def lines(path: Path) -> list[list[str]]:
    """Complete lines of a side file, split on tabs (a line cut by the kill is ignored)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [line.split("\t") for line in complete.splitlines()]


def acknowledged(lane: Lane) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in lines(lane.acks) if len(row) == 2]


def run_events(lane: Lane, run: int) -> list[list[str]]:
    return [row[1:] for row in lines(lane.events) if row[0] == str(run)]


def wait_for(condition: Callable[[], bool], writer: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert writer.poll() is None, f"writer died on its own with code {writer.returncode}"
        assert time.monotonic() < deadline, "writer made no progress"
        time.sleep(0.005)


def check_store(lane: Lane) -> None:
    """Every acknowledged message is stored exactly once and in order; nothing of another scope."""
    store = open_for_check(lane.data_dir)
    try:
        stored = store.export()
    finally:
        store.close()
    ids = [m.id for m in stored]
    assert len(ids) == len(set(ids)), "a message was stored twice"
    assert {m.scope.user_id for m in stored} <= {"crash"}
    acks = acknowledged(lane)
    assert len(acks) == len({mid for _, mid in acks}), "a message id was acknowledged twice"
    for session in SESSIONS:
        in_store = [m.id for m in stored if m.scope.session_id == session]
        expected = [mid for s, mid in acks if s == session]
        wanted = set(expected)
        assert [mid for mid in in_store if mid in wanted] == expected, f"{session}: acknowledged messages lost"
    lane.checks += 1


def kill_once(lane: Lane, run: int, moment: str, rng: random.Random) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = len(acknowledged(lane))
    flushes_before = sum(1 for e in run_events(lane, run) if e[0] == "flush-start")
    command = [sys.executable, str(WRITER), str(lane.data_dir), str(lane.acks), str(lane.events), str(run)]
    writer = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        if moment == "recovery":
            wait_for(lambda: any(e[0] == "ready" for e in run_events(lane, run)), writer)
        elif moment == "flush":
            wait_for(lambda: sum(1 for e in run_events(lane, run) if e[0] == "flush-start") > flushes_before, writer)
        else:
            wait_for(lambda: len(acknowledged(lane)) > before, writer)
            time.sleep(rng.uniform(0.05, 1.5))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    lane.kills[moment] += 1
    events = run_events(lane, run)
    if events and events[-1][0] == "flush-start":
        lane.killed_in_flush += 1
    lane.recovered_rounds += sum(int(e[1]) for e in events if e[0] == "ready")
    check_store(lane)


def run_lane(lane: Lane) -> Lane:
    rng = random.Random(lane.seed)
    lane.data_dir.mkdir(parents=True)
    for run in range(KILLS_PER_LANE):
        kill_once(lane, run, MOMENTS[run % len(MOMENTS)], rng)
    return lane


def check_searchable(lane: Lane) -> int:
    """Reopen with the full engine, flush, and find a sample of acknowledged messages by vector search."""
    acks = acknowledged(lane)
    rng = random.Random(lane.seed)
    sample = set(rng.sample(acks, min(40, len(acks)))) | set(acks[-4:])
    # Without the role prior: this checks that every acknowledged message is indexed, and the prior
    # ranks an assistant reply below the session's user turns on purpose, even for its own words.
    config = {**overrides(lane.data_dir), "buffer": {"query": {"assistant_weight": 1.0}}}
    with BlockingBufferService.from_config(data_dir=lane.data_dir, config=config) as memory:
        memory.flush_all()
        assert memory.get_stats()["storage"]["pending_rounds"] == 0
        contents = {m["id"]: m["content"] for m in memory.export_messages(user_id="crash")["data"]["messages"]}
        for session, mid in sample:
            found = memory.query(contents[mid], top_k=5, user_id="crash", session_id=session)["data"]["results"]
            hit = next((r for r in found if r["id"] == mid), None)
            assert hit is not None, f"{mid} is not found by its own content"
            assert "vector" in hit["retrieval"]["methods"], f"{mid} is not in the vector index"
    return len(sample)


@pytest.mark.timeout(1500)
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    lanes = [Lane(tmp_path / f"lane{n}", seed=7 + n) for n in range(LANES)]
    with ThreadPoolExecutor(LANES) as pool:
        done = list(pool.map(run_lane, lanes))
    searched = [check_searchable(lane) for lane in done]
    kills = {moment: sum(lane.kills[moment] for lane in done) for moment in MOMENTS}
    total_kills = sum(kills.values())
    in_flush = sum(lane.killed_in_flush for lane in done)
    assert total_kills >= 20
    assert in_flush >= 1, "no kill landed inside a flush"
    assert sum(lane.recovered_rounds for lane in done) > 0, "no restart had anything to recover"
    print(
        f"\n[crash] acknowledged={sum(len(acknowledged(lane)) for lane in done)} kills={total_kills} "
        f"({', '.join(f'{k}={v}' for k, v in kills.items())}; inside flush_all={in_flush}) "
        f"reopen checks={sum(lane.checks for lane in done)} "
        f"rounds recovered at restart={sum(lane.recovered_rounds for lane in done)} "
        f"searched by vector={sum(searched)} lost=0 duplicated=0"
    )
