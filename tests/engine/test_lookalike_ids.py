"""Ids holding invisible or bidi-control characters are rejected (distinct ids never look alike),
a bool is not a time wherever a time is taken, and metadata comes back as JSON."""

from __future__ import annotations

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidInputError

LOOKALIKES = ["ali\u200bce", "\ufeffalice", "alice\u202e", "al\u2066ice", "ali\u200dce", "a\u2028b", "\u00adalice"]


def test_invisible_and_bidi_characters_are_rejected_in_every_id(memory: BlockingBufferService) -> None:
    rejected = 0
    for bad in LOOKALIKES:
        with pytest.raises(InvalidInputError, match="invisible"):
            memory.add([{"role": "user", "content": "x"}], "s", user_id=bad)
        with pytest.raises(InvalidInputError, match="invisible"):
            memory.add([{"role": "user", "content": "x"}], bad)
        with pytest.raises(InvalidInputError, match="invisible"):
            memory.add([{"id": bad, "role": "user", "content": "x"}], "s")
        with pytest.raises(InvalidInputError, match="invisible"):
            memory.add_batch([[{"role": "user", "content": "x"}]], "s", round_ids=[bad])
        rejected += 4
    memory.add([{"role": "user", "content": "x"}], "s", user_id="alice")
    memory.add([{"role": "user", "content": "x"}], "s", user_id="Ålice")  # letters of any script are fine
    assert memory.list_users() == ["alice", "Ålice"]
    print(f"[lookalike-ids] rejected={rejected} users={len(memory.list_users())} lookalikes_stored=0")


def test_a_bool_is_never_a_time(memory: BlockingBufferService) -> None:
    with pytest.raises(InvalidInputError, match="bool"):
        memory.add([{"role": "user", "content": "x", "created_at": True}], "s")
    with pytest.raises(InvalidInputError, match="bool"):
        memory.query("x", since=True)
    assert memory.export_messages()["data"]["total"] == 0


def test_metadata_is_returned_as_json(memory: BlockingBufferService) -> None:
    memory.add([{"role": "user", "content": "x", "metadata": {"pair": (1, 2)}}], "s")
    assert memory.export_messages()["data"]["messages"][0]["metadata"] == {"pair": [1, 2]}
