"""update_messages: in place, atomic, re-indexed, scoped to the user."""

from __future__ import annotations

import pytest

from memfuse_memory import BlockingBufferService, InvalidInputError, InvalidMessageError


def test_update_replaces_content_keeps_id_time_and_is_found_by_new_words(memory: BlockingBufferService) -> None:
    ids = memory.add([{"role": "user", "content": "my cat is called Miso"}], "s1", user_id="u")["data"]["message_ids"]
    before = memory.export_messages(user_id="u")["data"]["messages"][0]
    memory.update_messages(
        ids, [{"role": "user", "content": "my dog is called Pixel", "metadata": {"k": 1}}], user_id="u"
    )
    after = memory.export_messages(user_id="u")["data"]["messages"][0]
    assert (after["id"], after["created_at"], after["round_id"]) == (
        before["id"],
        before["created_at"],
        before["round_id"],
    )
    assert (after["content"], after["metadata"]) == ("my dog is called Pixel", {"k": 1})
    memory.flush_all()
    hits = memory.query("Pixel dog", user_id="u")["data"]["results"]
    assert [h["id"] for h in hits] == ids
    assert all("Miso" not in h["content"] for h in memory.query("Miso", user_id="u")["data"]["results"])


def test_update_of_unknown_or_foreign_id_writes_nothing(memory: BlockingBufferService) -> None:
    ids = memory.add([{"role": "user", "content": "alpha"}], "s1", user_id="u")["data"]["message_ids"]
    memory.add([{"role": "user", "content": "beta"}], "s1", user_id="other")
    with pytest.raises(InvalidInputError):
        memory.update_messages([ids[0], "nope"], [{"role": "user", "content": "x"}] * 2, user_id="u")
    with pytest.raises(InvalidInputError):
        memory.update_messages(ids, [{"role": "user", "content": "x"}], user_id="other")
    with pytest.raises(InvalidMessageError):
        memory.update_messages(ids, [{"role": "nobody", "content": "x"}], user_id="u")
    with pytest.raises(InvalidMessageError):
        memory.update_messages(ids, [], user_id="u")
    assert [m["content"] for m in memory.export_messages(user_id="u")["data"]["messages"]] == ["alpha"]
