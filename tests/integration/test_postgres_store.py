"""The PostgreSQL message store on a real server: ``mark_stored`` in one statement (rounds deleted
meanwhile are reported, versions bumped), the pool in the stats, the command line reading the
configured PostgreSQL backend (stats, history, query, export, import), and no live engine's rounds
adopted after a server restart freed every owner lock."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from memfuse_memory.bench.postgres_server import LocalPostgres, local_postgres
from memfuse_memory.cli import main
from memfuse_memory.config import MessageStoreConfig
from memfuse_memory.errors import StorageError
from memfuse_memory.models import IdKey, QueryRequest
from memfuse_memory.storage import keyword_index
from memfuse_memory.storage.postgres import PostgresMessageStore
from memfuse_memory.storage.postgres.schema import MIGRATIONS, VALUES_ROUND_LIMIT
from memfuse_memory.storage.postgres.writes import BULK_MESSAGES
from tests.builders import round_of
from tests.integration.message_store_mode import schema_for

SAMPLE = Path(__file__).resolve().parents[2] / "memfuse_memory" / "data" / "sample_conversation.json"


def test_mark_stored_reports_deleted_rounds_and_bumps_versions_once(tmp_path: Path, postgres_dsn: str) -> None:
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema_for(tmp_path))
    store = PostgresMessageStore(settings)
    try:
        kept, gone = round_of("kept", "a note to keep"), round_of("gone", "a note to delete")
        other = round_of("other", "another user's note", user="v")
        store.append_rounds([kept, gone, other])
        before = store.user_version("u"), store.user_version("v")
        store.delete_messages("u", [gone.messages[0].id])
        after_delete = store.user_version("u")
        assert store.mark_stored([kept.key, gone.key, other.key]) == [gone.key]
        assert store.user_version("u") == after_delete + 1 and store.user_version("v") == before[1] + 1
        assert store.counts()["pending_rounds"] == 0
        # marking again finds them stored (not gone) and changes no version
        assert store.mark_stored([kept.key, other.key]) == []
        assert store.user_version("u") == after_delete + 1
        pool = store.backend_stats()["pool"]
        assert pool["size"] >= 1 and pool["in_use"] == 0 and pool["requests"] > 0
    finally:
        store.close()


def run(*argv: str) -> tuple[int, Any]:
    """One command in-process (the real engine), its exit code and its --json output."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json"])
    text = out.getvalue().strip()
    return code, json.loads(text) if text.startswith(("{", "[")) else text


