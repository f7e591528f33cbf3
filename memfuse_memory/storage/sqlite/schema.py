"""The SQLite message store's schema and row mapping: tables, version and rewrite triggers.

Round and message ids are unique per user (the keys are ``(user_id, id)``); schema version 1 had
them unique across all users, and :mod:`.migrations` rebuilds such a store on open. Schema 2 had
an FTS5 keyword index; keywords are now indexed in memory (:mod:`memfuse_memory.storage.keyword_index`)
from ``messages`` and ``user_rewrites`` (and snapshotted in ``keyword_snapshots``, dropped by
triggers with every rewrite), so opening such a store drops the FTS5 table. The
``user_token`` column is what that index matched users by; it is still filled.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from memfuse_memory.models import Scope, StoredMessage, from_micros, to_micros

SCHEMA_VERSION = 3  # meta 'schema_version'; 2: ids unique per user; 3: FTS5 index dropped, rewrite counts

ROUNDS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    agent_id   TEXT,
    session_id TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    stored     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, id)
);"""
MESSAGES_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL,
    round_seq  INTEGER NOT NULL REFERENCES rounds (seq) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    user_token TEXT    NOT NULL,
    agent_id   TEXT,
    session_id TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    name       TEXT,
    created_us INTEGER NOT NULL,
    metadata   TEXT    NOT NULL,
    UNIQUE (user_id, id)
);"""
ROUND_FIELDS = "seq, id, user_id, agent_id, session_id, created_us, stored"
MESSAGE_FIELDS = (
    "seq, id, round_seq, user_id, user_token, agent_id, session_id, role, content, name, created_us, metadata"
)

SCHEMA = (
    ROUNDS_TABLE.format(name="rounds")
    + """
CREATE INDEX IF NOT EXISTS rounds_pending ON rounds (seq) WHERE stored = 0;
CREATE INDEX IF NOT EXISTS rounds_scope ON rounds (user_id, session_id);
"""
    + MESSAGES_TABLE.format(name="messages")
    + """
CREATE INDEX IF NOT EXISTS messages_session ON messages (user_id, session_id, seq);
CREATE INDEX IF NOT EXISTS messages_round ON messages (round_seq);
CREATE INDEX IF NOT EXISTS messages_user_seq ON messages (user_id, seq);
DROP TRIGGER IF EXISTS messages_fts_insert;
DROP TRIGGER IF EXISTS messages_fts_delete;
DROP TRIGGER IF EXISTS messages_fts_update;
DROP TABLE IF EXISTS messages_fts;
CREATE TRIGGER IF NOT EXISTS messages_version_update AFTER UPDATE OF role, content, name, metadata ON messages BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_versions (
    user_id TEXT    PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS messages_version_insert AFTER INSERT ON messages BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER IF NOT EXISTS messages_version_delete AFTER DELETE ON messages BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (old.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
CREATE TABLE IF NOT EXISTS user_rewrites (
    user_id  TEXT    PRIMARY KEY,
    rewrites INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS messages_rewrite_delete AFTER DELETE ON messages BEGIN
    INSERT INTO user_rewrites (user_id, rewrites) VALUES (old.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET rewrites = rewrites + 1;
END;
CREATE TRIGGER IF NOT EXISTS messages_rewrite_update
AFTER UPDATE OF content, session_id, agent_id, created_us ON messages BEGIN
    INSERT INTO user_rewrites (user_id, rewrites) VALUES (old.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET rewrites = rewrites + 1;
END;
CREATE TABLE IF NOT EXISTS keyword_snapshots (
    user_id  TEXT    PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    rewrites INTEGER NOT NULL,
    data     BLOB    NOT NULL
);
CREATE TRIGGER IF NOT EXISTS user_rewrites_drop_snapshot AFTER UPDATE ON user_rewrites BEGIN
    DELETE FROM keyword_snapshots WHERE user_id = new.user_id;
END;
CREATE TRIGGER IF NOT EXISTS user_rewrites_drop_first_snapshot AFTER INSERT ON user_rewrites BEGIN
    DELETE FROM keyword_snapshots WHERE user_id = new.user_id;
END;
CREATE TRIGGER IF NOT EXISTS rounds_version_stored AFTER UPDATE OF stored ON rounds
WHEN new.stored <> old.stored BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
"""
)

FILE_NAME = "messages.sqlite3"
MESSAGE_COLUMNS = (
    "m.seq, m.id, m.role, m.content, m.name, m.created_us, m.metadata, m.user_id, m.agent_id, m.session_id, r.id"
)


def user_token(user_id: str) -> str:
    """An opaque word standing for a user inside the FTS index, so user scoping is an index lookup."""
    return "u" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:24]


def to_message(row: sqlite3.Row | tuple[Any, ...]) -> StoredMessage:
    """A stored message from a row of :data:`MESSAGE_COLUMNS`."""
    seq, mid, role, content, name, created_us, metadata, user_id, agent_id, session_id, round_id = row
    return StoredMessage(
        id=mid,
        role=role,
        content=content,
        name=name,
        created_at=from_micros(created_us),
        metadata=json.loads(metadata),
        scope=Scope(user_id=user_id, session_id=session_id, agent_id=agent_id),
        round_id=round_id,
        seq=seq,
    )


def message_row(message: StoredMessage, round_seq: int, scope: Scope, token: str) -> tuple[Any, ...]:
    """The values of a ``messages`` insert."""
    return (
        message.id,
        round_seq,
        scope.user_id,
        token,
        scope.agent_id,
        scope.session_id,
        message.role,
        message.content,
        message.name,
        to_micros(message.created_at),
        json.dumps(message.metadata, ensure_ascii=False),
    )
