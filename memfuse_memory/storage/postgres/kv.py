"""The key-value table on PostgreSQL: the PostgreSQL dialect of ``KVStore``.

The tables sit in the message store's schema, created by the engine's migrations (``kv_schema``),
so every host on the database shares the items. Writes take their row locks in address order
(``KVStore.apply``), so concurrent batches never deadlock. The dialect borrows the message
store's connection pool: a put is one transaction on it and returns after its COMMIT
(``synchronous_commit`` as configured for messages).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from memfuse_memory.errors import InvalidInputError, InvalidQueryError, StorageError
from memfuse_memory.storage.kv_dialect import KVCursor
from memfuse_memory.storage.kv_query import filter_json, scalar
from memfuse_memory.storage.postgres.connection import PgConnection, storage_error
from memfuse_memory.storage.postgres.dsn import redact_dsn


class PgFilters:
    """Filter leaves on ``jsonb``: ``#>`` takes the value at a path (a ``text[]``), ``jsonb_typeof`` its kind."""

    def equal(self, column: str, path: list[str], expected: Any, params: list[Any]) -> str:
        if expected is None:
            params.append(path)
            return f"jsonb_typeof({column} #> ?) = 'null'"
        text = filter_json(expected)
        if _has_nul(expected) or not _finite(expected):  # what no stored value holds equals nothing
            return "FALSE"
        params.extend([path, text])  # jsonb equality compares kind and value (1 = 1.0)
        return f"{column} #> ? = CAST(? AS jsonb)"

    def is_object(self, column: str, path: list[str], params: list[Any]) -> str:
        params.append(path)
        return f"jsonb_typeof({column} #> ?) = 'object'"

    def compare(self, column: str, path: list[str], comparison: str, operand: Any, params: list[Any]) -> str:
        if isinstance(operand, str):
            if "\x00" in operand:
                raise InvalidQueryError(f"{comparison} on PostgreSQL needs text without NUL characters")
            params.extend([path, path, operand])
            return (
                f"(CASE WHEN jsonb_typeof({column} #> ?) = 'string' "
                f'THEN ({column} #>> ?) COLLATE "C" {comparison} ? END)'
            )
        if isinstance(operand, float) and math.isnan(operand):  # SQLite and Python: false; PostgreSQL: NaN > all
            return "FALSE"
        params.extend([path, path, scalar(operand)])
        return (
            f"(CASE WHEN jsonb_typeof({column} #> ?) = 'number' THEN CAST({column} #> ? AS numeric) {comparison} ? END)"
        )

    def negate(self, condition: str) -> str:
        return f"NOT COALESCE({condition}, false)"


def _has_nul(value: Any) -> bool:
    """Whether a filter operand holds a NUL character (jsonb text never does)."""
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, list | tuple) and any(_has_nul(item) for item in value)


def _finite(value: Any) -> bool:
    """Whether a filter operand holds no NaN or infinity (stored values never do: JSON has none)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def _sql(db: PgConnection, text: str) -> str:
    return db.sql(text).replace("?", "%s")


def _refused(exc: psycopg.Error) -> InvalidInputError | StorageError:
    """A value PostgreSQL cannot hold (a NUL character, ``\\u0000`` in jsonb) is bad input; the rest is storage."""
    if isinstance(exc, psycopg.DataError):
        return InvalidInputError(f"PostgreSQL refused a value of the key-value store: {redact_dsn(str(exc))}")
    return storage_error("key-value store operation failed", exc)


class _Transaction:
    """``KVStore``'s statements on one pooled connection inside a transaction."""

    def __init__(self, db: PgConnection, conn: psycopg.Connection[Any]) -> None:
        self._db = db
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> KVCursor:
        return self._conn.execute(_sql(self._db, sql), list(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_sql(self._db, sql), [list(row) for row in rows])


class PgKV:
    """The key-value tables in the PostgreSQL message store's schema, on its connection pool."""

    filters = PgFilters()
    value_in = "CAST(? AS jsonb)"
    value_out = "value::text"

    def __init__(self, db: PgConnection) -> None:
        self._db = db
        self.location = f"{redact_dsn(db._dsn)} (schema {db.schema})"

    @contextmanager
    def write(self) -> Iterator[_Transaction]:
        try:
            with self._db._connection() as conn, conn.transaction():
                yield _Transaction(self._db, conn)
        except UnicodeEncodeError as exc:
            raise InvalidQueryError(f"not valid Unicode text in a key-value store write: {exc}") from exc
        except psycopg.Error as exc:
            raise _refused(exc) from exc

    def read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._db._connection() as conn:
                return conn.execute(_sql(self._db, sql), list(args)).fetchall()
        except UnicodeEncodeError as exc:
            raise InvalidQueryError(f"not valid Unicode text in a key-value store read: {exc}") from exc
        except psycopg.Error as exc:
            raise _refused(exc) from exc

    def close(self) -> None:
        """Nothing: the pool is the message store's, closed with it."""
