"""LangChain chat with memfuse memory, offline: two sessions, the second recalls the first.

Run: python examples/langchain_chat.py [data_dir]   (default: a temporary directory)
"""

from __future__ import annotations

import sys
import tempfile
import warnings

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnablePassthrough
from langchain_core.runnables.history import RunnableWithMessageHistory

from langchain_memfuse import MemFuseChatMessageHistory, MemFuseRetriever
from memfuse_memory import BlockingBufferService

# RunnableWithMessageHistory still works in LangChain 1.x but warns that LangGraph is preferred.
warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")

USER = "alice"


def build_chain(memory: BlockingBufferService) -> RunnableWithMessageHistory:
    """A chat chain whose history is a memfuse session and whose context comes from all sessions."""
    retriever = MemFuseRetriever(user_id=USER, k=2, service=memory)
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a helpful assistant. What you remember about the user:\n{memories}"),
            MessagesPlaceholder("history"),
            ("human", "{input}"),
        ]
    )
    model = FakeListChatModel(
        responses=[
            "Nice to meet you, Alice! Miso is a lovely name for a cat.",
            "Noted: no peanuts for you.",
            "You told me your cat is called Miso.",
        ]
    )

    def recall(inputs: dict) -> str:
        docs = retriever.invoke(inputs["input"])
        for doc in docs:
            print(f"    recalled [{doc.metadata['session_id']}] {doc.page_content}")
        return "\n".join(f"- {doc.page_content}" for doc in docs) or "(nothing yet)"

    chain = RunnablePassthrough.assign(memories=recall) | prompt | model
    return RunnableWithMessageHistory(
        chain,
        lambda session_id: MemFuseChatMessageHistory(session_id, user_id=USER, service=memory),
        input_messages_key="input",
        history_messages_key="history",
    )


def chat(chain: RunnableWithMessageHistory, session_id: str, text: str) -> None:
    print(f"[{session_id}] user: {text}")
    reply = chain.invoke({"input": text}, {"configurable": {"session_id": session_id}})
    print(f"[{session_id}] assistant: {reply.content}")


def main(data_dir: str) -> None:
    with BlockingBufferService.from_config(data_dir=data_dir) as memory:
        chain = build_chain(memory)
        print("== session monday ==")
        chat(chain, "monday", "Hi, I'm Alice. My cat is called Miso.")
        chat(chain, "monday", "Also, I am allergic to peanuts.")
        memory.flush_all()  # embed now; a live app lets the background worker do it
        print("== session tuesday (a new conversation) ==")
        chat(chain, "tuesday", "What is the name of my pet?")
        for session_id in ("monday", "tuesday"):
            messages = MemFuseChatMessageHistory(session_id, user_id=USER, service=memory).messages
            print(f"== history {session_id}: {len(messages)} messages ==")
            for message in messages:
                print(f"    {message.type}: {message.content}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
