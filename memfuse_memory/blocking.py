"""BlockingBufferService: the same operations as BufferService for synchronous callers.

Every operation is generated from the engine's method of the same name (:mod:`memfuse_memory.facade`)
and runs on the caller's thread, so it works anywhere, including inside a running event loop
(a notebook cell) where ``asyncio.run`` would fail.
"""

from __future__ import annotations

from types import TracebackType

from memfuse_memory.engine import Engine
from memfuse_memory.facade import Facade, on_caller


class BlockingBufferService(Facade):
    """Blocking twin of :class:`~memfuse_memory.service.BufferService` (one engine, two APIs).

    Example:
        .. code-block:: python

            with BlockingBufferService.from_config(data_dir="memfuse_data") as memory:
                memory.add([{"role": "user", "content": "I adopted a cat named Miso"}], session_id="s1")
                hits = memory.query("what is my cat called?")
    """

    def start(self) -> BlockingBufferService:
        """Open the stores, load the model and start the background worker."""
        self._engine.start()
        return self

    def close(self) -> None:
        """Flush everything, stop the worker, close the stores. Idempotent."""
        self._engine.close()

    def __enter__(self) -> BlockingBufferService:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    add = on_caller(Engine.add)
    add_batch = on_caller(Engine.add_batch)
    query = on_caller(Engine.query)
    get_messages_by_session = on_caller(Engine.get_messages_by_session)
    delete_session = on_caller(Engine.delete_session)
    delete_user = on_caller(Engine.delete_user)
    delete_messages = on_caller(Engine.delete_messages)
    update_messages = on_caller(Engine.update_messages)
    export_messages = on_caller(Engine.export_messages)
    list_users = on_caller(Engine.list_users)
    list_sessions = on_caller(Engine.list_sessions)
    flush_all = on_caller(Engine.flush_all)
    get_stats = on_caller(Engine.get_stats)
    get_write_buffer = on_caller(Engine.get_write_buffer)
    get_round_buffer = on_caller(Engine.get_round_buffer)
    get_hybrid_buffer = on_caller(Engine.get_hybrid_buffer)
    get_query_buffer = on_caller(Engine.get_query_buffer)
