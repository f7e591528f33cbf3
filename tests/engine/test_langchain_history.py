"""MemFuseChatMessageHistory over the fake embedder: exact round trips, rounds, scoping, errors."""

from __future__ import annotations

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_memfuse import MemFuseChatMessageHistory
from memfuse_memory import ConfigError, InvalidMessageError, InvalidScopeError, MemFuseError


def every_message_type() -> list:
    return [
        SystemMessage("You are terse.", id="sys-1"),
        HumanMessage("What's the weather in Paris?", name="alice", additional_kwargs={"lang": "en"}),
        AIMessage(
            "",
            id="ai-1",
            tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call-1"}],
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
        ),
        ToolMessage("18 C, sunny", tool_call_id="call-1", name="weather", artifact={"raw": [18, "C"]}),
        AIMessage("It is 18 C and sunny.", invalid_tool_calls=[{"name": "x", "args": "{", "id": "c2", "error": "bad"}]),
        ChatMessage("Looks right.", role="critic"),
        ChatMessage("A plain user turn.", role="user"),
        FunctionMessage("42", name="answer"),
        HumanMessage([{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "x.png"}}]),
        AIMessageChunk("partial", id="chunk-1"),
        HumanMessageChunk("typing"),
        HumanMessage("name with a slash", name="a/b"),
    ]


def test_round_trip_every_message_type_is_exact(memory):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    sent = every_message_type()
    history.add_messages(sent)
    got = history.messages
    assert got == sent
    assert [type(m) for m in got] == [type(m) for m in sent]
    assert got[2].tool_calls[0]["args"] == {"city": "Paris"}
    assert got[3].tool_call_id == "call-1" and got[3].artifact == {"raw": [18, "C"]}


async def test_async_round_trip_and_clear(amemory):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=amemory)
    sent = every_message_type()
    await history.aadd_messages(sent[:3])
    await history.aadd_messages(sent[3:])
    assert await history.aget_messages() == sent
    await history.aclear()
    assert await history.aget_messages() == []


def test_one_add_is_one_round_with_engine_roles(memory):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    history.add_messages(every_message_type()[:4])
    rows = memory.get_messages_by_session("s1", user_id="alice")["data"]["messages"]
    assert len({row["round_id"] for row in rows}) == 1
    assert [row["role"] for row in rows] == ["system", "user", "assistant", "tool"]
    assert rows[1]["name"] == "alice"
    assert rows[3]["metadata"]["lc_data"]["tool_call_id"] == "call-1"


def test_list_content_is_stored_as_its_text(memory):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    history.add_messages(
        [
            HumanMessage(
                [{"type": "text", "text": "photo of Miso"}, {"type": "image_url", "image_url": {"url": "m.png"}}]
            )
        ]
    )
    row = memory.get_messages_by_session("s1", user_id="alice")["data"]["messages"][0]
    assert row["content"] == "photo of Miso"


def test_sessions_and_users_are_separate_and_clear_is_scoped(memory):
    a1 = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    a2 = MemFuseChatMessageHistory("s2", user_id="alice", service=memory)
    b1 = MemFuseChatMessageHistory("s1", user_id="bob", service=memory)
    a1.add_user_message("alice one")
    a2.add_user_message("alice two")
    b1.add_user_message("bob one")
    a1.clear()
    assert a1.messages == []
    assert [m.content for m in a2.messages] == ["alice two"]
    assert [m.content for m in b1.messages] == ["bob one"]


def test_messages_written_by_the_engine_api_get_natural_types(memory):
    memory.add(
        [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "hello", "name": "carol"},
            {"role": "assistant", "content": "hi"},
            {"role": "tool", "content": "42", "metadata": {"tool_call_id": "t1"}},
        ],
        "s1",
        user_id="carol",
    )
    got = MemFuseChatMessageHistory("s1", user_id="carol", service=memory).messages
    assert [type(m) for m in got] == [SystemMessage, HumanMessage, AIMessage, ToolMessage]
    assert got[1].name == "carol" and got[3].tool_call_id == "t1"
    assert all(m.id for m in got)


def test_agent_id_is_recorded(memory):
    MemFuseChatMessageHistory("s1", user_id="alice", agent_id="planner", service=memory).add_user_message("x")
    assert memory.get_messages_by_session("s1", user_id="alice")["data"]["messages"][0]["agent_id"] == "planner"


@pytest.mark.parametrize("bad", [RemoveMessage(id="m1")])
def test_unsupported_message_type_is_rejected_and_nothing_is_written(memory, bad):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    with pytest.raises(InvalidMessageError, match="unsupported message type 'remove'"):
        history.add_messages([HumanMessage("kept?"), bad])
    assert history.messages == []


@pytest.mark.parametrize("bad", ["just a string", {"role": "user", "content": "dict"}, 42])
def test_non_messages_are_rejected(memory, bad):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    with pytest.raises(InvalidMessageError, match="LangChain"):
        history.add_messages([bad])
    with pytest.raises(InvalidMessageError):
        history.add_messages(bad)


@pytest.mark.parametrize("session_id", [None, ""])
def test_missing_session_id_is_rejected(memory, session_id):
    with pytest.raises(InvalidScopeError, match="session_id is required"):
        MemFuseChatMessageHistory(session_id, service=memory)


def test_malformed_ids_and_conflicting_sources_are_typed_errors(memory, tmp_path):
    with pytest.raises(InvalidScopeError):
        MemFuseChatMessageHistory("a/b", user_id="alice", service=memory).messages  # noqa: B018
    with pytest.raises(ConfigError):
        MemFuseChatMessageHistory("s1", service=memory, data_dir=tmp_path)


def test_non_json_kwargs_are_a_memfuse_error(memory):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    with pytest.raises(MemFuseError):
        history.add_messages([AIMessage("x", additional_kwargs={"obj": object()})])


def test_empty_add_is_a_no_op(memory):
    history = MemFuseChatMessageHistory("s1", user_id="alice", service=memory)
    history.add_messages([])
    assert history.messages == []
