"""export_messages: one user's messages by default (never everyone's), in the reply envelope."""

from __future__ import annotations

import pytest

from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidInputError


def test_export_defaults_to_one_user_and_all_users_is_explicit(memory: BlockingBufferService) -> None:
    memory.add([{"role": "user", "content": "mine"}], "s")
    memory.add([{"role": "user", "content": "secret"}], "s", user_id="other")
    default = memory.export_messages()
    assert default["status"] == "success" and default["data"]["total"] == 1
    assert [m["content"] for m in default["data"]["messages"]] == ["mine"]
    everyone = memory.export_messages(all_users=True)["data"]
    assert sorted(m["content"] for m in everyone["messages"]) == ["mine", "secret"] and everyone["total"] == 2
    foreign = sum(m["user_id"] != "default" for m in default["data"]["messages"])
    print(f"[export-scope] default_user={default['data']['total']} all_users={everyone['total']} foreign={foreign}")
    with pytest.raises(InvalidInputError):
        memory.export_messages(user_id="other", all_users=True)
    with pytest.raises(InvalidInputError):
        memory.export_messages(all_users="yes")
