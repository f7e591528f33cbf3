"""Vector stores: the protocol the engine needs and its Chroma implementation.

One Chroma collection per user keeps user-scoped queries fast at any total size (a ``where``
filter over one big collection costs ~100 ms at 100k items) and makes deleting a user one call.
Collection names carry the message store's id, so processes sharing one message store share
collections while separate stores on one Chroma server never mix.
Only ids, vectors and scope metadata go to Chroma; the text stays in the message store.
"""

from __future__ import annotations

import hashlib
import threading
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from memfuse_memory.buffer.chunking import chunk_focus
from memfuse_memory.config import VectorStoreConfig
from memfuse_memory.errors import StorageError, WriteRejectedError
from memfuse_memory.models import Chunk, to_micros
from memfuse_memory.scope import ScopeFilter

_ID_SEPARATOR = "\x1f"  # ids never hold control characters (validated), so this cannot clash
_CONNECT_TIMEOUT_SECONDS = 5.0
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class VectorItem:
    """A chunk and its embedding, ready to store."""

    chunk: Chunk
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class VectorHit:
    """A stored chunk close to a query: its focus messages and cosine similarity. From Chroma, a
    chunk of a whole round has no ``message_ids``: the message store knows the round's messages
    (``MemoryService.query_vectors`` fills them in), and reading Chroma's metadata would double the
    query's cost."""

    chunk_id: str
    message_ids: tuple[str, ...]
    similarity: float


class VectorStore(Protocol):
    """Where chunk vectors are kept, partitioned by user."""

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None:
        """Write the items; raise ``WriteRejectedError`` when the store refuses them for good."""
        ...

    def query(self, vector: np.ndarray, where: ScopeFilter, limit: int) -> list[VectorHit]: ...

    def delete_session(self, user_id: str, session_id: str) -> None: ...

    def delete_rounds(self, user_id: str, round_ids: Sequence[str]) -> None: ...

    def delete_user(self, user_id: str) -> None: ...

    def close(self) -> None: ...


MESSAGES = "mfu"
ITEMS = "mfi"  # key-value store items: their own collections, never mixed with message recall
# items are ranked exactly by users (a page of a store search), and many share one vector (the same
# field value): a wide beam keeps the one distinct item among hundreds of duplicates findable
_HNSW: dict[str, dict[str, Any]] = {
    MESSAGES: {"space": "cosine"},
    ITEMS: {"space": "cosine", "ef_search": 256, "ef_construction": 256},
}


def collection_name(store_id: str, user_id: str, kind: str = MESSAGES) -> str:
    """A valid Chroma collection name for a user of one message store, whatever characters the
    user id has (an empty store id is a store created before stores had ids)."""
    digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40]
    return f"{kind}-{store_id}-{digest}" if store_id else f"{kind}-{digest}"


def _check_answers(host: str, port: int, timeout: float) -> None:
    """Fail fast, naming the address, when nothing at the address answers Chroma's heartbeat in
    time (the Chroma client would hang on a silent server, or report no address on a closed port)."""
    url = f"http://{host}:{port}/api/v2/heartbeat"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no *_proxy detour: it is our server
    try:
        with direct.open(url, timeout=min(timeout, _CONNECT_TIMEOUT_SECONDS)) as reply:
            reply.read()
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"cannot reach the Chroma server at {host}:{port} (storage.vector_store.mode: server): {exc}"
        ) from exc


