"""Concurrency: hundreds of sessions and several users writing and querying at once, from asyncio
tasks (BufferService) and from threads (BlockingBufferService), on one engine.

Invariants: per-session order, no message in another session or user, no loss, no duplicate,
and a query right after a write always sees it (the query cache is never stale).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memfuse_memory import BlockingBufferService, BufferService
from tests.fakes import FakeEmbedder, MemoryVectorStore

USERS = ["ada", "bo", "cy", "di"]
ROUNDS = 3
SMALL_BUFFERS: dict[str, Any] = {
    "buffer__round_buffer__max_size": 2,
    "buffer__hybrid_buffer__max_size": 3,
    "embedding__batch_size": 8,
}


@dataclass
class Ledger:
    """What the callers were told: acknowledged ids per (user, session), in call order."""

    acknowledged: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    stale_reads: int = 0
    foreign_results: int = 0
    queries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, user: str, session: str, ids: list[str]) -> None:
        with self.lock:
            self.acknowledged.setdefault((user, session), []).extend(ids)

    def saw(self, reply: dict[str, Any], user: str, marker: str, session: str | None, *, expect: bool) -> None:
        results = reply["data"]["results"]
        found = any(marker in r["content"].split() for r in results)
        foreign = sum(1 for r in results if r["user_id"] != user or session not in (None, r["session_id"]))
        with self.lock:
            self.queries += 1
            self.foreign_results += foreign
            if found != expect:
                self.stale_reads += 1


def scope_of(index: int) -> tuple[str, str]:
    """Session ``index`` belongs to one user; session ids repeat across users on purpose."""
    return USERS[index % len(USERS)], f"s{index // 2}"


def round_of(user: str, session: str, marker: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{user} {session} note {marker}"},
        {"role": "assistant", "content": f"stored {marker} for {user}"},
    ]


def verify(service: BlockingBufferService, ledger: Ledger) -> dict[str, int]:
    """Compare every session and every user's export with the ledger; return the counts."""
    lost = duplicates = misplaced = misordered = 0
    for (user, session), ids in ledger.acknowledged.items():
        history = service.get_messages_by_session(session, user_id=user)["data"]["messages"]
        got = [m["id"] for m in history]
        misordered += got != ids
        lost += len(set(ids) - set(got))
        misplaced += sum(1 for m in history if m["user_id"] != user or m["session_id"] != session)
    for user in USERS:
        exported = service.export_messages(user_id=user)["data"]["messages"]
        counts = Counter(m["id"] for m in exported)
        duplicates += sum(n - 1 for n in counts.values())
        expected = {mid for (owner, _), ids in ledger.acknowledged.items() if owner == user for mid in ids}
        misplaced += len(set(counts) - expected)
        lost += len(expected - set(counts))
    total = sum(len(ids) for ids in ledger.acknowledged.values())
    assert len(service.export_messages(all_users=True)["data"]["messages"]) == total
    return {
        "messages": total,
        "lost": lost,
        "duplicates": duplicates,
        "misplaced": misplaced,
        "misordered": misordered,
        "stale": ledger.stale_reads,
        "foreign": ledger.foreign_results,
        "queries": ledger.queries,
    }


def assert_clean(counts: dict[str, int], label: str) -> None:
    print(f"\n[concurrency/{label}] " + " ".join(f"{key}={value}" for key, value in counts.items()))
    assert {
        k: counts[k] for k in ("lost", "duplicates", "misplaced", "misordered", "stale", "foreign")
    } == dict.fromkeys(("lost", "duplicates", "misplaced", "misordered", "stale", "foreign"), 0)


async def async_session(service: BufferService, index: int, ledger: Ledger) -> None:
    user, session = scope_of(index)
    for r in range(ROUNDS):
        marker = f"m{index}x{r}"
        ledger.saw(
            await service.query(marker, 15, user_id=user, session_id=session), user, marker, session, expect=False
        )
        reply = await service.add(round_of(user, session, marker), session, user_id=user)
        ledger.ack(user, session, reply["data"]["message_ids"])
        ledger.saw(
            await service.query(marker, 15, user_id=user, session_id=session), user, marker, session, expect=True
        )
        ledger.saw(await service.query(marker, 15, user_id=user), user, marker, None, expect=True)


def blocking_session(service: BlockingBufferService, index: int, ledger: Ledger) -> None:
    user, session = scope_of(index)
    for r in range(ROUNDS):
        marker = f"t{index}x{r}"
        ledger.saw(service.query(marker, 15, user_id=user, session_id=session), user, marker, session, expect=False)
        reply = service.add(round_of(user, session, marker), session, user_id=user)
        ledger.ack(user, session, reply["data"]["message_ids"])
        ledger.saw(service.query(marker, 15, user_id=user), user, marker, None, expect=True)


