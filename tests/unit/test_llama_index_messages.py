"""ChatMessage <-> memfuse message conversion: roles, blocks and additional_kwargs survive a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.tools import ToolSelection

from llama_index.memory.memfuse.messages import (
    from_engine_message,
    input_text,
    latest_user_text,
    message_text,
    split_rounds,
    to_engine_message,
)
from memfuse_memory.errors import InvalidMessageError

ROLE_MAP = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}


def roundtrip(message: ChatMessage) -> ChatMessage:
    stored = to_engine_message(message)
    # what the engine hands back: the same dict plus ids and scope
    return from_engine_message({**stored, "id": "x", "session_id": "s", "user_id": "u", "round_id": "r"})


@pytest.mark.parametrize(("role", "engine_role"), sorted(ROLE_MAP.items()))
def test_every_llama_index_role_maps_to_an_engine_role_and_comes_back(role: str, engine_role: str) -> None:
    message = ChatMessage(role=role, content=f"a {role} says hi")
    stored = to_engine_message(message)
    assert stored["role"] == engine_role
    assert stored["content"] == f"a {role} says hi"
    back = roundtrip(message)
    assert back.role == MessageRole(role)
    assert back == message


def test_plain_text_message_stores_no_metadata() -> None:
    assert to_engine_message(ChatMessage(role="user", content="hello")) == {
        "role": "user",
        "content": "hello",
        "metadata": {},
    }


def test_tool_calls_in_blocks_and_additional_kwargs_come_back_as_the_same_types() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="let me check"),
            ToolCallBlock(tool_call_id="c1", tool_name="weather", tool_kwargs={"city": "Paris"}),
        ],
        additional_kwargs={
            "tool_calls": [ToolSelection(tool_id="c1", tool_name="weather", tool_kwargs={"city": "Paris"})],
            "nested": {"n": 1, "list": [1, "two", None]},
        },
    )
    stored = to_engine_message(message)
    assert stored["content"] == 'let me check\n[tool call weather {"city": "Paris"}]'
    back = roundtrip(message)
    assert back == message
    assert isinstance(back.additional_kwargs["tool_calls"][0], ToolSelection)


def test_tool_result_keeps_its_tool_call_id() -> None:
    message = ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c1"})
    back = roundtrip(message)
    assert back.role == MessageRole.TOOL
    assert back.additional_kwargs == {"tool_call_id": "c1"}


def test_image_and_thinking_blocks_survive() -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="what is this?"),
            ImageBlock(url="https://example.com/cat.png"),
            ThinkingBlock(content="hmm"),
        ],
    )
    assert "[image]" in to_engine_message(message)["content"]
    assert roundtrip(message) == message


def test_models_from_untrusted_modules_are_not_imported() -> None:
    stored = {
        "role": "assistant",
        "content": "x",
        "metadata": {
            "llama_index": {
                "additional_kwargs": {"evil": {"__memfuse_model__": "os:system", "data": {"cmd": "rm"}}},
            }
        },
    }
    assert from_engine_message(stored).additional_kwargs == {"evil": {"cmd": "rm"}}


def test_messages_written_by_other_adapters_are_read_as_plain_messages() -> None:
    stored = {"role": "assistant", "content": "hi", "metadata": {"lc_type": "ai"}}
    assert from_engine_message(stored) == ChatMessage(role="assistant", content="hi")


def test_non_chat_message_is_a_typed_error() -> None:
    with pytest.raises(InvalidMessageError, match="ChatMessage"):
        to_engine_message({"role": "user", "content": "hi"})  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError, match="input"):
        input_text(42)


def test_split_rounds_starts_a_round_at_each_user_message() -> None:
    msgs = [
        ChatMessage(role="system", content="s"),
        ChatMessage(role="user", content="u1"),
        ChatMessage(role="assistant", content="a1"),
        ChatMessage(role="tool", content="t1"),
        ChatMessage(role="assistant", content="a2"),
        ChatMessage(role="user", content="u2"),
    ]
    rounds = split_rounds(msgs)
    assert [[m.content for m in r] for r in rounds] == [["s"], ["u1", "a1", "t1", "a2"], ["u2"]]
    assert latest_user_text(msgs) == "u2"
    assert latest_user_text(msgs[:1]) is None


@given(
    role=st.sampled_from(sorted(ROLE_MAP)),
    text=st.text(min_size=0, max_size=40).filter(lambda t: "\x00" not in t),
    kwargs=st.dictionaries(
        st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5) | st.none(), max_size=3
    ),
)
def test_roundtrip_property(role: str, text: str, kwargs: dict) -> None:
    message = ChatMessage(role=role, content=text, additional_kwargs=kwargs)
    assert roundtrip(message) == message
    assert message_text(message) == to_engine_message(message)["content"]
