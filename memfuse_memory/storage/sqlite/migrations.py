"""Create or migrate the SQLite schema on open: one ``BEGIN IMMEDIATE`` transaction, so a crash
leaves the file as it was, and processes opening it together migrate it once.

Version 1 -> 2 (ids unique per user): SQLite cannot change a table's keys in place, so
``rounds`` and ``messages`` are rebuilt with their ``seq`` values kept; the triggers and indexes
dropped with the old tables are created again by :data:`~.schema.SCHEMA`. Version 2 -> 3 is
:data:`~.schema.SCHEMA` alone: it drops the FTS5 index (keywords are indexed in memory now) and
adds the rewrite counts and keyword snapshots.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from memfuse_memory.errors import StorageError
from memfuse_memory.storage.sqlite.schema import (
    MESSAGE_FIELDS,
    MESSAGES_TABLE,
    ROUND_FIELDS,
    ROUNDS_TABLE,
    SCHEMA,
    SCHEMA_VERSION,
)


def statements(script: str) -> Iterator[str]:
    """The complete statements of a script, one by one (``executescript`` would commit first)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise StorageError(f"incomplete schema statement: {pending.strip()[:80]}")


def schema_version(conn: sqlite3.Connection) -> int:
    """The version a store's schema is at: 0 for a new file, 1 for a store from before versions."""
    if not _has_table(conn, "rounds"):
        return 0
    if not _has_table(conn, "meta"):
        return 1
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return 1 if row is None else int(row[0])


def prepare(conn: sqlite3.Connection) -> None:
    """Bring the file to :data:`SCHEMA_VERSION` (creating it when new), all in one transaction.

    Foreign keys are off meanwhile (dropping the old ``rounds`` would otherwise cascade to the
    messages), and checked after a rebuild, before the commit.
    """
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version > SCHEMA_VERSION:
                raise StorageError(f"the message store has schema version {version}; this code knows {SCHEMA_VERSION}")
            if version == 1:
                rebuild_with_user_keys(conn)
                if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise StorageError("the message store's rounds and messages do not match")
            for statement in statements(SCHEMA):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def rebuild_with_user_keys(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: rebuild ``rounds`` and ``messages`` keyed by (user_id, id), seq kept."""
    sequences = conn.execute("SELECT name, seq FROM sqlite_sequence WHERE name IN ('rounds', 'messages')").fetchall()
    conn.execute(ROUNDS_TABLE.format(name="rounds_v2"))
    conn.execute(f"INSERT INTO rounds_v2 ({ROUND_FIELDS}) SELECT {ROUND_FIELDS} FROM rounds")
    conn.execute(MESSAGES_TABLE.format(name="messages_v2"))
    conn.execute(f"INSERT INTO messages_v2 ({MESSAGE_FIELDS}) SELECT {MESSAGE_FIELDS} FROM messages")
    conn.execute("DROP TABLE messages")  # its triggers go with it; no trigger fires, the FTS rows stay
    conn.execute("DROP TABLE rounds")
    conn.execute("ALTER TABLE rounds_v2 RENAME TO rounds")
    conn.execute("ALTER TABLE messages_v2 RENAME TO messages")
    restore_sequences(conn, sequences)


def restore_sequences(conn: sqlite3.Connection, sequences: list[tuple[str, int]]) -> None:
    """Keep AUTOINCREMENT's high-water marks, so a seq is never handed out twice."""
    for name, seq in sequences:
        if conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, name)).rowcount == 0:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None
