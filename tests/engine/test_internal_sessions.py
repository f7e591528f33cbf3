"""Records an adapter keeps for itself (sessions whose id starts with ``~``) reach no recall: not
plain ``query``, not the LangChain retriever, not LlamaIndex memory recall; a query that names
such a session still reads it."""

from __future__ import annotations

from langchain_memfuse import MemFuseRetriever
from llama_index.memory.memfuse import MemFuseMemory
from memfuse_memory import BlockingBufferService
from memfuse_memory.adapters import INTERNAL_PREFIX


def contents(reply: dict) -> list[str]:
    return [r["content"] for r in reply["data"]["results"]]


def test_an_internal_session_is_left_out_of_queries_unless_named(memory: BlockingBufferService) -> None:
    memory.add([{"role": "system", "content": "bookkeeping of the walrus adapter"}], f"{INTERNAL_PREFIX}adapter")
    memory.add([{"role": "user", "content": "the walrus sleeps on the ice"}], "chat")
    for _ in range(2):  # before and after the vectors are stored: every source leaves it out
        assert contents(memory.query("walrus", user_id="default")) == ["the walrus sleeps on the ice"]
        named = memory.query("walrus", session_id=f"{INTERNAL_PREFIX}adapter")
        assert contents(named) == ["bookkeeping of the walrus adapter"]
        memory.flush_all()


def test_an_adapters_own_records_reach_no_recall(memory: BlockingBufferService) -> None:
    private = f"{INTERNAL_PREFIX}adapter-catalog"
    memory.add([{"role": "system", "content": "recipes/erin"}], private, user_id="erin")
    memory.add([{"role": "user", "content": "erin keeps a leek soup recipe"}], "chat", user_id="erin")
    memory.flush_all()
    assert "recipes/erin" not in contents(memory.query("recipes erin", top_k=15, user_id="erin"))
    assert "erin keeps a leek soup recipe" in contents(memory.query("recipes erin leek soup", user_id="erin"))
    docs = MemFuseRetriever(user_id="erin", k=15, service=memory).invoke("recipes erin")
    assert "recipes/erin" not in [d.page_content for d in docs]
    recall = MemFuseMemory.from_defaults(session_id="other", user_id="erin", service=memory)
    got = recall.get(input="what recipes does erin keep?")
    assert got and "erin keeps a leek soup recipe" in got[0].content, "the user's messages are memories"
    assert all("recipes/erin" not in m.content for m in got), "the adapter's record is not"
