"""MemFuseMemoryMiddleware with create_agent, fake chat models and InMemorySaver, sync and async."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.runtime import Runtime

from langchain_memfuse import MemFuseMemoryMiddleware
from langchain_memfuse.agent_turns import MEMORY_MESSAGE_ID, RECALL_KEY
from memfuse_memory import ConfigError, InvalidInputError, InvalidQueryError, InvalidScopeError, MemFuseError

MODES = ["sync", "async"]


class RecordingModel(FakeMessagesListChatModel):
    """Answers from a list and keeps every message list it was called with."""

    seen: list[list[BaseMessage]] = []  # noqa: RUF012 (pydantic copies the default per model)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)

    def bind_tools(self, tools: Any, **kwargs: Any) -> RecordingModel:
        return self


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def weather_call(call_id: str, city: str = "Lisbon") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": call_id}])


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def run(agent: Any, text: str | None, config: dict[str, Any], mode: str, **kwargs: Any) -> dict[str, Any]:
    payload = None if text is None else {"messages": [HumanMessage(text)]}
    if mode == "async":
        return await agent.ainvoke(payload, config, **kwargs)
    return agent.invoke(payload, config, **kwargs)


async def record(middleware: MemFuseMemoryMiddleware, state: dict[str, Any], mode: str) -> None:
    """Run the after-agent hook directly, as a retried graph step would."""
    if mode == "async":
        await middleware.aafter_agent(state, Runtime(context=None))
    else:
        middleware.after_agent(state, Runtime(context=None))


def memory_messages(messages: list[BaseMessage]) -> list[BaseMessage]:
    return [m for m in messages if isinstance(m, SystemMessage) and RECALL_KEY in m.additional_kwargs]


def stored(memory: Any, session: str, user: str) -> list[dict[str, Any]]:
    return memory.get_messages_by_session(session, user_id=user)["data"]["messages"]


class _NoBlocking:
    """Stands in for the blocking facade in async runs: using it would block the event loop."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"blocking facade ({name}) used in an async agent")


def guard(middleware: MemFuseMemoryMiddleware, mode: str) -> MemFuseMemoryMiddleware:
    if mode == "async":
        middleware._services = replace(middleware._services, sync=_NoBlocking())
    return middleware


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def build(memory, mode):
    """An agent with the middleware on the fake-embedder engine; returns (agent, model, middleware)."""

    def make(responses: list[AIMessage], *, tools: list[Any] | None = None, **settings: Any) -> Any:
        settings.setdefault("user_id", "alice")
        middleware = guard(MemFuseMemoryMiddleware(service=memory, **settings), mode)
        model = RecordingModel(responses=responses)
        agent = create_agent(
            model, tools=tools or [], middleware=[middleware], checkpointer=InMemorySaver(), system_prompt="Be brief."
        )
        return agent, model, middleware

    return make


async def test_an_earlier_thread_reaches_a_new_thread_of_the_same_user_only(build, memory, mode):
    agent, model, _ = build([AIMessage("Miso is a fine name."), AIMessage("Your cat is Miso.")])
    await run(agent, "My cat is called Miso", cfg("monday"), mode)
    first_call = model.seen[0]
    assert memory_messages(first_call) == []  # nothing to recall yet

    await run(agent, "What is my cat called?", cfg("tuesday"), mode)
    [note] = memory_messages(model.seen[1])
    assert "user: My cat is called Miso" in note.text
    assert note.id == MEMORY_MESSAGE_ID
    recalled = note.additional_kwargs[RECALL_KEY]
    monday_ids = {m["id"] for m in stored(memory, "monday", "alice")}
    assert recalled["message_ids"] and set(recalled["message_ids"]) <= monday_ids
    assert recalled["user_id"] == "alice"

    bob, bob_model, _ = build([AIMessage("I do not know.")], user_id="bob")
    await run(bob, "What is my cat called?", cfg("tuesday"), mode)
    assert memory_messages(bob_model.seen[0]) == []
    assert stored(memory, "tuesday", "bob")[0]["content"] == "What is my cat called?"


async def test_a_turn_is_stored_as_one_round_of_the_thread(build, memory, mode):
    agent, _, _ = build([AIMessage("Noted.")], agent_id="helper")
    await run(agent, "I am allergic to peanuts", cfg("t1"), mode)
    rows = stored(memory, "t1", "alice")
    assert [(r["role"], r["content"]) for r in rows] == [("user", "I am allergic to peanuts"), ("assistant", "Noted.")]
    assert rows[0]["round_id"] == rows[1]["round_id"]
    assert {r["agent_id"] for r in rows} == {"helper"}


