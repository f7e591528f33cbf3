"""Bad input, fuzzed through the LangChain, LangGraph and LlamaIndex adapters.

Every call succeeds or raises a ``MemFuseError`` subclass (the LangGraph store's namespace error
is both a MemFuseError and LangGraph's own ``InvalidNamespaceError``); afterwards each adapter
reads back exactly what it acknowledged, and the engine's export holds nothing else.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.store.base import InvalidNamespaceError
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.schema import QueryBundle

from langchain_memfuse import MemFuseChatMessageHistory, MemFuseStore
from langchain_memfuse import MemFuseRetriever as LangChainRetriever
from llama_index.memory.memfuse import MemFuseMemory, MemFuseMemoryBlock
from llama_index.memory.memfuse import MemFuseRetriever as LlamaRetriever
from memfuse_memory import BlockingBufferService
from memfuse_memory.errors import MemFuseError
from tests.fakes import FakeEmbedder, MemoryVectorStore

ODD_TEXT = st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "L", "N", "P", "Zs"]), max_size=8)
GOOD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20)
TEXT = st.one_of(GOOD_TEXT, GOOD_TEXT, ODD_TEXT, st.sampled_from(["", "\ud800", "a\x00b", "z" * 100_001]))
IDS = st.one_of(
    st.sampled_from(["s1", "s2", "alice", "bob"]),
    st.sampled_from(["..", "../x", "a/b", "", " s", "\ud800", "n\x00", "x" * 300]),
    ODD_TEXT,
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), ODD_TEXT, st.binary(max_size=2)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ODD_TEXT, children, max_size=3),
    max_leaves=6,
)
LABELS = st.one_of(st.sampled_from(["mem", "alice", "bob", "a.b", "", "x\x00", "langgraph", "..", "a/b"]), ODD_TEXT)


def expected_json(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False))


def attempt(call: Callable[[], Any], also: tuple[type[Exception], ...] = ()) -> tuple[bool, Any]:
    """(True, result) on success, (False, None) on a MemFuseError (or one of ``also``); anything
    else propagates and fails the test."""
    try:
        return True, call()
    except (MemFuseError, *also):
        return False, None


@contextmanager
def engine() -> Iterator[BlockingBufferService]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        BlockingBufferService.from_config(
            data_dir=Path(tmp), embedder=FakeEmbedder(), vector_store=MemoryVectorStore()
        ) as service,
    ):
        yield service


LC_MESSAGE = st.one_of(
    st.builds(HumanMessage, content=TEXT),
    st.builds(AIMessage, content=TEXT),
    st.builds(SystemMessage, content=TEXT),
    st.builds(ToolMessage, content=TEXT, tool_call_id=GOOD_TEXT),
    st.builds(HumanMessage, content=GOOD_TEXT, additional_kwargs=st.dictionaries(GOOD_TEXT, JSONISH, max_size=2)),
    st.builds(lambda: {"role": "user", "content": "not a message"}),
    st.just("plain string"),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=st.lists(st.tuples(IDS, IDS, st.lists(LC_MESSAGE, max_size=3)), min_size=1, max_size=5),
    queries=st.lists(st.tuples(TEXT, st.one_of(st.integers(-1, 20), st.none(), st.just(True))), max_size=3),
)
def test_langchain_history_and_retriever(
    calls: list[tuple[str, str, list[Any]]], queries: list[tuple[str, Any]]
) -> None:
    with engine() as service:
        model: dict[tuple[str, str], list[str]] = {}
        for session, user, messages in calls:
            built, history = attempt(lambda s=session, u=user: MemFuseChatMessageHistory(s, user_id=u, service=service))
            if not built:
                continue
            ok, _ = attempt(lambda h=history, m=messages: h.add_messages(m))
            if ok and messages:
                model.setdefault((user, session), []).extend(m.text for m in messages)
            elif not ok and (user, session) in model:
                assert [m.text for m in history.messages] == model[(user, session)]
        for (user, session), texts in model.items():
            history = MemFuseChatMessageHistory(session, user_id=user, service=service)
            assert [m.text for m in history.messages] == texts
            assert asyncio.run(history.aget_messages()) == history.messages
        assert sum(len(t) for t in model.values()) == len(service.export_messages(all_users=True)["data"]["messages"])
        users = sorted({user for user, _ in model}) or ["alice"]
        for text, k in queries:
            for user in users:
                built, retriever = attempt(lambda u=user, k=k: LangChainRetriever(user_id=u, k=k, service=service))
                if not built:
                    continue
                ok, docs = attempt(lambda r=retriever, t=text: r.invoke(t))
                if ok:
                    assert all(doc.metadata["user_id"] == user for doc in docs)


PUT = st.tuples(
    st.lists(LABELS, max_size=3).map(tuple),
    st.one_of(GOOD_TEXT, ODD_TEXT, st.integers()),
    st.one_of(st.dictionaries(ODD_TEXT, JSONISH, max_size=3), st.none(), st.just({"v": math.nan}), st.integers()),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(puts=st.lists(PUT, min_size=1, max_size=4), query=TEXT)
def test_langgraph_store(puts: list[tuple[tuple[str, ...], Any, Any]], query: str) -> None:
    with engine() as service:
        store = MemFuseStore(user_id="app", service=service)
        model: dict[tuple[tuple[str, ...], str], Any] = {}
        for namespace, key, value in puts:
            # BaseStore.put validates namespaces itself and raises LangGraph's documented error
            ok, _ = attempt(lambda n=namespace, k=key, v=value: store.put(n, k, v), (InvalidNamespaceError,))
            if ok:
                if value is None:
                    model.pop((namespace, str(key)), None)
                else:
                    model[(namespace, str(key))] = expected_json(value)
        for (namespace, key), value in model.items():
            item = store.get(namespace, key)
            assert item is not None and item.value == value
        ok, found = attempt(lambda: store.search((), query=query, limit=50))
        if ok:
            assert {(item.namespace, item.key) for item in found} == set(model)
        assert len(store.list_namespaces()) == len({namespace for namespace, _ in model})


LI_MESSAGE = st.one_of(
    st.builds(ChatMessage, role=st.sampled_from(["user", "assistant", "system", "tool"]), content=TEXT),
    st.builds(ChatMessage, role=st.just("user"), content=GOOD_TEXT),
    st.builds(
        ChatMessage,
        role=st.just("user"),
        content=GOOD_TEXT,
        additional_kwargs=st.dictionaries(GOOD_TEXT, JSONISH, max_size=2),
    ),
    st.just("not a ChatMessage"),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scopes=st.lists(st.tuples(IDS, IDS), min_size=1, max_size=3),
    batches=st.lists(st.lists(LI_MESSAGE, max_size=3), min_size=1, max_size=4),
    query=TEXT,
    top_k=st.one_of(st.integers(-1, 20), st.just(True), st.none()),
    budget=st.one_of(st.integers(-5, 4000), st.just(True)),
)
def test_llama_index_memory_block_and_retriever(
    scopes: list[tuple[str, str]], batches: list[list[Any]], query: str, top_k: Any, budget: Any
) -> None:
    with engine() as service:
        model: dict[tuple[str, str], list[str]] = {}
        for (session, user), batch in zip(scopes * len(batches), batches, strict=False):
            built, memory = attempt(
                lambda s=session, u=user: MemFuseMemory.from_defaults(session_id=s, user_id=u, service=service)
            )
            if not built:
                continue
            ok, _ = attempt(lambda m=memory, b=batch: m.put_messages(b))
            if ok:
                model.setdefault((user, session), []).extend(str(m.content or "") for m in batch)
            attempt(lambda m=memory, b=budget: m.get(input=query, initial_token_count=b))
        for (user, session), texts in model.items():
            memory = MemFuseMemory.from_defaults(session_id=session, user_id=user, service=service)
            assert [str(m.content or "") for m in memory.get_all()] == texts
        assert sum(len(t) for t in model.values()) == len(service.export_messages(all_users=True)["data"]["messages"])
        for user in sorted({user for user, _ in model}) or ["alice"]:
            built, retriever = attempt(lambda u=user: LlamaRetriever(user_id=u, top_k=top_k, service=service))
            if built:
                ok, nodes = attempt(lambda r=retriever: r.retrieve(QueryBundle(query)))
                if ok:
                    assert all(node.node.metadata["user_id"] == user for node in nodes)
            built, block = attempt(lambda u=user: MemFuseMemoryBlock(user_id=u, service=service))
            if built:
                messages = [ChatMessage(role="user", content=query)]
                ok, text = attempt(lambda b=block, m=messages: asyncio.run(b.aget(m)))
                assert not ok or isinstance(text, str)
        before = len(service.export_messages(all_users=True)["data"]["messages"])
        block = MemFuseMemoryBlock(user_id="blockuser", service=service)
        for batch in batches:
            ok, _ = attempt(lambda b=batch: asyncio.run(block.aput(b)))
            stored = len(service.export_messages(user_id="blockuser")["data"]["messages"])
            if ok:
                assert stored >= len(batch)
        assert len(service.export_messages(all_users=True)["data"]["messages"]) - before == len(
            service.export_messages(user_id="blockuser")["data"]["messages"]
        )