def _bound_requests(client: Any, timeout: float) -> None:
    """Give the Chroma HTTP client's session a deadline: chromadb creates it with none, so a hung
    server would block a flush or a query forever instead of failing into retry and the breaker."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is None or not hasattr(session, "timeout"):
        raise StorageError(
            "this chromadb version keeps no HTTP session at client._server._session; "
            "storage.vector_store.request_timeout_seconds cannot be applied"
        )
    session.timeout = timeout  # an httpx.Client: the setter turns seconds into an httpx.Timeout


class ChromaVectorStore:
    """Chroma, embedded (PersistentClient under the data dir) or a server (HttpClient).

    ``store_id`` is the message store's id; it is part of every collection name.
    """

    def __init__(self, config: VectorStoreConfig, data_dir: Path, *, store_id: str) -> None:
        import chromadb

        self.store_id = store_id
        settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
        try:
            if config.mode == "server":
                _check_answers(config.host, config.port, config.request_timeout_seconds)
                self._client = chromadb.HttpClient(host=config.host, port=config.port, settings=settings)
                _bound_requests(self._client, config.request_timeout_seconds)
            else:
                self._client = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)
        except StorageError:
            raise
        except Exception as exc:
            where = f"server at {config.host}:{config.port}" if config.mode == "server" else "embedded store"
            raise StorageError(f"cannot open the Chroma vector store ({where}): {exc}") from exc
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._max_batch = max(1, min(5000, int(self._client.get_max_batch_size())))

    def _collection(self, user_id: str, *, create: bool, kind: str = MESSAGES) -> Any | None:
        name = collection_name(self.store_id, user_id, kind)
        with self._lock:
            collection = self._collections.get(name)
        if collection is not None:
            return collection
        from chromadb.errors import NotFoundError

        if create:
            collection = self._client.get_or_create_collection(
                name, configuration={"hnsw": _HNSW[kind]}, embedding_function=None
            )
        else:
            try:
                collection = self._client.get_collection(name, embedding_function=None)
            except (NotFoundError, ValueError):
                return None
        with self._lock:
            self._collections[name] = collection
        return collection

    def _using(
        self, user_id: str, *, create: bool, operation: Callable[[Any], _T], missing: _T, kind: str = MESSAGES
    ) -> _T:
        """Run ``operation`` on the user's collection (``missing`` when there is none).

        Another process may have deleted (and recreated) the collection behind a cached handle;
        then the handle is dropped and the operation runs once more on a fresh lookup.
        """
        from chromadb.errors import NotFoundError

        collection = self._collection(user_id, create=create, kind=kind)
        if collection is None:
            return missing
        try:
            return operation(collection)
        except NotFoundError:
            with self._lock:
                self._collections.pop(collection_name(self.store_id, user_id, kind), None)
        collection = self._collection(user_id, create=create, kind=kind)
        return missing if collection is None else operation(collection)

    def upsert(self, user_id: str, items: Sequence[VectorItem]) -> None:
        if not items:
            return

        def write(collection: Any) -> None:
            for start in range(0, len(items), self._max_batch):
                self._upsert(collection, items[start : start + self._max_batch])

        self._using(user_id, create=True, operation=write, missing=None)

    @staticmethod
    def _upsert(collection: Any, items: Sequence[VectorItem]) -> None:
        from chromadb.errors import DuplicateIDError, InvalidArgumentError, InvalidDimensionException

        try:
            _write_items(collection, items)
        except (DuplicateIDError, InvalidArgumentError, InvalidDimensionException, ValueError, TypeError) as exc:
            raise WriteRejectedError(f"Chroma rejected {len(items)} item(s): {exc}") from exc

    def query(self, vector: np.ndarray, where: ScopeFilter, limit: int) -> list[VectorHit]:
        condition = where.chroma_where()
        result = self._using(
            where.user_id,
            create=False,
            operation=lambda collection: collection.query(
                query_embeddings=vector[None, :], n_results=limit, where=condition, include=["distances"]
            ),
            missing=None,
        )
        if result is None:
            return []
        return [
            VectorHit(chunk_id=cid, message_ids=_focus_ids(cid), similarity=1.0 - dist)
            for cid, dist in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def delete_session(self, user_id: str, session_id: str) -> None:
        self._using(
            user_id,
            create=False,
            operation=lambda collection: collection.delete(where={"session_id": session_id}),
            missing=None,
        )

    def delete_rounds(self, user_id: str, round_ids: Sequence[str]) -> None:
        if not round_ids:
            return
        self._using(
            user_id,
            create=False,
            operation=lambda collection: collection.delete(where={"round_id": {"$in": list(round_ids)}}),
            missing=None,
        )

    def delete_user(self, user_id: str) -> None:
        from chromadb.errors import NotFoundError

        for kind in (MESSAGES, ITEMS):
            name = collection_name(self.store_id, user_id, kind)
            with self._lock:
                self._collections.pop(name, None)
            with suppress(NotFoundError, ValueError):
                self._client.delete_collection(name)

    def using_items(self, user_id: str, *, create: bool, operation: Callable[[Any], _T], missing: _T) -> _T:
        """Run ``operation`` on the user's collection of key-value items (``missing`` when none)."""
        return self._using(user_id, create=create, operation=operation, missing=missing, kind=ITEMS)

    def copy_item_vectors(self, from_store_id: str, user_id: str, ids: Sequence[str]) -> set[str]:
        """Copy a user's item vectors from the collection of another store id (items moved to a new
        message store, see ``storage.kv_migrate``); returns the ids found and copied."""
        from chromadb.errors import NotFoundError

        try:
            source = self._client.get_collection(
                collection_name(from_store_id, user_id, ITEMS), embedding_function=None
            )
        except (NotFoundError, ValueError):
            return set()
        found = source.get(ids=list(ids), include=["embeddings", "metadatas"])
        if not found["ids"]:
            return set()

        def upsert(collection: Any) -> None:
            collection.upsert(ids=found["ids"], embeddings=found["embeddings"], metadatas=found["metadatas"])

        self.using_items(user_id, create=True, operation=upsert, missing=None)
        return set(found["ids"])

    def item_index(self) -> Any:
        """The index of key-value item vectors kept beside this store's message vectors."""
        from memfuse_memory.storage.kv_vectors import ChromaItemIndex

        return ChromaItemIndex(self)

    def count(self, user_id: str, kind: str = MESSAGES) -> int:
        """Vectors held for a user: message chunks, or key-value items (inspection and tests)."""
        return self._using(
            user_id, create=False, operation=lambda collection: int(collection.count()), missing=0, kind=kind
        )

    def has_collection(self, user_id: str, kind: str = MESSAGES) -> bool:
        """Whether the user's collection of this kind exists on the Chroma side."""
        name = collection_name(self.store_id, user_id, kind)
        return name in [collection.name for collection in self._client.list_collections()]

    def message_ids(self, user_id: str) -> list[str]:
        """The focus message ids of every chunk held for a user, one entry per chunk focus."""
        metadatas = self._using(
            user_id,
            create=False,
            operation=lambda collection: collection.get(include=["metadatas"])["metadatas"],
            missing=[],
        )
        return [mid for meta in metadatas for mid in str(meta["message_ids"]).split(_ID_SEPARATOR)]

    def close(self) -> None:
        with self._lock:
            self._collections.clear()


def _focus_ids(cid: str) -> tuple[str, ...]:
    """The message a chunk id names, or none for a chunk of a whole round."""
    _, message_id = chunk_focus(cid)
    return () if message_id is None else (message_id,)


def _write_items(collection: Any, items: Sequence[VectorItem]) -> None:
    """One Chroma upsert of vectors and their scope metadata (no text: text lives in SQLite)."""
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
