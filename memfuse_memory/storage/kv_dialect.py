"""What the key-value table needs of a database: one small protocol, a dialect per backend.

:class:`~memfuse_memory.storage.kv_store.KVStore` holds every statement and behaviour of the
table, written once in SQL both SQLite and PostgreSQL run (``?`` placeholders, ``{s}`` for the
schema, ``INSERT ... ON CONFLICT``, ``RETURNING``). A dialect runs that SQL on its database:
``storage.sqlite.kv`` on the message store's SQLite file, ``storage.postgres.kv`` on the
PostgreSQL message store's pool and schema. It also names the few expressions that differ (how
a JSON value goes in and comes out) and supplies the filter leaves (JSON1 or ``jsonb``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from memfuse_memory.storage.kv_query import FilterSQL


class KVCursor(Protocol):
    """The result of one statement."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class KVTransaction(Protocol):
    """Statements inside one write transaction (committed when the dialect's ``write`` block ends)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> KVCursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class KVDialect(Protocol):
    """One database holding the key-value tables (``kv_items``, ``kv_namespaces``, ``kv_meta``)."""

    location: str  # where the table lives, for error messages (a path, or a redacted DSN and schema)
    filters: FilterSQL
    value_in: str  # the placeholder of a JSON value written (``?`` or ``CAST(? AS jsonb)``)
    value_out: str  # the value column read back as JSON text

    def read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of one query; a database error is a ``StorageError``, bad text an ``InvalidQueryError``."""
        ...

    def write(self) -> AbstractContextManager[KVTransaction]:
        """One write transaction, committed (durably, as the message store commits) when the block ends."""
        ...

    def close(self) -> None:
        """Release what this dialect opened (a dialect on a shared pool closes nothing)."""
        ...
