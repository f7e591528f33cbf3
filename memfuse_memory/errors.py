"""Every error memfuse-memory raises, rooted in one class so callers can catch them all.

::

    MemFuseError
     ├── ConfigError                  a config file, key or value is invalid
     ├── InvalidInputError            a call's arguments are rejected; nothing was written
     │    ├── InvalidMessageError     a message (role, content, id, metadata, ...) is malformed
     │    ├── InvalidScopeError       a user, agent or session id is malformed
     │    ├── InvalidQueryError       query text, top_k, sort, filter or time range is malformed
     │    └── DuplicateMessageError   a message or round id is already stored for this user
     ├── ServiceClosedError           the service was closed (or never started)
     ├── EmbeddingError               the embedding model failed (retried, never faked)
     └── StorageError                 a store failed
          ├── StorageUnavailableError the circuit breaker is open or retries are exhausted
          ├── WriteRejectedError      a store refused a write for good (retrying cannot help)
          ├── FlushTimeoutError       flush_all did not finish within its timeout
          └── DataDirError            the data directory is a file or cannot be created

Each error is raised ``from`` its cause, so the original exception stays on ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataDirError",
    "DuplicateMessageError",
    "EmbeddingError",
    "FlushTimeoutError",
    "InvalidInputError",
    "InvalidMessageError",
    "InvalidQueryError",
    "InvalidScopeError",
    "MemFuseError",
    "ServiceClosedError",
    "StorageError",
    "StorageUnavailableError",
    "WriteRejectedError",
]


class MemFuseError(Exception):
    """Base class of every error raised by memfuse-memory."""


class ConfigError(MemFuseError):
    """A configuration file, key or value is invalid."""


class InvalidInputError(MemFuseError, ValueError):
    """A call's arguments were rejected before anything was written."""


class InvalidMessageError(InvalidInputError):
    """A message is malformed: role, content, id, name, created_at or metadata."""


class InvalidScopeError(InvalidInputError):
    """A user, agent or session id is empty, too long or holds forbidden characters."""


class InvalidQueryError(InvalidInputError):
    """Query text, top_k, sort order, metadata filter or time range is malformed."""


class DuplicateMessageError(InvalidInputError):
    """A message or round id given by the caller is already stored for the same user (ids are
    unique per user; another user's ids are never a conflict, nor named)."""


class ServiceClosedError(MemFuseError, RuntimeError):
    """The service is closed (or was never started); open a new one."""


class EmbeddingError(MemFuseError):
    """The embedding model failed; the chunks stay pending and are retried."""


class StorageError(MemFuseError):
    """A storage backend (vector store, message store) failed."""


class StorageUnavailableError(StorageError):
    """Storage is failing: retries are exhausted or the circuit breaker is open."""


class FlushTimeoutError(StorageError, TimeoutError):
    """flush_all did not finish within its timeout; the data stays pending, nothing is lost."""


class WriteRejectedError(StorageError):
    """A store refused a write for good (invalid data, not an outage): retrying cannot help."""


class DataDirError(StorageError):
    """The data directory is a file, or cannot be created or opened (the message names the path)."""