def test_cli_reads_the_configured_postgres_backend(tmp_path: Path, postgres_dsn: str) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "memfuse.yaml"
    store = {"backend": "postgres", "dsn": postgres_dsn, "schema_name": schema_for(tmp_path / "cli")}
    config.write_text(yaml.safe_dump({"storage": {"data_dir": str(data_dir), "message_store": store}}))
    common = ("--config", str(config))

    code, summary = run("ingest", str(SAMPLE), *common)
    assert code == 0 and summary["messages"] == 46
    shared = PostgresMessageStore(MessageStoreConfig(**store))
    try:
        assert shared.counts()["messages"] == 46, "the messages went to PostgreSQL"
    finally:
        shared.close()

    code, stats = run("stats", *common)
    assert code == 0 and stats["storage"]["messages"] == 46
    assert stats["stored"]["message_store"]["backend"] == "postgres"
    assert stats["stored"]["message_store"]["schema"] == store["schema_name"]
    assert stats["stored"]["disk"]["message_store_bytes"] == 0
    assert stats["storage"]["message_store"]["pool"]["max_size"] == 8

    session = summary["sessions"][0]["session_id"]
    code, history = run("history", session, "--user", "demo", *common)
    assert code == 0 and history["messages"] and all(m["session_id"] == session for m in history["messages"])

    code, found = run("query", "greyhound Biscuit", "--user", "demo", "--top-k", "2", *common)
    assert code == 0 and "Biscuit" in found["results"][0]["content"]

    archive = tmp_path / "archive.jsonl"
    code, exported = run("export", "--all-users", "--output", str(archive), *common)
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert code == 0 and exported["messages"] == len(lines) == 46
    assert {line["user_id"] for line in lines} == {"demo"}

    # importing the same archive again finds every id already stored in PostgreSQL
    code, _ = run("import", str(archive), *common)
    assert code != 0
    code, imported = run("import", str(archive), "--skip-existing", *common)
    assert code == 0 and imported["skipped_messages"] == 46


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL of this test alone, which it restarts."""
    with local_postgres() as server:
        yield server


def _retrying(call: Callable[[], Any]) -> Any:
    """``call`` again while pooled connections cut by the restart fail (each is dropped once used)."""
    for _ in range(10):
        try:
            return call()
        except StorageError:
            continue
    return call()


def _until_nonzero(call: Callable[[], int], attempts: int = 50) -> int:
    """``call`` until it returns something other than 0 (at most ``attempts`` times, 0.1 s apart)."""
    for _ in range(attempts - 1):
        found = call()
        if found:
            return found
        time.sleep(0.1)
    return call()


def test_after_a_restart_no_live_engine_takes_another_live_engines_rounds(
    tmp_path: Path, own_postgres: LocalPostgres
) -> None:
    settings = MessageStoreConfig(backend="postgres", dsn=own_postgres.dsn, connect_timeout_seconds=2.0)
    first, second = PostgresMessageStore(settings), PostgresMessageStore(settings)
    try:
        second.append_rounds([round_of(f"r{n}", f"pending note {n}") for n in range(3)])
        own_postgres.stop()
        own_postgres.start()
        # every session lock is gone; the first engine to check finds its own lost, re-locks, claims nothing
        assert _retrying(first.claim_orphans) == 0
        assert _retrying(second.claim_orphans) == 0  # the second takes its lock again
        assert _retrying(first.claim_orphans) == 0, "a live engine's rounds were taken"
        assert _retrying(second.pending_round_ids) == {IdKey("u", f"r{n}") for n in range(3)}
    finally:
        second.close()
    # the second engine is gone now: its rounds are adopted, once (the server frees its lock when the
    # closed connection's backend exits, which it does on its own schedule)
    adopted = _until_nonzero(lambda: _retrying(first.claim_orphans))
    assert adopted == 3
    assert _retrying(first.claim_orphans) == 0
    assert _retrying(first.pending_round_ids) == {IdKey("u", f"r{n}") for n in range(3)}
    first.close()


def test_a_bulk_append_refreshes_the_planner_statistics(tmp_path: Path, postgres_dsn: str) -> None:
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema_for(tmp_path / "bulk"))
    store = PostgresMessageStore(settings)
    try:
        estimate = f"SELECT reltuples FROM pg_class WHERE oid = '{store.s}.messages'::regclass"
        store.append_rounds([round_of(f"small{n}", "a few") for n in range(10)])
        assert store._read(estimate)[0][0] < 0, "a small append leaves the table unanalysed (autovacuum's job)"
        store.append_rounds([round_of(f"bulk{n}", f"bulk note {n}") for n in range(BULK_MESSAGES)])
        assert store._read(estimate)[0][0] == BULK_MESSAGES + 10
    finally:
        store.close()


def test_keyword_indexes_follow_another_engines_adds_deletes_and_edits(tmp_path: Path, postgres_dsn: str) -> None:
    """Two engines on one schema (two hosts): each one's in-memory keyword index catches up with the
    other's adds, and starts over after the other's deletes and edits (counted in ``rewrites``)."""
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema_for(tmp_path / "kw"))
    ours, theirs = PostgresMessageStore(settings), PostgresMessageStore(settings)

    def search(text: str, user: str = "u") -> list[str]:
        query = QueryRequest(text, 10, user, None, None, "score", "desc", None, None, None)
        return sorted(ours.keyword_search(query, 10))

    try:
        ours.append_rounds([round_of("r1", "the violet kayak"), round_of("r2", "a green tandem")])
        assert search("kayak") == ["r1-0"]
        theirs.append_rounds([round_of("r3", "a kayak trip on the river")])
        assert search("kayak") == ["r1-0", "r3-0"], "their add is found at once"
        theirs.delete_messages("u", ["r1-0"])
        assert search("kayak") == ["r3-0"], "their delete is seen"
        edited = theirs.messages_by_id("u", ["r2-0"])["r2-0"]
        assert theirs.message_facts("u", ["r2-0", "r1-0", "nope"]) == {"r2-0": (edited.role, edited.created_at)}
        assert theirs.message_facts("u", []) == {} and theirs.message_facts("other", ["r2-0"]) == {}
        assert theirs.round_message_ids("u", ["r2", "r1", "nope"]) == {"r2": ("r2-0",)}, "r1's one message is gone"
        assert theirs.round_message_ids("u", []) == {} and theirs.round_message_ids("other", ["r2"]) == {}
        theirs.update_messages("u", [dataclasses.replace(edited, content="a red kayak")])
        assert search("kayak") == ["r2-0", "r3-0"] and search("tandem") == [], "their edit is seen"
        theirs.delete_user("u")
        assert search("kayak") == [] and search("kayak", "other") == []
        assert ours.keyword_indexes.stats()["rebuilds"] == 3
        rewrites = ours._read("SELECT rewrites FROM {s}.user_versions WHERE user_id = 'u'")
        assert rewrites == [(3,)]
    finally:
        ours.close()
        theirs.close()


def test_keyword_snapshots_on_postgres(tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host's first search of a user starts from the snapshot another host saved; a delete drops it."""
    monkeypatch.setattr(keyword_index, "SNAPSHOT_MIN_NEW", 10)
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema_for(tmp_path / "snap"))
    query = QueryRequest("kayak 7", 10, "u", None, None, "score", "desc", None, None, None)
    first = PostgresMessageStore(settings)
    first.append_rounds([round_of(f"r{n}", f"violet kayak {n}", f"green tandem {n}") for n in range(20)])
    expected = first.keyword_search(query, 10)
    first.close()  # waits for the snapshot being written
    second = PostgresMessageStore(settings)
    try:
        assert second._read("SELECT count(*) FROM {s}.keyword_snapshots") == [(1,)]
        assert second.keyword_search(query, 10) == expected
        assert second.keyword_indexes.stats()["snapshots_loaded"] == 1
        second.delete_messages("u", ["r3-0"])
        assert second._read("SELECT count(*) FROM {s}.keyword_snapshots") == [(0,)], "dropped with the delete"
        stale = keyword_index.KeywordSnapshot(10**6, 0, b"built before the delete")
        assert not second.save_keyword_snapshot("u", stale)
        assert "r3-0" not in second.keyword_search(query, 10)
    finally:
        second.close()


