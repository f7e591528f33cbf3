"""Nothing on the event loop waits for a lock held across I/O: while another thread is inside a
slow message-store commit (held at a gate), ``get_stats`` and a cached query still answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from memfuse_memory import BufferService
from memfuse_memory.models import Round


class GatedCommit:
    """Wraps the store's ``append_rounds``: the next commit stops at a gate until released."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.original = store.append_rounds
        self.entered = threading.Event()
        self.release = threading.Event()

    def append_rounds(self, rounds: Sequence[Round]) -> None:
        self.entered.set()
        self.release.wait()
        self.original(rounds)

    def install(self) -> GatedCommit:
        self.store.append_rounds = self.append_rounds
        return self

    def uninstall(self) -> None:
        self.store.append_rounds = self.original


async def test_stats_and_cached_queries_answer_during_a_slow_commit(amemory: BufferService) -> None:
    await amemory.add([{"role": "user", "content": "the lighthouse keeper paints the door blue"}], session_id="s")
    first = await amemory.query("lighthouse door colour")
    assert not first["data"]["cached"]
    gate = GatedCommit(amemory.engine.store).install()
    writer = threading.Thread(
        target=amemory.blocking().add, args=([{"role": "user", "content": "a second note"}], "s"), daemon=True
    )
    writer.start()
    try:
        assert await asyncio.to_thread(gate.entered.wait, 30), "the writer reached the commit"
        # on the loop itself: neither call may wait for the writer, which holds the commit lock
        stats = amemory.get_stats()
        cached = await amemory.query("lighthouse door colour")
        assert writer.is_alive() and not gate.release.is_set(), "the commit was still held meanwhile"
        assert stats["write_buffer"]["total_writes"] == 1
        assert cached["data"]["cached"] and cached["data"]["results"] == first["data"]["results"]
    finally:
        gate.release.set()
        await asyncio.to_thread(writer.join, 30)
        gate.uninstall()
    assert not writer.is_alive()
    assert amemory.get_stats()["write_buffer"]["total_writes"] == 2
    assert not (await amemory.query("lighthouse door colour"))["data"]["cached"], "the write invalidated the cache"
