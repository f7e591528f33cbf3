"""The PostgreSQL message store's schema, created and migrated by the engine, and row mapping.

Everything lives in one schema (``storage.message_store.schema_name``), so a shared database is not
polluted. ``schema_version`` records the migrations applied; each migration runs in one
transaction under an advisory lock, so engines starting together migrate once. Message and round
ids are unique per user (the primary keys include the user).
"""

from __future__ import annotations

import functools
from typing import Any

from memfuse_memory.models import Round, Scope, StoredMessage, to_micros
from memfuse_memory.storage.postgres.kv_schema import KV_TABLES
from memfuse_memory.storage.sqlite.schema import message_row as sqlite_row
from memfuse_memory.storage.sqlite.schema import to_message

__all__ = [
    "BUMP_REWRITES",
    "BUMP_VERSION",
    "INSERT_MESSAGE",
    "MESSAGE_COLUMNS",
    "MIGRATIONS",
    "insert_round_sql",
    "message_row",
    "round_params",
    "to_message",
]

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
    KV_TABLES,  # the key-value table (LangGraph store items), storage.postgres.kv
    # keywords are indexed in memory from messages (storage.keyword_index): the full-text column
    # goes, the feed reads by (user, seq), and each user counts its deletes and edits
    """
    DROP INDEX IF EXISTS {s}.messages_tsv;
    ALTER TABLE {s}.messages DROP COLUMN IF EXISTS tsv;
    CREATE INDEX messages_user_seq ON {s}.messages (user_id, seq);
    ALTER TABLE {s}.user_versions ADD COLUMN rewrites bigint NOT NULL DEFAULT 0;
    CREATE TABLE {s}.keyword_snapshots (
        user_id  text   PRIMARY KEY,
        last_seq bigint NOT NULL,
        rewrites bigint NOT NULL,
        data     bytea  NOT NULL
    );
    """,
    # ids are unique per user and every lookup names the user: the id-only indexes just slowed adds
    """
    DROP INDEX IF EXISTS {s}.messages_id;
    DROP INDEX IF EXISTS {s}.rounds_id;
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
# One round, its messages and the user's version in one statement (one round trip; in autocommit
# it is its own transaction). Messages are inserted in their order, so their seq follows it, and
# only once the user's version row is locked (``m`` reads ``v``): per user, seq order is commit
# order, which the keyword index's feed relies on. ``{rows}`` is the messages' row source.
_INSERT_ROUND = """
WITH v AS (
    INSERT INTO {s}.user_versions (user_id, version) VALUES (%(user)s, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = {s}.user_versions.version + 1
    RETURNING version
), r AS (
    INSERT INTO {s}.rounds (id, user_id, agent_id, session_id, created_us, owner)
    VALUES (%(id)s, %(user)s, %(agent)s, %(session)s, %(created)s, %(owner)s) RETURNING seq
), m AS (
    INSERT INTO {s}.messages (id, round_seq, user_id, agent_id, session_id, role, content, name, created_us, metadata)
    SELECT x.id, r.seq, %(user)s, %(agent)s, %(session)s, x.role, x.content, x.name, x.created_us, x.metadata
    FROM v, r, {rows} AS x(id, role, content, name, created_us, metadata, ord)
    ORDER BY x.ord
    RETURNING 1
)
SELECT seq FROM r
"""
# Arrays unnested: any number of messages in one statement text.
_UNNEST_ROWS = (
    "unnest(%(ids)s::text[], %(roles)s::text[], %(contents)s::text[], %(names)s::text[], %(times)s::bigint[], "
    "%(metadata)s::text[]) WITH ORDINALITY"
)
_COLUMNS = {"ids": 0, "roles": 5, "contents": 6, "names": 7, "times": 8, "metadata": 9}  # param -> message_row index
VALUES_ROUND_LIMIT = 32
"""Rounds of up to this many messages use a VALUES list instead (one prepared statement per count):
a quarter less server time than unnesting arrays for a two-message round."""


@functools.cache
def insert_round_sql(messages: int) -> str:
    """:data:`_INSERT_ROUND` for a round of ``messages`` messages, ``{s}`` still to be replaced."""
    if messages > VALUES_ROUND_LIMIT:
        return _INSERT_ROUND.replace("{rows}", _UNNEST_ROWS)
    rows = ", ".join(
        f"(%(ids{i})s::text, %(roles{i})s::text, %(contents{i})s::text, %(names{i})s::text, %(times{i})s::bigint, "
        f"%(metadata{i})s::text, {i})"
        for i in range(messages)
    )
    return _INSERT_ROUND.replace("{rows}", f"(VALUES {rows})")


BUMP_VERSION = (
    "INSERT INTO {s}.user_versions (user_id, version) VALUES (%s, 1) "
    "ON CONFLICT (user_id) DO UPDATE SET version = {s}.user_versions.version + 1"
)
# A delete or an edit: the version and the count of rewrites (which rebuilds keyword indexes), and
# the user's keyword index snapshot dropped (no deleted word outlives its message).
BUMP_REWRITES = """
WITH v AS (
    INSERT INTO {s}.user_versions (user_id, version, rewrites) VALUES (%(user)s, 1, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = {s}.user_versions.version + 1,
        rewrites = {s}.user_versions.rewrites + 1
    RETURNING 1
)
DELETE FROM {s}.keyword_snapshots WHERE user_id = %(user)s AND EXISTS (SELECT 1 FROM v)
"""


def round_params(round_: Round, owner: int) -> dict[str, Any]:
    """The parameters of :func:`insert_round_sql` for this round."""
    scope = round_.scope
    rows = [message_row(m, 0, scope) for m in round_.messages]
    params: dict[str, Any] = {
        "id": round_.id,
        "user": scope.user_id,
        "agent": scope.agent_id,
        "session": scope.session_id,
        "created": to_micros(round_.created_at),
        "owner": owner,
    }
    if len(rows) > VALUES_ROUND_LIMIT:
        for name, column in _COLUMNS.items():
            params[name] = [row[column] for row in rows]
        return params
    for i, row in enumerate(rows):
        for name, column in _COLUMNS.items():
            params[f"{name}{i}"] = row[column]
    return params


def message_row(message: StoredMessage, round_seq: int, scope: Scope) -> tuple[Any, ...]:
    """The values of an :data:`INSERT_MESSAGE`: SQLite's row without its FTS user token."""
    row = sqlite_row(message, round_seq, scope, "")
    return row[:3] + row[4:]
