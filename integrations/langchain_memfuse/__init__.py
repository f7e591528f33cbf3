"""LangChain and LangGraph adapters for memfuse-memory.

- :class:`MemFuseChatMessageHistory`: a ``BaseChatMessageHistory`` over one session.
- :class:`MemFuseRetriever`: a ``BaseRetriever`` over a user's memory (fused keyword + vector search).
- :class:`MemFuseStore`: a LangGraph ``BaseStore`` for long-term memory.
- :class:`MemFuseMemoryMiddleware`: memory for LangChain 1.x ``create_agent`` agents (recall + record).

Adapters built on the same ``data_dir`` or config in one process share one engine.
The middleware is imported on first use: ``langchain.agents`` adds about a second to start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_memfuse.chat_history import MemFuseChatMessageHistory
from langchain_memfuse.retriever import MemFuseRetriever
from langchain_memfuse.store import AsyncMemFuseStore, MemFuseStore

__all__ = [
    "AsyncMemFuseStore",
    "MemFuseChatMessageHistory",
    "MemFuseMemoryMiddleware",
    "MemFuseRetriever",
    "MemFuseStore",
]

if TYPE_CHECKING:
    from langchain_memfuse.middleware import MemFuseMemoryMiddleware


def __getattr__(name: str) -> Any:
    """Import the agent middleware (and with it ``langchain.agents``) only when it is asked for."""
    if name == "MemFuseMemoryMiddleware":
        from langchain_memfuse.middleware import MemFuseMemoryMiddleware

        return MemFuseMemoryMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
