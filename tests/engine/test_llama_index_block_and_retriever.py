"""MemFuseMemoryBlock inside LlamaIndex's Memory, and MemFuseRetriever, over the fake embedder."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.memory import Memory
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from llama_index.memory.memfuse import MemFuseMemoryBlock, MemFuseRetriever
from memfuse_memory import BlockingBufferService, BufferService
from memfuse_memory.errors import InvalidInputError, InvalidQueryError, InvalidScopeError


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def bot(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def small_memory(session_id: str, block: MemFuseMemoryBlock) -> Memory:
    # a tiny queue so that Memory flushes old turns into the block
    return Memory.from_defaults(
        session_id=session_id, token_limit=40, token_flush_size=5, chat_history_token_ratio=0.3, memory_blocks=[block]
    )


async def test_memory_flushes_into_the_block_and_recalls_in_the_memory_section(
    memory: BlockingBufferService,
) -> None:
    block = MemFuseMemoryBlock(user_id="bob", service=memory)
    mem = small_memory("s1", block)
    for text in ["My favourite colour is teal", "Teal is calm", "I live in Lisbon", "Lisbon is lovely"]:
        await mem.aput(user(text) if "My" in text or "I live" in text else bot(text))
    stored = memory.get_messages_by_session("s1", user_id="bob")["data"]["messages"]
    assert [m["content"] for m in stored][:2] == ["My favourite colour is teal", "Teal is calm"]
    assert stored[0]["round_id"] == stored[1]["round_id"], "user + reply flushed together form one round"
    assert all("session_id" not in m["metadata"].get("llama_index", {}).get("additional_kwargs", {}) for m in stored)

    later = small_memory("s2", block)
    await later.aput(user("what colour do I like?"))
    messages = await later.aget()
    assert messages[0].role == "system"
    assert "<memfuse_memories>" in messages[0].content
    assert "My favourite colour is teal" in messages[0].content
    assert "session s1" in messages[0].content
    assert messages[-1].content == "what colour do I like?"


async def test_block_groups_messages_by_their_session_tag(memory: BlockingBufferService) -> None:
    block = MemFuseMemoryBlock(user_id="u", session_id="fallback", service=memory)
    one = [user("a1"), bot("b1")]
    await block.aput(one, session_id="first")
    await block.aput([user("a2"), bot("b2")])
    assert [m["content"] for m in memory.get_messages_by_session("first", user_id="u")["data"]["messages"]] == [
        "a1",
        "b1",
    ]
    assert [m["content"] for m in memory.get_messages_by_session("fallback", user_id="u")["data"]["messages"]] == [
        "a2",
        "b2",
    ]


async def test_block_skips_what_is_already_in_the_conversation(memory: BlockingBufferService) -> None:
    block = MemFuseMemoryBlock(user_id="u", service=memory, similarity_top_k=3)
    await block.aput([user("I keep bees on the roof"), bot("Bees are great")], session_id="old")
    text = await block.aget([user("I keep bees on the roof"), user("tell me about my bees")])
    assert "I keep bees on the roof" not in text
    assert "Bees are great" in text
    assert await block.aget([]) == ""


async def test_block_truncates_least_relevant_lines_first(memory: BlockingBufferService) -> None:
    block = MemFuseMemoryBlock(user_id="u", service=memory)
    content = "- first memory\n- second memory\n- third memory"
    assert await block.atruncate(content, 3) == "- first memory\n- second memory"
    assert await block.atruncate(content, 1000) is None


def test_block_bad_settings_are_typed_errors(memory: BlockingBufferService) -> None:
    with pytest.raises(InvalidInputError):
        MemFuseMemoryBlock(user_id="u", service=memory, similarity_top_k=0)
    with pytest.raises(InvalidScopeError):
        MemFuseMemoryBlock(user_id="", service=memory)


def _seed(memory: BlockingBufferService) -> None:
    memory.add(
        [{"role": "user", "content": "I adopted a cat named Miso"}, {"role": "assistant", "content": "Aw"}],
        "s1",
        user_id="alice",
    )
    memory.add(
        [{"role": "user", "content": "Miso the cat likes tuna", "metadata": {"topic": "pets"}}], "s2", user_id="alice"
    )
    memory.add([{"role": "user", "content": "my cat is named Felix"}], "s3", user_id="mallory")


def test_retriever_returns_scored_nodes_with_result_metadata(memory: BlockingBufferService) -> None:
    _seed(memory)
    nodes = MemFuseRetriever(user_id="alice", top_k=3, service=memory).retrieve("what is my cat named?")
    assert nodes and all(isinstance(n, NodeWithScore) for n in nodes)
    assert all(n.node.metadata["user_id"] == "alice" for n in nodes), "never another user's messages"
    top = nodes[0]
    assert top.node.get_content() in {"I adopted a cat named Miso", "Miso the cat likes tuna"}
    assert top.score == max(n.score for n in nodes)
    assert top.node.node_id == top.node.metadata["id"]
    assert {"session_id", "round_id", "created_at", "role", "retrieval", "source"} <= set(top.node.metadata)
    llm_text = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "session_id:" in llm_text and "retrieval" not in llm_text


async def test_retriever_filters_and_async_parity(memory: BlockingBufferService) -> None:
    _seed(memory)
    retriever = MemFuseRetriever(user_id="alice", session_id="s2", service=BufferService(memory.engine))
    nodes = await retriever.aretrieve("cat")
    assert [n.node.get_content() for n in nodes] == ["Miso the cat likes tuna"]
    assert [n.node.get_content() for n in retriever.retrieve(QueryBundle("cat"))] == ["Miso the cat likes tuna"]
    by_meta = MemFuseRetriever(user_id="alice", metadata_filter={"topic": "pets"}, service=memory)
    assert [n.node.metadata["metadata"] for n in by_meta.retrieve("Miso")] == [{"topic": "pets"}]


def test_retriever_bad_arguments_are_typed_errors(memory: BlockingBufferService) -> None:
    with pytest.raises(InvalidQueryError):
        MemFuseRetriever(user_id="alice", top_k=0, service=memory)
    with pytest.raises(InvalidQueryError):
        MemFuseRetriever(user_id="alice", sort_by="colour", service=memory)
    with pytest.raises(InvalidQueryError):
        MemFuseRetriever(user_id="alice", service=memory).retrieve("   ")


async def test_block_stores_tool_calls_verbatim(memory: BlockingBufferService) -> None:
    block = MemFuseMemoryBlock(user_id="u", service=memory)
    call = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="c", tool_name="f", tool_kwargs={})])
    await block.aput([user("run f"), call], session_id="t")
    stored = memory.get_messages_by_session("t", user_id="u")["data"]["messages"]
    assert stored[1]["metadata"]["llama_index"]["blocks"][0]["tool_name"] == "f"
