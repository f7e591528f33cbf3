"""Move the items of a data directory's SQLite file into the PostgreSQL key-value table, once.

A data directory that kept its LangGraph store items in SQLite and is then opened with
``storage.message_store.backend: postgres`` would otherwise lose sight of them. On open, every
live item of the local file whose address PostgreSQL does not hold yet is copied there with its
times and TTL (an address PostgreSQL holds keeps PostgreSQL's item: another host wrote it, and
the shared table is the truth); the item vectors of the moved items are copied into the new
store's collections (same Chroma), and an item whose vectors cannot be found is moved as
unindexed (still found by filter search). A marker in the local file, naming the PostgreSQL
store id, makes this run once; a run cut short is simply run again (addresses already moved are
skipped). The local file is left as it was, so switching back to SQLite finds its items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from memfuse_memory.storage.kv_store import KVRow, KVStore
from memfuse_memory.storage.kv_vectors import vector_ids

log = logging.getLogger(__name__)

CopyVectors = Callable[[str, str, Sequence[str]], set[str]]  # (from store id, user, vector ids) -> copied
_PAGE = 500


def marker(store_id: str) -> str:
    """The local meta key saying the items were moved to the PostgreSQL store ``store_id``."""
    return f"moved_to_postgres:{store_id}"


def move_local_items(
    local: KVStore, local_store_id: str, target: KVStore, target_store_id: str, copy_vectors: CopyVectors | None
) -> int:
    """Copy the live items of ``local`` that ``target`` lacks into it; returns how many moved."""
    done = marker(target_store_id)
    if local.meta(done) is not None:
        return 0
    now = time.time_ns() // 1000
    moved = 0
    after: tuple[str, str, str, str] | None = None
    while page := local.export_rows(after=after, limit=_PAGE):
        last = page[-1]
        after = (last.user_id, last.agent_id, ".".join(last.namespace), last.key)
        live = [row for row in page if row.expires_us is None or row.expires_us > now]
        present = target.lookup([(r.user_id, r.agent_id, r.namespace, r.key) for r in live], None, now_us=0)
        missing = [row for row in live if (row.user_id, row.agent_id, row.namespace, row.key) not in present]
        moved += target.import_rows(_with_vectors(missing, local_store_id, copy_vectors))
    local.set_meta(done, str(now))
    if moved:
        log.info("moved %d key-value items from %s into %s", moved, local.location, target.location)
    return moved


def _with_vectors(rows: Sequence[KVRow], store_id: str, copy_vectors: CopyVectors | None) -> list[KVRow]:
    """The rows, after copying their vectors; a row whose vectors are not all copied becomes unindexed."""
    wanted: dict[str, list[str]] = {}
    for row in rows:
        if row.vectors:
            wanted.setdefault(row.user_id, []).extend(vector_ids(row.agent_id, row.namespace, row.key, 0, row.vectors))
    copied: set[str] = set()
    if copy_vectors is not None:
        for user, ids in wanted.items():
            copied |= copy_vectors(store_id, user, ids)
    return [
        row
        if not row.vectors or set(vector_ids(row.agent_id, row.namespace, row.key, 0, row.vectors)) <= copied
        else replace(row, vectors=0)
        for row in rows
    ]


def move_from_file(path: Path, target: KVStore, target_store_id: str, copy_vectors: CopyVectors | None) -> int:
    """:func:`move_local_items` from the SQLite file at ``path``, if there is one with items."""
    if not path.is_file():
        return 0
    from memfuse_memory.storage.sqlite.kv import SqliteKV

    dialect = SqliteKV(path)
    local = KVStore(dialect)
    try:
        return move_local_items(local, dialect.store_id, target, target_store_id, copy_vectors)
    finally:
        local.close()
