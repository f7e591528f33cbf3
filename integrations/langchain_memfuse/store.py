"""``MemFuseStore``: LangGraph's long-term memory store (``BaseStore``) on the memfuse engine.

Layout: each namespace is one session of the store's user (or, with ``user_label``, of the
user its namespace names); each item is one message of its own round, embedded alone.
Replacing or deleting an item rewrites its namespace's session (delete the session, re-add
the surviving items with their ids and times), because the engine deletes whole sessions
only; this keeps no stale copy anywhere (no tombstones to filter, nothing deleted left on
disk), at the cost of O(items in the namespace) per replacing batch. Adding new keys is a
plain append. Reads within one batch see the store as it was before the batch (as
``InMemoryStore`` does), and the puts of one batch are applied together, one rewrite at most
per namespace.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from langchain_memfuse._engine import ConfigLike, ServiceLike, connect
from langchain_memfuse._store_codec import (
    StoredItem,
    catalog_of,
    check_namespace,
    item_record,
    matches_condition,
    matches_filter,
    namespace_record,
    prefix_filter,
    read_item,
    read_namespace,
    session_of,
)
from memfuse_memory.adapters import iso
from memfuse_memory.errors import InvalidInputError, InvalidQueryError, MemFuseError

_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _engine_lock(engine: object) -> threading.RLock:
    """One lock per engine, so that stores sharing an engine rewrite sessions one at a time."""
    with _locks_guard:
        lock = _locks.get(engine)
        if lock is None:
            lock = _locks[engine] = threading.RLock()
        return lock


class MemFuseStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items live in memfuse: durable, searchable in natural language.

    ``search(prefix, query=...)`` ranks items through the engine's fused keyword and vector
    search (the items it ranks come first, with a ``score``; the others that match the prefix
    and filter follow without one, as with ``InMemoryStore``). TTLs are not supported.

    Example:
        .. code-block:: python

            from langchain_memfuse import MemFuseStore

            store = MemFuseStore(user_id="alice", data_dir="memfuse_data")
            store.put(("memories", "alice"), "pet", {"text": "Alice has a cat named Miso"})
            store.search(("memories", "alice"), query="what pet does she have?", limit=1)

    Args:
        user_id: The memfuse user that owns the store's namespaces (and their catalog).
        agent_id: Optional agent owning the store: each agent has its own namespaces and items
            (its own sessions and catalog), and searches stay within it.
        user_label: When set, ``namespace[user_label]`` names the memfuse user of the items of
            that namespace (e.g. ``1`` for ``("memories", "<user>")``), so each user's memories
            sit in that user's partition and ``delete_user`` erases them.
        index_fields: Value fields embedded by default (``["$"]`` or None: every string of the
            value); ``put(..., index=[...])`` overrides, ``index=False`` stores without indexing.
        flush_before_search: Embed everything pending before a ``query`` search, so items put a
            moment ago are ranked by meaning too (as ``InMemoryStore``, which embeds on put).
            Off by default: recent items are then ranked by keywords until the engine embeds them
            (on transfer, idle flush or ``flush_all``), and searches never wait for the model.
        service: An existing ``BufferService``, ``BlockingBufferService`` or engine to share.
        config: A YAML path, config object or dict, when no ``service`` is given.
        data_dir: Data directory of the shared engine, when no ``service`` is given.
    """

    supports_ttl: bool = False

    def __init__(
        self,
        *,
        user_id: str = "default",
        agent_id: str | None = None,
        user_label: int | None = None,
        index_fields: Sequence[str] | None = None,
        flush_before_search: bool = False,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        if user_label is not None and (isinstance(user_label, bool) or not isinstance(user_label, int)):
            raise InvalidInputError(f"user_label must be an int index into the namespace, got {user_label!r}")
        self.user_id = user_id
        self.agent_id = agent_id
        self.user_label = user_label
        self.index_fields = list(index_fields) if index_fields is not None else None
        self.flush_before_search = bool(flush_before_search)
        self._services = connect(service, config, data_dir)
        self._catalog_session = catalog_of(agent_id)
        self._lock = _engine_lock(self._services.engine)

    # -- scope ----------------------------------------------------------------------------------

    def _user_of(self, namespace: tuple[str, ...]) -> str:
        if self.user_label is not None and -len(namespace) <= self.user_label < len(namespace):
            return namespace[self.user_label]
        return self.user_id

    # -- reads ----------------------------------------------------------------------------------

    def _items(self, namespace: tuple[str, ...]) -> dict[str, StoredItem]:
        reply = self._services.sync.get_messages_by_session(
            session_of(namespace, self.agent_id), user_id=self._user_of(namespace)
        )
        items: dict[str, StoredItem] = {}
        for row in reply["data"]["messages"]:
            stored = read_item(row)
            if stored is not None and stored.item.namespace == namespace:
                items[stored.item.key] = stored  # later rows win: a replacement is written before the old row goes
        # a replaced item keeps its created_at, and so its place
        return dict(sorted(items.items(), key=lambda pair: pair[1].item.created_at))

    def _catalog(self) -> list[tuple[str, ...]]:
        reply = self._services.sync.get_messages_by_session(self._catalog_session, user_id=self.user_id)
        namespaces: dict[tuple[str, ...], None] = {}
        for row in reply["data"]["messages"]:
            namespace = read_namespace(row)
            if namespace is not None:
                namespaces[namespace] = None
        return list(namespaces)

    def _get(self, op: GetOp) -> Item | None:
        stored = self._items(check_namespace(op.namespace, for_write=False)).get(str(op.key))
        return None if stored is None else stored.item

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = check_namespace(op.namespace_prefix, for_write=False)
        for name, number in (("limit", op.limit), ("offset", op.offset)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise InvalidQueryError(f"{name} must be a non-negative integer, got {number!r}")
        namespaces = [ns for ns in self._catalog() if ns[: len(prefix)] == prefix]
        candidates = [
            stored
            for namespace in namespaces
            for stored in self._items(namespace).values()
            if matches_filter(stored.item.value, op.filter)
        ]
        scores: dict[str, float] = {}
        if op.query is not None and candidates:
            if self.flush_before_search:
                self._services.sync.flush_all()
            scores = self._rank(op.query, prefix, namespaces, op.offset + op.limit)
        ranked = sorted((c for c in candidates if c.message_id in scores), key=lambda c: -scores[c.message_id])
        rest = [c for c in candidates if c.message_id not in scores]
        chosen = [*ranked, *rest][op.offset : op.offset + op.limit]
        return [
            SearchItem(
                namespace=c.item.namespace,
                key=c.item.key,
                value=c.item.value,
                created_at=c.item.created_at,
                updated_at=c.item.updated_at,
                score=scores.get(c.message_id),
            )
            for c in chosen
        ]

    def _rank(
        self, query: str, prefix: tuple[str, ...], namespaces: list[tuple[str, ...]], wanted: int
    ) -> dict[str, float]:
        """Engine scores of the indexed items under ``prefix`` most relevant to ``query``."""
        users = sorted({self._user_of(namespace) for namespace in namespaces})
        session = session_of(namespaces[0], self.agent_id) if len(namespaces) == 1 else None
        limit = max(1, min(wanted, self._services.max_results))
        scores: dict[str, float] = {}
        for user in users:
            reply = self._services.sync.query(
                query,
                limit,
                user_id=user,
                session_id=session,
                agent_id=self.agent_id,
                metadata_filter=prefix_filter(prefix),
            )
            for result in reply["data"]["results"]:
                if result["metadata"].get("indexed", True):
                    scores[result["id"]] = float(result["score"])
        return scores

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        namespaces = self._catalog()
        for condition in op.match_conditions or ():
            namespaces = [ns for ns in namespaces if matches_condition(condition, ns)]
        listed = sorted({ns[: op.max_depth] for ns in namespaces}) if op.max_depth is not None else sorted(namespaces)
        return listed[op.offset : op.offset + op.limit]

    # -- writes ---------------------------------------------------------------------------------

    def _apply_puts(self, puts: dict[tuple[str, ...], dict[str, PutOp]]) -> None:
        now = iso(datetime.now(UTC))
        for namespace, ops in puts.items():
            user = self._user_of(namespace)
            session = session_of(namespace, self.agent_id)
            current = self._items(namespace)
            fresh = [
                self._record(op, current[key].item.created_at.isoformat() if key in current else now, now)
                for key, op in ops.items()
                if op.value is not None
            ]
            replaced = [current[key].message_id for key in ops if key in current]
            if not current and fresh:
                # catalog first: a crash in between leaves an empty namespace listed, never a hidden one
                self._services.sync.add([namespace_record(namespace)], self._catalog_session, user_id=self.user_id)
            if fresh:
                self._services.sync.add_batch(
                    [[record] for record in fresh], session, user_id=user, agent_id=self.agent_id
                )
            if replaced:
                # new values are durable before old ones go: a crash in between leaves both, and reads take the newest
                self._services.sync.delete_messages(replaced, user_id=user)
            if current and not fresh and not set(current) - set(ops):
                self._drop_from_catalog(namespace)

    def _record(self, op: PutOp, created_at: str, updated_at: str, message_id: str | None = None) -> dict[str, Any]:
        assert op.value is not None
        return item_record(
            op.namespace,
            op.key,
            op.value,
            index=op.index,
            default_fields=self.index_fields,
            created_at=created_at,
            updated_at=updated_at,
            message_id=message_id,
        )

    def _check_put(self, op: PutOp) -> None:
        """Reject a put the engine would reject, before any write of the batch (catalog included)."""
        check_namespace(op.namespace, for_write=True)
        if op.value is None:
            return
        try:
            record = self._record(op, "", iso(datetime.now(UTC)))
        except MemFuseError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"item {op.key!r} has a value that is not JSON: {exc}") from exc
        self._services.check_round(
            [record],
            user_id=self._user_of(op.namespace),
            session_id=session_of(op.namespace, self.agent_id),
            agent_id=self.agent_id,
        )

    def _drop_from_catalog(self, namespace: tuple[str, ...]) -> None:
        reply = self._services.sync.get_messages_by_session(self._catalog_session, user_id=self.user_id)
        ids = [row["id"] for row in reply["data"]["messages"] if read_namespace(row) == namespace]
        if ids:
            self._services.sync.delete_messages(ids, user_id=self.user_id)

    # -- BaseStore ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run get, search, list and put operations; reads see the store as before the batch."""
        results: list[Result] = []
        puts: dict[tuple[str, ...], dict[str, PutOp]] = {}
        with self._lock:
            for op in ops:
                if isinstance(op, GetOp):
                    results.append(self._get(op))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op))
                elif isinstance(op, PutOp):
                    self._check_put(op)
                    puts.setdefault(op.namespace, {})[op.key] = op
                    results.append(None)
                else:
                    raise InvalidInputError(f"unsupported store operation {type(op).__name__}")
            self._apply_puts(puts)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` in a worker thread: the engine is synchronous, the event loop never blocks."""
        return await asyncio.to_thread(self.batch, list(ops))
