"""LangGraph long-term memory on memfuse, offline: facts saved in one thread are recalled in another.

Short-term memory (the messages of a thread) is LangGraph's checkpointer; long-term memory (facts
about the user, shared by all threads) is ``MemFuseStore``, searched in natural language.

Run: python examples/langgraph_memory.py [data_dir]   (default: a temporary directory)
"""

from __future__ import annotations

import sys
import tempfile
import uuid

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.store.base import BaseStore

from langchain_memfuse import MemFuseStore
from memfuse_memory import BlockingBufferService

MODEL = FakeListChatModel(
    responses=[
        "Got it, I'll remember that.",
        "Got it, I'll remember that too.",
        "Your sister's birthday is on 3 March, so buy the present before then.",
    ]
)


def call_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict:
    """Recall the user's memories relevant to the last message, answer, and save new facts."""
    user_id = config["configurable"]["user_id"]
    namespace = ("memories", user_id)
    question = str(state["messages"][-1].content)
    # ranked hits carry a score; the rest of the namespace follows unscored (as in InMemoryStore)
    memories = [item for item in store.search(namespace, query=question, limit=1) if item.score is not None]
    for item in memories:
        print(f"    recalled: {item.value['text']} (score {item.score:.2f})")
    system = "You are a helpful assistant. About the user:\n" + "\n".join(f"- {m.value['text']}" for m in memories)
    if question.lower().startswith("remember"):
        fact = question.split(" ", 1)[1].removeprefix("that ")
        store.put(namespace, uuid.uuid4().hex, {"text": fact})
        print(f"    saved to long-term memory: {fact}")
    reply = MODEL.invoke([SystemMessage(system), *state["messages"]])
    return {"messages": [reply]}


def ask(graph: object, thread_id: str, text: str) -> None:
    config = {"configurable": {"thread_id": thread_id, "user_id": "alice"}}
    print(f"[{thread_id}] user: {text}")
    result = graph.invoke({"messages": [HumanMessage(text)]}, config)  # type: ignore[attr-defined]
    print(f"[{thread_id}] assistant: {result['messages'][-1].content}")


def main(data_dir: str) -> None:
    with BlockingBufferService.from_config(data_dir=data_dir) as memory:
        store = MemFuseStore(user_label=1, service=memory)  # ("memories", <user>) -> that memfuse user
        builder = StateGraph(MessagesState).add_node("call_model", call_model).add_edge(START, "call_model")
        graph = builder.compile(checkpointer=InMemorySaver(), store=store)
        print("== thread 1 ==")
        ask(graph, "thread-1", "Remember that my sister's birthday is on 3 March")
        ask(graph, "thread-1", "Remember that I am allergic to peanuts")
        print("== thread 2 (a new conversation) ==")
        ask(graph, "thread-2", "When should I buy a gift for my sibling?")
        print("== long-term memory namespaces ==")
        for namespace in store.list_namespaces():
            items = store.search(namespace)
            print(f"    {namespace}: {len(items)} items")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