@pytest.mark.parametrize("with_tools", [False, True])
async def test_tool_turns_record_the_final_reply_or_everything(build, memory, mode, with_tools):
    agent, model, _ = build(
        [weather_call("call-1"), AIMessage("It is sunny in Lisbon.")],
        tools=[get_weather],
        record_tool_messages=with_tools,
    )
    await run(agent, "Weather in Lisbon?", cfg("w"), mode)
    roles = [r["role"] for r in stored(memory, "w", "alice")]
    assert roles == (["user", "assistant", "tool", "assistant"] if with_tools else ["user", "assistant"])
    # both model calls of the tool loop got the system prompt and at most one memory message
    assert len(model.seen) == 2
    assert all(len(memory_messages(call)) <= 1 for call in model.seen)


async def test_memory_is_injected_once_per_call_and_never_enters_the_state(build, memory, mode):
    agent, model, _ = build(
        [AIMessage("Got it."), weather_call("call-2", "Porto"), AIMessage("Sunny in Porto.")], tools=[get_weather]
    )
    await run(agent, "I live in Porto and love the sea", cfg("a"), mode)
    result = await run(agent, "Weather where I live?", cfg("b"), mode)
    assert [len(memory_messages(call)) for call in model.seen[1:]] == [1, 1]
    assert memory_messages(result["messages"]) == []
    # what the thread itself holds is never recalled back into it
    second = memory_messages(model.seen[2])[0]
    assert "Weather where I live?" not in second.text


async def test_a_second_invoke_and_a_replayed_checkpoint_store_nothing_twice(build, memory, mode):
    agent, _, _ = build([AIMessage("Hello Ann."), AIMessage("Still Ann."), AIMessage("Again.")])
    await run(agent, "My name is Ann", cfg("t"), mode)
    await run(agent, "Remember my name", cfg("t"), mode)
    assert len(stored(memory, "t", "alice")) == 4

    # replay the thread from the checkpoint just before the memory hook ran: it runs again
    before_hook = next(
        snapshot
        for snapshot in agent.get_state_history(cfg("t"))
        if any(name.endswith("after_agent") for name in snapshot.next)
    )
    replayed = await run(agent, None, before_hook.config, mode)
    assert replayed["messages"][-1].content == "Still Ann."
    rows = stored(memory, "t", "alice")
    assert len(rows) == 4
    assert len({r["id"] for r in rows}) == 4


@pytest.mark.parametrize("mode", MODES)
async def test_a_retried_record_step_stores_nothing_twice(memory, mode):
    middleware = guard(MemFuseMemoryMiddleware(service=memory, user_id="alice", session_id="s"), mode)
    state = {"messages": [HumanMessage("Hi", id="h1"), AIMessage("Hello", id="a1")]}
    await record(middleware, state, mode)
    await record(middleware, state, mode)
    assert [r["content"] for r in stored(memory, "s", "alice")] == ["Hi", "Hello"]
    # a turn whose first message was stored already adds only what is new
    await record(middleware, {"messages": [HumanMessage("Hi", id="h1"), AIMessage("More", id="a2")]}, mode)
    assert [r["content"] for r in stored(memory, "s", "alice")] == ["Hi", "Hello", "More"]


@dataclass
class Context:
    user_id: str | None = None


async def test_the_user_comes_from_the_runtime_context(memory, mode):
    middleware = guard(MemFuseMemoryMiddleware(service=memory), mode)
    model = RecordingModel(responses=[AIMessage("ok"), AIMessage("ok")])
    agent = create_agent(model, middleware=[middleware], checkpointer=InMemorySaver(), context_schema=Context)
    await run(agent, "carol likes tea", cfg("c1"), mode, context=Context(user_id="carol"))
    await run(agent, "dave likes tea too", cfg("d1"), mode, context=Context(user_id="dave"))
    assert [r["content"] for r in stored(memory, "c1", "carol")] == ["carol likes tea", "ok"]
    assert stored(memory, "c1", "dave") == []
    assert memory_messages(model.seen[1]) == []  # dave has no memories, and carol's are not his
    with pytest.raises(InvalidScopeError, match="no user"):
        await run(agent, "who am I", cfg("x"), mode, context=Context())
    with pytest.raises(InvalidScopeError, match="user_id"):
        await run(agent, "who am I", cfg("y"), mode, context=Context(user_id="../etc"))


async def test_session_scope_recalls_only_this_thread(build, memory, mode):
    agent, model, _ = build([AIMessage("ok")] * 4, recall_scope="session", history_token_budget=30)
    await run(agent, "The boat is called Nautilus and it is blue " * 3, cfg("s1"), mode)
    await run(agent, "The plane is called Nautilus too", cfg("s2"), mode)
    await run(agent, "Tell me about Nautilus " + "please " * 20, cfg("s1"), mode)
    [note] = memory_messages(model.seen[2])
    # the older turn was trimmed from the request, so memory brings it back; s2 never appears
    assert "boat" in note.text and "plane" not in note.text
    assert note.additional_kwargs[RECALL_KEY]["session_id"] == "s1"


