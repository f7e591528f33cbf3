"""MemFuseRetriever over the fake embedder: k, scoping, filters, Document metadata, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage

from langchain_memfuse import MemFuseChatMessageHistory, MemFuseRetriever, MemFuseStore
from memfuse_memory import ConfigError, InvalidInputError, InvalidQueryError, InvalidScopeError


@pytest.fixture
def filled(memory):
    """Two sessions of alice and one of bob, written through the chat history."""
    MemFuseChatMessageHistory("trip", user_id="alice", service=memory).add_messages(
        [HumanMessage("I am flying to Lisbon in May"), AIMessage("Lisbon in May is lovely, pack light")]
    )
    MemFuseChatMessageHistory("pets", user_id="alice", service=memory).add_messages(
        [HumanMessage("My cat Miso hates the vacuum"), AIMessage("Cats often fear loud noises")]
    )
    MemFuseChatMessageHistory("pets", user_id="bob", service=memory).add_messages(
        [HumanMessage("My cat Tofu loves the vacuum")]
    )
    memory.flush_all()
    return memory


def test_documents_carry_score_ids_role_session_time_and_source(filled):
    docs = MemFuseRetriever(user_id="alice", k=2, service=filled).invoke("cat Miso vacuum")
    assert len(docs) == 2
    top = docs[0]
    assert isinstance(top, Document)
    assert top.page_content == "My cat Miso hates the vacuum"
    meta = top.metadata
    assert meta["session_id"] == "pets" and meta["user_id"] == "alice" and meta["role"] == "user"
    assert top.id == meta["id"] and meta["id"] in meta["message_ids"]
    assert meta["score"] >= docs[1].metadata["score"]
    assert datetime.fromisoformat(meta["created_at"].replace("Z", "+00:00")) <= datetime.now(UTC)
    assert meta["source"] in {"round_buffer", "hybrid_buffer", "storage"}
    assert meta["message_metadata"]["lc_type"] == "human"


def test_k_in_invoke_overrides_the_field(filled):
    retriever = MemFuseRetriever(user_id="alice", k=4, service=filled)
    assert len(retriever.invoke("cat Lisbon vacuum May")) == 4
    assert len(retriever.invoke("cat Lisbon vacuum May", k=1)) == 1
    assert retriever.k == 4


def test_one_user_never_sees_another(filled):
    docs = MemFuseRetriever(user_id="bob", k=10, service=filled).invoke("cat vacuum Miso Lisbon")
    assert docs and {d.metadata["user_id"] for d in docs} == {"bob"}
    assert all("Tofu" in d.page_content for d in docs)


def test_session_scope_and_per_call_override(filled):
    retriever = MemFuseRetriever(user_id="alice", session_id="trip", k=10, service=filled)
    assert {d.metadata["session_id"] for d in retriever.invoke("cat Lisbon")} == {"trip"}
    assert {d.metadata["session_id"] for d in retriever.invoke("cat Lisbon", session_id="pets")} == {"pets"}


def test_metadata_filter_on_message_type(filled):
    docs = MemFuseRetriever(user_id="alice", k=10, metadata_filter={"lc_type": "ai"}, service=filled).invoke(
        "cat Lisbon"
    )
    assert docs and {d.metadata["role"] for d in docs} == {"assistant"}


def test_time_range_and_timestamp_sort(filled):
    future = datetime.now(UTC) + timedelta(hours=1)
    assert MemFuseRetriever(user_id="alice", since=future, service=filled).invoke("cat") == []
    docs = MemFuseRetriever(
        user_id="alice", k=10, sort_by="timestamp", order="asc", until=future, service=filled
    ).invoke("cat Lisbon vacuum May")
    stamps = [d.metadata["created_at"] for d in docs]
    assert len(stamps) == 4 and stamps == sorted(stamps)


async def test_async_matches_sync(filled):
    retriever = MemFuseRetriever(user_id="alice", k=3, service=filled)
    sync_ids = [d.id for d in retriever.invoke("cat Miso Lisbon")]
    async_ids = [d.id for d in await retriever.ainvoke("cat Miso Lisbon")]
    assert sync_ids == async_ids and len(sync_ids) == 3
    assert len(await retriever.ainvoke("cat Miso", k=1)) == 1


def test_sees_a_history_write_at_once_on_the_same_engine(memory):
    MemFuseChatMessageHistory("s9", user_id="dora", service=memory).add_user_message("the wifi password is swordfish")
    docs = MemFuseRetriever(user_id="dora", k=1, service=memory).invoke("swordfish")
    assert [d.page_content for d in docs] == ["the wifi password is swordfish"]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_bad_k_is_rejected_in_the_constructor_and_in_invoke(memory, k):
    with pytest.raises(InvalidQueryError, match="k must be a positive integer"):
        MemFuseRetriever(k=k, service=memory)
    with pytest.raises(InvalidQueryError, match="k must be a positive integer"):
        MemFuseRetriever(service=memory).invoke("x", k=k)


def test_other_bad_input_is_typed(memory, tmp_path):
    retriever = MemFuseRetriever(user_id="alice", service=memory)
    with pytest.raises(InvalidInputError, match="unknown retriever argument"):
        retriever.invoke("x", top_n=3)
    with pytest.raises(InvalidQueryError):
        retriever.invoke("   ")
    with pytest.raises(InvalidScopeError):
        MemFuseRetriever(user_id="a/b", service=memory).invoke("x")
    with pytest.raises(ConfigError):
        MemFuseRetriever(service=memory, data_dir=tmp_path)


def test_store_items_stay_out_of_message_recall(memory):
    MemFuseStore(user_id="erin", service=memory).put(("memories", "erin"), "pet", {"text": "erin keeps bees"})
    memory.add([{"role": "user", "content": "erin asked about bees"}], "chat", user_id="erin")
    memory.flush_all()
    docs = MemFuseRetriever(user_id="erin", k=10, service=memory).invoke("memories erin bees")
    assert [d.page_content for d in docs] == ["erin asked about bees"]
