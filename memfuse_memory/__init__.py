"""memfuse-memory: durable, buffered conversation memory for LangChain and LlamaIndex agents.

``BufferService`` (async) and ``BlockingBufferService`` (sync) share one engine:
WriteBuffer -> RoundBuffer -> HybridBuffer -> MemoryService (SQLite + Chroma), read back
through the QueryBuffer.
"""

from memfuse_memory.blocking import BlockingBufferService
from memfuse_memory.config import MemFuseConfig, load_config
from memfuse_memory.errors import (
    ConfigError,
    DuplicateMessageError,
    EmbeddingError,
    FlushTimeoutError,
    InvalidInputError,
    InvalidMessageError,
    InvalidQueryError,
    InvalidScopeError,
    MemFuseError,
    ServiceClosedError,
    StorageError,
    StorageUnavailableError,
)
from memfuse_memory.service import BufferService

__all__ = [
    "BlockingBufferService",
    "BufferService",
    "ConfigError",
    "DuplicateMessageError",
    "EmbeddingError",
    "FlushTimeoutError",
    "InvalidInputError",
    "InvalidMessageError",
    "InvalidQueryError",
    "InvalidScopeError",
    "MemFuseConfig",
    "MemFuseError",
    "ServiceClosedError",
    "StorageError",
    "StorageUnavailableError",
    "load_config",
]
__version__ = "0.1.0"
