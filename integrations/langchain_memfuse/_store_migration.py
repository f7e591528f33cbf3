"""Move items a store kept as messages (one session per namespace) into the key-value table, once.

Earlier versions of ``MemFuseStore`` kept each item as a message of a ``lgstore...`` session and
listed namespaces in a catalog session. On first open of a data directory with such sessions,
their items are copied into the key-value table with their creation and update times, indexed
items are embedded again with the opening store's index settings, and the old sessions go.
A marker in the table makes this run once per database.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from langgraph.store.base import PutOp

from langchain_memfuse._store_legacy import CATALOG_SESSION, read_item
from memfuse_memory.models import to_micros
from memfuse_memory.storage.kv_store import KVRow

if TYPE_CHECKING:
    from langchain_memfuse.store import MemFuseStore

MARKER = "legacy_items_migrated"
_LEGACY_PREFIX = "lgstore"


def migrate_legacy_items(store: MemFuseStore) -> int:
    """Copy every legacy item of the store's engine into the table; returns how many moved."""
    kv = store.kv
    if kv.meta(MARKER) is not None:
        return 0
    engine = store._services.engine
    moved = 0
    for user in engine.list_users():
        sessions = [
            s["session_id"]
            for s in engine.list_sessions(user_id=user)["data"]["sessions"]
            if str(s["session_id"]).startswith(_LEGACY_PREFIX)
        ]
        for session in sessions:
            if not session.startswith(CATALOG_SESSION):
                moved += _move_session(store, user, session)
            engine.delete_session(session, user_id=user)
    kv.set_meta(MARKER, "1")
    return moved


def _move_session(store: MemFuseStore, user: str, session: str) -> int:
    rows = store._services.engine.get_messages_by_session(session, user_id=user)["data"]["messages"]
    latest: dict[tuple[str, tuple[str, ...], str], tuple[KVRow, bool]] = {}
    for row in rows:
        stored = read_item(row)
        if stored is None:
            continue
        item = stored.item
        agent = row.get("agent_id") or ""
        kv_row = KVRow(
            user_id=user,
            agent_id=agent,
            namespace=item.namespace,
            key=item.key,
            value=json.dumps(item.value, ensure_ascii=False, separators=(",", ":")),
            created_us=to_micros(item.created_at),
            updated_us=to_micros(item.updated_at),
        )
        latest[(agent, item.namespace, item.key)] = (kv_row, stored.indexed)  # later rows are newer
    store.kv.import_rows([kv_row for kv_row, _ in latest.values()])
    reindex = [
        PutOp(kv_row.namespace, kv_row.key, json.loads(kv_row.value))
        for (agent, _, _), (kv_row, indexed) in latest.items()
        if indexed and agent == store._space and store.index_config is not None
    ]
    if reindex:
        store._apply_puts(reindex)
    return len(latest)
