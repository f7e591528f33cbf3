"""Vector stores: the protocol the engine needs and its Chroma implementation.

One Chroma collection per user keeps user-scoped queries fast at any total size (a ``where``
filter over one big collection costs ~100 ms at 100k items) and makes deleting a user one call.
Only ids, vectors and scope metadata go to Chroma; the text stays in the message store.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from memfuse_memory.config import VectorStoreConfig
from memfuse_memory.errors import StorageError
from memfuse_memory.models import Chunk, to_micros

_ID_SEPARATOR = "\x1f"  # ids never hold control characters (validated), so this cannot clash


@dataclass(frozen=True, slots=True)
class VectorItem:
    """A chunk and its embedding, ready to store."""

    chunk: Chunk
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class VectorHit:
    """A stored chunk close to a query: its focus messages and cosine similarity."""

    chunk_id: str
    message_ids: tuple[str, ...]
    similarity: float


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Scope and time range of a vector query; ``user_id`` is always set."""

    user_id: str
    session_id: str | None = None
    agent_id: str | None = None
    since: int | None = None
    until: int | None = None


class VectorStore(Protocol):
    """Where chunk vectors are kept, partitioned by user."""

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None: ...

    def query(self, vector: np.ndarray, where: VectorFilter, limit: int) -> list[VectorHit]: ...

    def delete_session(self, user_id: str, session_id: str) -> None: ...

    def delete_rounds(self, user_id: str, round_ids: Sequence[str]) -> None: ...

    def delete_user(self, user_id: str) -> None: ...

    def close(self) -> None: ...


def collection_name(user_id: str) -> str:
    """A valid Chroma collection name for a user, whatever characters the user id has."""
    return "mfu-" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40]


class ChromaVectorStore:
    """Chroma, embedded (PersistentClient under the data dir) or a server (HttpClient)."""

    def __init__(self, config: VectorStoreConfig, data_dir: Path) -> None:
        import chromadb

        settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
        try:
            if config.mode == "server":
                self._client = chromadb.HttpClient(host=config.host, port=config.port, settings=settings)
            else:
                self._client = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)
        except Exception as exc:
            raise StorageError(f"cannot open the Chroma vector store ({config.mode}): {exc}") from exc
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._max_batch = max(1, min(5000, int(self._client.get_max_batch_size())))

    def _collection(self, user_id: str, *, create: bool) -> Any | None:
        name = collection_name(user_id)
        with self._lock:
            collection = self._collections.get(name)
        if collection is not None:
            return collection
        from chromadb.errors import NotFoundError

        if create:
            collection = self._client.get_or_create_collection(
                name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        else:
            try:
                collection = self._client.get_collection(name, embedding_function=None)
            except (NotFoundError, ValueError):
                return None
        with self._lock:
            self._collections[name] = collection
        return collection

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None:
        if not items:
            return
        collection = self._collection(user_id, create=True)
        for start in range(0, len(items), self._max_batch):
            self._upsert(collection, items[start : start + self._max_batch])

    @staticmethod
    def _upsert(collection: Any, items: Sequence[VectorItem]) -> None:
        collection.upsert(
            ids=[item.chunk.id for item in items],
            embeddings=np.stack([item.vector for item in items]),
            metadatas=[
                {
                    "session_id": item.chunk.scope.session_id,
                    "agent_id": item.chunk.scope.agent_id or "",
                    "round_id": item.chunk.round_id,
                    "message_ids": _ID_SEPARATOR.join(item.chunk.message_ids),
                    "created_us": to_micros(item.chunk.created_at),
                }
                for item in items
            ],
        )

    def query(self, vector: np.ndarray, where: VectorFilter, limit: int) -> list[VectorHit]:
        collection = self._collection(where.user_id, create=False)
        if collection is None:
            return []
        clauses: list[dict[str, Any]] = []
        if where.session_id is not None:
            clauses.append({"session_id": where.session_id})
        if where.agent_id is not None:
            clauses.append({"agent_id": where.agent_id})
        if where.since is not None:
            clauses.append({"created_us": {"$gte": where.since}})
        if where.until is not None:
            clauses.append({"created_us": {"$lte": where.until}})
        condition: dict[str, Any] | None = None
        if len(clauses) == 1:
            condition = clauses[0]
        elif clauses:
            condition = {"$and": clauses}
        result = collection.query(
            query_embeddings=vector[None, :], n_results=limit, where=condition, include=["metadatas", "distances"]
        )
        ids, metadatas, distances = result["ids"][0], result["metadatas"][0], result["distances"][0]
        return [
            VectorHit(
                chunk_id=cid, message_ids=tuple(str(meta["message_ids"]).split(_ID_SEPARATOR)), similarity=1.0 - dist
            )
            for cid, meta, dist in zip(ids, metadatas, distances, strict=True)
        ]

    def delete_session(self, user_id: str, session_id: str) -> None:
        collection = self._collection(user_id, create=False)
        if collection is not None:
            collection.delete(where={"session_id": session_id})

    def delete_rounds(self, user_id: str, round_ids: Sequence[str]) -> None:
        collection = self._collection(user_id, create=False)
        if collection is not None and round_ids:
            collection.delete(where={"round_id": {"$in": list(round_ids)}})

    def delete_user(self, user_id: str) -> None:
        from chromadb.errors import NotFoundError

        name = collection_name(user_id)
        with self._lock:
            self._collections.pop(name, None)
        with suppress(NotFoundError, ValueError):
            self._client.delete_collection(name)

    def close(self) -> None:
        with self._lock:
            self._collections.clear()
