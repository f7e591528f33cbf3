"""LlamaIndex adapters on the real engine: all-MiniLM-L6-v2, embedded Chroma and SQLite in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall, MockLLMWithChatMemoryOfLastCall
from llama_index.core.memory import Memory
from llama_index.core.tools import FunctionTool

from llama_index.memory.memfuse import MemFuseMemory, MemFuseMemoryBlock, MemFuseRetriever
from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.shared import resolve_service

SYSTEM = "You are a friendly assistant."


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "memfuse"
    yield path
    if path.exists():
        resolve_service(data_dir=path).close()  # the shared engine of this test: flush and free it


def llm() -> MockLLMWithChatMemoryOfLastCall:
    return MockLLMWithChatMemoryOfLastCall(max_tokens=4)  # answers "text text text text", keeps its last prompt


def recalled(prompt: list[ChatMessage]) -> str:
    """The memories system message the memory put in front of the history ("" when none)."""
    found = [
        m.content or "" for m in prompt if m.role == MessageRole.SYSTEM and "Relevant memories" in (m.content or "")
    ]
    assert len(found) <= 1
    return found[0] if found else ""


def test_chat_keeps_history_and_session_1_memories_reach_session_2(data_dir: Path) -> None:
    model = llm()
    first = MemFuseMemory.from_defaults(session_id="s1", user_id="alice", token_limit=1000, data_dir=data_dir)
    engine = SimpleChatEngine.from_defaults(llm=model, memory=first, system_prompt=SYSTEM)
    said = ["I adopted a cat named Miso last spring.", "My sister lives in Toronto.", "I enjoy hiking in the Alps."]
    for text in said:
        engine.chat(text)
    history = first.get_all()
    assert [m.content for m in history[::2]] == said
    assert [m.role for m in history] == [MessageRole.USER, MessageRole.ASSISTANT] * 3
    BlockingBufferService(first.engine).flush_all()  # embed now, so recall is semantic, not only keywords

    second = MemFuseMemory.from_defaults(session_id="s2", user_id="alice", token_limit=1000, data_dir=data_dir)
    assert second.engine is first.engine, "adapters on one data_dir share one engine"
    assert MemFuseMemory.from_config({"storage": {"data_dir": str(data_dir)}}, session_id="s2").engine is first.engine
    SimpleChatEngine.from_defaults(llm=model, memory=second, system_prompt=SYSTEM).chat("What is the name of my pet?")
    prompt = list(model.last_chat_messages)
    assert prompt[0].content == SYSTEM
    memories = recalled(prompt)
    assert "I adopted a cat named Miso last spring." in memories
    assert memories.index("Miso") < memories.index("Alps") if "Alps" in memories else True
    assert prompt[-1].content == "What is the name of my pet?"


async def test_achat_recalls_at_once_without_a_flush(data_dir: Path) -> None:
    model = llm()
    first = MemFuseMemory.from_defaults(session_id="a1", user_id="bob", data_dir=data_dir)
    engine = SimpleChatEngine.from_defaults(llm=model, memory=first)
    await engine.achat("I am training for the Lisbon marathon in October.")
    await engine.achat("My favourite food is ramen.")

    second = MemFuseMemory.from_defaults(session_id="a2", user_id="bob", data_dir=data_dir)
    await SimpleChatEngine.from_defaults(llm=model, memory=second).achat("When is my marathon?")
    assert "I am training for the Lisbon marathon in October." in recalled(list(model.last_chat_messages))
    assert [m.content for m in await second.aget_all()] == ["When is my marathon?", "text text text text"]

    other = MemFuseMemory.from_defaults(session_id="a3", user_id="carol", data_dir=data_dir)
    await SimpleChatEngine.from_defaults(llm=model, memory=other).achat("When is my marathon?")
    assert "marathon in October" not in recalled(list(model.last_chat_messages)), "recall never crosses users"


def test_a_new_engine_on_the_same_data_dir_sees_the_history(data_dir: Path) -> None:
    memory = MemFuseMemory.from_defaults(session_id="p", user_id="dana", data_dir=data_dir)
    SimpleChatEngine.from_defaults(llm=llm(), memory=memory).chat("Remember that my locker code is 4711.")
    before = memory.get_all()
    old_engine = memory.engine
    old_engine.close()

    reopened = MemFuseMemory.from_defaults(session_id="p", user_id="dana", data_dir=data_dir)
    assert reopened.engine is not old_engine
    assert reopened.get_all() == before
    model = llm()
    SimpleChatEngine.from_defaults(llm=model, memory=reopened).chat("What was my locker code?")
    assert [m.content for m in model.last_chat_messages][:2] == [
        "Remember that my locker code is 4711.",
        "text text text text",
    ]


async def test_function_agent_runs_with_the_memory_and_stores_its_turns(data_dir: Path) -> None:
    def get_weather(city: str = "Lisbon") -> str:
        """Today's weather in a city."""
        return f"It is sunny in {city}."

    model = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(get_weather)], llm=model, system_prompt="Plan trips.")
    memory = MemFuseMemory.from_defaults(session_id="trip", user_id="erin", data_dir=data_dir)
    result = await agent.run("What is the weather for my trip?", memory=memory)
    assert str(result) == "Tool calls complete."

    stored = await memory.aget_all()
    assert [m.role for m in stored] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.ASSISTANT,
    ]
    assert stored[0].content == "What is the weather for my trip?"
    call = stored[1].blocks[0]
    assert isinstance(call, ToolCallBlock) and call.tool_name == "get_weather"
    assert (
        stored[2].content == "It is sunny in Lisbon."
        and stored[2].additional_kwargs["tool_call_id"] == call.tool_call_id
    )
    rows = BlockingBufferService(memory.engine).get_messages_by_session("trip", user_id="erin")["data"]["messages"]
    assert len({row["round_id"] for row in rows}) == 1, "the question and the agent's replies form one round"

    await agent.run("And tomorrow?", memory=memory)
    seen = [m.content for m in model.last_chat_messages]
    assert "What is the weather for my trip?" in seen, "the second run sees the first run's turn"


