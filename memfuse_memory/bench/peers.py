"""The memory systems compared side by side, behind one small interface.

Ours (through :class:`BlockingBufferService`) and three peers, each on its own embedded Chroma
(``PersistentClient`` in its own folder) and all on the same embedder: one
:class:`~memfuse_memory.bench.embed_cache.CachedEmbedder` over the local all-MiniLM-L6-v2, handed
to each framework in the shape it accepts (a LangChain ``Embeddings``, a LlamaIndex
``BaseEmbedding``, mem0's ``langchain`` embedder provider). So the comparison measures the memory
systems, not who embeds faster. Every message carries its id (in metadata, or mapped back from
what the peer returns), so rankings can be scored by id.

Peer packages (the ``bench`` extra) are imported inside the functions that need them: the
library never imports them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.embedding.base import Embedder

Message = dict[str, Any]
"""``role`` (user or assistant), ``content`` and a unique ``id``."""

CHUNK = 500
"""Messages per call of a bulk path."""


class MemorySystem(Protocol):
    """What the benchmark needs from a conversation memory."""

    name: str

    def add(self, user: str, session: str, messages: list[Message]) -> None:
        """Store one round the way an application would, one call per round."""

    def add_bulk(self, user: str, session: str, rounds: list[list[Message]]) -> None:
        """Store many rounds through the system's bulk path (to fill a store quickly)."""

    def flush(self) -> None:
        """Return once everything added is searchable (a no-op for synchronous systems)."""

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        """Ids of the messages found for ``text`` in ``user``'s memory, best first, at most ``k``;
        ``asked_at`` is when the question is asked (only a time-aware system uses it)."""

    def forget(self, user: str) -> None:
        """Delete everything of ``user``."""

    def close(self) -> None:
        """Release files and threads."""


class RuntimeSwitch:
    """One embedder interface over several runtimes of the same model (ONNX Runtime, PyTorch), so a
    filled store can be timed under each without filling it again; vectors agree to ~1e-7."""

    def __init__(self, runtimes: dict[str, Embedder], current: str) -> None:
        self.runtimes = runtimes
        self.current = current

    @property
    def dimension(self) -> int:
        return self.runtimes[self.current].dimension

    def use(self, runtime: str) -> None:
        """Embed with ``runtime`` from now on."""
        if runtime not in self.runtimes:
            raise KeyError(f"no {runtime} runtime in this run: {sorted(self.runtimes)}")
        self.current = runtime

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.runtimes[self.current].embed(texts)


