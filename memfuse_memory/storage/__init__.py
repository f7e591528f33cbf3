"""Durable storage: the message-store protocol (``base``) and its SQLite implementation
(``sqlite``: source of truth, FTS5 keywords), and the vector stores (``vector_store``)."""

from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.sqlite import MessageStore
from memfuse_memory.storage.vector_store import ChromaVectorStore, VectorHit, VectorItem, VectorStore

__all__ = ["ChromaVectorStore", "MessageStore", "MessageStoreProtocol", "VectorHit", "VectorItem", "VectorStore"]
