"""Isolation is a security property: no query scoped to one user ever returns another user's data."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidQueryError, InvalidScopeError, MemFuseError
from memfuse_memory.storage.message_store import user_token
from tests.fakes import FakeEmbedder, MemoryVectorStore

USERS = ["alice", "bob", "carol/../alice", "ALICE", "alice "[:-1] + "\u00e9"]
WORDS = ["secret", "falcon", "blue", "password", "alice", "bob", "the", "cat", "1234", "*", '"', "OR", "NEAR"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlockingBufferService]:
    data = tmp_path_factory.mktemp("iso")
    service = BlockingBufferService.from_config(
        data_dir=Path(data), embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
    ).start()
    for n, user in enumerate(["alice", "bob", "ALICE", "alic\u00e9"]):
        for session in ("s1", "s2"):
            service.add(
                [
                    {"role": "user", "content": f"{user} secret falcon password {n} cat blue"},
                    {"role": "assistant", "content": f"noted for {user}"},
                ],
                session_id=session,
                user_id=user,
            )
    service.flush_all()
    service.add([{"role": "user", "content": "bob buffered secret falcon"}], session_id="s3", user_id="bob")
    yield service
    service.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=8), min_size=1, max_size=6),
    user=st.sampled_from(["alice", "bob", "ALICE", "alic\u00e9", "mallory"]),
    session=st.sampled_from([None, "s1", "s2", "s3"]),
)
def test_no_query_crosses_users(
    shared: BlockingBufferService, words: list[str], user: str, session: str | None
) -> None:
    text = " ".join(words)
    try:
        results = shared.query(text, top_k=15, user_id=user, session_id=session)["data"]["results"]
    except InvalidQueryError:
        return
    for result in results:
        assert result["user_id"] == user
        assert session is None or result["session_id"] == session
        owner = result["content"].split()[0] if result["role"] == "user" else result["content"].split()[-1]
        assert owner == user


def test_ids_cannot_escape_the_data_directory(shared: BlockingBufferService) -> None:
    data_dir = Path(shared.config.storage.data_dir).resolve()
    before = {p.resolve() for p in data_dir.parent.rglob("*")}
    for bad in ["../escape", "..", "/abs", "a\\b", "nul\x00"]:
        with pytest.raises(InvalidScopeError) as caught:
            shared.add([{"role": "user", "content": "x"}], session_id=bad, user_id="alice")
        assert "session_id" in str(caught.value)
    after = {p.resolve() for p in data_dir.parent.rglob("*")}
    assert {p for p in after - before if data_dir not in p.parents and p != data_dir} == set()


TRICKY_IDS = st.one_of(
    st.sampled_from(
        [
            "alice",
            "Alice",
            "alice\u200b",
            "ali\u0301ce",
            "alic\u00e9",
            "bob",
            "bob ",
            "%2e%2e",
            "~",
            "..a",
            "a..",
            "*",
            '"',
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=12),
)


@settings(max_examples=40, deadline=None)
@given(
    users=st.lists(TRICKY_IDS, min_size=2, max_size=4, unique=True),
    probes=st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=10), min_size=1, max_size=4),
    flush=st.booleans(),
)
def test_no_query_crosses_users_whatever_the_ids(users: list[str], probes: list[str], flush: bool) -> None:
    """Each user writes a private secret; no query as one user (even one naming another user's
    FTS token, id or secret) returns another user's message, from any stage."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        BlockingBufferService.from_config(
            data_dir=Path(tmp), embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
        ) as service,
    ):
        owners: dict[str, str] = {}
        accepted: list[str] = []
        for n, user in enumerate(users):
            try:
                ids = service.add(
                    [{"role": "user", "content": f"secret{n} falcon password {user}"}], "s", user_id=user
                )["data"]["message_ids"]
            except InvalidScopeError:
                continue
            accepted.append(user)
            owners.update(dict.fromkeys(ids, user))
        if flush:
            service.flush_all()
        for user in accepted:
            for other in users:
                for text in (
                    " ".join(probes),
                    f"secret{users.index(other)} falcon password",
                    f'user_token : "{user_token(other)}"',
                    f"{user_token(other)} OR secret{users.index(other)} OR *",
                    other,
                ):
                    try:
                        results = service.query(text, top_k=15, user_id=user)["data"]["results"]
                    except InvalidQueryError:
                        continue
                    assert all(r["user_id"] == user and owners[r["id"]] == user for r in results)
        for user in accepted:
            exported = service.export_messages(user_id=user)["data"]["messages"]
            assert exported and {owners[m["id"]] for m in exported} == {user}


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(
        st.one_of(
            st.sampled_from(["..", "../..", "../x", "/tmp/x", "a/../../b", "C:\\x", "\\\\srv\\share", "~root", "%2F"]),
            st.text(max_size=20),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_no_id_creates_a_file_outside_the_data_directory(ids: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "inner" / "data"
        with BlockingBufferService.from_config(
            data_dir=data_dir, embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
        ) as service:
            for value in ids:
                calls: list[Callable[[], object]] = [
                    lambda v=value: service.add([{"role": "user", "content": "x", "id": v}], v, user_id=v),
                    lambda v=value: service.add([{"role": "user", "content": "x"}], v, user_id="u", agent_id=v),
                    lambda v=value: service.query("x", user_id=v, session_id=v),
                    lambda v=value: service.export_messages(user_id=v, session_id=v)["data"]["messages"],
                    lambda v=value: service.delete_session(v, user_id=v),
                    service.flush_all,
                ]
                for call in calls:
                    with contextlib.suppress(MemFuseError):
                        call()
        outside = [p for p in root.rglob("*") if p not in (root / "inner", data_dir) and data_dir not in p.parents]
        assert outside == []
