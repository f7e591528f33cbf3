"""The LlamaIndex adapters validate every round before writing any: a bad message (a lone
surrogate) in a multi-call write leaves nothing half-written."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage

from llama_index.memory.memfuse import MemFuseMemory, MemFuseMemoryBlock
from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import InvalidInputError

BAD = "lone \ud800 surrogate"


def test_put_messages_and_set_write_all_or_nothing(memory: BlockingBufferService) -> None:
    chat = MemFuseMemory.from_defaults(session_id="s", user_id="u", service=memory)
    chat.put(ChatMessage(role="user", content="question"))
    batch = [ChatMessage(role="assistant", content="reply"), ChatMessage(role="user", content=BAD)]
    with pytest.raises(InvalidInputError):
        chat.put_messages(batch)
    with pytest.raises(InvalidInputError):
        chat.set([ChatMessage(role="user", content=BAD)])
    assert [m.content for m in chat.get_all()] == ["question"]


async def test_memory_block_writes_all_sessions_or_none(memory: BlockingBufferService) -> None:
    block = MemFuseMemoryBlock(user_id="u", session_id="s", service=memory)
    with pytest.raises(InvalidInputError):
        await block.aput(
            [
                ChatMessage(role="user", content="fine", additional_kwargs={"session_id": "first"}),
                ChatMessage(role="user", content=BAD, additional_kwargs={"session_id": "second"}),
            ]
        )
    stored = memory.export_messages(user_id="u")["data"]["total"]
    print(f"[llama-index-all-or-nothing] rejected_writes=3 half_written={stored}")
    assert stored == 0
