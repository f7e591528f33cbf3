"""Quickstart: store a conversation and recall it, first with the async API, then the blocking one.

Runs offline (the packaged MiniLM model, embedded Chroma, SQLite) in a temporary folder:

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from memfuse_memory import BlockingBufferService, BufferService


def show(title: str, hits: list[dict]) -> None:
    print(f"\n{title}")
    for hit in hits:
        found_by = "+".join(hit["retrieval"]["methods"])
        print(
            f"  {hit['score']:.2f}  [{hit['session_id']}/{hit['role']}] {hit['content']}  ({found_by}, {hit['source']})"
        )


async def async_api(data_dir: Path) -> None:
    """asyncio code (agents, web servers): ``async with`` starts the service and flushes it on exit."""
    async with BufferService.from_config(data_dir=data_dir) as memory:
        # One call = one round (a user turn and its replies); it is durable when add returns.
        await memory.add(
            [
                {"role": "user", "content": "I'm flying to Lisbon on May 12 and staying in Alfama."},
                {"role": "assistant", "content": "Lovely! Alfama is hilly, bring good shoes."},
            ],
            session_id="trip",
            user_id="alice",
        )
        await memory.add(
            [
                {"role": "user", "content": "My cat Miso only eats salmon pâté.", "metadata": {"topic": "pets"}},
                {"role": "assistant", "content": "Noted, salmon pâté for Miso."},
            ],
            session_id="home",
            user_id="alice",
        )
        # A round is searchable by keyword the moment add returns (it is still in the RoundBuffer).
        reply = await memory.query("Where am I staying in Lisbon?", top_k=2, user_id="alice")
        show("async  query: Where am I staying in Lisbon?", reply["data"]["results"])

        # Vectors come once the background worker has embedded the rounds; flush_all waits for it.
        await memory.flush_all()
        reply = await memory.query("What does my pet eat?", top_k=2, user_id="alice", metadata_filter={"topic": "pets"})
        show("async  query: What does my pet eat? (metadata topic=pets)", reply["data"]["results"])


def blocking_api(data_dir: Path) -> None:
    """Plain scripts and notebooks: the same operations, synchronous; the memory is still on disk."""
    with BlockingBufferService.from_config(data_dir=data_dir) as memory:
        history = memory.get_messages_by_session("trip", user_id="alice")["data"]["messages"]
        print("\nblocking history of session 'trip' (read back after a restart):")
        for message in history:
            print(f"  {message['created_at']}  {message['role']:>9}: {message['content']}")

        memory.add(
            [{"role": "user", "content": "I also booked a train to Porto to visit Sofia on May 16."}],
            session_id="trip",
            user_id="alice",
        )
        memory.flush_all()  # wait until everything is embedded and stored (e.g. before a benchmark)
        reply = memory.query("Who am I visiting in Porto?", top_k=1, user_id="alice")
        show("blocking query: Who am I visiting in Porto?", reply["data"]["results"])

        stats = memory.get_stats()
        print(
            f"\nstats: {stats['storage']['messages']} messages in {stats['storage']['rounds']} rounds stored, "
            f"{stats['storage']['pending_rounds']} pending, worker alive: {stats['index_worker']['alive']}"
        )
        deleted = memory.delete_user("alice")["data"]["deleted_messages"]
        print(f"forgot user alice: {deleted} messages deleted")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="memfuse-quickstart-") as folder:
        data_dir = Path(folder) / "memfuse_data"
        asyncio.run(async_api(data_dir))
        blocking_api(data_dir)


if __name__ == "__main__":
    main()
