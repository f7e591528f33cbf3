"""The key-value tables (SQLite DDL, idempotent): items, the per-namespace item counts that list
namespaces, and a small meta table (migration markers). Plain SQL, so another backend can hold
the same tables."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv_items (
    user_id     TEXT    NOT NULL,
    agent_id    TEXT    NOT NULL DEFAULT '',
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL,
    expires_us  INTEGER,
    ttl_minutes REAL,
    vectors     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, agent_id, namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_items_expiry ON kv_items (expires_us) WHERE expires_us IS NOT NULL;
CREATE INDEX IF NOT EXISTS kv_items_recent ON kv_items (user_id, agent_id, updated_us);
CREATE TABLE IF NOT EXISTS kv_namespaces (
    user_id   TEXT    NOT NULL,
    agent_id  TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    items     INTEGER NOT NULL,
    PRIMARY KEY (user_id, agent_id, namespace)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS kv_items_count_insert AFTER INSERT ON kv_items BEGIN
    INSERT INTO kv_namespaces (user_id, agent_id, namespace, items)
    VALUES (new.user_id, new.agent_id, new.namespace, 1)
    ON CONFLICT (user_id, agent_id, namespace) DO UPDATE SET items = items + 1;
END;
CREATE TRIGGER IF NOT EXISTS kv_items_count_delete AFTER DELETE ON kv_items BEGIN
    UPDATE kv_namespaces SET items = items - 1
    WHERE user_id = old.user_id AND agent_id = old.agent_id AND namespace = old.namespace;
    DELETE FROM kv_namespaces
    WHERE user_id = old.user_id AND agent_id = old.agent_id AND namespace = old.namespace AND items <= 0;
END;
CREATE TABLE IF NOT EXISTS kv_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
