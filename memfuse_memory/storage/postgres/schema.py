"""The PostgreSQL message store's schema, created and migrated by the engine, and row mapping.

Everything lives in one schema (``storage.message_store.schema_name``), so a shared database is not
polluted. ``schema_version`` records the migrations applied; each migration runs in one
transaction under an advisory lock, so engines starting together migrate once. Message and round
ids are unique per user (the primary keys include the user).
"""

from __future__ import annotations

from typing import Any

from memfuse_memory.models import Scope, StoredMessage
from memfuse_memory.storage.sqlite.schema import message_row as sqlite_row
from memfuse_memory.storage.sqlite.schema import to_message

__all__ = ["BUMP_VERSION", "INSERT_MESSAGE", "MESSAGE_COLUMNS", "MIGRATIONS", "message_row", "to_message"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {s}.meta (
        key   text PRIMARY KEY,
        value text NOT NULL
    );
    CREATE TABLE {s}.rounds (
        seq        bigserial UNIQUE,
        user_id    text    NOT NULL,
        id         text    NOT NULL,
        agent_id   text,
        session_id text    NOT NULL,
        created_us bigint  NOT NULL,
        stored     boolean NOT NULL DEFAULT false,
        owner      bigint  NOT NULL,
        PRIMARY KEY (user_id, id)
    );
    CREATE INDEX rounds_pending ON {s}.rounds (owner, seq) WHERE NOT stored;
    CREATE INDEX rounds_scope ON {s}.rounds (user_id, session_id);
    CREATE INDEX rounds_id ON {s}.rounds (id);
    CREATE TABLE {s}.messages (
        seq        bigserial UNIQUE,
        user_id    text   NOT NULL,
        id         text   NOT NULL,
        round_seq  bigint NOT NULL REFERENCES {s}.rounds (seq) ON DELETE CASCADE,
        agent_id   text,
        session_id text   NOT NULL,
        role       text   NOT NULL,
        content    text   NOT NULL,
        name       text,
        created_us bigint NOT NULL,
        metadata   text   NOT NULL,
        tsv        tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
        PRIMARY KEY (user_id, id)
    );
    CREATE INDEX messages_session ON {s}.messages (user_id, session_id, seq);
    CREATE INDEX messages_round ON {s}.messages (round_seq);
    CREATE INDEX messages_id ON {s}.messages (id);
    CREATE INDEX messages_tsv ON {s}.messages USING gin (tsv);
    CREATE TABLE {s}.user_versions (
        user_id text   PRIMARY KEY,
        version bigint NOT NULL
    );
    """,
)

MIGRATION_LOCK = 0x6D656D66  # advisory lock key held while migrating ("memf")

MESSAGE_COLUMNS = (
    "m.seq, m.id, m.role, m.content, m.name, m.created_us, m.metadata, m.user_id, m.agent_id, m.session_id, r.id"
)
INSERT_MESSAGE = (
    "INSERT INTO {s}.messages (id, round_seq, user_id, agent_id, session_id, role, content, name, created_us, "
    "metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
BUMP_VERSION = (
    "INSERT INTO {s}.user_versions (user_id, version) VALUES (%s, 1) "
    "ON CONFLICT (user_id) DO UPDATE SET version = {s}.user_versions.version + 1"
)


def message_row(message: StoredMessage, round_seq: int, scope: Scope) -> tuple[Any, ...]:
    """The values of an :data:`INSERT_MESSAGE`: SQLite's row without its FTS user token."""
    row = sqlite_row(message, round_seq, scope, "")
    return row[:3] + row[4:]