async def test_async_tasks_many_sessions_and_users(tmp_path: Path) -> None:
    vectors = MemoryVectorStore()
    ledger = Ledger()
    started = time.monotonic()
    service = BufferService.from_config(
        data_dir=tmp_path / "d", embedder=FakeEmbedder(), vector_store=vectors, **SMALL_BUFFERS
    )
    async with service:

        async def flusher() -> int:
            flushes = 0
            for _ in range(5):
                await service.flush_all(timeout=60)
                flushes += 1
                await asyncio.sleep(0.05)
            return flushes

        outcome = await asyncio.gather(flusher(), *(async_session(service, i, ledger) for i in range(200)))
        await service.flush_all(timeout=60)
        counts = verify(service.blocking(), ledger)
        counts["sessions"] = 200
        counts["flushes"] = outcome[0]
        counts["rounds_in_vector_store"] = vectors.rounds()
        counts["seconds"] = round(time.monotonic() - started, 2)
        assert vectors.rounds() == 200 * ROUNDS
        assert service.get_stats()["storage"]["pending_rounds"] == 0
    assert_clean(counts, "asyncio")


def test_threads_through_the_blocking_facade(tmp_path: Path) -> None:
    vectors = MemoryVectorStore()
    ledger = Ledger()
    started = time.monotonic()
    with BlockingBufferService.from_config(
        data_dir=tmp_path / "d", embedder=FakeEmbedder(), vector_store=vectors, **SMALL_BUFFERS
    ) as service:
        with ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(blocking_session, service, i, ledger) for i in range(120)]
            futures.append(pool.submit(service.flush_all, 60))
            for future in futures:
                future.result(timeout=120)
        service.flush_all(timeout=60)
        counts = verify(service, ledger)
        assert vectors.rounds() == 120 * ROUNDS
    counts["sessions"] = 120
    counts["seconds"] = round(time.monotonic() - started, 2)
    assert_clean(counts, "threads")


async def test_async_and_blocking_callers_with_deletes_on_one_engine(tmp_path: Path) -> None:
    vectors = MemoryVectorStore()
    ledger = Ledger()
    deleted: list[tuple[str, str]] = []
    service = BufferService.from_config(
        data_dir=tmp_path / "d", embedder=FakeEmbedder(), vector_store=vectors, **SMALL_BUFFERS
    )
    async with service:
        blocking = service.blocking()

        def threads() -> None:
            with ThreadPoolExecutor(max_workers=4) as pool:
                for future in [pool.submit(blocking_session, blocking, i, ledger) for i in range(100, 160)]:
                    future.result(timeout=120)

        async def doomed(index: int) -> None:
            user, session = f"gone{index % 2}", f"doomed{index}"
            marker = f"d{index}"
            await service.add(round_of(user, session, marker), session, user_id=user)
            ledger.saw(await service.query(marker, 15, user_id=user), user, marker, None, expect=True)
            reply = await service.delete_session(session, user_id=user)
            assert reply["data"]["deleted_messages"] == 2
            deleted.append((user, session))
            ledger.saw(await service.query(marker, 15, user_id=user), user, marker, None, expect=False)

        await asyncio.gather(
            asyncio.to_thread(threads),
            *(async_session(service, i, ledger) for i in range(100)),
            *(doomed(i) for i in range(30)),
        )
        await service.flush_all(timeout=60)
        counts = verify(blocking, ledger)
        for user, session in deleted:
            assert (await service.get_messages_by_session(session, user_id=user))["data"]["messages"] == []
        assert (await service.export_messages(user_id="gone0"))["data"]["messages"] == [] and vectors.rounds(
            "gone1"
        ) == 0
        assert vectors.rounds() == 160 * ROUNDS
    counts["sessions"] = 160
    counts["deleted_sessions"] = len(deleted)
    assert_clean(counts, "mixed")


def test_concurrent_adds_to_one_session_keep_call_order_per_writer(tmp_path: Path) -> None:
    """Several writers on one session: each writer's rounds appear in its own call order, none lost."""
    with BlockingBufferService.from_config(
        data_dir=tmp_path / "d", embedder=FakeEmbedder(), vector_store=MemoryVectorStore(), **SMALL_BUFFERS
    ) as service:
        acked: dict[int, list[str]] = {}

        def writer(w: int) -> None:
            acked[w] = []
            for n in range(40):
                reply = service.add([{"role": "user", "content": f"w{w} n{n}"}], "shared", user_id="u")
                acked[w] += reply["data"]["message_ids"]

        threads: list[threading.Thread] = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        history = [m["id"] for m in service.get_messages_by_session("shared", user_id="u")["data"]["messages"]]
        assert len(history) == len(set(history)) == 240
        position: Callable[[str], int] = history.index
        for ids in acked.values():
            assert sorted(ids, key=position) == ids
