"""LangChain and LangGraph adapters for memfuse-memory.

- :class:`MemFuseChatMessageHistory`: a ``BaseChatMessageHistory`` over one session.
- :class:`MemFuseRetriever`: a ``BaseRetriever`` over a user's memory (fused keyword + vector search).
- :class:`MemFuseStore`: a LangGraph ``BaseStore`` for long-term memory.
- :class:`MemFuseMemoryMiddleware`: memory for LangChain 1.x ``create_agent`` agents (recall + record).

Adapters built on the same ``data_dir`` or config in one process share one engine.
"""

from langchain_memfuse.chat_history import MemFuseChatMessageHistory
from langchain_memfuse.middleware import MemFuseMemoryMiddleware
from langchain_memfuse.retriever import MemFuseRetriever
from langchain_memfuse.store import MemFuseStore

__all__ = ["MemFuseChatMessageHistory", "MemFuseMemoryMiddleware", "MemFuseRetriever", "MemFuseStore"]