async def test_memory_block_in_llama_index_memory(data_dir: Path) -> None:
    block = MemFuseMemoryBlock(user_id="finn", data_dir=data_dir)

    def short_term(session_id: str) -> Memory:
        return Memory.from_defaults(
            session_id=session_id,
            token_limit=40,
            token_flush_size=5,
            chat_history_token_ratio=0.3,
            memory_blocks=[block],
        )

    first = short_term("m1")
    turns = ["I play the cello in an orchestra.", "How lovely!", "I was born in Porto.", "Porto is beautiful."]
    for i, text in enumerate(turns):
        await first.aput(ChatMessage(role="user" if i % 2 == 0 else "assistant", content=text))
    rows = BlockingBufferService(block.engine).get_messages_by_session("m1", user_id="finn")["data"]["messages"]
    assert [r["content"] for r in rows][:2] == turns[:2], "what Memory flushed is stored in memfuse"

    second = short_term("m2")
    await second.aput(ChatMessage(role="user", content="Which instrument do I play?"))
    messages = await second.aget()
    assert messages[0].role == MessageRole.SYSTEM
    assert "<memfuse_memories>" in messages[0].content
    assert "I play the cello in an orchestra." in messages[0].content


async def test_retriever_sees_what_a_memory_just_wrote_and_parity(data_dir: Path) -> None:
    memory = MemFuseMemory.from_defaults(session_id="r1", user_id="gus", data_dir=data_dir)
    memory.put_messages(
        [
            ChatMessage(role="user", content="My passport expires in March 2027."),
            ChatMessage(role="assistant", content="Noted."),
        ]
    )
    retriever = MemFuseRetriever(user_id="gus", top_k=3, data_dir=data_dir)
    nodes = retriever.retrieve("When does my passport expire?")
    assert nodes[0].node.get_content() == "My passport expires in March 2027."
    assert nodes[0].node.metadata["session_id"] == "r1"
    assert [n.node.node_id for n in await retriever.aretrieve("When does my passport expire?")] == [
        n.node.node_id for n in nodes
    ]

    await BufferService(memory.engine).flush_all()
    assert memory.get() == await memory.aget()


def test_earlier_rounds_of_the_session_are_recalled_once_out_of_the_window(data_dir: Path) -> None:
    memory = MemFuseMemory.from_defaults(session_id="long", user_id="hana", token_limit=200, data_dir=data_dir)
    memory.put_messages(
        [
            ChatMessage(role="user", content="My passport expires in March 2027."),
            ChatMessage(role="assistant", content="Noted."),
        ]
    )
    for i in range(10):
        memory.put_messages(
            [
                ChatMessage(role="user", content=f"Small talk number {i} about the weather."),
                ChatMessage(role="assistant", content="Indeed."),
            ]
        )
    BlockingBufferService(memory.engine).flush_all()
    memory.put(ChatMessage(role="user", content="Is my passport still valid next year?"))
    got = memory.get()
    history = [m.content for m in got[1:]]
    assert "My passport expires in March 2027." not in history, "the old turn is out of the window"
    assert "My passport expires in March 2027." in recalled(got)
    assert history[-1] == "Is my passport still valid next year?"
    assert got == [*got[:1], *memory.get_all()[-len(history) :]]
