"""The PostgreSQL message store: the three sides together."""

from __future__ import annotations

from memfuse_memory.storage.postgres.keywords import PgKeywords
from memfuse_memory.storage.postgres.reads import PgReads
from memfuse_memory.storage.postgres.writes import PgWrites


class PostgresMessageStore(PgWrites, PgReads, PgKeywords):
    """The :class:`~memfuse_memory.storage.base.MessageStoreProtocol` on one PostgreSQL schema."""
