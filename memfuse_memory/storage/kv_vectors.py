"""Vectors of key-value items: one per indexed field of an item, in a collection per user.

Item vectors live in their own Chroma collections (``mfi-...``), apart from message vectors, so
an item never surfaces in message recall and a message never in an item search. A vector's id is
``<item digest>:<field number>``; its metadata carries the item's address, the item's
``updated_us`` when it was embedded (a search drops hits whose stamp no longer matches the table,
so a stale vector can never rank a newer value) and one ``n<depth>`` label per namespace level,
so a namespace prefix is a metadata equality filter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from memfuse_memory.storage.kv_query import decode_namespace, encode_namespace

Distance = Literal["cosine", "inner_product", "l2"]
DISTANCES: tuple[Distance, ...] = ("cosine", "inner_product", "l2")


def similarity(distance: Distance, query: np.ndarray, vector: np.ndarray) -> float:
    """LangGraph's score of a stored vector under a distance type: the cosine similarity, the inner
    product, or the negated Euclidean distance (as PostgresStore scores them)."""
    q = np.asarray(query, dtype=np.float64)
    v = np.asarray(vector, dtype=np.float64)
    if distance == "inner_product":
        return float(q @ v)
    if distance == "l2":
        return -float(np.linalg.norm(q - v))
    norms = float(np.linalg.norm(q) * np.linalg.norm(v))
    return 0.0 if norms == 0 else float(q @ v) / norms


@dataclass(frozen=True, slots=True)
class ItemVector:
    """The vector of one indexed field of one item."""

    agent_id: str
    namespace: tuple[str, ...]
    key: str
    field: int
    stamp: int
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class ItemHit:
    """An item field close to a query vector."""

    agent_id: str
    namespace: tuple[str, ...]
    key: str
    stamp: int
    similarity: float


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """A search of one user's item vectors: the ``limit`` fields nearest ``vector`` in an agent space
    under a namespace prefix, scored by ``distance``."""

    agent_id: str
    vector: np.ndarray
    prefix: tuple[str, ...]
    limit: int
    distance: Distance = "cosine"


class ItemIndex(Protocol):
    """Where item vectors are kept, partitioned by user."""

    def write(self, user_id: str, vectors: Sequence[ItemVector], stale: Sequence[str]) -> None: ...

    def query(self, user_id: str, request: ItemQuery) -> list[ItemHit]: ...


def item_digest(agent_id: str, namespace: Sequence[str], key: str) -> str:
    """A short stable name of an item address (the stem of its vector ids)."""
    return hashlib.sha256(json.dumps([agent_id, list(namespace), key]).encode("utf-8")).hexdigest()[:32]


def vector_ids(agent_id: str, namespace: Sequence[str], key: str, start: int, stop: int) -> list[str]:
    """The ids of an item's field vectors number ``start`` to ``stop - 1``."""
    stem = item_digest(agent_id, namespace, key)
    return [f"{stem}:{number}" for number in range(start, stop)]


def prefix_where(agent_id: str, prefix: Sequence[str]) -> dict[str, Any]:
    """The Chroma ``where`` of an agent space and namespace prefix."""
    clauses: list[dict[str, Any]] = [{"agent": agent_id}, *({f"n{d}": label} for d, label in enumerate(prefix))]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaItemIndex:
    """Item vectors in the Chroma client of a ``ChromaVectorStore`` (cosine space)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def write(self, user_id: str, vectors: Sequence[ItemVector], stale: Sequence[str]) -> None:
        fresh = {vector_ids(v.agent_id, v.namespace, v.key, v.field, v.field + 1)[0] for v in vectors}
        gone = [vid for vid in stale if vid not in fresh]

        def write(collection: Any) -> None:
            if gone:
                collection.delete(ids=gone)
            if vectors:
                collection.upsert(
                    ids=[vector_ids(v.agent_id, v.namespace, v.key, v.field, v.field + 1)[0] for v in vectors],
                    embeddings=np.stack([np.asarray(v.vector, dtype=np.float32) for v in vectors]),
                    metadatas=[_metadata(v) for v in vectors],
                )

        self._store.using_items(user_id, create=bool(vectors), operation=write, missing=None)

    def query(self, user_id: str, request: ItemQuery) -> list[ItemHit]:
        """The nearest fields by cosine (the collections' space), scored by the request's distance:
        other distance types are computed exactly from the stored vectors of those candidates."""
        distance, vector = request.distance, request.vector

        def run(collection: Any) -> list[ItemHit]:
            wanted = min(request.limit, collection.count())
            if wanted <= 0:
                return []
            exact = distance != "cosine"
            result = collection.query(
                query_embeddings=np.asarray(vector, dtype=np.float32)[None, :],
                n_results=wanted,
                where=prefix_where(request.agent_id, request.prefix),
                include=["metadatas", "distances", *(["embeddings"] if exact else [])],
            )
            metas, cosines = result["metadatas"][0], result["distances"][0]
            scores = (
                [similarity(distance, vector, stored) for stored in result["embeddings"][0]]
                if exact
                else [min(1.0, max(-1.0, 1.0 - float(d))) for d in cosines]  # float noise aside, a cosine
            )
            return [
                ItemHit(
                    agent_id=str(meta["agent"]),
                    namespace=decode_namespace(str(meta["ns"])),
                    key=str(meta["key"]),
                    stamp=int(meta["stamp"]),
                    similarity=score,
                )
                for meta, score in zip(metas, scores, strict=True)
            ]

        return self._store.using_items(user_id, create=False, operation=run, missing=[])


def _metadata(vector: ItemVector) -> dict[str, Any]:
    return {
        "agent": vector.agent_id,
        "ns": encode_namespace(vector.namespace),
        "key": vector.key,
        "field": vector.field,
        "stamp": vector.stamp,
        **{f"n{depth}": label for depth, label in enumerate(vector.namespace)},
    }
