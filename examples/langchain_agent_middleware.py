"""A LangChain 1.x agent (create_agent) with memfuse memory as middleware, offline.

Alice tells the agent about her cat in one thread; in a new thread the middleware recalls it
before the model call. Bob, on the same agent, never sees Alice's memories. The model is a
scripted fake that prints the memories it was given (a real app passes a real chat model).

Run: python examples/langchain_agent_middleware.py [data_dir]   (default: a temporary directory)
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_memfuse import MemFuseMemoryMiddleware
from langchain_memfuse.agent_turns import RECALL_KEY
from memfuse_memory import BlockingBufferService


@dataclass
class Context:
    """Per-run context: who is talking (the middleware reads ``user_id`` from it)."""

    user_id: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny and 24 C in {city}."


class ScriptedModel(FakeMessagesListChatModel):
    """Plays back scripted replies and prints the memories each call received."""

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        for message in messages:
            if isinstance(message, SystemMessage) and RECALL_KEY in message.additional_kwargs:
                recalled = message.additional_kwargs[RECALL_KEY]
                print(f"    memory given to the model ({recalled['tokens']} tokens):")
                for line in message.text.splitlines()[1:]:
                    print(f"      {line}")
        return super()._generate(messages, stop, run_manager, **kwargs)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


MODEL = ScriptedModel(
    responses=[
        AIMessage("Nice to meet you, Alice! Miso is a lovely name for a cat."),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call-1"}]),
        AIMessage("It is sunny and 24 C in Lisbon."),
        AIMessage("Your cat is called Miso."),
        AIMessage("I don't know yet: tell me about your pet!"),
    ]
)


def ask(agent: Any, user: str, thread: str, text: str) -> None:
    print(f"[{user}/{thread}] user: {text}")
    result = agent.invoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}, context=Context(user_id=user)
    )
    print(f"[{user}/{thread}] assistant: {result['messages'][-1].content}")


def main(data_dir: str) -> None:
    with BlockingBufferService.from_config(data_dir=data_dir) as memory:
        middleware = MemFuseMemoryMiddleware(service=memory, top_k=3, token_budget=300)
        agent = create_agent(
            MODEL,
            tools=[get_weather],
            system_prompt="You are a helpful assistant.",
            middleware=[middleware],
            checkpointer=InMemorySaver(),
            context_schema=Context,
        )
        print("== thread monday ==")
        ask(agent, "alice", "monday", "Hi, I'm Alice. My cat is called Miso.")
        ask(agent, "alice", "monday", "What's the weather in Lisbon?")
        memory.flush_all()  # embed now; a live app lets the background worker do it
        print("== thread tuesday (a new conversation) ==")
        ask(agent, "alice", "tuesday", "What is the name of my pet?")
        print("== thread tuesday of bob (another user) ==")
        ask(agent, "bob", "tuesday", "What is the name of my pet?")
        print("== stored rounds ==")
        for user, thread in (("alice", "monday"), ("alice", "tuesday"), ("bob", "tuesday")):
            rows = memory.get_messages_by_session(thread, user_id=user)["data"]["messages"]
            print(f"    {user}/{thread}: {len(rows)} messages")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
