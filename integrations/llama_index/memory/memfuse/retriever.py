"""MemFuseRetriever: memfuse-memory as a LlamaIndex retriever, for RAG query pipelines."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llama_index.memory.memfuse.connection import ConfigLike, Connection, ServiceLike
from memfuse_memory.errors import InvalidQueryError

# Result fields an LLM or embedding model should see with the text; the rest stay in metadata only.
_VISIBLE_KEYS = ("role", "created_at", "session_id")


def to_node(result: Mapping[str, Any]) -> NodeWithScore:
    """A query result as a scored TextNode: id = message id, metadata = every other result field."""
    metadata = {key: value for key, value in result.items() if key not in ("content", "score")}
    hidden = [key for key in metadata if key not in _VISIBLE_KEYS]
    node = TextNode(
        id_=str(result["id"]),
        text=str(result["content"]),
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=float(result["score"]))


class MemFuseRetriever(BaseRetriever):
    """Retrieve a user's stored messages most relevant to a query, as ``NodeWithScore``.

    Every source the engine has is searched (keywords over all acknowledged messages, vectors
    in the buffers and in storage) and fused; each node is one message, with the query result's
    fields (session_id, role, created_at, round_id, metadata, retrieval scores...) as metadata.

    Example:
        .. code-block:: python

            retriever = MemFuseRetriever(user_id="alice", top_k=5, data_dir="memfuse_data")
            nodes = retriever.retrieve("what is my cat called?")
    """

    def __init__(
        self,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        agent_id: str | None = None,
        top_k: int = 10,
        sort_by: str | None = None,
        order: str | None = None,
        metadata_filter: dict[str, Any] | None = None,
        since: Any = None,
        until: Any = None,
        service: ServiceLike | None = None,
        config: ConfigLike | None = None,
        data_dir: str | Path | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        """Search ``user_id``'s messages (optionally one session or agent) in the given or shared engine.

        ``sort_by`` / ``order`` / ``metadata_filter`` / ``since`` / ``until`` are passed to the
        engine's query as they are; invalid values raise ``InvalidQueryError`` here, not later.
        """
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self._connection = Connection.open(service, config, data_dir)
        self._connection.check_scope(user_id=user_id, session_id=session_id, agent_id=agent_id)
        self._options: dict[str, Any] = {
            "user_id": user_id,
            "session_id": session_id,
            "agent_id": agent_id,
            "sort_by": sort_by,
            "order": order,
            "metadata_filter": metadata_filter,
            "since": since,
            "until": until,
        }
        self._top_k = top_k
        self._connection.check_query_options(top_k, **self._options)

    @property
    def engine(self) -> ServiceLike:
        """The memfuse engine behind this adapter (wrap it in BufferService for flush_all, stats...)."""
        return self._connection.engine

    @property
    def top_k(self) -> int:
        return self._top_k

    @staticmethod
    def _text(query_bundle: QueryBundle) -> str:
        text = query_bundle.query_str
        if not isinstance(text, str) or not text.strip():
            raise InvalidQueryError("the query must be a non-empty string")
        return text

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        reply = self._connection.sync.query(self._text(query_bundle), self._top_k, **self._options)
        return [to_node(result) for result in reply["data"]["results"]]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        reply = await self._connection.aio.query(self._text(query_bundle), self._top_k, **self._options)
        return [to_node(result) for result in reply["data"]["results"]]
