"""MemFuseMemoryMiddleware end to end on the real engine (MiniLM, Chroma, SQLite), async agent."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from langchain_memfuse import MemFuseMemoryMiddleware
from langchain_memfuse.agent_turns import RECALL_KEY
from memfuse_memory import BufferService
from memfuse_memory.shared import resolve_service
from tests.unit.test_langchain_middleware import RecordingModel, get_weather, memory_messages, weather_call

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path):
    """A data dir whose shared engine is closed after the test (it would otherwise live until exit)."""
    yield tmp_path
    resolve_service(data_dir=tmp_path).close()


async def test_an_async_agent_recalls_an_earlier_thread_by_meaning(data_dir):
    middleware = MemFuseMemoryMiddleware(
        data_dir=data_dir, user_id="alice", token_budget=200, record_tool_messages=True
    )
    model = RecordingModel(
        responses=[
            AIMessage("What a lovely kitten."),
            weather_call("call-1", "Porto"),
            AIMessage("Sunny in Porto."),
            AIMessage("She is called Miso."),
        ]
    )
    agent = create_agent(model, tools=[get_weather], middleware=[middleware], checkpointer=InMemorySaver())
    await agent.ainvoke(
        {"messages": [HumanMessage("I adopted a kitten and named her Miso")]}, {"configurable": {"thread_id": "a"}}
    )
    await agent.ainvoke({"messages": [HumanMessage("Weather in Porto?")]}, {"configurable": {"thread_id": "a"}})
    service = BufferService(resolve_service(data_dir=data_dir))
    await service.flush_all()

    # no shared word with the stored turn: only the vector ranking can find it
    await agent.ainvoke(
        {"messages": [HumanMessage("Remind me about my feline pet")]}, {"configurable": {"thread_id": "b"}}
    )
    [note] = memory_messages(model.seen[-1])
    assert "Miso" in note.text
    assert note.additional_kwargs[RECALL_KEY]["tokens"] <= 200
    stored = (await service.get_messages_by_session("a", user_id="alice"))["data"]["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    others = await service.query("kitten Miso", 5, user_id="bob")
    assert others["data"]["results"] == []
