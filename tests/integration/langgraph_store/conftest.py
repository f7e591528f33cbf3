"""LangGraph's own store tests (``upstream/``) run against ``MemFuseStore``: only the store is ours.

One real engine (MiniLM, embedded Chroma, and the message store of the pass: SQLite, or
PostgreSQL with ``MEMFUSE_TEST_MESSAGE_STORE=postgres``) serves the session; every store a test builds
gets its own user and agent space, so tests never see each other's items or vectors. The tests
that read the SQL stores' internals are skipped here with their reason (the README of this
folder lists them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from langchain_memfuse import MemFuseStore
from memfuse_memory import BlockingBufferService
from tests.integration.langgraph_store.upstream.embed_test_utils import CharacterEmbeddings

__all__ = ["VECTOR_TYPES", "CharacterEmbeddings", "InMemoryStoreShim", "SqliteStoreShim", "new_store"]

VECTOR_TYPES = ["vector", "halfvec"]  # pgvector storage types the upstream tests iterate over; all one to us

_PG_INTERNALS = "reads or writes PostgreSQL internals (SQL on the store table, migrations, pool checkouts)"
_SQLITE_INTERNALS = "reads SQLite store internals (its connection, migrations, query builder, GLOB escaping)"
_SKIPS = {
    "test_escape_like_literal": _PG_INTERNALS,
    "test_namespace_match_pattern": _PG_INTERNALS,
    "test_nonnull_migrations": _PG_INTERNALS,
    "test_abatch_uses_single_pool_checkout": _PG_INTERNALS,
    # these backdate expires_at with SQL to test omit_expired=False (expired rows still readable);
    # MemFuseStore always omits expired items at once (tests/unit/test_langgraph_store_semantics.py)
    "test_omit_expired_filters_read_paths": _PG_INTERNALS,
    "test_omit_expired_disabled_preserves_expired_rows": _PG_INTERNALS,
    "test_omit_expired_refresh_ttl_only_refreshes_live_rows": _PG_INTERNALS,
    "test_omit_expired_search_pagination": _PG_INTERNALS,
}
_SQLITE_SKIPS = {
    "test_escape_glob_literal": _SQLITE_INTERNALS,
    "test_namespace_match_pattern": _SQLITE_INTERNALS,
    "test_list_namespaces_prefix_uses_indexable_condition": _SQLITE_INTERNALS,
    "test_nonnull_migrations": _SQLITE_INTERNALS,
    "test_vector_store_initialization": _SQLITE_INTERNALS,
    "test_sql_injection_vulnerability": (
        "expects SqliteStore's ValueError for unusual filter keys, which it splices into its SQL; MemFuseStore "
        "binds every filter key and value as a parameter, so such a key just matches nothing "
        "(tests/unit/test_langgraph_store_semantics.py)"
    ),
}

_state: dict[str, Any] = {}
_ids = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def memfuse_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlockingBufferService]:
    """The one real engine of the session."""
    data_dir: Path = tmp_path_factory.mktemp("langgraph-store")
    service = BlockingBufferService.from_config(data_dir=data_dir).start()
    _state["service"] = service
    yield service
    _state.pop("service", None)
    service.close()


def new_store(store_class: type[MemFuseStore] = MemFuseStore, **kwargs: Any) -> MemFuseStore:
    """A store of its own user and agent space on the session engine (``kwargs`` as MemFuseStore's;
    the async suites build ``AsyncMemFuseStore``, which guards the event loop as their stores do)."""
    number = next(_ids)
    return store_class(user_id=f"user-{number}", agent_id=f"test-{number}", service=_state["service"], **kwargs)


class InMemoryStoreShim(MemFuseStore):
    """Stands in for ``InMemoryStore`` where LangGraph's base store tests build stores in a test body."""

    def __init__(self, *, index: Any = None, **kwargs: Any) -> None:
        number = next(_ids)
        super().__init__(
            user_id=f"user-{number}",
            agent_id=f"test-{number}",
            service=_state["service"],
            index=False if index is None else index,
            **kwargs,
        )


class SqliteStoreShim:
    """Stands in for ``SqliteStore`` where the SQLite tests build stores inside a test body."""

    @staticmethod
    @contextmanager
    def from_conn_string(conn_string: str, *, index: Any = None, ttl: Any = None) -> Iterator[MemFuseStore]:
        yield new_store(index=False if index is None else index, ttl=ttl)


@pytest.fixture
def fake_embeddings() -> CharacterEmbeddings:
    return CharacterEmbeddings(dims=500)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "langgraph_store/upstream" not in str(item.fspath):
            continue
        name = getattr(item, "originalname", item.name)
        reason = _SQLITE_SKIPS.get(name) if "sqlite" in item.fspath.basename else None
        reason = reason or _SKIPS.get(name)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
