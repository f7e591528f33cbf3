"""The SQLite message store: WAL, the durable source of truth, and the feed of its keyword index."""

from __future__ import annotations

from memfuse_memory.storage.sqlite.keywords import SqliteKeywords
from memfuse_memory.storage.sqlite.reads import SqliteReads
from memfuse_memory.storage.sqlite.writes import SqliteWrites


class MessageStore(SqliteWrites, SqliteReads, SqliteKeywords):
    """The :class:`~memfuse_memory.storage.base.MessageStoreProtocol` on one SQLite file."""
