"""The started parts of an engine, built together in ``Engine.start`` as one object, and the
locks they share.

Lock order, outermost first; a thread holding one lock takes only locks below it:

1. ``Locks.storage``: held across the vector-store writes and deletes and the ``stored`` mark
   that follows them (the index worker's flush, every delete), so a flush never undoes a delete.
2. ``Locks.commit``: held across one message-store write transaction and the buffer change that
   goes with it (add, continue_round, every delete), so the store and the buffers agree on one
   order of writes.
3. ``IndexWorker._cond``: the worker's wake-ups and flush bookkeeping; no I/O under it.
4. ``WriteBuffer._lock``: the RoundBuffer and HybridBuffer; pure memory, no I/O, no callback.
5. ``QueryBuffer._lock``: the query cache; pure memory.

The event loop (``BufferService``: ``get_stats``, a cached ``query``) takes only 4 and 5, which
are never held across I/O, so it never waits for a commit, an embedding or a vector write.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from memfuse_memory.buffer.chunking import ChunkStrategy
from memfuse_memory.buffer.hybrid_buffer import HybridBuffer
from memfuse_memory.buffer.query_buffer import QueryBuffer
from memfuse_memory.buffer.round_buffer import RoundBuffer
from memfuse_memory.buffer.write_buffer import WriteBuffer
from memfuse_memory.config import MemFuseConfig
from memfuse_memory.embedding.base import Embedder
from memfuse_memory.engine.search import QueryPath
from memfuse_memory.engine.writes import WritePath
from memfuse_memory.errors import ConfigError
from memfuse_memory.memory_service import MemoryService
from memfuse_memory.storage import dirlock
from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.kv_store import KVStore
from memfuse_memory.storage.kv_vectors import ItemIndex
from memfuse_memory.storage.sqlite import FILE_NAME, MessageStore
from memfuse_memory.storage.sqlite.kv import SqliteKV
from memfuse_memory.storage.vector_store import ChromaVectorStore, VectorStore
from memfuse_memory.tokens import TokenCounter
from memfuse_memory.worker import IndexWorker


@dataclass(frozen=True, slots=True)
class Locks:
    """The engine's two I/O locks (see the module docstring for the order)."""

    storage: threading.Lock = field(default_factory=threading.Lock)
    commit: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class Buffers:
    """The in-memory parts, alive from construction (so stats and caches work before start)."""

    round_buffer: RoundBuffer
    hybrid_buffer: HybridBuffer
    query_buffer: QueryBuffer
    counter: TokenCounter
    strategy: ChunkStrategy


@dataclass(frozen=True, slots=True)
class Components:
    """Everything ``start`` opens: stores, model, write buffer, worker, and the two paths."""

    store: MessageStoreProtocol
    vectors: VectorStore
    embedder: Embedder
    memory: MemoryService
    write_buffer: WriteBuffer
    worker: IndexWorker
    writes: WritePath
    queries: QueryPath
    recovered_rounds: int
    kv: KVStore  # the key-value table (LangGraph store items), in the message store's database
    kv_index: ItemIndex | None  # item vectors, apart from message vectors

    def close(self) -> None:
        """Stop the worker, then close the stores (the caller flushed first, if it wanted to)."""
        try:
            self.worker.stop()
            self.vectors.close()
        finally:
            self.store.close()
            self.kv.close()


def open_store(config: MemFuseConfig, data_dir: Path) -> MessageStoreProtocol:
    """The configured message store: PostgreSQL (``storage.message_store.backend``) or the data dir's SQLite file."""
    storage = config.storage
    dirlock.ensure_dir(data_dir)
    if storage.message_store.backend == "postgres":
        try:
            from memfuse_memory.storage.postgres import PostgresMessageStore
        except ImportError as exc:
            raise ConfigError(
                "storage.message_store.backend 'postgres' needs psycopg: pip install 'memfuse-memory[postgres]'"
            ) from exc
        return PostgresMessageStore(storage.message_store)
    return MessageStore(
        data_dir / FILE_NAME, synchronous=storage.sqlite_synchronous, busy_timeout_ms=storage.busy_timeout_ms
    )


def open_kv(config: MemFuseConfig, data_dir: Path, store: MessageStoreProtocol, vectors: VectorStore) -> KVStore:
    """The key-value table in the message store's database: the PostgreSQL schema (into which the
    items of the data dir's SQLite file, if any, move once), or the SQLite file."""
    if config.storage.message_store.backend == "postgres":
        from memfuse_memory.storage.kv_migrate import move_from_file
        from memfuse_memory.storage.postgres.kv import PgKV

        kv = KVStore(PgKV(store))  # type: ignore[arg-type]  # a PostgresMessageStore: its pool and schema
        move_from_file(data_dir / FILE_NAME, kv, store.store_id, getattr(vectors, "copy_item_vectors", None))
        return kv
    return KVStore(
        SqliteKV(
            data_dir / FILE_NAME,
            synchronous=config.storage.sqlite_synchronous,
            busy_timeout_ms=config.storage.busy_timeout_ms,
        )
    )


def open_components(
    config: MemFuseConfig,
    data_dir: Path,
    buffers: Buffers,
    *,
    embedder: Embedder | None,
    vector_store: VectorStore | None,
) -> Components:
    """Open the stores, load the model, re-buffer what a crash left pending, start the worker."""
    store = open_store(config, data_dir)
    try:
        if embedder is None:
            from memfuse_memory.embedding.loader import load_embedder

            embedder = load_embedder(config)
        if vector_store is None:
            vector_store = ChromaVectorStore(config.storage.vector_store, data_dir, store_id=store.store_id)
        kv = open_kv(config, data_dir, store, vector_store)
    except BaseException:
        store.close()
        raise
    item_index = getattr(vector_store, "item_index", None)
    kv_index = item_index() if item_index is not None else None
    locks = Locks()
    memory = MemoryService(store, vector_store, config.retry)
    write_buffer = WriteBuffer(buffers.round_buffer, buffers.hybrid_buffer, buffers.strategy, buffers.counter)
    pending = store.pending_rounds()
    write_buffer.recover(pending)
    worker = IndexWorker(
        write_buffer,
        embedder,
        memory,
        batch_size=config.embedding.batch_size,
        retry=config.retry,
        idle_seconds=config.buffer.hybrid_buffer.idle_flush_seconds,
        storage_lock=locks.storage,
        on_change=buffers.query_buffer.invalidate,
        nice=config.embedding.worker_nice,
    )
    writes = WritePath(
        store, kv, memory, write_buffer, worker, buffers.query_buffer, locks, buffered=config.buffer.enabled
    )
    queries = QueryPath(config.buffer.query, store, memory, embedder, write_buffer, buffers.query_buffer)
    worker.start()
    return Components(
        store, vector_store, embedder, memory, write_buffer, worker, writes, queries, len(pending), kv, kv_index
    )
