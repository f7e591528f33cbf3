"""Durable storage: the message-store protocol (``base``), its SQLite (``sqlite``, the embedded
default) and PostgreSQL (``postgres``) implementations, the keyword index both feed
(``keyword_index``), the key-value table (``kv_*``) and the vector stores (``vector_store``)."""

from memfuse_memory.storage.base import MessageStoreProtocol
from memfuse_memory.storage.sqlite import MessageStore
from memfuse_memory.storage.vector_store import ChromaVectorStore, VectorHit, VectorItem, VectorStore

__all__ = ["ChromaVectorStore", "MessageStore", "MessageStoreProtocol", "VectorHit", "VectorItem", "VectorStore"]
