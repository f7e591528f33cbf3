"""The message store's historical import path: the SQLite implementation lives in
:mod:`memfuse_memory.storage.sqlite`, the protocol the engine depends on in :mod:`.base`."""

from memfuse_memory.storage.sqlite import FILE_NAME, MessageStore, user_token

__all__ = ["FILE_NAME", "MessageStore", "user_token"]
