-- The SQLite message store's DDL as schema version 1 executed it (ids unique across all users),
-- verbatim, to build old stores for the migration test.
CREATE TABLE IF NOT EXISTS rounds (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL,
    agent_id   TEXT,
    session_id TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    stored     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rounds_pending ON rounds (seq) WHERE stored = 0;
CREATE INDEX IF NOT EXISTS rounds_scope ON rounds (user_id, session_id);
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    round_seq  INTEGER NOT NULL REFERENCES rounds (seq) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    user_token TEXT    NOT NULL,
    agent_id   TEXT,
    session_id TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    name       TEXT,
    created_us INTEGER NOT NULL,
    metadata   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_session ON messages (user_id, session_id, seq);
CREATE INDEX IF NOT EXISTS messages_round ON messages (round_seq);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5 (
    content, user_token,
    content = 'messages', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content, user_token) VALUES (new.seq, new.content, new.user_token);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, user_token)
    VALUES ('delete', old.seq, old.content, old.user_token);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, user_token)
    VALUES ('delete', old.seq, old.content, old.user_token);
    INSERT INTO messages_fts (rowid, content, user_token) VALUES (new.seq, new.content, new.user_token);
END;
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
CREATE TRIGGER IF NOT EXISTS rounds_version_stored AFTER UPDATE OF stored ON rounds
WHEN new.stored <> old.stored BEGIN
    INSERT INTO user_versions (user_id, version) VALUES (new.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
END;