@pytest.mark.parametrize("size", [1, 2, VALUES_ROUND_LIMIT, VALUES_ROUND_LIMIT + 1, 200])
def test_a_round_of_any_size_is_stored_whole_and_in_order(tmp_path: Path, postgres_dsn: str, size: int) -> None:
    # up to VALUES_ROUND_LIMIT messages a VALUES list is sent, beyond it arrays: both keep the order
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema_for(tmp_path))
    store = PostgresMessageStore(settings)
    try:
        round_ = round_of("big", *(f"message {i} with 'quotes', \\ and ünïcode" for i in range(size)))
        round_.messages[0] = dataclasses.replace(round_.messages[0], name="alice", metadata={"k": [1, "x"]})
        store.append_rounds([round_of("before", "first"), round_])
        stored = store.export(user_id="u")
        assert [m.id for m in stored] == ["before-0"] + [m.id for m in round_.messages]
        assert [m.content for m in stored[1:]] == [m.content for m in round_.messages]
        assert [m.seq for m in stored] == sorted(m.seq for m in stored) and len({m.seq for m in stored}) == size + 1
        assert (stored[1].name, stored[1].metadata) == ("alice", {"k": [1, "x"]})
        assert [m.role for m in stored[1:]] == [m.role for m in round_.messages]
        assert store.rounds_by_id([round_.key])[0].seq == round_.seq > 0
    finally:
        store.close()


def test_migration_drops_the_id_only_indexes(tmp_path: Path, postgres_dsn: str) -> None:
    import psycopg

    schema = schema_for(tmp_path)
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema)
    first = PostgresMessageStore(settings)
    first.close()
    s = first.s
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:  # back to the schema before the migration
        conn.execute(f"CREATE INDEX messages_id ON {s}.messages (id)")
        conn.execute(f"CREATE INDEX rounds_id ON {s}.rounds (id)")
        conn.execute(f"DELETE FROM {s}.schema_version WHERE version = %s", (len(MIGRATIONS),))
        store = PostgresMessageStore(settings)
        try:
            indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))
            names = {row[0] for row in indexes}
            version = conn.execute(f"SELECT max(version) FROM {s}.schema_version").fetchone()
            store.append_rounds([round_of("after", "stored after the migration")])
            assert [m.id for m in store.export(user_id="u")] == ["after-0"]
        finally:
            store.close()
    assert not {"messages_id", "rounds_id"} & names and "messages_user_seq" in names
    assert version == (len(MIGRATIONS),)