async def test_placement_in_the_system_prompt(build, mode):
    agent, model, _ = build([AIMessage("ok"), AIMessage("ok")], placement="system_prompt")
    await run(agent, "Paris is my favourite city", cfg("p1"), mode)
    await run(agent, "Which city do I like?", cfg("p2"), mode)
    system = [m for m in model.seen[1] if isinstance(m, SystemMessage)]
    assert len(system) == 1
    assert system[0].text.startswith("Be brief.\n\n") and "Paris is my favourite city" in system[0].text
    assert system[0].additional_kwargs[RECALL_KEY]["message_ids"]


async def test_trim_keeps_whole_turns_and_tool_pairs(build, memory, mode):
    responses = [weather_call(f"c{i}", f"City{i}") if i % 2 == 0 else AIMessage(f"Sunny {i}.") for i in range(12)]
    agent, model, _ = build(responses, tools=[get_weather], history_token_budget=80, top_k=0)
    for turn in range(6):
        await run(agent, f"Weather in City{turn * 2} please, question number {turn}", cfg("trim"), mode)
    last = [m for m in model.seen[-1] if not isinstance(m, SystemMessage)]
    assert isinstance(last[0], HumanMessage)
    assert len(last) < 4 * 6  # older turns were dropped from the request ...
    assert len(stored(memory, "trim", "alice")) == 12  # ... but not from memory
    calls = {c["id"] for m in last if isinstance(m, AIMessage) for c in m.tool_calls}
    results = {m.tool_call_id for m in last if isinstance(m, ToolMessage)}
    assert results <= calls and calls <= results | {"c10"}


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        ({"top_k": -1}, InvalidInputError, "top_k"),
        ({"top_k": 99}, InvalidInputError, "top_k"),
        ({"token_budget": 0}, InvalidInputError, "token_budget"),
        ({"placement": "footer"}, InvalidInputError, "placement"),
        ({"recall_scope": "world"}, InvalidInputError, "recall_scope"),
        ({"history_token_budget": 0}, InvalidInputError, "history_token_budget"),
        ({"colour": "blue"}, InvalidInputError, "colour"),
        ({"user_id": "a/b"}, InvalidScopeError, "user_id"),
        ({"user_id": ""}, InvalidScopeError, "user_id"),
        ({"session_id": "x\x00"}, InvalidScopeError, "session_id"),
        ({"user_id": None, "context_user_key": None}, InvalidScopeError, "no user"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, InvalidQueryError, "since"),
        ({"since": "not a time"}, InvalidQueryError, "since"),
        ({"metadata_filter": {"k": float("nan")}}, InvalidQueryError, "metadata_filter"),
    ],
)
def test_bad_arguments_raise_at_construction(memory, settings, error, match):
    settings = {"user_id": "alice", **settings}
    with pytest.raises(error, match=match) as caught:
        MemFuseMemoryMiddleware(service=memory, **settings)
    assert isinstance(caught.value, MemFuseError)


def test_service_and_data_dir_together_are_rejected(memory, tmp_path):
    with pytest.raises(ConfigError):
        MemFuseMemoryMiddleware(service=memory, data_dir=tmp_path, user_id="alice")


async def test_without_a_checkpointer_the_constructor_session_is_used(memory, mode):
    middleware = guard(MemFuseMemoryMiddleware(service=memory, user_id="alice", session_id="fixed"), mode)
    agent = create_agent(RecordingModel(responses=[AIMessage("ok")]), middleware=[middleware])
    await run(agent, "no thread here", {}, mode)
    assert [r["content"] for r in stored(memory, "fixed", "alice")] == ["no thread here", "ok"]


def test_the_other_adapters_load_without_langchain_agents():
    code = (
        "import sys, langchain_memfuse; assert 'langchain.agents' not in sys.modules; "
        "langchain_memfuse.MemFuseMemoryMiddleware"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("mode", MODES)
async def test_a_turn_stored_long_ago_is_found_by_the_full_read(memory, mode):
    middleware = guard(MemFuseMemoryMiddleware(service=memory, user_id="alice", session_id="long"), mode)
    old = {"messages": [HumanMessage("Old question", id="old-h"), AIMessage("Old answer", id="old-a")]}
    await record(middleware, old, mode)
    # the session moves on: the old turn is no longer among its newest messages
    memory.add([{"role": "user", "content": f"later {i}"} for i in range(6)], "long", user_id="alice")
    await record(middleware, old, mode)
    contents = [r["content"] for r in stored(memory, "long", "alice")]
    assert contents.count("Old question") == 1 and contents.count("Old answer") == 1


def test_messages_without_ids_are_recorded_once(memory):
    middleware = MemFuseMemoryMiddleware(service=memory, user_id="alice", session_id="noid")
    state = {"messages": [HumanMessage("Same words"), HumanMessage("Same words"), AIMessage("Reply")]}
    middleware.after_agent(state, Runtime(context=None))
    middleware.after_agent(state, Runtime(context=None))
    assert [r["content"] for r in stored(memory, "noid", "alice")] == ["Same words", "Same words", "Reply"]
