"""Chat history and retriever on the real engine (MiniLM, Chroma, SQLite) with real LangChain runnables."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from langchain_memfuse import MemFuseChatMessageHistory, MemFuseRetriever
from memfuse_memory.shared import resolve_service
from tests.engine.test_langchain_history import every_message_type

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated"),
]


@pytest.fixture
def data_dir(tmp_path):
    """A data dir whose shared engine is closed after the test (it would otherwise live until exit)."""
    yield tmp_path
    resolve_service(data_dir=tmp_path).close()


def chat_chain(data_dir, responses, seen):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a helpful assistant."), MessagesPlaceholder("history"), ("human", "{input}")]
    )

    def record(value):
        seen.append(value.to_messages())
        return value

    chain = prompt | RunnableLambda(record) | FakeListChatModel(responses=responses)
    return RunnableWithMessageHistory(
        chain,
        lambda session_id: MemFuseChatMessageHistory(session_id, user_id="alice", data_dir=data_dir),
        input_messages_key="input",
        history_messages_key="history",
    )


def contents(data_dir, session_id):
    return [
        (type(m), m.content) for m in MemFuseChatMessageHistory(session_id, user_id="alice", data_dir=data_dir).messages
    ]


def test_runnable_with_message_history_keeps_two_sessions_apart(data_dir):
    seen: list = []
    chain = chat_chain(data_dir, ["Hi Alice!", "Your cat is Miso.", "Hello stranger."], seen)
    one = {"configurable": {"session_id": "one"}}
    two = {"configurable": {"session_id": "two"}}
    assert chain.invoke({"input": "I'm Alice, my cat is Miso"}, one).content == "Hi Alice!"
    assert chain.invoke({"input": "What's my cat called?"}, one).content == "Your cat is Miso."
    assert chain.invoke({"input": "Who am I?"}, two).content == "Hello stranger."
    assert contents(data_dir, "one") == [
        (HumanMessage, "I'm Alice, my cat is Miso"),
        (AIMessage, "Hi Alice!"),
        (HumanMessage, "What's my cat called?"),
        (AIMessage, "Your cat is Miso."),
    ]
    assert contents(data_dir, "two") == [(HumanMessage, "Who am I?"), (AIMessage, "Hello stranger.")]
    # the model saw session one's history on its second turn, and nothing of it in session two
    assert [m.content for m in seen[1]][1:3] == ["I'm Alice, my cat is Miso", "Hi Alice!"]
    assert [m.content for m in seen[2]] == ["You are a helpful assistant.", "Who am I?"]


async def test_ainvoke_and_concurrent_sessions(data_dir):
    seen: list = []
    chain = chat_chain(data_dir, ["ok"], seen)

    async def talk(session_id, turns):
        for turn in range(turns):
            reply = await chain.ainvoke(
                {"input": f"{session_id} turn {turn}"}, {"configurable": {"session_id": session_id}}
            )
            assert reply.content == "ok"

    await talk("solo", 2)
    assert contents(data_dir, "solo") == [
        (HumanMessage, "solo turn 0"),
        (AIMessage, "ok"),
        (HumanMessage, "solo turn 1"),
        (AIMessage, "ok"),
    ]
    sessions = [f"s{n}" for n in range(5)]
    await asyncio.gather(*(talk(session_id, 3) for session_id in sessions))
    for session_id in sessions:
        expected = []
        for turn in range(3):
            expected += [(HumanMessage, f"{session_id} turn {turn}"), (AIMessage, "ok")]
        assert contents(data_dir, session_id) == expected
    # every prompt held only its own session's earlier turns
    for prompt in seen:
        session_id = prompt[-1].content.split()[0]
        assert all(m.content.startswith(session_id) for m in prompt[1:] if isinstance(m, HumanMessage))


def test_round_trip_every_message_type_on_the_real_engine(data_dir):
    sent = every_message_type()
    history = MemFuseChatMessageHistory("types", user_id="alice", data_dir=data_dir)
    history.add_messages(sent)
    resolve_service(data_dir=data_dir).flush_all()
    assert history.messages == sent
    assert MemFuseChatMessageHistory("types", user_id="alice", data_dir=data_dir).messages == sent


async def test_async_round_trip_on_the_real_engine(data_dir):
    sent = every_message_type()
    history = MemFuseChatMessageHistory("types", user_id="alice", data_dir=data_dir)
    await history.aadd_messages(sent)
    assert await history.aget_messages() == sent
    await history.aclear()
    assert history.messages == []


def test_retriever_recalls_an_earlier_session_by_meaning(data_dir):
    MemFuseChatMessageHistory("monday", user_id="alice", data_dir=data_dir).add_messages(
        [HumanMessage("I adopted a kitten and named her Miso"), AIMessage("What a sweet name!")]
    )
    MemFuseChatMessageHistory("tuesday", user_id="alice", data_dir=data_dir).add_messages(
        [HumanMessage("Remind me to renew my passport"), AIMessage("Noted: passport renewal.")]
    )
    MemFuseChatMessageHistory("wednesday", user_id="bob", data_dir=data_dir).add_messages(
        [HumanMessage("My kitten is called Tofu")]
    )
    retriever = MemFuseRetriever(user_id="alice", k=1, data_dir=data_dir)
    # seen at once, before anything is embedded (keyword match over acknowledged messages)
    assert "Miso" in retriever.invoke("Miso")[0].page_content
    resolve_service(data_dir=data_dir).flush_all()
    # one round is one embedded chunk, so the question finds the whole Monday round
    docs = retriever.invoke("what is the name of my pet cat?", k=2)
    assert {d.metadata["session_id"] for d in docs} == {"monday"}
    assert any("Miso" in d.page_content for d in docs)
    assert all(d.metadata["user_id"] == "alice" and "vector" in d.metadata["retrieval"]["methods"] for d in docs)
