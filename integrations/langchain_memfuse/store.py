"""``MemFuseStore``: LangGraph's long-term memory store (``BaseStore``) on memfuse's key-value table.

Items live in the engine's key-value table (``memfuse_memory.storage.kv_store``): get, put and
delete are one indexed statement each, a put returns after its commit, filters and paging run
in SQLite. With an index, every indexed field of an item has its own vector in the user's item
collection (apart from message vectors); a query search scores an item by its best field's
cosine similarity. Reads within one batch see the store as it was before the batch (as
``InMemoryStore`` does); the puts of a batch are committed in one transaction, the last put of
a key winning.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
)

from langchain_memfuse._engine import ConfigLike, ServiceLike, connect
from langchain_memfuse._store_codec import (
    check_key,
    check_namespace,
    check_page,
    check_value,
    field_texts,
    fixed_prefix,
    matches_condition,
    to_item,
    to_search_item,
)
from langchain_memfuse._store_ttl import Started, TTLSweeper
from langchain_memfuse._store_vectors import rank_items, write_item_vectors
from memfuse_memory.adapters import check_id
from memfuse_memory.errors import InvalidInputError, ServiceClosedError, StorageError
from memfuse_memory.storage.kv_query import dumps_value
from memfuse_memory.storage.kv_store import KVRow, KVStore, KVWrite
from memfuse_memory.storage.kv_vectors import DISTANCES, Distance, ItemIndex, vector_ids

_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _engine_lock(engine: object) -> threading.Lock:
    """One lock per engine: an item's row and its vectors are written by one put at a time."""
    with _locks_guard:
        lock = _locks.get(engine)
        if lock is None:
            lock = _locks[engine] = threading.Lock()
        return lock


def _now_us() -> int:
    return time.time_ns() // 1000


class MemFuseStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items live in memfuse: durable, filterable, searchable by meaning.

    ``search(prefix, filter=..., limit=..., offset=...)`` without a query (or with an empty one)
    returns the items under the prefix that match the filter, most recently updated first.
    With a query, items are ranked by the cosine similarity of their best indexed field (the
    ``score``); items stored with ``index=False`` follow without a score. TTLs are supported
    (minutes, as in LangGraph): expired items are invisible at once and swept in the background.

    Example:
        .. code-block:: python

            from langchain_memfuse import MemFuseStore

            store = MemFuseStore(user_id="alice", data_dir="memfuse_data")
            store.put(("memories", "alice"), "pet", {"text": "Alice has a cat named Miso"})
            store.search(("memories", "alice"), query="what pet does she have?", limit=1)

    Args:
        user_id: The memfuse user that owns the store's items.
        agent_id: Optional agent owning the store: each agent has its own namespaces and items.
        user_label: When set, ``namespace[user_label]`` names the memfuse user of the items of
            that namespace (e.g. ``1`` for ``("memories", "<user>")``), so each user's memories
            sit in that user's partition and ``delete_user`` erases them.
        index: LangGraph's ``IndexConfig``: ``fields`` to embed (default ``["$"]``, the whole
            value) and optionally ``embed`` (an ``Embeddings`` or function; default: the engine's
            model), ``dims`` and ``distance_type`` (``"cosine"``, the default; ``"inner_product"``;
            ``"l2"``, scored as the negated Euclidean distance, as PostgresStore does). ``False``
            stores no vectors (a query then only filters).
        index_fields: Shorthand for ``index={"fields": [...]}`` with the engine's model.
        ttl: LangGraph's ``TTLConfig`` (``default_ttl`` minutes, ``refresh_on_read``,
            ``sweep_interval_minutes``).
        service: An existing ``BufferService``, ``BlockingBufferService`` or engine to share.
        config: A YAML path, config object or dict, when no ``service`` is given.
        data_dir: Data directory of the shared engine, when no ``service`` is given.
    """

    supports_ttl: bool = True

    def __init__(
        self,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        user_label: int | None = None,
        index: IndexConfig | Literal[False] | None = None,
        index_fields: Sequence[str] | None = None,
        ttl: TTLConfig | None = None,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        if user_label is not None and (isinstance(user_label, bool) or not isinstance(user_label, int)):
            raise InvalidInputError(f"user_label must be an int index into the namespace, got {user_label!r}")
        if index is not False and index is not None and not isinstance(index, Mapping):
            raise InvalidInputError(f"index must be an IndexConfig dict or False, got {type(index).__name__}")
        self._services = connect(service, config, data_dir)
        limits = self._services.engine.config.limits
        self.user_id = check_id(user_id, "user_id", limits)
        self.agent_id = agent_id
        self._space = "" if agent_id is None else check_id(agent_id, "agent_id", limits)
        self.user_label = user_label
        self.index_config: IndexConfig | None = None if index is False else dict(index or {})  # type: ignore[assignment]
        settings: Mapping[str, Any] = self.index_config or {}
        config_fields = settings.get("fields") or settings.get("text_fields")  # SqliteStore's name for it
        self.index_fields = list(config_fields or index_fields or ["$"])
        distance = settings.get("distance_type", "cosine")
        if distance not in DISTANCES:
            raise InvalidInputError(f"index distance_type must be one of {', '.join(DISTANCES)}, got {distance!r}")
        self.distance: Distance = distance
        embed = settings.get("embed")
        self.embeddings = ensure_embeddings(embed) if embed is not None else None
        self.ttl_config = ttl
        self._lock = _engine_lock(self._services.engine)
        self._sweeper = TTLSweeper(self._sweep_once, (ttl or {}).get("sweep_interval_minutes"))
        from langchain_memfuse._store_migration import migrate_legacy_items

        migrate_legacy_items(self)

    # -- scope ----------------------------------------------------------------------------------

    @property
    def kv(self) -> KVStore:
        """The engine's key-value table (the engine must be running)."""
        kv = self._services.engine.kv
        if kv is None or self._services.engine.state != "running":
            raise ServiceClosedError("the store's engine is not running")
        return kv

    @property
    def _index(self) -> ItemIndex | None:
        return None if self.index_config is None else self._services.engine.kv_index

    def _user_of(self, namespace: tuple[str, ...]) -> str:
        if self.user_label is not None and -len(namespace) <= self.user_label < len(namespace):
            return check_id(namespace[self.user_label], "user_id", self._services.engine.config.limits)
        return self.user_id

    def _users_under(self, prefix: tuple[str, ...]) -> list[str] | None:
        """The users whose items may sit under ``prefix`` (None: every user of the agent space)."""
        if self.user_label is None:
            return [self.user_id]
        if 0 <= self.user_label < len(prefix):
            return [self._user_of(prefix)]
        return None

    # -- embedding ------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self.embeddings is not None:
            return np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)
        return np.asarray(self._services.engine.embedder.embed(list(texts)), dtype=np.float32)

    def _embed_query(self, text: str) -> np.ndarray:
        if self.embeddings is not None:
            return np.asarray(self.embeddings.embed_query(text), dtype=np.float32)
        return np.asarray(self._services.engine.embedder.embed([text])[0], dtype=np.float32)

    # -- reads ----------------------------------------------------------------------------------

    def _get(self, op: GetOp, now: int) -> Item | None:
        namespace = check_namespace(op.namespace, for_write=False)
        row = self.kv.get(
            self._user_of(namespace),
            self._space,
            namespace,
            check_key(str(op.key)),
            now_us=now,
            refresh=bool(op.refresh_ttl),
        )
        return None if row is None else to_item(row)

    def _search(self, op: SearchOp, now: int) -> list[SearchItem]:
        prefix = check_namespace(op.namespace_prefix, for_write=False)
        check_page(op.limit, op.offset)
        users = self._users_under(prefix)
        refresh = bool(op.refresh_ttl)
        index = self._index
        if not op.query or index is None:
            rows = self.kv.search(
                users, self._space, prefix, op.filter, limit=op.limit, offset=op.offset, now_us=now, refresh=refresh
            )
            return [to_search_item(row, None) for row in rows]
        wanted = op.offset + op.limit
        scored = rank_items(
            self.kv,
            index,
            users if users is not None else self.kv.users(self._space),
            (self._space, self._embed_query(op.query), prefix, self.distance),
            op.filter,
            wanted,
            now,
        )
        page = scored[op.offset : wanted]
        rest: list[KVRow] = []
        if len(page) < op.limit:  # every ranked item is shown: unindexed items follow, unscored
            rest = self.kv.search(
                users,
                self._space,
                prefix,
                op.filter,
                limit=op.limit - len(page),
                offset=max(0, op.offset - len(scored)),
                now_us=now,
                refresh=False,
                indexed=False,
            )
        rows = [row for row, _ in page] + rest
        if refresh:
            self.kv.refresh(rows, now_us=now)
        return [*(to_search_item(row, score) for row, score in page), *(to_search_item(row, None) for row in rest)]

    def _list_namespaces(self, op: ListNamespacesOp, now: int) -> list[tuple[str, ...]]:
        check_page(op.limit, op.offset)
        conditions = [  # a bare string path is one label
            MatchCondition(
                c.match_type, (c.path,) if isinstance(c.path, str) else check_namespace(c.path, for_write=False)
            )
            for c in op.match_conditions or ()
        ]
        prefix = fixed_prefix(conditions)
        users = self._users_under(prefix)
        namespaces = [
            ns
            for ns in self.kv.namespaces(users, self._space, prefix, now_us=now)
            if all(matches_condition(condition, ns) for condition in conditions)
        ]
        if op.max_depth is not None:
            namespaces = list({ns[: op.max_depth]: None for ns in namespaces})
        return sorted(namespaces)[op.offset : op.offset + op.limit]  # tuple order, as LangGraph's stores

    # -- writes ---------------------------------------------------------------------------------

    def _prepare(self, op: PutOp) -> tuple[KVWrite, list[str]]:
        """The row write of a put and the texts to embed for it (checked before anything is written)."""
        namespace = check_namespace(op.namespace, for_write=True)
        user = self._user_of(namespace)
        key = check_key(op.key)
        if op.value is None:
            return KVWrite(user, self._space, namespace, key, None), []
        check_value(op.value)
        if op.ttl is not None and (isinstance(op.ttl, bool) or not isinstance(op.ttl, int | float) or op.ttl <= 0):
            raise InvalidInputError(f"ttl must be a positive number of minutes or None, got {op.ttl!r}")
        value = dumps_value(op.value)  # first: it names a value that is not JSON
        texts: list[str] = []
        if self.index_config is not None and op.index is not False:
            texts = field_texts(op.value, self.index_fields if op.index is None else list(op.index))
        write = KVWrite(user, self._space, namespace, key, value, op.ttl, len(texts))
        return write, texts

    def _apply_puts(self, puts: Sequence[PutOp]) -> None:
        prepared = [self._prepare(op) for op in puts]
        texts = [text for _, item_texts in prepared for text in item_texts]
        if texts and self._services.engine.kv_index is None:
            raise StorageError("this engine's vector store keeps no item vectors; use index=False")
        vectors = self._embed(texts)  # before any write: a model failure writes nothing
        with self._lock:
            now = _now_us()
            replaced = self.kv.apply(
                [write for write, _ in prepared], now_us=now, track_vectors=self._services.engine.kv_index is not None
            )
            if self._services.engine.kv_index is not None:
                write_item_vectors(self.kv, self._services.engine.kv_index, prepared, vectors, replaced, now)

    def _sweep_once(self) -> int:
        """Delete the expired items (and their vectors) of this store's engine; returns how many."""
        rows = self.kv.sweep(now_us=_now_us())
        index = self._services.engine.kv_index
        if index is not None:
            for row in rows:
                if row.vectors:
                    index.write(row.user_id, [], vector_ids(row.agent_id, row.namespace, row.key, 0, row.vectors))
        return len(rows)

    # -- BaseStore ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run get, search, list and put operations; reads see the store as before the batch."""
        results: list[Result] = []
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        now = _now_us()
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op, now))
            elif isinstance(op, SearchOp):
                results.append(self._search(op, now))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op, now))
            elif isinstance(op, PutOp):
                self._prepare(op)  # reject a bad put before any put of the batch is written
                puts.pop((tuple(op.namespace), op.key), None)
                puts[(tuple(op.namespace), op.key)] = op
                results.append(None)
            else:
                raise InvalidInputError(f"unsupported store operation {type(op).__name__}")
        if puts:
            self._apply_puts(list(puts.values()))
            if any(op.ttl is not None and op.value is not None for op in puts.values()):
                self._sweeper.ensure_started()
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` in a worker thread: the table and the model are synchronous, the loop never blocks."""
        return await asyncio.to_thread(self.batch, list(ops))

    def setup(self) -> None:
        """Nothing to do: the table is created (and migrated) when the engine opens. Kept so code
        written for LangGraph's SQL stores, which call ``setup()`` first, runs unchanged."""

    def sweep_ttl(self) -> int:
        """Delete the expired items now; returns how many (the background sweeper calls this)."""
        return self._sweep_once()

    def start_ttl_sweeper(self) -> Started:
        """Start sweeping expired items in the background (also started by the first put with a TTL).

        The result may be awaited, so code written for ``AsyncPostgresStore`` runs unchanged.
        """
        self._sweeper.ensure_started()
        return Started()

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the background sweeper; returns whether it stopped within ``timeout``."""
        return self._sweeper.stop(timeout)


class AsyncMemFuseStore(MemFuseStore):
    """``MemFuseStore`` with the guard of LangGraph's async SQL stores: its sync methods refuse to run
    on a thread whose event loop is running (they would block it), so a forgotten ``await`` fails
    loudly; the async methods (``aget``, ``aput``, ``asearch``, ...) run the work in a worker thread.
    Everything else is ``MemFuseStore``'s; the sync methods still work from any other thread.
    """

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """``MemFuseStore.batch``; ``asyncio.InvalidStateError`` on an event loop's thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return super().batch(ops)
        raise asyncio.InvalidStateError(
            "synchronous AsyncMemFuseStore call on the event loop's thread: await the async method "
            "(aget, aput, asearch, alist_namespaces, abatch) or call it from another thread"
        )
