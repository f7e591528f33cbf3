"""The LangGraph store on PostgreSQL: two hosts (separate data dirs, one PostgreSQL, one Chroma
server) share items, vectors and TTLs; items a data dir kept in SQLite move into PostgreSQL once."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from langchain_memfuse import MemFuseStore
from memfuse_memory import BlockingBufferService
from memfuse_memory.config import VectorStoreConfig
from memfuse_memory.storage.kv_migrate import marker
from memfuse_memory.storage.kv_store import KVRow, KVStore
from memfuse_memory.storage.kv_vectors import ItemVector
from memfuse_memory.storage.sqlite import FILE_NAME
from memfuse_memory.storage.sqlite.kv import SqliteKV
from memfuse_memory.storage.vector_store import ITEMS, ChromaVectorStore
from tests.integration.conftest import ChromaServer
from tests.integration.message_store_mode import schema_for
from tests.integration.test_postgres_hosts import host


def test_two_hosts_share_items_vectors_and_deletes(
    tmp_path: Path, postgres_dsn: str, chroma_server: ChromaServer
) -> None:
    with host(tmp_path / "a", postgres_dsn, chroma_server) as a, host(tmp_path / "b", postgres_dsn, chroma_server) as b:
        on_a = MemFuseStore(user_id="u", service=a, index_fields=["text"])
        on_b = MemFuseStore(user_id="u", service=b, index_fields=["text"])
        on_a.put(("memories", "u"), "pet", {"text": "Alice has a cat named Miso", "kind": "pet", "age": 3})
        on_a.put(("memories", "u"), "job", {"text": "Alice works as a glassblower", "kind": "job", "age": 9})
        on_a.put(("notes",), "tmp", {"text": "a note that expires"}, index=False, ttl=10)

        got = on_b.get(("memories", "u"), "pet")
        assert got is not None and got.value["text"] == "Alice has a cat named Miso"
        assert [i.key for i in on_b.search(("memories",), filter={"age": {"$gt": 5}})] == ["job"]
        assert on_b.list_namespaces() == [("memories", "u"), ("notes",)]
        ranked = on_b.search(("memories",), query="what animal does she keep?", limit=1)
        assert [i.key for i in ranked] == ["pet"] and ranked[0].score is not None and ranked[0].score > 0.3
        timed = on_b.get(("notes",), "tmp")
        assert timed is not None and timed.value == {"text": "a note that expires"}

        on_b.put(("memories", "u"), "pet", {"text": "Alice has a dog named Pixel", "kind": "pet", "age": 4})
        replaced = on_a.get(("memories", "u"), "pet")
        assert replaced is not None and replaced.value["text"] == "Alice has a dog named Pixel"
        assert replaced.created_at == got.created_at and replaced.updated_at > got.updated_at
        assert [i.key for i in on_a.search(("memories",), query="which dog", limit=1)] == ["pet"]
        on_a.put(("notes",), "brief", {"text": "gone in 0.3 s"}, index=False, ttl=0.005)
        assert on_a.stop_ttl_sweeper(timeout=10)  # the sweeps below are the only ones
        time.sleep(0.5)
        assert on_b.get(("notes",), "brief") is None  # expired: invisible on every host at once
        assert on_b.sweep_ttl() == 1 and on_a.sweep_ttl() == 0  # swept once, by either host
        assert on_a.get(("notes",), "tmp") is not None
        on_b.delete(("memories", "u"), "job")
        assert on_a.get(("memories", "u"), "job") is None
        assert on_a.list_namespaces(prefix=("memories",)) == [("memories", "u")]


def test_items_of_a_local_sqlite_file_move_into_postgres_once(
    tmp_path: Path, postgres_dsn: str, vector_store_config: VectorStoreConfig
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    local_dialect = SqliteKV(data_dir / FILE_NAME)
    local = KVStore(local_dialect)
    now = time.time_ns() // 1000
    local.import_rows(
        [
            KVRow(
                "u", "", ("docs",), "indexed", '{"text":"the moon is made of rock"}', now - 5_000_000, now, vectors=1
            ),
            KVRow("u", "", ("docs",), "plain", '{"text":"no vectors here"}', now, now),
            KVRow("u", "", ("docs",), "lost", '{"text":"its vector is gone"}', now, now, vectors=1),
            KVRow("u", "", ("docs",), "expired", '{"text":"gone"}', now, now, expires_us=now - 1, ttl_minutes=1.0),
        ]
    )
    # the vector of "indexed", in the collections of the SQLite store's id, on the Chroma this pass uses
    chroma = ChromaVectorStore(vector_store_config, data_dir, store_id=local_dialect.store_id)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    chroma.item_index().write("u", [ItemVector("", ("docs",), "indexed", 0, now, vector)], [])
    chroma.close()
    local.close()

    config = {
        "storage": {"message_store": {"backend": "postgres", "dsn": postgres_dsn, "schema_name": schema_for(data_dir)}}
    }
    with BlockingBufferService.from_config(config=config, data_dir=data_dir) as service:
        store = MemFuseStore(
            user_id="u", service=service, index={"dims": 384, "embed": lambda texts: [vector] * len(texts)}
        )
        assert sorted(i.key for i in store.search(("docs",))) == ["indexed", "lost", "plain"]
        moved = store.get(("docs",), "indexed")
        assert moved is not None and moved.value == {"text": "the moon is made of rock"}
        assert moved.updated_at > moved.created_at  # the item's own times came along
        ranked = store.search(("docs",), query="anything")
        assert ranked[0].key == "indexed" and ranked[0].score is not None and abs(ranked[0].score - 1.0) < 1e-3
        assert {i.key for i in ranked[1:]} == {"lost", "plain"}  # unindexed: listed after, unscored
        assert all(i.score is None for i in ranked[1:])
        parts = store._services.engine.components
        assert parts.vectors.count("u", ITEMS) == 1  # type: ignore[attr-defined]
        pg_store_id = parts.store.store_id
        store.put(("docs",), "plain", {"text": "changed on PostgreSQL"}, index=False)

    local = KVStore(SqliteKV(data_dir / FILE_NAME))
    assert local.meta(marker(pg_store_id)) is not None
    local.close()
    with BlockingBufferService.from_config(config=config, data_dir=data_dir) as service:
        store = MemFuseStore(user_id="u", service=service, index=False)
        again = store.get(("docs",), "plain")
        assert again is not None and again.value == {"text": "changed on PostgreSQL"}  # not moved a second time


def test_filters_on_postgres_match_sqlite_semantics(tmp_path: Path, postgres_dsn: str) -> None:
    config = {
        "storage": {"message_store": {"backend": "postgres", "dsn": postgres_dsn, "schema_name": schema_for(tmp_path)}}
    }
    with BlockingBufferService.from_config(config=config, data_dir=tmp_path) as service:
        store = MemFuseStore(user_id="u", service=service, index=False)
        store.put(("n",), "big", {"n": 2**60 + 1, "s": "b", "tags": ["x", "y"], "deep": {"k": None}})
        store.put(("n",), "small", {"n": 2**60, "s": "B", "tags": ["y"], "deep": {"k": 1}})

        def keys(wanted: dict) -> list[str]:
            return sorted(i.key for i in store.search(("n",), filter=wanted))

        assert keys({"n": {"$gt": 2**60}}) == ["big"]  # exact beyond a double's 53 bits
        assert keys({"s": {"$gt": "a"}}) == ["big"]  # byte order, as SQLite: "B" < "a" < "b"
        assert keys({"tags": ["x", "y"]}) == ["big"] and keys({"deep.k": None}) == ["big"]
        assert keys({"deep": {"k": 1}}) == ["small"] and keys({"s": {"$ne": "b"}}) == ["small"]
        assert keys({"n": float("nan")}) == [] and keys({"n": {"$lt": float("nan")}}) == []
        assert keys({"s": "b\x00"}) == [] and keys({"s": {"$ne": "b\x00"}}) == ["big", "small"]
        assert keys({"n": {"$lt": float("inf")}}) == ["big", "small"]
