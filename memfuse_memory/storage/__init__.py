"""Durable storage: the SQLite message store (source of truth, FTS5 keywords) and vector stores."""

from memfuse_memory.storage.message_store import MessageStore
from memfuse_memory.storage.vector_store import ChromaVectorStore, VectorHit, VectorItem, VectorStore

__all__ = ["ChromaVectorStore", "MessageStore", "VectorHit", "VectorItem", "VectorStore"]
