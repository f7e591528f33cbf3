"""A LangChain agent whose tools read and write long-term memory in MemFuseStore, offline.

The chat model is a scripted fake (no network, no API key): it first calls the ``save_memory``
tool, then, in a later conversation, the ``recall_memories`` tool, and answers from what it found.

Run: python examples/langgraph_agent_store.py [data_dir]   (default: a temporary directory)
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain.tools import ToolRuntime, tool
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from langchain_memfuse import MemFuseStore


class ScriptedModel(FakeMessagesListChatModel):
    """Replies with the scripted messages in turn; tools are bound by the script itself."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


@dataclass
class Context:
    """Who the agent is talking to (passed per call, read by the tools)."""

    user_id: str


@tool
def save_memory(text: str, runtime: ToolRuntime[Context]) -> str:
    """Save a fact about the user to long-term memory."""
    runtime.store.put(("memories", runtime.context.user_id), uuid.uuid4().hex, {"text": text})
    return f"saved: {text}"


@tool
def recall_memories(query: str, runtime: ToolRuntime[Context]) -> str:
    """Find the saved facts about the user closest in meaning to the query."""
    hits = runtime.store.search(("memories", runtime.context.user_id), query=query, limit=2)
    return "\n".join(f"{hit.value['text']} (score {hit.score:.2f})" for hit in hits) or "nothing saved"


def call(name: str, **args: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": uuid.uuid4().hex}])


SCRIPT = [
    call("save_memory", text="My sister's birthday is on 3 March"),
    AIMessage("Noted, I'll remember your sister's birthday."),
    call("save_memory", text="I am allergic to peanuts"),
    AIMessage("Noted, no peanuts."),
    call("recall_memories", query="when is my sibling's birthday?"),
    AIMessage("Your sister's birthday is on 3 March: buy the present before then."),
]


def main(data_dir: str) -> list[str]:
    """Three conversations with one agent; returns what the tools said."""
    store = MemFuseStore(user_label=1, data_dir=data_dir)  # ("memories", <user>) -> that memfuse user
    agent = create_agent(
        ScriptedModel(responses=SCRIPT), tools=[save_memory, recall_memories], store=store, context_schema=Context
    )
    tools_said = []
    for text in ["Remember my sister's birthday is on 3 March", "Remember I can't eat peanuts", "When is it?"]:
        result = agent.invoke({"messages": [("user", text)]}, context=Context(user_id="alice"))
        print(f"user: {text}")
        for message in result["messages"][-3:]:
            if message.type == "tool":
                tools_said.append(str(message.content))
                print(f"    tool {message.name}: {message.content}")
        print(f"assistant: {result['messages'][-1].content}")
    return tools_said


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
