"""The LangChain adapters' connection to memfuse: the one helper every adapter uses."""

from __future__ import annotations

from memfuse_memory.adapters import ConfigLike, Connection, ServiceLike, connect

__all__ = ["ConfigLike", "Connection", "ServiceLike", "connect"]