def _chroma_client(folder: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    folder.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


def _metadata(user: str, session: str, message: Message) -> dict[str, str]:
    return {"user_id": user, "session_id": session, "message_id": message["id"], "role": message["role"]}


def _chunks(rounds: list[list[Message]]) -> Iterator[list[Message]]:
    flat = [message for messages in rounds for message in messages]
    for start in range(0, len(flat), CHUNK):
        yield flat[start : start + CHUNK]


def langchain_embeddings(embedder: Embedder) -> Any:
    """The shared embedder as a LangChain ``Embeddings``."""
    from langchain_core.embeddings import Embeddings

    class SharedEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed([text])[0].tolist()

    return SharedEmbeddings()


def llamaindex_embedding(embedder: Embedder) -> Any:
    """The shared embedder as a LlamaIndex ``BaseEmbedding``."""
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class SharedEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return embedder.embed([query])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_query_embedding(text)

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

    return SharedEmbedding(model_name="all-MiniLM-L6-v2")


class Ours:
    """memfuse-memory with its defaults (results capped at 50 so recall@50 can be scored)."""

    name = "memfuse (ours)"

    def __init__(self, folder: Path, embedder: Embedder, overrides: dict[str, Any] | None = None) -> None:
        config = _deep_copy(overrides or {})
        config.setdefault("buffer", {}).setdefault("query", {})["max_size"] = 50
        self._memory = BlockingBufferService.from_config(config, data_dir=folder, embedder=embedder).start()

    def add(self, user: str, session: str, messages: list[Message]) -> None:
        self._memory.add(messages, session_id=session, user_id=user)

    def add_bulk(self, user: str, session: str, rounds: list[list[Message]]) -> None:
        for start in range(0, len(rounds), CHUNK):
            self._memory.add_batch(rounds[start : start + CHUNK], session_id=session, user_id=user)

    def flush(self) -> None:
        self._memory.flush_all()

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        reply = self._memory.query(text, top_k=k, user_id=user, reference_time=asked_at)
        return [hit["id"] for hit in reply["data"]["results"]]

    def search_as(self, user: str, text: str, k: int, asked_at: datetime | None, query: dict[str, Any]) -> list[str]:
        """:meth:`search` with other query settings (fusion, weights) over the same stored memory, so
        query-side variants share one ingest; uncached, the engine's own settings are put back after."""
        engine = self._memory._engine
        path = engine.components.queries
        own = path._settings
        path._settings = own.model_copy(update=query)
        try:
            reply = engine.run_query(
                engine.prepare_query(text, k, user_id=user, reference_time=asked_at), use_cache=False
            )
        finally:
            path._settings = own
        return [hit["id"] for hit in reply["data"]["results"]]

    def forget(self, user: str) -> None:
        self._memory.delete_user(user)

    def close(self) -> None:
        self._memory.close()


class LangChainChroma:
    """LangChain's recipe: ``langchain_chroma.Chroma.add_texts`` once per message, ``similarity_search``.

    One collection; each search is scoped with a ``filter`` on the ``user_id`` metadata, the
    per-user pattern LangChain documents for vector stores.
    """

    name = "LangChain + Chroma"

    def __init__(self, folder: Path, embedder: Embedder) -> None:
        from langchain_chroma import Chroma

        self._store = Chroma(
            collection_name="memory", embedding_function=langchain_embeddings(embedder), client=_chroma_client(folder)
        )

    def _write(self, user: str, session: str, messages: list[Message]) -> None:
        self._store.add_texts(
            [m["content"] for m in messages],
            metadatas=[_metadata(user, session, m) for m in messages],
            ids=[m["id"] for m in messages],
        )

    def add(self, user: str, session: str, messages: list[Message]) -> None:
        for message in messages:
            self._write(user, session, [message])

    def add_bulk(self, user: str, session: str, rounds: list[list[Message]]) -> None:
        for chunk in _chunks(rounds):
            self._write(user, session, chunk)

    def flush(self) -> None:
        return None

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        found = self._store.similarity_search(text, k=k, filter={"user_id": user})
        return [doc.metadata["message_id"] for doc in found]

    def forget(self, user: str) -> None:
        self._store.delete(where={"user_id": user})

    def close(self) -> None:
        return None


_LLAMA_MESSAGE = re.compile(r"<message role='(\w+)'>(.*?)</message>", re.DOTALL)


class LlamaIndexMemory:
    """LlamaIndex ``Memory`` with a ``VectorMemoryBlock`` over ``llama-index-vector-stores-chroma``.

    One ``Memory`` (and its own block) per user, its ``session_id`` being the user, over one
    shared Chroma collection that the block filters by that id; the chat history lives in a
    SQLite file. Only what overflows the short-term queue reaches the vector store, a batch of
    about ``token_flush_size`` tokens per node: with the default 30,000-token limit nothing would
    be embedded in these runs, so the limit is 1,000 tokens with flushes of 100. A search is the
    block's own retrieval (the query alone, ``retrieval_context_window=1``), each node expanded
    into its messages in order, followed by the messages still in the short-term queue (newest
    first), which ``Memory.get`` would also hand to the model.
    """

    name = "LlamaIndex Memory + VectorMemoryBlock"

    def __init__(self, folder: Path, embedder: Embedder, token_limit: int = 1000, flush_size: int = 100) -> None:
        from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
        from llama_index.vector_stores.chroma import ChromaVectorStore

        collection = _chroma_client(folder / "chroma").get_or_create_collection("memory")
        self._vectors = ChromaVectorStore(chroma_collection=collection)
        self._chat = SQLAlchemyChatStore(
            table_name="memory", async_database_uri=f"sqlite+aiosqlite:///{folder / 'chat.sqlite3'}"
        )
        self._embed = llamaindex_embedding(embedder)
        self._limits = (token_limit, flush_size)
        self._memories: dict[str, Any] = {}
        self._ids: dict[str, dict[tuple[str, str], list[str]]] = defaultdict(lambda: defaultdict(list))

    def _memory(self, user: str) -> Any:
        if user not in self._memories:
            from llama_index.core.memory import Memory, VectorMemoryBlock

            block = VectorMemoryBlock(vector_store=self._vectors, embed_model=self._embed, retrieval_context_window=1)
            self._memories[user] = Memory.from_defaults(
                session_id=user,
                token_limit=self._limits[0],
                token_flush_size=self._limits[1],
                chat_store=self._chat,
                memory_blocks=[block],
            )
        return self._memories[user]

    def _put(self, user: str, messages: list[Message]) -> None:
        from llama_index.core.llms import ChatMessage

        for message in messages:
            self._ids[user][(message["role"], message["content"])].append(message["id"])
        self._memory(user).put_messages([ChatMessage(role=m["role"], content=m["content"]) for m in messages])

    def add(self, user: str, session: str, messages: list[Message]) -> None:
        self._put(user, messages)

    def add_bulk(self, user: str, session: str, rounds: list[list[Message]]) -> None:
        for chunk in _chunks(rounds):
            self._put(user, chunk)

    def flush(self) -> None:
        return None

    def _ids_of(self, user: str, pairs: list[tuple[str, str]]) -> list[str]:
        known = self._ids[user]
        return list(dict.fromkeys(mid for pair in pairs for mid in known.get(pair, [])))

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        from llama_index.core.async_utils import asyncio_run
        from llama_index.core.llms import ChatMessage
        from llama_index.core.storage.chat_store.base_db import MessageStatus

        memory = self._memory(user)
        block = memory.memory_blocks[0]
        block.similarity_top_k = k
        found = asyncio_run(block.aget([ChatMessage(role="user", content=text)], session_id=user))
        queue = [(str(m.role.value), m.content or "") for m in reversed(memory.get_all(status=MessageStatus.ACTIVE))]
        return self._ids_of(user, _LLAMA_MESSAGE.findall(found) + queue)[:k]

    def forget(self, user: str) -> None:
        # the Chroma collection itself: delete_nodes with only a filter passes ids=[], which Chroma 1.x rejects
        self._vectors.client.delete(where={"session_id": user})
        if user in self._memories:
            self._memories.pop(user).reset()
        self._ids.pop(user, None)

    def close(self) -> None:
        return None


class Mem0:
    """mem0 open source: ``Memory.add(..., infer=False)`` stores each message as it is, no LLM.

    Chroma vector store, the shared embedder through mem0's ``langchain`` embedder provider,
    telemetry off. mem0 builds an LLM client even when ``infer=False`` never calls it, so it is
    given LangChain's offline fake chat model. Searches are scoped with ``filters={"user_id"}``,
    as mem0 documents. Without spaCy (``mem0ai[nlp]``, whose model would be downloaded at run
    time) and with Chroma (no keyword search in mem0's adapter), mem0 ranks by vector similarity
    only, with no BM25 or entity boost.
    """

    name = "mem0 (infer=False)"

    def __init__(self, folder: Path, embedder: Embedder) -> None:
        os.environ.setdefault("MEM0_TELEMETRY", "False")
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from mem0 import Memory

        folder.mkdir(parents=True, exist_ok=True)
        self._memory = Memory.from_config(
            {
                "vector_store": {"provider": "chroma", "config": {"collection_name": "memory", "path": str(folder)}},
                "embedder": {
                    "provider": "langchain",
                    "config": {"model": langchain_embeddings(embedder), "embedding_dims": embedder.dimension},
                },
                "llm": {"provider": "langchain", "config": {"model": FakeListChatModel(responses=["(not used)"])}},
                "history_db_path": str(folder / "history.sqlite3"),
            }
        )
        self._ids: dict[str, str] = {}

    def add(self, user: str, session: str, messages: list[Message]) -> None:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        stored = self._memory.add(plain, user_id=user, metadata={"session_id": session}, infer=False)["results"]
        for message, row in zip(messages, stored, strict=True):
            self._ids[row["id"]] = message["id"]

    def add_bulk(self, user: str, session: str, rounds: list[list[Message]]) -> None:
        for messages in rounds:
            self.add(user, session, messages)

    def flush(self) -> None:
        return None

    def search(self, user: str, text: str, k: int, asked_at: datetime | None = None) -> list[str]:
        found = self._memory.search(text, top_k=k, filters={"user_id": user})["results"]
        return [self._ids[row["id"]] for row in found]

    def forget(self, user: str) -> None:
        self._memory.delete_all(user_id=user)

    def close(self) -> None:
        return None


def _deep_copy(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in value.items()}


PEERS: dict[str, tuple[str, Callable[[Path, Embedder], MemorySystem]]] = {
    "langchain": ("langchain_chroma", LangChainChroma),
    "llamaindex": ("llama_index.vector_stores.chroma", LlamaIndexMemory),
    "mem0": ("mem0", Mem0),
}
"""Short name -> (the module it needs, factory)."""


def unavailable(name: str) -> str | None:
    """Why a peer cannot run here (its package is missing), or None."""
    import importlib.util

    if name == "ours":
        return None
    module = PEERS[name][0]
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    return None if found else f"`{module}` is not installed (pip install -e '.[bench]')"


def factory(name: str, embedder: Embedder) -> Callable[[Path], MemorySystem]:
    """A function building the named system in a folder."""
    if name == "ours":
        return lambda folder: Ours(folder, embedder)
    make = PEERS[name][1]
    return lambda folder: make(folder, embedder)


@contextmanager
def running(make: Callable[[Path], MemorySystem]) -> Iterator[MemorySystem]:
    """A system in a fresh temporary folder, closed and removed on exit."""
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        system = make(Path(tmp))
        try:
            yield system
        finally:
            system.close()
