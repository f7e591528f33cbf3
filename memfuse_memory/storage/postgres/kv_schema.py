"""The key-value tables in the PostgreSQL schema: one migration of the engine's (``schema.MIGRATIONS``).

Items (``jsonb`` values, text in the "C" collation so namespace prefixes are byte-order ranges on
the primary key and results sort as on SQLite), the per-namespace item counts that list
namespaces (kept by a trigger in the same transaction), and a meta table of migration markers.
"""

KV_TABLES = """
CREATE TABLE {s}.kv_items (
    user_id     text COLLATE "C" NOT NULL,
    agent_id    text COLLATE "C" NOT NULL DEFAULT '',
    namespace   text COLLATE "C" NOT NULL,
    key         text COLLATE "C" NOT NULL,
    value       jsonb  NOT NULL,
    created_us  bigint NOT NULL,
    updated_us  bigint NOT NULL,
    expires_us  bigint,
    ttl_minutes double precision,
    vectors     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, agent_id, namespace, key)
);
CREATE INDEX kv_items_expiry ON {s}.kv_items (expires_us) WHERE expires_us IS NOT NULL;
CREATE INDEX kv_items_recent ON {s}.kv_items (user_id, agent_id, updated_us);
CREATE TABLE {s}.kv_namespaces (
    user_id   text COLLATE "C" NOT NULL,
    agent_id  text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    items     bigint NOT NULL,
    PRIMARY KEY (user_id, agent_id, namespace)
);
CREATE FUNCTION {s}.kv_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {s}.kv_namespaces AS n (user_id, agent_id, namespace, items)
        VALUES (NEW.user_id, NEW.agent_id, NEW.namespace, 1)
        ON CONFLICT (user_id, agent_id, namespace) DO UPDATE SET items = n.items + 1;
        RETURN NEW;
    END IF;
    DELETE FROM {s}.kv_namespaces
    WHERE user_id = OLD.user_id AND agent_id = OLD.agent_id AND namespace = OLD.namespace AND items <= 1;
    IF NOT FOUND THEN
        UPDATE {s}.kv_namespaces SET items = items - 1
        WHERE user_id = OLD.user_id AND agent_id = OLD.agent_id AND namespace = OLD.namespace;
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER kv_items_count AFTER INSERT OR DELETE ON {s}.kv_items
    FOR EACH ROW EXECUTE FUNCTION {s}.kv_count();
CREATE TABLE {s}.kv_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
"""
