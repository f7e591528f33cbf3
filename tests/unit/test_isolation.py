"""Isolation is a security property: no query scoped to one user ever returns another user's data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidQueryError, InvalidScopeError
from tests.fakes import FakeEmbedder, MemoryVectorStore

USERS = ["alice", "bob", "carol/../alice", "ALICE", "alice "[:-1] + "\u00e9"]
WORDS = ["secret", "falcon", "blue", "password", "alice", "bob", "the", "cat", "1234", "*", '"', "OR", "NEAR"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlockingBufferService]:
    data = tmp_path_factory.mktemp("iso")
    service = BlockingBufferService.from_config(
        data_dir=Path(data), embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
    )
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
