"""BufferService: the async API of the seed, over the shared :class:`~memfuse_memory.engine.Engine`.

Every operation is generated from the engine's method of the same name (:mod:`memfuse_memory.facade`):
blocking work (SQLite commits, the query embedding, Chroma) runs in worker threads, never on
the event loop; a cached query and the ``get_*`` inspections are answered on the loop.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from memfuse_memory.engine import Engine
from memfuse_memory.facade import Facade, cached_on_loop, in_thread, on_caller

if TYPE_CHECKING:
    from memfuse_memory.blocking import BlockingBufferService


class BufferService(Facade):
    """Conversation memory: write rounds, query them back, from asyncio code.

    Example:
        .. code-block:: python

            async with BufferService.from_config(data_dir="memfuse_data") as memory:
                await memory.add([{"role": "user", "content": "I adopted a cat named Miso"},
                                  {"role": "assistant", "content": "Congratulations!"}],
                                 session_id="s1", user_id="alice")
                hits = await memory.query("what is my cat called?", user_id="alice")
    """

    def blocking(self) -> BlockingBufferService:
        """A blocking facade over this same engine (shares buffers, stores and cache)."""
        from memfuse_memory.blocking import BlockingBufferService

        return BlockingBufferService(self._engine)

    async def start(self) -> BufferService:
        """Open the stores, load the model and start the background worker (in a worker thread)."""
        await asyncio.to_thread(self._engine.start)
        return self

    async def close(self) -> None:
        """Flush everything, stop the worker, close the stores. Idempotent."""
        await asyncio.to_thread(self._engine.close)

    async def __aenter__(self) -> BufferService:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    add = in_thread(Engine.add)
    add_batch = in_thread(Engine.add_batch)
    query = cached_on_loop(Engine.query)
    get_messages_by_session = in_thread(Engine.get_messages_by_session)
    delete_session = in_thread(Engine.delete_session)
    delete_user = in_thread(Engine.delete_user)
    delete_messages = in_thread(Engine.delete_messages)
    update_messages = in_thread(Engine.update_messages)
    export_messages = in_thread(Engine.export_messages)
    list_users = in_thread(Engine.list_users)
    list_sessions = in_thread(Engine.list_sessions)
    flush_all = in_thread(Engine.flush_all)
    get_stats = on_caller(Engine.get_stats)
    get_write_buffer = on_caller(Engine.get_write_buffer)
    get_round_buffer = on_caller(Engine.get_round_buffer)
    get_hybrid_buffer = on_caller(Engine.get_hybrid_buffer)
    get_query_buffer = on_caller(Engine.get_query_buffer)
