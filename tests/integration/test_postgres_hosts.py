"""Several hosts on one PostgreSQL: two engines with separate data directories and nothing local in
common (one PostgreSQL, one Chroma server); rounds of a dead engine adopted exactly once; and
PostgreSQL stopped and started again under a running engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.bench.postgres_server import LocalPostgres, local_postgres
from memfuse_memory.config import MessageStoreConfig
from memfuse_memory.errors import StorageUnavailableError
from memfuse_memory.models import IdKey
from memfuse_memory.storage.postgres import PostgresMessageStore
from tests.builders import round_of
from tests.integration.conftest import ChromaServer
from tests.integration.message_store_mode import schema_for


def host(data_dir: Path, dsn: str, chroma: ChromaServer, **extra: Any) -> BlockingBufferService:
    """One replica: its own data dir, the shared PostgreSQL schema and the shared Chroma server."""
    config = {
        "storage": {
            "message_store": {"backend": "postgres", "dsn": dsn, "schema_name": schema_for(data_dir.parent)},
            "vector_store": {"mode": "server", "host": chroma.host, "port": chroma.port},
        },
        **extra,
    }
    return BlockingBufferService.from_config(config=config, data_dir=data_dir)


def ids(reply: dict[str, Any]) -> list[str]:
    return [r["id"] for r in reply["data"]["results"]]


def test_two_hosts_share_writes_searches_deletes_and_fresh_caches(
    tmp_path: Path, postgres_dsn: str, chroma_server: ChromaServer
) -> None:
    big = {"buffer": {"round_buffer": {"max_size": 50, "max_tokens": 100000}}}
    with (
        host(tmp_path / "a", postgres_dsn, chroma_server, **big) as a,
        host(tmp_path / "b", postgres_dsn, chroma_server) as b,
    ):
        first = a.add(
            [{"role": "user", "content": "My sister Ingrid lives in Trondheim"}], session_id="s", user_id="u"
        )["data"]["message_ids"][0]
        # read-your-writes on the other host, through the shared keyword index (still only in A's buffer)
        assert ids(b.query("Where does Ingrid live?", user_id="u")) == [first]
        cached = b.query("Where does Ingrid live?", user_id="u")
        assert cached["data"]["cached"] is True
        second = a.add(
            [{"role": "user", "content": "Ingrid also has a boat on the fjord"}], session_id="s", user_id="u"
        )["data"]["message_ids"][0]
        fresh = b.query("Where does Ingrid live?", user_id="u")
        assert fresh["data"]["cached"] is False, "B's cache missed A's write"
        assert set(ids(fresh)) == {first, second}
        # by meaning, once A has indexed them in the shared Chroma server
        a.flush_all()
        by_meaning = b.query("which Norwegian city is her home", user_id="u")["data"]["results"]
        assert any(r["id"] == first and "vector" in r["retrieval"]["methods"] for r in by_meaning)
        # A caches an answer, B deletes: both hosts' answers lose the message, caches included
        assert first in ids(a.query("Where does Ingrid live?", user_id="u"))
        assert b.delete_messages([first], user_id="u")["data"]["deleted_messages"] == 1
        for replica in (a, b):
            after = replica.query("Where does Ingrid live?", user_id="u")
            assert after["data"]["cached"] is False
            assert first not in ids(after)
            assert second in ids(after)
        # a message B deletes while it sits only in A's buffers: A re-checks the store when it hydrates
        third = a.add([{"role": "user", "content": "Ingrid collects antique compasses"}], session_id="s2", user_id="u")[
            "data"
        ]["message_ids"][0]
        assert third in ids(a.query("antique compasses", user_id="u"))
        assert b.delete_session("s2", user_id="u")["data"]["deleted_messages"] == 1
        assert third not in ids(a.query("antique compasses", user_id="u"))
        a.flush_all()
        assert third not in ids(b.query("antique compasses", user_id="u"))
        assert [m["id"] for m in b.export_messages(user_id="u")["data"]["messages"]] == [second]


def test_rounds_of_a_dead_engine_are_adopted_exactly_once(tmp_path: Path, postgres_dsn: str) -> None:
    settings = MessageStoreConfig(backend="postgres", dsn=postgres_dsn, schema_name=schema_for(tmp_path))
    dead = PostgresMessageStore(settings)
    dead.append_rounds([round_of(f"r{n}", f"note {n}", user="orphan") for n in range(40)])
    survivors = [PostgresMessageStore(settings) for _ in range(3)]
    try:
        assert all(not s.pending_round_ids() for s in survivors), "rounds of a live engine were taken"
        dead._owner_conn.close()  # the engine dies: its session, and with it its owner lock, ends
        claimed: list[set[IdKey]] = [set() for _ in survivors]
        start = threading.Barrier(len(survivors))

        def claim(i: int) -> None:
            start.wait()
            for _ in range(5):
                claimed[i] |= survivors[i].pending_round_ids()

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(survivors))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = set().union(*claimed)
        assert everything == {IdKey("orphan", f"r{n}") for n in range(40)}
        assert sum(len(c) for c in claimed) == 40, "a round was adopted by two engines"
    finally:
        for store in [dead, *survivors]:
            store.close()


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL of this test alone, which it stops and starts."""
    with local_postgres() as server:
        yield server


def test_postgres_outage_fails_adds_fast_and_the_engine_reconnects(tmp_path: Path, own_postgres: LocalPostgres) -> None:
    config = {
        "storage": {"message_store": {"backend": "postgres", "dsn": own_postgres.dsn, "connect_timeout_seconds": 1.0}}
    }
    acknowledged: list[str] = []
    with BlockingBufferService.from_config(config=config, data_dir=tmp_path / "data") as memory:
        for n in range(5):
            reply = memory.add([{"role": "user", "content": f"before the outage, fact {n} about kayaks"}], user_id="u")
            acknowledged += reply["data"]["message_ids"]
        memory.flush_all()
        assert len(ids(memory.query("kayaks", user_id="u"))) == 5
        own_postgres.stop()
        for n in range(3):
            with pytest.raises(StorageUnavailableError):
                memory.add([{"role": "user", "content": f"during the outage {n}"}], user_id="u")
        degraded = memory.query("kayaks", user_id="u")["data"]
        assert degraded["degraded"] is True and degraded["cached"] is False
        assert any("message store" in error or "keyword store" in error for error in degraded["errors"])
        lost = memory.get_stats()
        assert lost["write_buffer"]["component_health"]["message_store"].startswith("unreachable")
        pool = lost["storage"]["message_store"]["pool"]
        assert pool["connection_errors"] + pool["connections_lost"] + pool["request_errors"] > 0
        assert "password" not in str(lost["storage"]["message_store"]["dsn"])
        own_postgres.start()
        # no restart of the engine: its pool reconnects by itself
        reply = memory.add([{"role": "user", "content": "after the outage, kayaks again"}], user_id="u")
        acknowledged += reply["data"]["message_ids"]
        memory.flush_all()
        stored = [m["id"] for m in memory.export_messages(user_id="u")["data"]["messages"]]
        assert stored == acknowledged, "an acknowledged message was lost, or a failed add was stored"
        found = memory.query("kayaks", top_k=10, user_id="u")
        assert found["data"]["degraded"] is False
        assert set(ids(found)) == set(acknowledged)
        back = memory.get_stats()
        assert back["storage"]["pending_rounds"] == 0
        assert back["write_buffer"]["component_health"]["message_store"] == "ok"
        assert back["storage"]["message_store"]["pool"]["in_use"] == 0
