"""Message and round ids are unique per user: a second user may use ids the first already has
(no existence oracle across tenants, no squatting), each user finds, updates and deletes only its
own, and within one user a reused id is still refused with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import DuplicateMessageError, InvalidInputError
from tests.fakes import MemoryVectorStore

USERS = ("alice", "bob")


def rounds_for(user: str) -> list[list[dict[str, Any]]]:
    return [
        [{"id": "m1", "role": "user", "content": f"{user} keeps the violet kayak key"}],
        [{"id": "m2", "role": "user", "content": f"{user} waters the ficus weekly"}],
    ]


def contents(memory: BlockingBufferService, user: str) -> dict[str, str]:
    messages = memory.export_messages(user_id=user)["data"]["messages"]
    return {m["id"]: m["content"] for m in messages}


def test_two_users_with_the_same_ids_each_keep_and_change_only_their_own(
    make_memory: Callable[..., BlockingBufferService], vectors: MemoryVectorStore
) -> None:
    memory = make_memory()
    for user in USERS:
        memory.add([{"id": "m0", "role": "user", "content": f"{user} says hello"}], "s", user_id=user)
        memory.add_batch(rounds_for(user), "s", user_id=user, round_ids=["r1", "r2"])
    for user in USERS:
        found = memory.query("violet kayak key", user_id=user)["data"]["results"]
        assert [(r["id"], r["user_id"], r["round_id"]) for r in found[:1]] == [("m1", user, "r1")]
    memory.flush_all(timeout=30)
    indexed = {user: len(vectors.items[user]) for user in USERS}
    for user in USERS:
        found = memory.query("violet kayak key", user_id=user)["data"]["results"]
        assert found[0]["content"] == f"{user} keeps the violet kayak key", "found from storage, own user's"

    memory.update_messages(["m1"], [{"role": "user", "content": "alice moved the kayak"}], user_id="alice")
    memory.delete_messages(["m2"], user_id="bob")
    alice, bob = contents(memory, "alice"), contents(memory, "bob")
    cross_user_changes = int(bob.get("m1") != "bob keeps the violet kayak key") + int("m2" not in alice)
    print(
        f"[ids-per-user] api users=2 shared_ids=5 indexed_rounds={sum(indexed.values())} "
        f"cross_user_changes={cross_user_changes}"
    )
    assert indexed == {"alice": 3, "bob": 3}
    assert alice == {"m0": "alice says hello", "m1": "alice moved the kayak", "m2": "alice waters the ficus weekly"}
    assert bob == {"m0": "bob says hello", "m1": "bob keeps the violet kayak key"}
    memory.flush_all(timeout=30)
    assert memory.query("moved the kayak", user_id="bob")["data"]["results"][0]["content"] != "alice moved the kayak"
    with pytest.raises(InvalidInputError, match="m2"):
        memory.update_messages(["m2"], [{"role": "user", "content": "x"}], user_id="bob")
    assert memory.delete_messages(["m2"], user_id="bob")["data"]["deleted_messages"] == 0


def test_within_one_user_a_reused_id_is_refused_and_nothing_is_written(
    make_memory: Callable[..., BlockingBufferService],
) -> None:
    memory = make_memory()
    memory.add_batch(rounds_for("alice"), "s", user_id="alice", round_ids=["r1", "r2"])
    memory.add_batch(rounds_for("bob"), "s", user_id="bob", round_ids=["r1", "r2"])
    fresh = [{"id": "m9", "role": "user", "content": "new"}]
    with pytest.raises(DuplicateMessageError, match="m1") as taken:
        memory.add_batch([fresh, [{"id": "m1", "role": "user", "content": "again"}]], "s2", user_id="alice")
    assert "r1" not in str(taken.value)
    with pytest.raises(DuplicateMessageError, match="round id"):
        memory.add_batch([fresh], "s2", user_id="alice", round_ids=["r2"])
    assert set(contents(memory, "alice")) == {"m1", "m2"}, "nothing of a refused write is stored"
    memory.add_batch([fresh], "s2", user_id="carol", round_ids=["r2"])  # a third user: free to use them
    assert set(contents(memory, "carol")) == {"m9"}
