"""The item vectors of ``MemFuseStore``: ranking items by their best field, and keeping vectors in step with rows.

An item has one vector per indexed field in the user's item collection (``kv_vectors``); its
score is the best field's similarity. A vector belongs to one value of its item (its ``stamp`` is
the row's ``updated_us``), so a vector of an older value never ranks a newer one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from langchain_memfuse._store_codec import plan_vector_writes
from memfuse_memory.errors import StorageError
from memfuse_memory.storage.kv_store import KVRow, KVStore, KVWrite
from memfuse_memory.storage.kv_vectors import Distance, ItemIndex, ItemQuery

FIRST_POOL = 16  # vector hits asked for first; grows 4x until a page is full or the index is exhausted

Address = tuple[str, str, tuple[str, ...], str]


def rank_items(
    kv: KVStore,
    index: ItemIndex,
    users: Sequence[str],
    query: tuple[str, np.ndarray, tuple[str, ...], Distance],
    item_filter: Mapping[str, Any] | None,
    wanted: int,
    now_us: int,
) -> list[tuple[KVRow, float]]:
    """Live items of ``users`` under the prefix matching the filter, best field first; at least
    ``wanted`` of them unless the index holds fewer. ``query`` is (space, vector, prefix, distance)."""
    space, vector, prefix, distance = query
    pool = max(FIRST_POOL, 2 * wanted)
    while True:
        best: dict[Address, dict[int, float]] = {}
        exhausted = True
        for user in users:
            hits = index.query(user, ItemQuery(space, vector, prefix, pool, distance))
            exhausted = exhausted and len(hits) < pool
            for hit in hits:
                stamps = best.setdefault((user, hit.agent_id, hit.namespace, hit.key), {})
                stamps[hit.stamp] = max(hit.similarity, stamps.get(hit.stamp, -math.inf))
        rows = kv.lookup(list(best), item_filter, now_us=now_us)
        scored = sorted(
            ((row, best[address][row.updated_us]) for address, row in rows.items() if row.updated_us in best[address]),
            key=lambda pair: (-pair[1], pair[0].namespace, pair[0].key),
        )
        if len(scored) >= wanted or exhausted:
            return scored
        pool *= 4


def write_item_vectors(
    kv: KVStore,
    index: ItemIndex,
    prepared: Sequence[tuple[KVWrite, list[str]]],
    vectors: np.ndarray,
    replaced: Mapping[tuple[str, str, str, str], int],
    now_us: int,
) -> None:
    """Put the new field vectors in the index and take out the replaced ones beyond them.

    The rows are committed first; when the index refuses, they are listed as unindexed (so
    searches still show them, unscored) and ``StorageError`` says so.
    """
    for user, (fresh, stale) in plan_vector_writes(prepared, vectors, replaced, now_us).items():
        if not fresh and not stale:
            continue
        try:
            index.write(user, fresh, stale)
        except Exception as exc:
            kv.clear_vectors([(user, v.agent_id, v.namespace, v.key) for v in fresh], updated_us=now_us)
            raise StorageError(f"items were stored but their vectors were not indexed: {exc}") from exc
