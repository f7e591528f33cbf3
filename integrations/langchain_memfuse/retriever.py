"""``MemFuseRetriever``: LangChain retriever over a user's memfuse memory (the QueryBuffer)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_memfuse._engine import ConfigLike, Connection, ServiceLike, connect
from langchain_memfuse._store_legacy import KIND_KEY, NAMESPACE
from memfuse_memory.errors import InvalidInputError, InvalidQueryError

TimeBound = datetime | str | float | None

#: Search settings that ``invoke(query, **overrides)`` may change for one call.
_OVERRIDABLE = ("k", "session_id", "agent_id", "sort_by", "order", "metadata_filter", "since", "until")


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise InvalidQueryError(f"k must be a positive integer, got {k!r}")
    return k


def to_document(result: dict[str, Any]) -> Document:
    """One engine query result as a ``Document``: the message text, with score and provenance."""
    return Document(
        id=result["id"],
        page_content=result["content"],
        metadata={
            "id": result["id"],
            "score": result["score"],
            "role": result["role"],
            "name": result["name"],
            "session_id": result["session_id"],
            "user_id": result["user_id"],
            "agent_id": result["agent_id"],
            "round_id": result["round_id"],
            "message_ids": result["message_ids"],
            "created_at": result["created_at"],
            "source": result["source"],
            "retrieval": result["retrieval"],
            "message_metadata": result["metadata"],
        },
    )


def to_documents(results: list[dict[str, Any]]) -> list[Document]:
    """The results as ``Document``s, leaving out the namespace catalog of a not yet migrated ``MemFuseStore``."""
    return [to_document(result) for result in results if result["metadata"].get(KIND_KEY) != NAMESPACE]


class MemFuseRetriever(BaseRetriever):
    """Retrieve the messages of a user most relevant to a query, from every memfuse source.

    A keyword ranking (BM25 over every acknowledged message, the RoundBuffer's included) and a
    vector ranking (MiniLM: the HybridBuffer and storage) are fused, so a message added a moment
    ago is found by keyword before it is embedded.
    ``invoke(query, k=2)`` (or any other field name) overrides a setting for one call.

    Example:
        .. code-block:: python

            from langchain_memfuse import MemFuseRetriever

            retriever = MemFuseRetriever(user_id="alice", k=3, data_dir="memfuse_data")
            docs = retriever.invoke("what is my cat called?")
            print(docs[0].page_content, docs[0].metadata["session_id"])
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = Field(4, description="Documents to return (the engine returns at most query.max_size, 15).")
    user_id: str = Field("default", description="Whose memory to search; other users are never visible.")
    session_id: str | None = Field(None, description="Only this session; None searches all of the user's sessions.")
    agent_id: str | None = Field(None, description="Only messages of this agent; None means any.")
    sort_by: Literal["score", "timestamp"] | None = Field(None, description="Sort key; None: the config default.")
    order: Literal["asc", "desc"] | None = Field(None, description="Sort order; None: the config default.")
    metadata_filter: dict[str, Any] | None = Field(
        None, description="Equality on top-level message metadata keys, e.g. {'lc_type': 'human'}."
    )
    since: TimeBound = Field(None, description="Only messages created at or after this time.")
    until: TimeBound = Field(None, description="Only messages created at or before this time.")

    _services: Connection = PrivateAttr()

    def __init__(
        self,
        *,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
        **fields: Any,
    ) -> None:
        """Build the retriever on ``service``, or on the shared engine of ``config``/``data_dir``."""
        _check_k(fields.get("k", 4))
        super().__init__(**fields)
        self._services = connect(service, config, data_dir)

    def _arguments(self, query: str, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(_OVERRIDABLE))
        if unknown:
            raise InvalidInputError(f"unknown retriever argument(s) {unknown}; accepted: {list(_OVERRIDABLE)}")
        settings = {name: getattr(self, name) for name in _OVERRIDABLE}
        settings.update(overrides)
        return {
            "query": query,
            "top_k": _check_k(settings.pop("k")),
            "user_id": self.user_id,
            **settings,
        }

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        reply = self._services.sync.query(**self._arguments(query, kwargs))
        return to_documents(reply["data"]["results"])

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        arguments = self._arguments(query, kwargs)
        reply = await self._services.aio.query(arguments.pop("query"), arguments.pop("top_k"), **arguments)
        return to_documents(reply["data"]["results"])
