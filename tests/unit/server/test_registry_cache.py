"""The registry's in-memory records: never stale, whether the write came through this registry or through
another connection to the same file (another server process over the data directory)."""

from __future__ import annotations

from pathlib import Path

from memfuse_memory.server.sqlite_registry import SQLiteRegistry


def test_a_write_by_another_process_is_seen_on_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "server.sqlite3"
    first, second = SQLiteRegistry(path), SQLiteRegistry(path)
    try:
        user = first.create_user("alice", None)
        agent = first.create_agent("bot", None, None)
        session = first.create_session(user.id, agent.id, "chat")
        key = first.create_key(user.id, "h" * 64, "mfk_abcd", "k", None, None)
        assert first.key_by_hash("h" * 64) == key and first.session(session.id) == session  # now cached
        assert second.revoke_key(user.id, key.id)
        assert second.delete_session(session.id)
        second.update_agent(agent.id, "renamed", None)
        revoked = first.key_by_hash("h" * 64)
        assert revoked is not None and revoked.revoked_at is not None
        assert first.session(session.id) is None
        renamed = first.agent(agent.id)
        assert renamed is not None and renamed.name == "renamed"
    finally:
        first.close()
        second.close()


def test_a_write_through_the_registry_itself_empties_its_cache(tmp_path: Path) -> None:
    registry = SQLiteRegistry(tmp_path / "server.sqlite3")
    try:
        user = registry.create_user("bob", None)
        assert registry.user(user.id) == user
        registry.update_user(user.id, "robert", None)
        changed = registry.user(user.id)
        assert changed is not None and changed.name == "robert"
        registry.delete_user(user.id)
        assert registry.user(user.id) is None
    finally:
        registry.close()
